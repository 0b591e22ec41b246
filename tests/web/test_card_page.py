"""The customer's card page (their secret link): what it shows, the wallet buttons by platform, consent
changes, the data download and erasure that keeps the books consistent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
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
