"""What the browser tests share: Debian's Chromium driven by Playwright, and the app on a real port."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


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
def live_server(committing_app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, committing_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)
