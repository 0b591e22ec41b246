"""The Apple pass shows the balance large: a points card's balance is the primary field, drawn over the strip;
a stamp card's strip shows its stamps, drawn (earned ones filled), at @1x, @2x and @3x."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy.orm import Session

from app.channels.apple_pass import DESIGN_DIR
from app.wallet import images
from app.wallet.stamps import MAX_DRAWN, layout, stamp_strips
from tests.integration.test_apple_pass import download, fields, unpack

SIZES = {"strip.png": (375, 123), "strip@2x.png": (750, 246), "strip@3x.png": (1125, 369)}
INK, PAPER = (255, 255, 255), (124, 45, 18)  # a white stamp on a rust-brown card


def stamp_states(png: bytes, required: int) -> list[bool]:
    """Whether each stamp of the strip is filled: the lower half of a filled disc is the ink, opaque."""
    strip = Image.open(io.BytesIO(png)).convert("RGBA")
    states = []
    for x, y, r in layout(required, *strip.size):
        pixel = strip.getpixel((round(x), round(y + r * 0.6)))
        states.append(pixel[3] > 200 and all(abs(a - b) < 40 for a, b in zip(pixel[:3], INK, strict=True)))
    return states


def test_a_points_card_shows_its_balance_large_on_the_strip(client: FlaskClient, make_program: Callable[..., Any],
                                                            make_card: Callable[..., Any]) -> None:
    card = make_card(make_program(), balance=120)
    files = unpack(download(client, card).data)
    document = json.loads(files["pass.json"])
    assert document["storeCard"]["primaryFields"] == [{"key": "points", "label": "Points", "value": 120}]
    assert fields(document)["balance"]["value"] == 120  # and in the header, seen when passes are stacked
    assert files["strip@2x.png"] == (DESIGN_DIR / "strip@2x.png").read_bytes()


def test_a_stamp_card_draws_its_stamps_on_the_strip(client: FlaskClient, db_session: Session,
                                                    make_program: Callable[..., Any], make_card: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    program = make_program(kind="stamps", stamps_required=8, stamp_reward="A free coffee",
                           background_color="#7C2D12", foreground_color="#FFFFFF")
    card = make_card(program)
    card.stamps = 3
    db_session.flush()
    files = unpack(download(client, card).data)
    document = json.loads(files["pass.json"])
    assert document["storeCard"].get("primaryFields", []) == []  # the stamps are the big picture
    assert fields(document)["balance"]["value"] == "3 / 8"
    for name, size in SIZES.items():
        strip = Image.open(io.BytesIO(files[name]))
        assert strip.size == size, name
        assert stamp_states(files[name], 8) == [True] * 3 + [False] * 5, name
        (tmp_path / name).write_bytes(files[name])  # to look at

    card.stamps, card.version = 7, card.version + 1
    db_session.flush()
    again = unpack(download(client, card).data)
    assert stamp_states(again["strip@3x.png"], 8) == [True] * 7 + [False]


def test_stamps_are_drawn_over_the_programmes_own_strip(client: FlaskClient, db_session: Session,
                                                        make_program: Callable[..., Any],
                                                        make_card: Callable[..., Any]) -> None:
    program = make_program(kind="stamps", stamps_required=10, foreground_color="#FFFFFF")
    picture = io.BytesIO()
    Image.new("RGBA", (800, 300), (0, 90, 200, 255)).save(picture, format="PNG")
    images.save_image(db_session, program=program, kind="strip", data=picture.getvalue(), actor="cli",
                      now=program.created_at)
    card = make_card(program)
    card.stamps = 10
    db_session.flush()
    strip = unpack(download(client, card).data)["strip@2x.png"]
    assert stamp_states(strip, 10) == [True] * 10
    assert Image.open(io.BytesIO(strip)).convert("RGBA").getpixel((2, 2)) == (0, 90, 200, 255)  # the upload shows


@pytest.mark.parametrize(("required", "rows"), [(1, 1), (6, 1), (10, 1), (12, 2), (20, 2), (30, 3)])
def test_every_stamp_fits_the_strip_without_overlapping(required: int, rows: int) -> None:
    width, height = 1125, 369
    spots = layout(required, width, height)
    assert len(spots) == required and len({round(y) for _, y, _ in spots}) == rows
    for x, y, r in spots:
        assert r <= x <= width - r and r <= y <= height - r
    for n, (x, y, r) in enumerate(spots):
        for x2, y2, r2 in spots[n + 1:]:
            assert (x - x2) ** 2 + (y - y2) ** 2 >= (r + r2) ** 2


def test_nothing_is_drawn_for_a_card_without_a_stamp_goal() -> None:
    assert stamp_strips(earned=1, required=0, ink="#FFFFFF", background="#000000", bases={}) == ()
    assert stamp_strips(earned=1, required=MAX_DRAWN + 1, ink="#FFFFFF", background="#000000", bases={}) == ()
