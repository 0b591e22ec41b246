"""A real phone browser: headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) on a
390-px viewport signs up, reaches the card page, sees the wallet buttons, and the service worker
registers. It takes screenshots of both pages; ``make screenshots`` (TALLYPASS_UPDATE_SCREENSHOTS=1)
writes the sign-up page's to docs/screenshots/, which the README shows, instead of the test's temporary folder
(the card page's there comes from tests/browser/test_card_and_poster.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.database import SESSIONS
from tests.browser.conftest import IPHONE, PHONE, add_cafe, wait_for_service_worker

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def test_sign_up_on_a_phone_reaches_the_card_page(committing_app: Any, live_server: str, chromium: Any,
                                                  shots: Path, tmp_path: Path) -> None:
    with committing_app.extensions[SESSIONS].begin() as session:
        add_cafe(session, silver=True, logo_text="Cafea & Co.", welcome_bonus=50, background_color="#0F766E",
                 terms="Points last a year.")
    context = chromium.new_context(**PHONE, user_agent=IPHONE, locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server}/join/cafea")
    assert page.get_by_role("heading", level=1).inner_text() == "Get your Cafea & Co. card"
    # Keyboard only: from the name field, Tab reaches every field and the button, in reading order.
    page.get_by_label("Your name").focus()
    visited = []
    for _ in range(16):
        focused = page.evaluate("document.activeElement.id || document.activeElement.tagName")
        if not visited or visited[-1] != focused:  # a date input takes a Tab per part (mm/dd/yyyy)
            visited.append(focused)
        page.keyboard.press("Tab")
    assert visited[:5] == ["name", "phone", "email", "birthday", "referral_code"]
    assert "BUTTON" in visited
    page.get_by_label("Your name").fill("Ana Popescu")
    page.get_by_label("Mobile number").fill("+373 69 123 456")
    page.get_by_label("Send me offers and news by SMS.").check()
    page.screenshot(path=str(shots / "sign-up.png"), full_page=True)
    page.get_by_role("button", name="Get my card").click()
    page.wait_for_url("**/c/**")
    assert page.locator(".balance .figure").inner_text() == "50"
    assert page.get_by_role("link", name="Add to Apple Wallet").is_visible()
    wait_for_service_worker(page)
    registrations = page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)")
    assert registrations == 1
    # (docs/screenshots/card-page.png is a card with some history: tests/browser/test_card_and_poster.py)
    page.screenshot(path=str(tmp_path / "card-page.png"), full_page=True)
    # The same card seen from Android offers Google Wallet instead.
    android = chromium.new_context(viewport={"width": 390, "height": 844}, user_agent=(
        "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0 Mobile Safari/537.36"))
    other = android.new_page()
    other.goto(page.url)
    assert other.get_by_role("link", name="Add to Google Wallet").is_visible()
    assert other.get_by_role("link", name="Add to Apple Wallet").count() == 0
    assert (shots / "sign-up.png").stat().st_size > 10_000 and (tmp_path / "card-page.png").stat().st_size > 10_000
