"""An operator in a real browser sees, on the dashboard of a production deployment whose texts can only reach
the outbox, a warning they cannot miss: at the top of the page, above everything else, readable at a
glance. (The rules behind it are tested in tests/integration/test_sms.py.)

The screenshot goes to the test's folder, or with TALLYPASS_UPDATE_SCREENSHOTS=1 to docs/screenshots/."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app import log as log_setup
from app.database import SESSIONS
from app.merchants.users import create_user
from app.settings import Settings
from tests.browser.conftest import add_cafe, sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(log_setup, "configure_logging", lambda *_: None)  # keep this process's logging as it is
    return settings.model_copy(update={"env": "production", "sms_provider": "outbox"})


def test_the_operator_sees_that_texts_cannot_leave(committing_app: Any, live_server: str, chromium: Any,
                                                   shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    with committing_app.extensions[SESSIONS].begin() as session:
        add_cafe(session, logo_text="Cafea & Co.", point_value=Decimal("1.00"))
        create_user(session, email="ops@cafea.test", password=PASSWORD, role="admin")
    page = chromium.new_page(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page.goto(f"{live_server}/dashboard/")
    assert page.locator(".operator-warning").count() == 0  # not on the sign-in page
    sign_in(page, live_server, "ops@cafea.test")

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
