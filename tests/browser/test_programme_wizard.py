"""A shop starting from nothing, in Chromium: the admin signs in, lands on the "New programme" wizard, types the
basics (the slug follows the name, the preview the name), picks the coffee stamp card (the kind and the card's
colours follow), walks through the rules and the design and creates the programme, ending on its page with the
sign-up link, all under the dashboard's Content Security Policy. The design step is docs/screenshots/wizard.png
with ``make screenshots``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.database import SESSIONS
from app.merchants.users import create_user
from app.models import Program
from tests.browser.conftest import page_errors, submit_sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def test_an_admin_creates_a_programme_with_the_wizard(committing_app: Any, live_server: str, chromium: Any,
                                                      shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        create_user(session, email="owner@luna.test", password=PASSWORD, role="admin")
    page = chromium.new_page(viewport={"width": 1280, "height": 1000}, locale="en-GB")
    errors = page_errors(page)

    page.goto(f"{live_server}/dashboard/")
    submit_sign_in(page, "owner@luna.test", PASSWORD)
    page.wait_for_url(f"{live_server}/dashboard/programmes/new")  # no programme yet: the wizard

    basics, template, rules, design = (page.locator(f"#step-{s}") for s in ("basics", "template", "rules", "design"))
    assert basics.is_visible() and not template.is_visible() and not design.is_visible()
    assert not page.locator("#wizard-create").is_visible()
    page.fill("#name", "Café Luna")
    assert page.input_value("#slug") == "cafe-luna"
    assert page.locator(".google-name").inner_text() == "Café Luna"  # the preview from the first step
    page.fill("#currency", "MDL")
    page.fill("#timezone", "Europe/Chisinau")
    page.fill("#phone_region", "MD")
    page.click("#wizard-next")

    assert template.is_visible() and not basics.is_visible()
    page.get_by_text("Coffee stamp card").click()
    assert page.is_checked('input[name="kind"][value="stamps"]')
    assert "--card-bg: #3B2417" in (page.locator(".apple-card").get_attribute("style") or "")
    assert page.locator(".google-fields").inner_text().startswith("Stamps")
    page.click("#wizard-next")

    assert rules.is_visible()
    page.fill("#welcome_bonus", "1")
    page.click("#wizard-next")

    assert design.is_visible() and page.locator("#wizard-create").is_visible()
    assert page.input_value("#background_color") == "#3B2417"
    page.fill("#logo_text", "Luna")
    assert page.locator(".apple-logo-text").inner_text() == "Luna"
    page.screenshot(path=str(shots / "wizard.png"), full_page=True)
    with factory() as session:
        assert session.scalar(select(Program)) is None  # nothing is created before the last step

    page.click("#wizard-create")
    page.wait_for_url(f"{live_server}/dashboard/programme?program=cafe-luna")
    assert page.locator("#join-url").inner_text().endswith("/join/cafe-luna")
    assert page.locator("#poster-link").get_attribute("href").endswith("/join/cafe-luna/poster")
    with factory() as session:
        program = session.scalars(select(Program)).one()
        assert (program.slug, program.kind, program.stamps_required, program.phone_region, program.currency,
                program.welcome_bonus, program.logo_text) == ("cafe-luna", "stamps", 9, "MD", "MDL", 1, "Luna")
    assert errors == []
