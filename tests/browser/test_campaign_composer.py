"""The campaign composer in a real browser: a new campaign has one message and saves with one message; "Add
variant B" adds a second (an A/B test), which can be removed again; both save what the marketer sees."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.database import SESSIONS
from app.merchants.users import create_user
from app.models import Campaign
from tests.browser.conftest import add_cafe, page_errors, sign_in
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]

# The saved campaign's page (the composer's own address, /dashboard/campaigns/new?program=…, matched the glob
# "**/dashboard/campaigns/*" too, so the test read the database before the save had happened).
SAVED = re.compile(r"/dashboard/campaigns/\d+$")


def _variants(factory: Any, name: str) -> list[tuple[str, str, int]]:
    with factory() as session:
        campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one()
        return [(v.name, v.body, v.weight) for v in campaign.variants]


def _sms_only(page: Any) -> None:
    page.select_option("#channel_1", "sms")
    page.select_option("#channel_2", "")
    page.select_option("#channel_3", "")


def test_one_message_saves_and_variant_b_is_added_and_removed(committing_app: Any, live_server: str,
                                                               chromium: Any, shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        add_cafe(session, timezone="Europe/Chisinau")
        create_user(session, email="maria@cafea.test", password=PASSWORD, role="marketer")
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    errors = page_errors(page)
    sign_in(page, live_server, "maria@cafea.test")

    # A new campaign: one variant, no remove button, and the button offers variant B.
    page.goto(f"{live_server}/dashboard/campaigns/new?program=cafea")
    assert page.locator("fieldset.variant").count() == 1
    assert page.locator("#variant_name_0").input_value() == "A"
    assert page.locator("fieldset.variant .variant-remove").is_hidden()
    assert page.locator("#add-variant").inner_text() == "Add variant B"
    page.fill("#name", "Just one message")
    _sms_only(page)
    page.fill("#variant_body_0", "Hi {{ first_name }}, a free coffee waits for you this week.")
    page.locator('.preview-variant[data-variant="A"] .preview-bubble', has_text="free coffee").wait_for()
    page.screenshot(path=str(shots / "composer-one-message.png"), full_page=True)
    page.click("#save-draft")
    page.wait_for_url(SAVED)
    assert "is saved as a draft" in page.locator(".dash-flash").first.inner_text()
    assert _variants(factory, "Just one message") == [
        ("A", "Hi {{ first_name }}, a free coffee waits for you this week.", 1)]

    # Add B (the button then offers C), remove it again: one message saves.
    page.goto(f"{live_server}/dashboard/campaigns/new?program=cafea")
    page.fill("#name", "Changed my mind")
    _sms_only(page)
    page.fill("#variant_body_0", "Our autumn menu is here.")
    page.click("#add-variant")
    assert page.locator("fieldset.variant").count() == 2
    assert page.locator("#variant_name_1").input_value() == "B"
    assert page.locator("#add-variant").inner_text() == "Add variant C"
    page.locator("fieldset.variant").nth(1).locator(".variant-remove").click()
    assert page.locator("fieldset.variant").count() == 1
    assert page.locator("#add-variant").inner_text() == "Add variant B"
    page.click("#save-draft")
    page.wait_for_url(SAVED)
    assert _variants(factory, "Changed my mind") == [("A", "Our autumn menu is here.", 1)]

    # An A/B test: B filled in, both saved with their weights.
    page.goto(f"{live_server}/dashboard/campaigns/new?program=cafea")
    page.fill("#name", "A or B")
    _sms_only(page)
    page.fill("#variant_body_0", "Coffee on us.")
    page.click("#add-variant")
    page.fill("#variant_body_1", "Cake on us.")
    page.fill("#variant_weight_1", "3")
    page.locator('.preview-variant[data-variant="B"] .preview-bubble', has_text="Cake on us.").wait_for()
    page.screenshot(path=str(shots / "composer-a-b.png"), full_page=True)
    page.click("#save-draft")
    page.wait_for_url(SAVED)
    assert _variants(factory, "A or B") == [("A", "Coffee on us.", 1), ("B", "Cake on us.", 3)]
    assert not errors, errors
