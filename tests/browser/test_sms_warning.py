"""An operator in a real browser sees, on the dashboard of a production deployment whose texts can only reach
the outbox, a warning they cannot miss: at the top of the page, above everything else, readable at a
glance. (The rules behind it are tested in tests/integration/test_sms.py.)

The screenshot goes to the test's folder, or with TALLYPASS_UPDATE_SCREENSHOTS=1 to docs/screenshots/."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app import log as log_setup
from app.database import SESSIONS
from app.merchants.users import create_user
from app.models import Program, Tier
from app.settings import Settings
from tests.browser.conftest import CHROMIUM, SCREENSHOTS, browser_available, playwright
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(log_setup, "configure_logging", lambda *_: None)  # keep this process's logging as it is
    return settings.model_copy(update={"env": "production", "sms_provider": "outbox"})


def test_the_operator_sees_that_texts_cannot_leave(committing_app: Any, live_server: str, tmp_path: Path) -> None:
    if not browser_available():
        pytest.skip(f"needs {CHROMIUM} and playwright (installed by .ci/run)")
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    with committing_app.extensions[SESSIONS].begin() as session:
        program = Program(slug="cafea", name="Cafea & Co.", logo_text="Cafea & Co.", point_value=Decimal("1.00"))
        session.add(program)
        session.flush()
        session.add(Tier(program_id=program.id, name="Bronze", qualifying_spend=0, earn_percent=5))
        create_user(session, email="ops@cafea.test", password=PASSWORD, role="admin")
    shots = SCREENSHOTS if os.environ.get("TALLYPASS_UPDATE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with playwright()() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-GB")
        page.goto(f"{live_server}/dashboard/")
        assert page.locator(".operator-warning").count() == 0  # not on the sign-in page
        page.fill("#email", "ops@cafea.test")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/dashboard/")

        alert = page.get_by_role("alert")
        assert alert.is_visible()
        assert alert.inner_text().startswith("Configuration problem: SMS is off: TALLYPASS_SMS_PROVIDER is outbox")
        box = alert.bounding_box()
        heading = page.locator("h1").first.bounding_box()
        assert box is not None and heading is not None
        assert box["y"] < heading["y"] and box["y"] + box["height"] < 800  # above the page, without scrolling
        colour = alert.evaluate("node => getComputedStyle(node).color")
        background = alert.evaluate("node => getComputedStyle(node).backgroundColor")
        assert colour != background
        page.screenshot(path=str(shots / "dashboard-sms-warning.png"))
        browser.close()
