"""The card page and the counter poster in headless Chromium, at a phone's size (issue 18 §4): the card's QR code
is drawn, has a size and decodes back to the card's barcode value (what the till scans); the poster's QR code
decodes back to the join address; the invitation is shared through the Web Share API, or copied where there is
none; progress to the next reward is drawn; a refused push opt-in says so in the page's language.

The codes are decoded from screenshots by zxing-cpp (``zxingcpp``, a real decoder from PyPI, the dev extra): what
a camera at the till would see, not what the server meant to draw."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from app.database import SESSIONS
from app.loyalty import enrollment, ledger
from app.merchants.stores import create_store
from tests.browser.conftest import IPHONE, PHONE, add_cafe, page_errors, wait_for_service_worker

pytestmark = [pytest.mark.browser, pytest.mark.committing]

PRIVACY = "https://cafea.example/privacy"


def decode(png: bytes) -> list[str]:
    """The texts of the QR codes zxing-cpp finds in a screenshot."""
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
            if found.format == zxingcpp.BarcodeFormat.QRCode]


def _seed_points(factory: Any) -> dict[str, Any]:
    """A points café (5 % Bronze, 7 % Silver from 1000 MDL; 100 points make a free coffee) and Ana's card,
    with every kind of ledger entry a shopper sees."""
    with factory.begin() as session:
        program = add_cafe(session, silver=True, currency="MDL", logo_text="Cafea & Co.", welcome_bonus=20,
                           birthday_bonus=100, referrer_bonus=50, referred_bonus=30, reward_threshold=100,
                           reward_name="Free coffee", reward_value=Decimal("45.00"), privacy_policy_url=PRIVACY,
                           background_color="#1F2937")
        store = create_store(session, program=program, name="Centru")
        card = enrollment.enrol(session, program=program, phone="+37369123456", name="Ana Popescu").card
        ledger.record_purchase(session, store=store, card=card, receipt_id="r-1", amount=Decimal("400"))
        ledger.record_purchase(session, store=store, card=card, receipt_id="r-2", amount=Decimal("1300"))
        ledger.record_purchase(session, store=store, card=card, receipt_id="r-3", amount=Decimal("100"),
                               redeem_points=5)
        ledger.record_refund(session, store=store, refund_id="f-1", receipt_id="r-3", amount=Decimal("100"))
        return {"token": card.page_token, "barcode": card.barcode, "code": card.customer.referral_code,
                "balance": card.balance}


def test_the_card_page_at_the_till_decodes_shares_and_shows_progress(committing_app: Any, live_server: str,
                                                                     chromium: Any, shots: Path,
                                                                     tmp_path: Path) -> None:
    seeded = _seed_points(committing_app.extensions[SESSIONS])
    context = chromium.new_context(**PHONE, locale="en-US")
    page = context.new_page()
    errors = page_errors(page)
    page.goto(f"{live_server}/c/{seeded['token']}")
    wait_for_service_worker(page)

    code = page.locator(".barcode-box svg")
    box = code.bounding_box()
    assert box is not None and box["width"] >= 240 and box["height"] >= 240, box  # CSS px, on a 390 px screen
    assert decode(code.screenshot()) == [seeded["barcode"]], "the till scans the card's barcode value"
    assert page.locator("#card-number").inner_text() == seeded["barcode"]

    # Progress to the free coffee, and how points are earned, from the programme's tiers and bonuses.
    bar = page.locator("#reward-progress")
    assert int(bar.get_attribute("aria-valuenow")) == seeded["balance"]
    assert bar.locator("span").evaluate("e => e.getBoundingClientRect().width") > 0
    assert page.locator(".reward-line").inner_text() == (
        f"Points to go until Free coffee: {100 - seeded['balance']}.")
    earn = page.locator("ul.earn").inner_text()
    assert "Bronze: 1 point for every 20 MDL spent." in earn  # 5 % of a 1.00 point
    assert "Silver (from 1000 MDL spent): 1 point for every 14.29 MDL spent. your tier" in earn
    assert "100 points become Free coffee." in earn and "100 points on your birthday." in earn
    assert page.locator("#privacy-policy").get_attribute("href") == PRIVACY

    # Every ledger entry has its label: nothing raw like refund_reversal.
    history = page.locator("ul.history").inner_text()
    for label in ("Purchase", "Points used", "Bonus", "Reward", "Refund: points taken back",
                  "Refund: points given back"):
        assert label in history, (label, history)
    assert "_" not in history and "reward\n" not in history

    page.screenshot(path=str(shots / "card-page.png"))  # the README's: the card and its code, a phone's screen
    page.screenshot(path=str(tmp_path / "card-page-full.png"), full_page=True)

    # No Web Share API in desktop Chromium on Linux: the invitation goes to the clipboard, and the page says so.
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.get_by_role("button", name="Share my invitation").click()
    page.wait_for_selector("html[data-shared='copied']", state="attached")
    assert page.locator("#share-state").inner_text() == "Link copied. Paste it in a message to your friend."
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.endswith(f"https://tallypass.test/join/cafea?ref={seeded['code']}"), copied
    assert errors == []
    context.close()


SHARE = """
navigator.share = async (data) => { sessionStorage.setItem("shared", JSON.stringify(data)); };
navigator.canShare = () => true;
"""


def test_the_invitation_goes_through_the_web_share_api_where_there_is_one(committing_app: Any, live_server: str,
                                                                          chromium: Any) -> None:
    seeded = _seed_points(committing_app.extensions[SESSIONS])
    context = chromium.new_context(**PHONE, locale="en-US", user_agent=IPHONE)
    context.add_init_script(SHARE)  # a phone's share sheet, recorded instead of shown
    page = context.new_page()
    page.goto(f"{live_server}/c/{seeded['token']}?lang=ro")
    page.locator("#share").click()
    page.locator("#share-state").wait_for(state="attached")
    shared = None
    for _ in range(50):
        shared = page.evaluate("sessionStorage.getItem('shared')")
        if shared:
            break
        page.wait_for_timeout(100)
    data = json.loads(shared)
    assert data["url"] == f"https://tallypass.test/join/cafea?ref={seeded['code']}"
    assert data["title"] == "Cafea & Co." and seeded["code"] in data["text"]
    assert page.locator("#share-state").inner_text() == ""  # the share sheet was the confirmation
    # iPhone Safari outside a home-screen app: the page says where web push works.
    assert page.locator("#ios-home").is_visible()
    # The link in the invitation fills in the code on the sign-up page.
    page.goto(live_server + data["url"].removeprefix("https://tallypass.test"))
    assert page.locator("#referral_code").input_value() == seeded["code"]
    assert page.locator("#privacy-policy").get_attribute("href") == PRIVACY
    context.close()


def test_a_stamp_card_draws_its_stamps(committing_app: Any, live_server: str, chromium: Any, tmp_path: Path) -> None:
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        program = add_cafe(session, kind="stamps", stamps_required=8, stamp_reward="Free cappuccino",
                           stamp_min_amount=Decimal("30"), currency="MDL")
        store = create_store(session, program=program, name="Centru")
        card = enrollment.enrol(session, program=program, phone="+37369123457", name="Ion").card
        for n in range(3):
            ledger.record_purchase(session, store=store, card=card, receipt_id=f"s-{n}", amount=Decimal("35"))
        token, barcode, stamps = card.page_token, card.barcode, card.stamps
    assert stamps == 3
    context = chromium.new_context(**PHONE, locale="ru-RU")
    page = context.new_page()
    page.goto(f"{live_server}/c/{token}?lang=ru")
    assert page.locator(".stamps li").count() == 8
    assert page.locator(".stamps li.stamped").count() == 3
    assert page.locator(".stamps li.stamped").first.bounding_box()["width"] > 20
    assert decode(page.locator(".barcode-box svg").screenshot()) == [barcode]
    page.screenshot(path=str(tmp_path / "stamp-card-ru.png"), full_page=True)
    context.close()


def test_the_posters_qr_code_renders_and_decodes_to_the_join_address(committing_app: Any, live_server: str,
                                                                       chromium: Any, tmp_path: Path) -> None:
    with committing_app.extensions[SESSIONS].begin() as session:
        add_cafe(session)
    context = chromium.new_context(**PHONE, locale="en-US")
    page = context.new_page()
    errors = page_errors(page)
    page.goto(f"{live_server}/join/cafea/poster")
    image = page.locator("img.qr")
    image.wait_for()
    assert image.evaluate("e => e.complete && e.naturalWidth") > 0, "the browser drew the SVG"
    box = image.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200, box
    assert decode(image.screenshot()) == ["https://tallypass.test/join/cafea"]
    page.screenshot(path=str(tmp_path / "poster.png"), full_page=True)
    assert errors == []
    context.close()


def test_a_refused_push_opt_in_says_so_in_the_pages_language(committing_app: Any, live_server: str,
                                                              chromium: Any, tmp_path: Path) -> None:
    with committing_app.extensions[SESSIONS].begin() as session:
        program = add_cafe(session)
        token = enrollment.enrol(session, program=program, phone="+37369123458", name="Ana").card.page_token
    context = chromium.new_context(**PHONE, locale="ru-RU")  # no permission granted: the browser refuses
    page = context.new_page()
    page.goto(f"{live_server}/c/{token}?lang=ru")
    wait_for_service_worker(page)
    page.wait_for_selector("#push:not([hidden])")
    page.get_by_role("button", name="Уведомлять меня в этом браузере").click()
    page.wait_for_selector("html[data-push-error]", state="attached")
    said = page.locator("#push-state").inner_text()
    assert said in ("Уведомления для этой страницы запрещены. Разрешите их в настройках браузера и попробуйте "
                    "ещё раз.", "Не удалось включить уведомления."), said
    assert not any(word in said for word in ("Registration", "permission", "denied", "Error"))
    page.screenshot(path=str(tmp_path / "push-refused-ru.png"), full_page=True)
    context.close()
