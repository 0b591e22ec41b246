"""A dashboard user in a real browser (headless Chromium, real commits on PostgreSQL): a page above their role shows
the styled error page under the dashboard's CSP with a way back; after signing out, the cookies saved from that
browser, put into a fresh one, open nothing but the sign-in form."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.database import SESSIONS
from app.merchants.users import create_user
from app.models import Program
from tests.browser.conftest import sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def test_the_error_page_and_signing_out_as_a_user_sees_them(committing_app: Any, live_server: str, chromium: Any,
                                                            tmp_path: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    with committing_app.extensions[SESSIONS].begin() as session:
        session.add(Program(slug="cafea", name="Cafea & Co.", currency="MDL", point_value=Decimal("1.00")))
        create_user(session, email="ion@cafea.test", password=PASSWORD, role="marketer")

    context = chromium.new_context(viewport={"width": 1024, "height": 700}, locale="en-GB")
    page = context.new_page()
    refused: list[str] = []  # what the CSP blocked, as Chromium reports it on the console
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)

    sign_in(page, live_server, "ion@cafea.test")

    # A page only admins may open: the error page, styled by its own stylesheet (an inline style would be
    # blocked by the CSP and leave it as bare text), with a link back.
    response = page.goto(f"{live_server}/dashboard/tokens")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.evaluate("getComputedStyle(document.body).display") == "grid"
    assert page.evaluate("getComputedStyle(document.querySelector('main')).textAlign") == "center"
    assert refused == []
    page.screenshot(path=str(tmp_path / "dashboard-error.png"))
    page.get_by_role("link", name="Back to the dashboard").click()
    page.wait_for_url(f"{live_server}/dashboard/")

    saved = context.cookies()
    assert any(cookie["name"] == "session" and cookie["httpOnly"] for cookie in saved)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server}/dashboard/login")

    # Someone who copied the cookies before the sign-out tries them in another browser.
    other = chromium.new_context(locale="en-GB")
    other.add_cookies(saved)
    thief = other.new_page()
    thief.goto(f"{live_server}/dashboard/customers?program=cafea")
    assert thief.url.startswith(f"{live_server}/dashboard/login?next=")
    assert thief.get_by_role("button", name="Sign in").is_visible()
