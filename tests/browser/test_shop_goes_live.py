"""Issue 18's "done when", end to end, as a shop goes live on its own: the programme comes from
``program create`` (a template), its store from ``store create``, a cashier from ``user create --role cashier``;
a shopper's phone scans the counter poster's QR code (decoded from a screenshot by zxing-cpp) into the sign-up
page and joins with a local number (the programme's phone region); the card page's QR code, decoded the same way,
is what the till's camera sees (Chromium's fake camera playing it); the cashier records a purchase; the new
balance is on the card page and in the Apple pass."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.cli import FlaskGroup
from sqlalchemy import select

from app.database import SESSIONS
from app.models import Card, Purchase
from tests.browser.conftest import PHONE
from tests.browser.test_card_and_poster import decode
from tests.browser.test_till import camera_browser, open_till, write_y4m
from tests.web.dashboard_client import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.committing]


def flask_command(app: Any, *args: str, input: str | None = None) -> dict[str, Any]:  # noqa: A002
    """``flask --app app ARGS --json`` in process: its one JSON object."""
    result = app.test_cli_runner().invoke(cli=FlaskGroup(load_dotenv=False, set_debug_flag=False),
                                          args=[*args, "--json"], input=input)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_a_shop_goes_live_from_the_command_line_to_a_purchase_on_the_card(committing_app: Any, live_server: str,
                                                                         tmp_path: Path) -> None:
    committing_app.config["SESSION_COOKIE_SECURE"] = False  # the live server speaks plain HTTP
    base = committing_app.config["TALLYPASS"].base_url
    programme = flask_command(committing_app, "program", "create", "Café Luna", "--slug", "cafe-luna",
                              "--currency", "MDL", "--timezone", "Europe/Chisinau", "--phone-region", "MD",
                              "--kind", "points", "--template", "cafe-points")
    assert programme["join_url"] == f"{base}/join/cafe-luna" and programme["poster_url"].startswith(base)
    store = flask_command(committing_app, "store", "create", "Centru", "--program", "cafe-luna")
    flask_command(committing_app, "user", "create", "ion@cafea.test", "--role", "cashier", "--store",
                  str(store["id"]), "--password-stdin", input=PASSWORD + "\n")

    # One Chromium for the shopper's phone and the till; its fake camera plays ``video``, written once the card
    # page's code is read (Chromium opens the file when the till starts the camera).
    video = tmp_path / "card.y4m"
    with camera_browser(video) as browser:
        # The shopper's phone scans the poster at the counter and joins with a local number.
        phone = browser.new_context(**PHONE, locale="en-US")
        page = phone.new_page()
        page.goto(programme["poster_url"].replace(base, live_server))
        poster_qr = page.locator("img.qr")
        poster_qr.wait_for()
        [scanned] = decode(poster_qr.screenshot())
        assert scanned == programme["join_url"]
        page.goto(scanned.replace(base, live_server))
        page.get_by_label("Your name").fill("Ana Popescu")
        page.get_by_label("Mobile number").fill("069 123 457")  # local: the programme's region is MD
        page.get_by_role("button", name="Get my card").click()
        page.wait_for_url("**/c/**")
        card_url = page.url
        welcome = int(page.locator(".balance .figure").inner_text())

        # The card page's QR code is what the till scans: its decoded text, played by the till's camera.
        card_qr = page.locator(".barcode-box svg")
        card_qr.wait_for()
        [barcode] = decode(card_qr.screenshot())
        assert page.locator("#card-number").inner_text() == barcode
        factory = committing_app.extensions[SESSIONS]
        with factory() as session:
            card = session.scalars(select(Card).where(Card.barcode == barcode)).one()
            assert card.customer.phone == "+37369123457" and card.balance == welcome
            card_id = card.id
        write_y4m(video, barcode)

        context, till, errors = open_till(browser, live_server, PHONE)
        till.get_by_role("button", name="Scan the card").click()
        till.locator("#customer").wait_for(timeout=20_000)
        assert till.locator("#c-name").inner_text() == "Ana P."
        till.fill("#amount", "250")
        till.get_by_role("button", name="Review").click()
        till.locator("#confirm").wait_for()
        earned = int(till.locator("#q-earned").inner_text().lstrip("+"))
        assert earned > 0
        till.get_by_role("button", name="Confirm").click()
        till.locator("#done").wait_for()
        assert errors == []
        context.close()

        with factory() as session:
            assert [(p.amount, p.earned_points) for p in session.scalars(
                select(Purchase).where(Purchase.card_id == card_id))] == [(Decimal("250.00"), earned)]
        page.goto(card_url)
        assert int(page.locator(".balance .figure").inner_text()) == welcome + earned
        pkpass = page.request.get(f"{card_url}/apple.pkpass")
        assert pkpass.status == 200
        with zipfile.ZipFile(io.BytesIO(pkpass.body())) as archive:
            fields = json.loads(archive.read("pass.json"))["storeCard"]
        shown = {field["key"]: field["value"] for group in fields.values() for field in group}
        assert shown["balance"] == welcome + earned
        phone.close()
