"""Colour contrast (WCAG 2.x, app/contrast.py) where a programme's colours meet: the card designer says beside
the text and label colours how they read on the background, saves a low contrast with that warning, refuses a
text colour nothing could be read in (below 3:1); the customer pages pick a text colour that passes AA wherever
the brand colour is a background."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.contrast import AA_TEXT, contrast_ratio
from app.models import Program
from tests.web.api_client import call
from tests.web.dashboard_client import sign_in_as


def contrast_note(page: str, name: str) -> tuple[str, str]:
    match = re.search(rf'<p class="programme-contrast" id="design-{name}-contrast" data-contrast="{name}" '
                      rf'data-level="([^"]*)" aria-live="polite">([^<]*)</p>', page)
    assert match, name
    return match.group(1), match.group(2)


def design(client: FlaskClient, token: str, program: Any, **colours: str) -> Any:
    return client.post("/dashboard/programme/design", content_type="multipart/form-data", data={
        "csrf_token": token, "program": program.slug, "logo_text": "", **colours})


def brand_vars(page: str) -> dict[str, str]:
    match = re.search(r"<style nonce=\"[^\"]+\">:root \{ (.*?) \}</style>", page)
    assert match, "no brand colours on the page"
    return dict(part.strip().split(": ") for part in match.group(1).split(";") if part.strip())


def test_the_designer_shows_the_contrast_beside_the_text_and_label_colours(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program(background_color="#0F766E", foreground_color="#FFFFFF", label_color="#5EEAD4")
    db_session.commit()
    sign_in_as(client, db_session, "viewer")
    page = client.get(f"/dashboard/programme?program={program.slug}").text
    assert contrast_note(page, "foreground_color") == (
        "ok", "Text on the background: 5.47:1, passes WCAG AA (4.5:1).")
    level, text = contrast_note(page, "label_color")
    assert level == "low"
    assert re.fullmatch(r"Labels on the background: \d\.\d\d:1, below the 4\.5:1 of WCAG AA: hard to read, in "
                        r"sunlight above all\.", text), text
    assert 'aria-describedby="design-label_color-note design-label_color-contrast"' in page


def test_a_low_contrast_is_saved_with_a_warning_and_an_unreadable_one_is_refused(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")

    low = design(client, token, program, background_color="#FF0000", foreground_color="#FFFFFF",
                 label_color="#FFFFFF")  # 3.99:1: saved, the page says it is hard to read
    assert low.status_code == 303, low.text
    db_session.expire_all()
    assert (program.background_color, program.foreground_color) == ("#FF0000", "#FFFFFF")
    page = client.get(f"/dashboard/programme?program={program.slug}").text
    assert contrast_note(page, "foreground_color")[0] == "low"
    assert "3.99:1, below the 4.5:1 of WCAG AA" in contrast_note(page, "foreground_color")[1]

    refused = design(client, token, program, background_color="#777777", foreground_color="#999999",
                     label_color="#FFFFFF")
    assert refused.status_code == 422
    error = re.search(r'<p class="dash-error" id="design-foreground_color-note">([^<]*)</p>', refused.text)
    assert error and error.group(1).startswith("The text colour and the background are too alike (1.")
    assert contrast_note(refused.text, "foreground_color")[0] == "unreadable"
    assert 'value="#999999"' in refused.text  # what was typed stays in the form
    db_session.expire_all()
    assert (program.background_color, program.foreground_color) == ("#FF0000", "#FFFFFF")  # nothing changed


def test_the_api_refuses_unreadable_colours_too(client: FlaskClient, db_session: Session, admin: str,
                                                make_program: Callable[..., Any]) -> None:
    program = make_program()
    db_session.commit()
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", admin,
                    json={"background_color": "#FFFFFF", "foreground_color": "#EEEEEE"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == "foreground_color"
    db_session.expire_all()
    assert program.background_color == "#1F2937"


def test_customer_pages_choose_a_text_colour_that_passes_on_the_brand_colour(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    teal = make_program(background_color="#0F766E", foreground_color="#FFFFFF", label_color="#FBBF24")
    # A yellow card with white text and labels, saved before the designer checked contrast.
    yellow = make_program(background_color="#FBBF24", foreground_color="#FFFFFF", label_color="#FFFFFF")
    db_session.execute(update(Program).where(Program.id == yellow.id).values(foreground_color="#FFFFFF"))
    db_session.commit()

    kept = brand_vars(client.get(f"/join/{teal.slug}").text)
    # White text passes on teal (5.47:1): kept; the amber labels do not (3.27:1): the text colour instead.
    assert kept == {"--brand": "#0F766E", "--brand-ink": "#FFFFFF", "--accent": "#FFFFFF"}
    chosen = brand_vars(client.get(f"/join/{yellow.slug}").text)
    assert chosen == {"--brand": "#FBBF24", "--brand-ink": "#000000", "--accent": "#000000"}
    for colours in (kept, chosen):
        assert contrast_ratio(colours["--brand-ink"], colours["--brand"]) >= AA_TEXT
        assert contrast_ratio(colours["--accent"], colours["--brand"]) >= AA_TEXT
