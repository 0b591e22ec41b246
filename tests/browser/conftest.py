"""What the browser tests share: Debian's Chromium driven by Playwright (the ``chromium`` fixture), the app on a
real port, where screenshots go, and the steps every dashboard test takes (signing in, collecting page errors,
waiting for the service worker)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from app.models import Program, Tier
from tests.web.dashboard_client import PASSWORD

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.0 Mobile/15E148 Safari/604.1")
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                         "has_touch": True}  # browser.new_context(**PHONE, ...): a phone's screen and touch


def browser_available() -> bool:
    if shutil.which(CHROMIUM) and playwright() is not None:
        return True
    if os.environ.get("TALLYPASS_REQUIRE_BROWSER"):
        pytest.fail(f"the browser test must run here, but {CHROMIUM} or playwright is missing")
    return False


def playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Chromium (a Playwright ``Browser``), closed after the test whether it passed or not. Without
    Chromium or Playwright the test is skipped, or fails where TALLYPASS_REQUIRE_BROWSER is set (CI)."""
    if not browser_available():
        pytest.skip(f"needs {CHROMIUM} and playwright (installed by .ci/run)")
    with playwright()() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real port of this machine while the block runs; gives its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def live_server(committing_app: Any) -> Iterator[str]:
    with serving(committing_app) as base_url:
        yield base_url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test's screenshots go: its temporary folder, or docs/screenshots/ (which the README shows) with
    ``make screenshots`` (TALLYPASS_UPDATE_SCREENSHOTS=1)."""
    folder = SCREENSHOTS if os.environ.get("TALLYPASS_UPDATE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def add_cafe(session: Any, *, silver: bool = False, **fields: Any) -> Program:
    """The café every browser test serves ("cafea", Cafea & Co.) with ``fields``, its Bronze tier (5 %) and, with
    ``silver``, a Silver tier (7 % from 1000 spent); flushed."""
    program = Program(slug="cafea", name="Cafea & Co.", **fields)
    session.add(program)
    session.flush()
    session.add(Tier(program_id=program.id, name="Bronze", qualifying_spend=0, earn_percent=5))
    if silver:
        session.add(Tier(program_id=program.id, name="Silver", qualifying_spend=1000, earn_percent=7))
    session.flush()
    return program


def submit_sign_in(page: Any, email: str, password: str) -> None:
    """Fills the dashboard's sign-in form, open in ``page``, and sends it."""
    page.fill("#email", email)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page: Any, live_server: str, email: str, password: str = PASSWORD) -> None:
    """Signs in to the dashboard as a user would (the overview sends them to the form) and waits for the
    overview."""
    page.goto(f"{live_server}/dashboard/")
    submit_sign_in(page, email, password)
    page.wait_for_url(f"{live_server}/dashboard/")


def page_errors(page: Any) -> list[str]:
    """A list that fills with what goes wrong in ``page``: uncaught script errors, and console errors (which
    include what the Content Security Policy refused), a missing favicon or other resource aside."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "favicon" not in
            msg.text and "Failed to load resource" not in msg.text else None)
    return errors


def wait_for_service_worker(page: Any) -> None:
    """Until the page's script has registered its service worker (it marks <html> when done)."""
    # A selector, not Playwright's wait for a function: its polling evaluates a string, which the CSP refuses.
    page.wait_for_selector("html[data-service-worker='registered']", state="attached", timeout=10_000)
