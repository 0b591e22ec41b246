"""The customer's card page (their secret link): what it shows, the wallet buttons by platform, consent
changes, the data download and erasure that keeps the books consistent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import ledger
from app.models import Card, Consent, LedgerEntry, OutboxEvent

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36"


@pytest.fixture
def card(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> Card:
    program = make_program(name="Cafea & Co.", expiry_days=20,
                           tiers=[("Bronze", "0", "5"), ("Silver", "1000", "7"), ("Gold", "5000", "10")])
    card = make_card(program, name="Ana Popescu")
    ledger.grant_bonus(db_session, card=card, points=40, reason="welcome")
    card.window_spend = card.window_spend + 250
    db_session.flush()
    return card


def page(client: FlaskClient, card: Card, agent: str = IPHONE) -> str:
    response = client.get(f"/c/{card.page_token}", headers={"User-Agent": agent})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    return response.text


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_page_shows_balance_tier_progress_history_and_expiry(client: FlaskClient, card: Card) -> None:
    html = page(client, card)
    assert '<span class="figure">40</span>' in html
    assert "Bronze" in html
    assert "Spend 750.00 MDL more to reach Silver." in html
    assert 'aria-valuenow="25"' in html  # 250 of the 1000 to Silver
    assert "Bonus" in html and "+40" in html
    assert "Points expiring soon" in html and "40 points on" in html  # the programme's points last 20 days


def test_wallet_buttons_follow_the_platform(client: FlaskClient, card: Card) -> None:
    iphone, android = page(client, card, IPHONE), page(client, card, ANDROID)
    assert "apple.pkpass" in iphone and f"/c/{card.page_token}/google" not in iphone
    assert "apple.pkpass" not in android and f"/c/{card.page_token}/google" in android
    desktop = page(client, card, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    assert "apple.pkpass" in desktop and "/google" in desktop


def test_consents_can_be_changed(client: FlaskClient, card: Card, db_session: Session) -> None:
    html = page(client, card)
    response = client.post(f"/c/{card.page_token}/consents",
                           data={"csrf_token": csrf(html), "consent_email": "yes"})
    assert response.status_code == 303
    consents = {c.channel: c for c in db_session.scalars(select(Consent).where(
        Consent.customer_id == card.customer_id))}
    assert consents["email"].granted and consents["email"].source == "card-page"
    assert not consents["sms"].granted
    assert "Your choices are saved." in client.get(response.headers["Location"]).text


def test_consents_need_the_csrf_token(client: FlaskClient, card: Card) -> None:
    assert client.post(f"/c/{card.page_token}/consents", data={"consent_email": "yes"}).status_code == 403


def test_my_data_is_a_json_download(client: FlaskClient, card: Card) -> None:
    response = client.get(f"/c/{card.page_token}/data.json")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.data)
    assert data["customer"]["name"] == "Ana Popescu"
    assert data["customer"]["phone"] == card.customer.phone
    assert data["cards"][0]["balance"] == 40
    assert [entry["points"] for entry in data["ledger"]] == [40]


def test_delete_my_account_anonymises_voids_and_keeps_the_books(client: FlaskClient, card: Card,
                                                                db_session: Session) -> None:
    html = page(client, card)
    assert client.post(f"/c/{card.page_token}/delete", data={"csrf_token": csrf(html)}).status_code == 400
    response = client.post(f"/c/{card.page_token}/delete", data={"csrf_token": csrf(html), "confirm": "yes"})
    assert response.status_code == 303
    db_session.expire_all()
    refreshed = db_session.get(Card, card.id)
    customer = refreshed.customer
    assert customer.name == "" and customer.phone is None and customer.email is None
    assert customer.anonymized_at is not None
    assert refreshed.status == "voided"
    total = db_session.scalar(select(func.sum(LedgerEntry.points)).where(LedgerEntry.card_id == card.id))
    assert refreshed.balance == total == 40  # the ledger is untouched
    assert db_session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "card.changed", OutboxEvent.payload["card_id"].as_integer() == card.id)) >= 1
    after = client.get(response.headers["Location"]).text
    assert "Your account is deleted." in after and "This card is no longer active." in after
    assert "apple.pkpass" not in after
    assert 'class="barcode-box"' not in after and 'id="share"' not in after  # a void card is not shown at the till


def test_an_unknown_link_is_404(client: FlaskClient) -> None:
    assert client.get("/c/not-a-real-token").status_code == 404


def test_the_page_is_translated(client: FlaskClient, card: Card) -> None:
    html = client.get(f"/c/{card.page_token}?lang=ru").text
    assert "Ваш уровень" in html and "Скачать мои данные (JSON)" in html


def test_expiry_list_leaves_out_far_away_dates(client: FlaskClient, make_program: Callable[..., Any],
                                               make_card: Callable[..., Any], db_session: Session) -> None:
    card = make_card(make_program(expiry_days=365))
    ledger.grant_bonus(db_session, card=card, points=10, reason="welcome", now=utcnow() - timedelta(days=1))
    db_session.flush()
    assert "Points expiring soon" not in page(client, card)


# ------------------------------------------------------------------ the card at the till (issue 18 §4)


def test_the_page_carries_the_cards_qr_code_and_number_for_the_till(client: FlaskClient, card: Card) -> None:
    html = page(client, card)
    svg = re.search(r'<div class="barcode-box">(<svg .*?</svg>)\s*</div>', html, re.S).group(1)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ')  # a full QR code, scalable
    side = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))
    assert side >= 21 + 8, "a full QR code (never a Micro QR) with its quiet zone of four modules"
    assert f'<span id="card-number" class="digits">{card.barcode}</span>' in html


def test_the_qr_code_holds_the_same_value_as_the_wallet_passes(app: Any, card: Card, db_session: Session) -> None:

    import zxingcpp
    from PIL import Image

    from app.wallet import apple
    from app.web.card import barcode_svg

    with app.test_request_context():
        svg = str(barcode_svg(card.barcode, title="code"))
    # Draw the SVG's own runs of dark modules (segno writes one path of horizontal strokes) and decode the image.
    side = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1))
    scale = 8
    image = Image.new("L", (side * scale, side * scale), 255)
    x = y = 0.0
    path = re.search(r'<path stroke="#000(?:000)?" d="([^"]+)"', svg).group(1)
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?:[ ,]?(-?[\d.]+))?", path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            row = int(y - 0.5)
            image.paste(0, (int(x) * scale, row * scale, int(x + float(a)) * scale, (row + 1) * scale))
            x += float(a)
    [found] = zxingcpp.read_barcodes(image)
    assert found.format == zxingcpp.BarcodeFormat.QRCode and found.text == card.barcode
    assert apple.pass_content(db_session, card, base_url="https://tallypass.test").barcode == found.text


def test_every_ledger_kind_has_a_translated_label(app: Any) -> None:
    """A new kind in LEDGER_KINDS fails here until the card page can name it in every language."""
    from babel.support import Translations

    from app.models import LEDGER_KINDS
    from app.web.card import ledger_kinds

    with app.test_request_context("/?lang=en"):
        labels = ledger_kinds()
    assert set(labels) == set(LEDGER_KINDS), set(LEDGER_KINDS) ^ set(labels)
    assert all(label and "_" not in label for label in labels.values())
    for language in ("ru", "ro"):
        catalogue = Translations.load(str(Path(app.root_path).parent / "translations"), [language])
        untranslated = [label for label in labels.values() if label not in catalogue._catalog]  # noqa: SLF001
        assert not untranslated, (language, untranslated)
        with app.test_request_context(f"/?lang={language}"):
            assert ledger_kinds()["refund_reversal"] == catalogue.gettext(labels["refund_reversal"])


def test_refunds_and_rewards_are_named_in_the_history(client: FlaskClient, make_program: Callable[..., Any],
                                                      make_card: Callable[..., Any], make_store: Callable[..., Any],
                                                      db_session: Session) -> None:
    from decimal import Decimal

    program = make_program(reward_threshold=50, reward_name="Free coffee", tiers=[("Bronze", "0", "10")])
    store = make_store(program).store
    card = make_card(program, name="Ana")
    ledger.record_purchase(db_session, store=store, card=card, receipt_id="r-1", amount=Decimal("600"))
    ledger.record_refund(db_session, store=store, refund_id="f-1", receipt_id="r-1", amount=Decimal("100"))
    db_session.flush()
    kinds = {entry.kind for entry in db_session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card.id))}
    assert {"earn", "reward", "refund_reversal"} <= kinds
    html = client.get(f"/c/{card.page_token}?lang=ru").text
    history = re.search(r'<ul class="history">(.*?)</ul>', html, re.S).group(1)
    assert "Награда" in history and "Возврат: баллы списаны" in history and "Покупка" in history
    for raw in ("refund_reversal", "refund_return", "reward", "earn"):
        assert f"· {raw}<" not in history


def test_wallet_buttons_only_for_wallets_the_server_has(app_with: Callable[..., Any], card: Card) -> None:
    bare = app_with(apple_pass_cert=None, google_service_account=None).test_client()
    html = page(bare, card, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    assert "apple.pkpass" not in html and f"/c/{card.page_token}/google" not in html
    assert 'class="wallets"' not in html
    assert 'class="barcode-box"' in html  # the card still works at the till
    apple_only = app_with(google_service_account=None).test_client()
    html = page(apple_only, card, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    assert "apple.pkpass" in html and f"/c/{card.page_token}/google" not in html
    google_only = app_with(apple_pass_cert=None).test_client()
    html = page(google_only, card, IPHONE)  # an iPhone, and only Google configured: no button fits
    assert "apple.pkpass" not in html and f"/c/{card.page_token}/google" not in html


def test_the_wallet_badges_use_the_official_wording(client: FlaskClient, card: Card) -> None:
    desktop = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
    html = client.get(f"/c/{card.page_token}", headers={"User-Agent": desktop}).text
    assert "<small>Add to</small> Apple Wallet" in html and "<span>Add to Google Wallet</span>" in html
    ru = client.get(f"/c/{card.page_token}?lang=ru", headers={"User-Agent": desktop}).text
    assert "<small>Добавить в</small> Apple Wallet" in ru and "<span>Добавить в Google Кошелек</span>" in ru


def test_progress_earning_invitation_and_privacy_link(client: FlaskClient, make_program: Callable[..., Any],
                                                      make_card: Callable[..., Any], db_session: Session) -> None:
    program = make_program(reward_threshold=200, reward_name="Free coffee", birthday_bonus=100, referrer_bonus=50,
                           referred_bonus=25, privacy_policy_url="https://cafea.example/privacy",
                           tiers=[("Bronze", "0", "5"), ("Silver", "1000", "8")])
    card = make_card(program, balance=150, name="Ana")
    html = page(client, card)
    assert "Points to go until Free coffee: 50." in html
    assert 'aria-valuenow="150"' in html and "#reward-progress > span { width: 75%; }" in html
    assert "1 point for every 20 MDL spent." in html and "1 point for every 12.50 MDL spent." in html
    assert "100 points on your birthday." in html and "50 points for every friend who joins" in html
    assert "Your friend gets 25 points" in html
    code = card.customer.referral_code
    assert f'<code id="referral-code">{code}</code>' in html
    assert f'data-url="https://tallypass.test/join/{program.slug}?ref={code}"' in html
    assert '<a id="privacy-policy" href="https://cafea.example/privacy" rel="noopener noreferrer"' in html


def test_a_stamp_card_draws_every_stamp(client: FlaskClient, make_program: Callable[..., Any],
                                        make_card: Callable[..., Any], db_session: Session) -> None:
    program = make_program(kind="stamps", stamps_required=6, stamp_reward="Free tea")
    card = make_card(program)
    card.stamps = 4
    db_session.flush()
    html = page(client, card)
    assert html.count('<li class="stamped">') == 4 and html.count('<li class="empty">') == 2
    assert "Stamps to go until Free tea: 2." in html and 'aria-label="4 of 6 stamps"' in html


def test_the_card_is_a_home_screen_app_that_opens_on_itself(client: FlaskClient, card: Card) -> None:
    html = page(client, card)
    assert f'<link rel="manifest" href="/c/{card.page_token}/manifest.webmanifest">' in html
    assert 'rel="apple-touch-icon"' in html and 'id="ios-home"' in html
    response = client.get(f"/c/{card.page_token}/manifest.webmanifest")
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    assert response.headers["Cache-Control"] == "private, no-store"  # it holds the card's secret address
    assert response.json["start_url"] == response.json["scope"] == f"/c/{card.page_token}"
    assert response.json["display"] == "standalone"
    assert client.get("/c/not-a-real-token/manifest.webmanifest").status_code == 404


def test_the_push_opt_in_carries_its_translated_failure_messages(client: FlaskClient, card: Card) -> None:
    html = client.get(f"/c/{card.page_token}?lang=ru").text
    assert 'data-failed="Не удалось включить уведомления."' in html
    assert 'data-denied="Уведомления для этой страницы запрещены.' in html
