"""A marketer in a real browser: headless Chromium (Debian's, driven by Playwright) on a laptop-sized window
signs in, builds a segment with the live count, composes a campaign with its preview, sends it, watches the
progress bar reach 100 % and opens the results, all under the dashboard's strict Content Security Policy (a
script the policy blocked would leave the count and the preview empty, and is also caught as a page error).

Screenshots of the overview, the composer and the results go to the test's folder, or with
``make screenshots`` (TALLYPASS_UPDATE_SCREENSHOTS=1) to docs/screenshots/, which the README shows."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.database import SESSIONS
from app.db import utcnow
from app.loyalty import enrollment, ledger
from app.merchants.stores import create_store
from app.merchants.users import create_user
from app.models import Card, Delivery, Store
from app.segments import rfm
from tests.browser.conftest import add_cafe, page_errors, sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]

CUSTOMERS = 24
RICH = 14  # customers with 20 points or more: the segment


def _seed(factory: Any) -> None:
    """A café with two months of purchases, 24 members (14 of them with 20+ points, all agreeing to SMS)."""
    rng = random.Random(7)
    now = utcnow()
    with factory.begin() as session:
        program = add_cafe(session, silver=True, logo_text="Cafea & Co.", currency="MDL", background_color="#0F766E",
                           point_value=Decimal("1.00"))
        store = create_store(session, program=program, name="Centru", latitude=47.0245, longitude=28.8322)
        for n in range(CUSTOMERS):
            joined = now - timedelta(days=60 - 2 * n)
            card = enrollment.enrol(session, program=program, phone=f"+3736912{n:04d}", name=f"Client {n}",
                                    consents={"sms": True}, now=joined).card
            for k in range(rng.randint(1, 5)):
                ledger.record_purchase(session, store=store, card=card, receipt_id=f"r-{n}-{k}",
                                       amount=Decimal(rng.randint(40, 400)), now=joined + timedelta(days=k * 3),
                                       occurred_at=joined + timedelta(days=k * 3))
            target = 20 + n if n < RICH else 0
            if card.balance < target:
                ledger.grant_bonus(session, card=card, points=target - card.balance, reason="start", now=now)
            elif card.balance > target:
                ledger.adjust(session, card=card, points=target - card.balance, reason="test", actor="test",
                              now=now)
        rfm.recompute(session, program=program, now=now)
        create_user(session, email="maria@cafea.test", password=PASSWORD, role="marketer")


def _buy_after_the_message(factory: Any) -> None:
    """Two in three of those messaged come back and buy, and one in three of the holdout."""
    with factory.begin() as session:
        store = session.scalars(select(Store)).one()
        rows = session.execute(select(Card, Delivery.status).join(Delivery, Delivery.card_id == Card.id)
                               .order_by(Card.id)).all()
        for n, (card, status) in enumerate(rows):
            if (status == "holdout" and n % 3 == 0) or (status == "sent" and n % 3 != 0):
                ledger.record_purchase(session, store=store, card=card, receipt_id=f"after-{card.id}",
                                       amount=Decimal("120"))


def test_a_marketer_builds_a_segment_and_sends_a_campaign(committing_app: Any, live_server: str, chromium: Any,
                                                          shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    _seed(committing_app.extensions[SESSIONS])
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    errors = page_errors(page)

    # Sign in, and land on the overview.
    sign_in(page, live_server, "maria@cafea.test")
    assert page.locator('[data-kpi="members"]').inner_text() == str(CUSTOMERS)
    page.wait_for_timeout(600)  # the charts' entry animation
    page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

    # A segment from one condition, with the live count following the edit.
    page.goto(f"{live_server}/dashboard/segments/new?program=cafea")
    page.wait_for_selector('#segment-count[data-state="ok"]')
    assert page.locator("#segment-count").get_attribute("data-count") == str(CUSTOMERS)
    page.click("#add-condition")
    page.select_option("#cond-1-field", "balance")
    page.select_option("#cond-1-op", "gte")
    page.fill("#cond-1-value", "20")
    page.wait_for_selector(f'#segment-count[data-state="ok"][data-count="{RICH}"]')
    page.fill("#name", "Twenty points or more")
    page.click("#save-segment")
    page.wait_for_url("**/dashboard/segments?program=cafea")
    assert "Twenty points or more" in page.content()

    # The composer: the segment, SMS only, two variants (A/B); the preview renders a real customer's message.
    page.goto(f"{live_server}/dashboard/campaigns?program=cafea")
    page.click("#new-campaign")
    page.fill("#name", "Autumn tasting")
    segment = page.locator("#segment_id option", has_text="Twenty points or more").get_attribute("value")
    page.select_option("#segment_id", segment)
    page.select_option("#channel_1", "sms")
    page.select_option("#channel_2", "")
    page.select_option("#channel_3", "")
    page.fill("#variant_body_0", "Hi {{ first_name }}, you have {{ balance }} points: taste our autumn menu!")
    page.click("#add-variant")  # a new campaign has one message; variant B makes it an A/B test
    page.fill("#variant_body_1", "{{ first_name }}, autumn is here: come taste it.")
    page.fill("#holdout_percent", "20")
    page.fill("#quiet_start_hour", "0")
    page.fill("#quiet_end_hour", "0")
    bubble = page.locator('.preview-variant[data-variant="A"] .preview-sms .preview-bubble')
    bubble.filter(has_text=re.compile(r"Hi Client, you have \d+ points: taste")).wait_for()
    page.screenshot(path=str(shots / "dashboard-composer.png"), full_page=True)
    page.click("#save-draft")

    # Send after confirming the audience, and watch the bar reach 100 %.
    page.click("#send-button")
    assert page.locator("#audience-count").get_attribute("data-count") == str(RICH)
    page.click("#confirm-send")
    # A selector, not wait_for_function: its polling evaluates a string, which the page's CSP refuses.
    page.wait_for_selector("#progress[data-percent='100']", state="attached", timeout=20_000)
    assert "finished" in page.locator("#progress-state").inner_text().lower()

    # Some customers come back and buy; the results compare those messaged with the holdout.
    _buy_after_the_message(committing_app.extensions[SESSIONS])
    page.click("#results-link")
    page.wait_for_selector("#status-results")
    statuses = page.locator("#status-results").inner_text()
    sent = int(re.search(r"sent\s+(\d+)", statuses, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    held = int(re.search(r"holdout\s+(\d+)", statuses, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    assert sent + held == RICH and held >= 1, statuses
    assert page.locator("#uplift-difference").inner_text().endswith("percentage points")
    assert "sms" in page.locator("#channel-results").inner_text().lower()
    page.wait_for_timeout(600)
    page.screenshot(path=str(shots / "dashboard-results.png"), full_page=True)
    assert not errors, errors
    for name in ("dashboard-overview.png", "dashboard-composer.png", "dashboard-results.png"):
        assert (shots / name).stat().st_size > 20_000, name
