"""People in a real browser (headless Chromium, real commits on PostgreSQL): an admin invites a marketer on the
Users page, the invitee opens the one-time link in a fresh browser, chooses a password and is signed in; then
turns on two-factor sign-in by scanning the page's QR code (decoded from the screenshot), and signs in with a
code made by pyotp."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from app.database import SESSIONS
from app.merchants.users import create_user
from app.models import AuditEvent, User
from tests.browser.conftest import add_cafe, page_errors, sign_in, submit_sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]
NEW_PASSWORD = "plum tree at noon"  # noqa: S105 (a test account)


def _decode(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1, "no single QR code in the screenshot"
    return found[0].text


def test_an_invited_marketer_sets_a_password_and_turns_on_two_factor(committing_app: Any, live_server: str,
                                                                      chromium: Any, shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        add_cafe(session)
        create_user(session, email="boss@cafea.test", password=PASSWORD, role="admin")

    admin = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB").new_page()
    errors = page_errors(admin)
    sign_in(admin, live_server, "boss@cafea.test")
    assert admin.locator(".two-factor-prompt").is_visible()  # an admin without two-factor is prompted
    admin.get_by_role("link", name="Users", exact=True).click()
    admin.wait_for_url(f"{live_server}/dashboard/users?program=cafea")
    admin.fill("#email", "not-an-address")
    admin.get_by_role("button", name="Create the invitation link").click()
    assert "Enter the e-mail address" in admin.locator("#email-error").inner_text()
    admin.fill("#email", "mira@cafea.test")
    admin.select_option("#role", "marketer")
    admin.get_by_role("button", name="Create the invitation link").click()
    link = admin.locator("#one-time-link").inner_text().strip()
    assert link.startswith(f"{live_server}/dashboard/welcome/")
    admin.screenshot(path=str(shots / "users-invitation.png"), full_page=True)
    assert admin.locator('tr[data-user="mira@cafea.test"] [data-state]').inner_text().startswith("invited")

    # The invitee, in a browser of their own.
    invitee = chromium.new_context(viewport={"width": 1024, "height": 800}, locale="en-GB").new_page()
    invitee_errors = page_errors(invitee)
    invitee.goto(link)
    assert invitee.locator("h1").inner_text() == "Welcome to Tallypass"
    invitee.fill("#password", NEW_PASSWORD)
    invitee.fill("#confirm", "something else")
    invitee.get_by_role("button", name="Set my password and sign in").click()
    assert "Does not match" in invitee.locator("#confirm-error").inner_text()
    invitee.fill("#password", NEW_PASSWORD)
    invitee.fill("#confirm", NEW_PASSWORD)
    invitee.screenshot(path=str(shots / "users-welcome.png"))
    invitee.get_by_role("button", name="Set my password and sign in").click()
    invitee.wait_for_url(f"{live_server}/dashboard/")
    assert "mira@cafea.test" in invitee.locator(".dash-user").inner_text()
    assert "you are signed in" in invitee.locator(".dash-flash").inner_text()

    # The link works once.
    again = chromium.new_context(locale="en-GB").new_page()
    response = again.goto(link)
    assert response is not None and response.status == 410
    assert again.locator("h1").inner_text() == "This link has been used"

    admin.reload()
    assert admin.locator('tr[data-user="mira@cafea.test"] [data-state]').inner_text() == "active"

    # Two-factor: the QR code on the page is what an authenticator app scans.
    invitee.get_by_role("link", name="Account").click()
    invitee.get_by_role("button", name="Turn on two-factor sign-in").click()
    qr = invitee.locator("[data-qr] svg")
    qr.wait_for()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 150 and box["height"] > 150
    uri = _decode(qr.screenshot())
    totp = pyotp.parse_uri(uri)
    assert uri.startswith("otpauth://totp/Tallypass:mira%40cafea.test?")
    assert totp.secret == invitee.locator("#totp-secret").inner_text().replace(" ", "")
    invitee.screenshot(path=str(shots / "two-factor-enrol.png"), full_page=True)
    invitee.fill("#code", totp.now())
    invitee.get_by_role("button", name="Turn it on").click()
    codes = invitee.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    invitee.screenshot(path=str(shots / "two-factor-recovery-codes.png"), full_page=True)
    invitee.get_by_role("link", name="Done").click()
    invitee.get_by_role("button", name="Sign out").click()
    invitee.wait_for_url(f"{live_server}/dashboard/login")

    # Signing in asks for the code after the password; the step after enrolment's code (no replay).
    submit_sign_in(invitee, "mira@cafea.test", NEW_PASSWORD)
    invitee.wait_for_url(f"{live_server}/dashboard/login/code")
    invitee.fill("#code", "000000" if totp.now() != "000000" else "111111")
    invitee.get_by_role("button", name="Sign in").click()
    assert "not right" in invitee.locator("#code-error").inner_text()
    invitee.screenshot(path=str(shots / "two-factor-sign-in.png"))
    invitee.fill("#code", totp.at(datetime.now(UTC) + timedelta(seconds=30)))
    invitee.get_by_role("button", name="Sign in").click()
    invitee.wait_for_url(f"{live_server}/dashboard/")
    assert "mira@cafea.test" in invitee.locator(".dash-user").inner_text()

    with factory() as session:
        mira = session.scalars(select(User).where(User.email == "mira@cafea.test")).one()
        assert mira.two_factor and mira.role == "marketer"
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "mira@cafea.test")
                                  .order_by(AuditEvent.id)).all()
        assert "user-invitation-accepted" in actions and "two-factor-enabled" in actions
    assert errors == [] and invitee_errors == []


def test_a_cashier_lands_on_the_till_and_is_told_the_dashboard_is_for_managers(
        committing_app: Any, live_server: str, chromium: Any, shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False
    from app.merchants.stores import create_store

    with committing_app.extensions[SESSIONS].begin() as session:
        store = create_store(session, program=add_cafe(session), name="Centru")
        create_user(session, email="kim@cafea.test", password=PASSWORD, role="cashier", store_ids=[store.id])

    page = chromium.new_context(viewport={"width": 800, "height": 600}, locale="en-GB").new_page()
    errors = page_errors(page)
    page.goto(f"{live_server}/dashboard/login")
    submit_sign_in(page, "kim@cafea.test", PASSWORD)
    page.wait_for_url(f"{live_server}/till/")  # the till (another part of the app) answers there
    response = page.goto(f"{live_server}/dashboard/customers")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "The dashboard is for managers"
    page.screenshot(path=str(shots / "cashier-for-managers.png"))
    page.get_by_role("link", name="change your password").click()
    page.wait_for_url(f"{live_server}/dashboard/account")
    assert page.get_by_role("link", name="Back to the till").get_attribute("href") == "/till/"
    assert [e for e in errors if "404" not in e] == []
