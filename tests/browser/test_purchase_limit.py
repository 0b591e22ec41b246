"""A marketer sets the largest purchase a till may record, in the programme settings, as they would in a browser:
a number typed in other digits is refused beside the field, a plain one is saved, and a till's purchase over it
is then refused with the limit named (issue 17, F2)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import signing
from app.database import SESSIONS
from app.loyalty import enrollment
from app.merchants.stores import create_store, issue_credential
from app.merchants.users import create_user
from tests.browser.conftest import add_cafe, sign_in
from tests.conftest import TEST_SECRET_KEY
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def _seed(factory: Any) -> dict[str, str]:
    with factory.begin() as session:
        program = add_cafe(session, currency="MDL", point_value=Decimal("1.00"))
        store = create_store(session, program=program, name="Centru")
        issued = issue_credential(session, store=store, secret_key=TEST_SECRET_KEY)
        card = enrollment.enrol(session, program=program, phone="+37369120001", name="Ana Popescu").card
        create_user(session, email="maria@cafea.test", password=PASSWORD, role="marketer")
        return {"key_id": issued.credential.key_id, "secret": issued.secret, "barcode": card.barcode}


def _purchase(base_url: str, till: dict[str, str], receipt: str, amount: str) -> httpx.Response:
    body = json.dumps({"receipt_id": receipt, "card": till["barcode"], "amount": amount}).encode()
    headers = {"Tallypass-Key": till["key_id"], "Tallypass-Signature": signing.signature_header(till["secret"], body),
               "Content-Type": "application/json"}
    return httpx.post(f"{base_url}/api/v1/pos/purchases", content=body, headers=headers)


def test_a_marketer_limits_purchases_and_a_till_is_held_to_it(committing_app: Any, live_server: str, chromium: Any,
                                                               shots: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    till = _seed(committing_app.extensions[SESSIONS])
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    sign_in(page, live_server, "maria@cafea.test")

    page.goto(f"{live_server}/dashboard/programme")
    field = page.locator("#settings-max_purchase_amount")
    assert field.input_value() == "100000.00"
    assert page.locator("#settings-max_purchase_amount-note").inner_text().startswith("In MDL.")

    field.fill("٥٠٠")  # 500 in Arabic-Indic digits
    page.get_by_role("button", name="Save the settings").click()
    note = page.locator("#settings-max_purchase_amount-note")
    assert note.inner_text().startswith("Write the number with the digits 0-9")
    assert field.get_attribute("aria-invalid") == "true" and field.input_value() == "٥٠٠"
    field.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "programme-purchase-limit-error.png"))

    field.fill("500")
    page.get_by_role("button", name="Save the settings").click()
    page.wait_for_url(f"{live_server}/dashboard/programme?program=cafea")
    assert "settings are saved" in page.locator(".dash-flash").inner_text()
    assert page.locator("#settings-max_purchase_amount").input_value() == "500.00"

    assert _purchase(live_server, till, "r1", "500.00").status_code == 201
    refused = _purchase(live_server, till, "r2", "500.01")
    assert refused.status_code == 422 and refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/amount-over-limit") and "500.00" in refused.json()["detail"]
