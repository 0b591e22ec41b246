"""The card designer's domain side: checking and resizing uploaded PNGs, the pass and the Google class using
the programme's own images, settings changes (audited, announced), and the re-sync job that re-sends
every card's pass."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.channels.apple_pass import DESIGN_DIR
from app.channels.registry import EXTENSION
from app.db import utcnow
from app.errors import Conflict, InvalidInput
from app.loyalty import settings as service
from app.models import AuditEvent, Card, ChannelMessage, Job, OutboxEvent, ProgramImage
from app.tasks.design import resync_design
from app.wallet import google, images
from app.wallet.apple import pass_content


def png(width: int, height: int, colour: tuple[int, int, int, int] = (200, 30, 30, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def with_dimensions(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a PNG) with its IHDR claiming other dimensions, checksum fixed: what a decompression bomb
    looks like before anything is decoded."""
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


def sizes(pngs: dict[int, bytes]) -> dict[int, tuple[int, int]]:
    return {scale: Image.open(io.BytesIO(data)).size for scale, data in pngs.items()}


# ------------------------------------------------------------------------------------- checking uploads


@pytest.mark.parametrize(("data", "message"), [
    (b"", "Choose a PNG file"),
    (b"GIF89a" + b"\0" * 100, "not a PNG"),
    (png(40, 40)[:60], "damaged"),
    (with_dimensions(png(20, 20), 100_000, 100_000), "100000 × 100000 pixels"),
    (png(8, 8), "at least 16 pixels"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024), "limit is 2 MB"),
])
def test_unusable_files_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        images.check_png(data, field="logo")
    assert caught.value.errors[0].field == "logo"
    assert message in caught.value.errors[0].message


def test_a_jpeg_renamed_png_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40)).save(buffer, format="JPEG")
    with pytest.raises(InvalidInput, match="not a PNG"):
        images.check_png(buffer.getvalue())


def test_images_are_resized_to_apples_sizes_at_each_scale() -> None:
    wide = images.check_png(png(600, 300))
    # the logo keeps its proportions inside 160 × 50 pt
    assert sizes(images.resize(wide, "logo")) == {1: (100, 50), 2: (200, 100), 3: (300, 150)}
    assert sizes(images.resize(images.check_png(png(1000, 100)), "logo")) == {1: (160, 16), 2: (320, 32),
                                                                               3: (480, 48)}
    # the strip and the icon fill their box exactly
    assert sizes(images.resize(wide, "strip")) == {1: (375, 123), 2: (750, 246), 3: (1125, 369)}
    assert sizes(images.resize(wide, "icon")) == {1: (29, 29), 2: (58, 58), 3: (87, 87)}


# --------------------------------------------------------------------------- the pass and Google's class


def test_the_pass_carries_the_uploaded_logo_at_each_scale(app: Flask, db_session: Session,
                                                         make_program: Callable[..., Any],
                                                         make_card: Callable[..., Any]) -> None:
    program = make_program()
    card = make_card(program)
    other = make_card(make_program())
    rows = images.save_image(db_session, program=program, kind="logo", data=png(600, 300), actor="test",
                             now=utcnow())
    stored = {images.file_name("logo", row.scale): row.png for row in rows}

    with app.app_context():
        factory = app.extensions[EXTENSION].apple().passes
    content = pass_content(db_session, card, base_url="https://tallypass.test")
    package = zipfile.ZipFile(io.BytesIO(factory.build(content).data))
    manifest = json.loads(package.read("manifest.json"))
    for name, data in stored.items():
        assert package.read(name) == data
        assert manifest[name] == hashlib.sha1(data).hexdigest()  # noqa: S324 (Apple's format)
    assert package.read("strip@2x.png") == (DESIGN_DIR / "strip@2x.png").read_bytes()  # not uploaded: default

    # another programme's pass keeps the default logo
    plain = pass_content(db_session, other, base_url="https://tallypass.test")
    default = zipfile.ZipFile(io.BytesIO(factory.build(plain).data))
    assert default.read("logo@3x.png") == (DESIGN_DIR / "logo@3x.png").read_bytes()


def test_googles_class_points_at_the_uploaded_logo_served_publicly(client: FlaskClient, db_session: Session,
                                                                  make_program: Callable[..., Any]) -> None:
    program = make_program()
    setup = google.GoogleSetup(issuer_id="3388000000000000000", base_url="https://tallypass.test")
    assert google.class_resource(setup, program, [])["programLogo"]["sourceUri"]["uri"] == \
        "https://tallypass.test/media/program-logo.png"

    rows = images.save_image(db_session, program=program, kind="logo", data=png(600, 300), actor="test",
                             now=utcnow())
    db_session.commit()
    uri = google.class_resource(setup, program, [])["programLogo"]["sourceUri"]["uri"]
    largest = next(r for r in rows if r.scale == 3)
    assert uri == f"https://tallypass.test/media/programs/{program.id}/logo-{largest.sha256[:16]}.png"

    response = client.get(uri.removeprefix("https://tallypass.test"))
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data == largest.png
    assert "immutable" in response.headers["Cache-Control"]
    assert client.get(f"/media/programs/{program.id}/logo-{'0' * 16}.png").status_code == 404


# ------------------------------------------------------------------------------------- settings changes


def test_a_settings_change_is_audited_and_announced(db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    old_name = program.name
    spec = service.ProgramSettings.model_validate({"point_value": "0.50", "expiry_days": None, "name": "Beans"})
    before = db_session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "program.changed"))
    changed = service.update_program(db_session, program=program, settings=spec, actor="cli", now=utcnow())
    assert changed == {"point_value": ["1.00", "0.50"], "expiry_days": [365, None],
                       "name": [old_name, "Beans"]}
    assert program.point_value == Decimal("0.50") and program.expiry_days is None and program.name == "Beans"
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "program.updated"))
    assert event is not None and event.target == f"program:{program.id}" and event.actor == "cli"
    assert event.details["changed"]["point_value"] == ["1.00", "0.50"]
    after = db_session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "program.changed"))
    assert after == before + 1

    # the same values again change nothing and write nothing
    assert service.update_program(db_session, program=program, settings=spec, actor="cli", now=utcnow()) == {}


def test_a_tier_with_members_cannot_be_removed(db_session: Session, make_program: Callable[..., Any],
                                              make_card: Callable[..., Any]) -> None:
    program = make_program()
    card = make_card(program)
    assert card.tier is not None
    with pytest.raises(Conflict, match="1 card"):
        service.remove_tier(db_session, tier=card.tier, actor="cli", now=utcnow())
    empty = next(t for t in program.tiers if t.id != card.tier_id)
    service.remove_tier(db_session, tier=empty, actor="cli", now=utcnow())
    assert empty.name not in {t.name for t in program.tiers}


def test_tier_names_are_unique_whatever_the_case(db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    with pytest.raises(InvalidInput) as caught:
        service.add_tier(db_session, program=program, actor="cli", now=utcnow(),
                         spec=service.TierSpec(name="gold", qualifying_spend=Decimal(0), earn_percent=Decimal(1)))
    assert caught.value.errors[0].field == "name"


# ------------------------------------------------------------------------------------------ the job


def test_the_job_resends_every_card_and_finishes_with_done_equal_to_total(
        app: Flask, db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import app.tasks.design as design_tasks

    monkeypatch.setattr(design_tasks, "BATCH", 2)  # several batches
    program = make_program()
    cards = [make_card(program) for _ in range(5)]
    bystander = make_card(make_program())
    versions = {card.id: card.version for card in cards}
    job = service.start_resync(db_session, program=program, actor="cli", now=utcnow())
    db_session.commit()
    assert (job.state, job.total, job.done) == ("queued", 5, 0)
    events_before = db_session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "card.changed"))

    with app.app_context():
        assert resync_design.delay(job.id).result == 5  # eager (no broker); .get() refuses after a worker test

    db_session.expire_all()
    job = db_session.get(Job, job.id)
    assert job is not None and (job.state, job.done, job.total) == ("done", 5, 5)
    assert job.finished_at is not None and job.error is None
    for card in cards:
        assert db_session.get(Card, card.id).version == versions[card.id] + 1  # type: ignore[union-attr]
    assert db_session.get(Card, bystander.id).version == bystander.version  # type: ignore[union-attr]
    events = db_session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "card.changed"))
    assert events == events_before + 5
    # Google's class was re-synced: without a reachable Google, it is written to the channel outbox
    assert db_session.scalar(select(func.count()).select_from(ChannelMessage).where(
        ChannelMessage.channel == "google_wallet", ChannelMessage.recipient.endswith(program.slug))) >= 1

    # a finished job is not run again
    with app.app_context():
        assert resync_design.delay(job.id).result == 0


def test_replacing_an_image_keeps_one_row_per_scale(db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    images.save_image(db_session, program=program, kind="strip", data=png(800, 300), actor="cli", now=utcnow())
    images.save_image(db_session, program=program, kind="strip", data=png(800, 300, (0, 0, 255, 255)), actor="cli",
                      now=utcnow())
    rows = db_session.scalars(select(ProgramImage).where(ProgramImage.program_id == program.id)).all()
    assert sorted(r.scale for r in rows) == [1, 2, 3]
    assert Image.open(io.BytesIO(rows[0].png)).convert("RGBA").getpixel((5, 5)) == (0, 0, 255, 255)
    assert db_session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "program.image_uploaded")) == 2
    assert images.remove_image(db_session, program=program, kind="strip", actor="cli", now=utcnow())
    assert images.pass_files(db_session, program.id) == ()
