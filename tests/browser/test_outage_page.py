"""What a customer sees while the database is away: the card page's 503 page on a phone, styled, saying it will
try again, and the card back by itself once the database returns (the page reloads after Retry-After).
``make screenshots`` (TALLYPASS_UPDATE_SCREENSHOTS=1) writes docs/screenshots/outage.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app import create_app
from app.channels.registry import EXTENSION as CHANNELS
from app.database import ENGINE, SESSIONS
from app.models import Card
from tests.browser.conftest import IPHONE, PHONE, serving
from tests.conftest import seed_committed_shop
from tests.fakes.tcp_link import TcpLink

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def test_the_card_page_during_an_outage_says_so_and_comes_back_by_itself(
        committing_app: Any, settings: Any, database_url: str, chromium: Any, shots: Path) -> None:
    factory = committing_app.extensions[SESSIONS]
    shop = seed_committed_shop(factory, slug="cafea", earn_percent="5", balance=120, phone="+37369123456")
    with factory() as session:
        token = session.get(Card, shop["card_id"]).page_token
    url = make_url(database_url)
    with TcpLink((url.host or "127.0.0.1", url.port or 5432)) as link:
        through = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
        app = create_app(settings.model_copy(update={"database_url": through}))
        try:
            with serving(app) as base_url:
                context = chromium.new_context(**PHONE, user_agent=IPHONE, locale="en-US")
                page = context.new_page()
                card_url = f"{base_url}/c/{token}"
                assert page.goto(card_url).status == 200
                link.cut()
                outage = page.goto(card_url)
                assert outage.status == 503 and outage.headers["retry-after"] == "5"
                assert page.get_by_role("heading", level=1).inner_text() == "Temporarily unavailable"
                assert page.get_by_role("alert").is_visible()
                assert "tries again by itself in 5 seconds" in page.inner_text("main")
                header = page.eval_on_selector(".top", "e => getComputedStyle(e).backgroundColor")
                assert header == "rgb(31, 41, 55)"  # the customer pages' stylesheet applies
                page.screenshot(path=str(shots / "outage.png"), full_page=True)
                link.restore()
                page.wait_for_selector(".balance .figure", timeout=15_000)  # reloaded by itself
                assert page.locator(".balance .figure").inner_text() == "120"
        finally:
            app.extensions[CHANNELS].close()
            app.extensions[ENGINE].dispose()
    assert (shots / "outage.png").stat().st_size > 10_000
