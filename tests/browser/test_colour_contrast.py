"""Contrast in a real browser: the card designer says how the text and label colours read on the background as
they are typed (under the dashboard's CSP), and a customer page on a yellow brand colour shows black text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.database import SESSIONS
from app.merchants.users import create_user
from tests.browser.conftest import add_cafe, page_errors, sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def test_the_designer_warns_live_and_customer_pages_pick_readable_text(committing_app: Any, live_server: str,
                                                                        chromium: Any, shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        add_cafe(session, background_color="#0F766E", foreground_color="#FFFFFF", label_color="#FBBF24")
        create_user(session, email="maria@cafea.test", password=PASSWORD, role="marketer")
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    errors = page_errors(page)
    sign_in(page, live_server, "maria@cafea.test")
    page.goto(f"{live_server}/dashboard/programme?program=cafea")
    note = page.locator("#design-foreground_color-contrast")
    assert note.get_attribute("data-level") == "ok"
    assert note.inner_text() == "Text on the background: 5.47:1, passes WCAG AA (4.5:1)."

    page.fill("#design-foreground_color", "#5EEAD4")  # a light teal on teal
    page.wait_for_selector('#design-foreground_color-contrast[data-level="low"]')
    assert "below the 4.5:1 of WCAG AA" in note.inner_text()
    page.fill("#design-background_color", "#14B8A6")
    page.wait_for_selector('#design-foreground_color-contrast[data-level="unreadable"]')
    page.locator("#design").screenshot(path=str(shots / "designer-contrast.png"))
    page.click("#design-form button[type=submit]")
    page.wait_for_selector("#design-foreground_color-note.dash-error")
    assert "too alike" in page.locator("#design-foreground_color-note").inner_text()

    # Yellow and white: the white was kept for the pass, but the customer pages write black on the yellow.
    page.fill("#design-background_color", "#FBBF24")
    page.fill("#design-foreground_color", "#FFFFFF")
    page.wait_for_selector('#design-foreground_color-contrast[data-level="unreadable"]')
    page.fill("#design-foreground_color", "#1F2937")
    page.wait_for_selector('#design-foreground_color-contrast[data-level="ok"]')
    page.click("#design-form button[type=submit]")
    page.wait_for_url("**/dashboard/programme?program=cafea")
    with factory.begin() as session:
        from sqlalchemy import update

        from app.models import Program
        session.execute(update(Program).values(foreground_color="#FFFFFF"))  # as saved before the checks existed
    join = chromium.new_page(viewport={"width": 390, "height": 700})
    join.goto(f"{live_server}/join/cafea")
    header = join.locator("header.top")
    assert header.evaluate("e => getComputedStyle(e).color") == "rgb(0, 0, 0)"
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(251, 191, 36)"
    join.screenshot(path=str(shots / "join-yellow.png"))
    assert not errors, errors
