"""A real phone browser: headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) on a
390-px viewport signs up, reaches the card page, sees the wallet buttons, and the service worker
registers. It takes screenshots of both pages; ``make screenshots`` (TALLYPASS_UPDATE_SCREENSHOTS=1)
writes them to docs/screenshots/, which the README shows, instead of the test's temporary folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from app.database import SESSIONS
from app.models import Program, Tier
from tests.browser.conftest import CHROMIUM, SCREENSHOTS, browser_available, playwright

pytestmark = [pytest.mark.browser, pytest.mark.committing]

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.0 Mobile/15E148 Safari/604.1")


def test_sign_up_on_a_phone_reaches_the_card_page(committing_app: Any, live_server: str, tmp_path: Path) -> None:
    if not browser_available():
        pytest.skip(f"needs {CHROMIUM} and playwright (installed by .ci/run)")
    with committing_app.extensions[SESSIONS].begin() as session:
        program = Program(slug="cafea", name="Cafea & Co.", logo_text="Cafea & Co.", welcome_bonus=50,
                          background_color="#0F766E", terms="Points last a year.")
        session.add(program)
        session.flush()
        session.add_all([Tier(program_id=program.id, name="Bronze", qualifying_spend=0, earn_percent=5),
                         Tier(program_id=program.id, name="Silver", qualifying_spend=1000, earn_percent=7)])
    shots = SCREENSHOTS if os.environ.get("TALLYPASS_UPDATE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with playwright()() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True, user_agent=IPHONE, locale="en-US")
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
        # A selector, not wait_for_function: its polling evaluates a string, which the page's CSP refuses.
        page.wait_for_selector("html[data-service-worker='registered']", state="attached", timeout=10_000)
        registrations = page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)")
        assert registrations == 1
        page.screenshot(path=str(shots / "card-page.png"), full_page=True)
        # The same card seen from Android offers Google Wallet instead.
        android = browser.new_context(viewport={"width": 390, "height": 844}, user_agent=(
            "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Mobile Safari/537.36"))
        other = android.new_page()
        other.goto(page.url)
        assert other.get_by_role("link", name="Add to Google Wallet").is_visible()
        assert other.get_by_role("link", name="Add to Apple Wallet").count() == 0
        browser.close()
    assert (shots / "sign-up.png").stat().st_size > 10_000 and (shots / "card-page.png").stat().st_size > 10_000
