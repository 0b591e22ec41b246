"""Cards kept in step with Google Wallet, against the local stand-in of Google's REST API and token
endpoint (tests/fakes/google_wallet_api.py, over real HTTP): enrolment inserts the object, every
purchase PATCHes the balance, 404/409/429 are handled, and notifications stay within 3 per 24 h."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.google_wallet import ServiceAccount
from app.channels.registry import EXTENSION as CHANNELS
from app.db import utcnow
from app.loyalty import ledger
from app.models import Card, ChannelMessage, GoogleObject, OutboxEvent
from app.tasks.passes import resync_google
from app.wallet import google
from tests.fakes.google_wallet_api import FakeGoogleWallet
from tests.integration.google_wallet.conftest import ISSUER, StartCampaign

OBJECTS = "/walletobjects/v1/loyaltyObject"


@pytest.fixture
def shop(make_program: Callable[..., Any], make_store: Callable[..., Any], pos_for: Callable[..., Any]) -> Any:
    program = make_program(tiers=[("Bronze", "0", "1"), ("Silver", "100", "2"), ("Gold", "200", "3"),
                                  ("Platinum", "300", "4"), ("Diamond", "400", "5")])
    return program, pos_for(make_store(program, "Till", latitude=47.02, longitude=28.83))


def enrol(pos: Any, phone: str = "+37369000111") -> dict[str, Any]:
    response = pos.post("/customers", {"phone": phone, "name": "Ion Rusu"})
    assert response.status_code == 201, response.json
    return response.json


def buy(pos: Any, barcode: str, receipt: str, amount: str = "100.00") -> dict[str, Any]:
    response = pos.post("/purchases", {"receipt_id": receipt, "card": barcode, "amount": amount})
    assert response.status_code == 201, response.json
    return response.json


def remote(fake: FakeGoogleWallet, card: Card) -> dict[str, Any]:
    return fake.objects[f"{ISSUER}.{card.serial}"]


def api_calls(fake: FakeGoogleWallet, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests[since:] if r.path.startswith("/walletobjects/")]


def card_of(db_session: Session, enrolled: dict[str, Any]) -> Card:
    return db_session.scalars(select(Card).where(Card.barcode == enrolled["card"]["barcode"])).one()


def test_enrolment_creates_the_class_and_the_object(shop: Any, fake: FakeGoogleWallet, db_session: Session) -> None:
    program, pos = shop
    card = card_of(db_session, enrol(pos))
    google_class = fake.classes[f"{ISSUER}.{program.slug}"]
    assert google_class["reviewStatus"] == "APPROVED"  # sent UNDER_REVIEW; Google approves it
    assert google_class["merchantLocations"] == [{"latitude": 47.02, "longitude": 28.83}]
    google_object = remote(fake, card)
    assert google_object["classId"] == google_class["id"]
    assert google_object["loyaltyPoints"]["balance"] == {"int": card.balance}
    assert google_object["secondaryLoyaltyPoints"] == {"label": "Tier", "balance": {"string": "Bronze"}}
    assert google_object["barcode"]["value"] == card.barcode
    row = db_session.scalars(select(GoogleObject).where(GoogleObject.card_id == card.id)).one()
    assert row.inserted_at is not None and row.synced_version == card.version


def test_every_purchase_reaches_the_object(shop: Any, fake: FakeGoogleWallet, db_session: Session) -> None:
    _, pos = shop
    enrolled = enrol(pos)
    for n in range(3):
        body = buy(pos, enrolled["card"]["barcode"], f"R-{n}", amount="60.00")
        card = card_of(db_session, enrolled)
        assert remote(fake, card)["loyaltyPoints"]["balance"] == {"int": body["card"]["balance"]}
    patches = [r for r in fake.requests if r.method == "PATCH" and r.path.startswith(OBJECTS)]
    assert len(patches) == 3
    assert "notifyPreference" not in patches[0].body  # 60.00 keeps the card in Bronze: silent
    assert patches[1].body["notifyPreference"] == "NOTIFY_ON_UPDATE"  # 120.00 spent: Silver


def test_an_object_google_already_has_is_patched_409(shop: Any, fake: FakeGoogleWallet, db_session: Session,
                                                      account: ServiceAccount) -> None:
    program, pos = shop
    enrolled = enrol(pos)  # creates the class, then we pretend the object got lost on our side
    card = card_of(db_session, enrolled)
    db_session.execute(GoogleObject.__table__.delete())
    remote(fake, card)["loyaltyPoints"] = {"label": "Points", "balance": {"int": 999}}
    before = len(fake.requests)
    buy(pos, card.barcode, "R-1")
    object_path = f"{OBJECTS}/{ISSUER}.{card.serial}"
    # the insert is refused (409: it exists), so the same fields are patched instead
    assert api_calls(fake, before) == [("POST", OBJECTS), ("PATCH", object_path)]
    db_session.refresh(card)
    assert remote(fake, card)["loyaltyPoints"]["balance"] == {"int": card.balance}


def test_an_object_google_lost_is_inserted_again_404(shop: Any, fake: FakeGoogleWallet, db_session: Session) -> None:
    _, pos = shop
    enrolled = enrol(pos)
    card = card_of(db_session, enrolled)
    del fake.objects[f"{ISSUER}.{card.serial}"]
    before = len(fake.requests)
    body = buy(pos, card.barcode, "R-1")
    # the patch finds nothing (404), so the whole object is inserted
    assert api_calls(fake, before) == [("PATCH", f"{OBJECTS}/{ISSUER}.{card.serial}"), ("POST", OBJECTS)]
    assert remote(fake, card)["loyaltyPoints"]["balance"] == {"int": body["card"]["balance"]}


def test_a_429_is_retried(shop: Any, fake: FakeGoogleWallet, db_session: Session) -> None:
    _, pos = shop
    enrolled = enrol(pos)
    fake.fail("PATCH", OBJECTS + "/", 429, times=1, reason="rateLimitExceeded", retry_after=0)
    before = len(fake.requests)
    body = buy(pos, enrolled["card"]["barcode"], "R-1")
    card = card_of(db_session, enrolled)
    assert remote(fake, card)["loyaltyPoints"]["balance"] == {"int": body["card"]["balance"]}
    assert [method for method, _ in api_calls(fake, before)] == ["PATCH", "PATCH"]  # 429, then the retry


def test_a_burst_of_tier_changes_notifies_at_most_three_times(shop: Any, fake: FakeGoogleWallet,
                                                               db_session: Session) -> None:
    _, pos = shop
    enrolled = enrol(pos)
    for n in range(4):  # Bronze → Silver → Gold → Platinum → Diamond: four tier changes in a row
        buy(pos, enrolled["card"]["barcode"], f"R-{n}", amount="100.00")
    card = card_of(db_session, enrolled)
    assert card.tier.name == "Diamond"
    google_object = remote(fake, card)
    assert google_object["secondaryLoyaltyPoints"]["balance"] == {"string": "Diamond"}  # the fourth, silently
    assert google_object["loyaltyPoints"]["balance"] == {"int": card.balance}
    assert len(fake.notifications[google_object["id"]]) == 3
    notifying = [r for r in fake.requests if r.method == "PATCH" and r.body.get("notifyPreference")]
    assert len(notifying) == 3


def test_the_budget_renews_after_24_hours(app: Flask, fake: FakeGoogleWallet, make_program: Callable[..., Any],
                                          make_card: Callable[..., Any], db_session: Session) -> None:
    moment = [utcnow()]
    fake.clock = lambda: moment[0].timestamp()
    fake.token_expires_in = 7 * 86400  # the client keeps real time while the fake's clock runs ahead
    card = make_card(make_program(), balance=10)
    with app.app_context():
        wallet = app.extensions[CHANNELS].google()
    google.ensure_object(db_session, setup=wallet.setup, card=card, client=wallet.client, now=moment[0])
    for n in range(5):
        ledger.grant_bonus(db_session, card=card, points=1, reason="check-in")
        notified = google.sync_card(db_session, setup=wallet.setup, card=card, notify=True, client=wallet.client,
                                    now=moment[0])
        assert notified == (n < 3)
        moment[0] += timedelta(hours=1)
    moment[0] += timedelta(hours=21, minutes=1)  # the first notification is now over 24 h old
    ledger.grant_bonus(db_session, card=card, points=1, reason="check-in")
    assert google.sync_card(db_session, setup=wallet.setup, card=card, notify=True, client=wallet.client,
                            now=moment[0])
    assert remote(fake, card)["loyaltyPoints"]["balance"] == {"int": 16}


def test_messages_notify_within_budget_and_keep_ten(app: Flask, fake: FakeGoogleWallet,
                                                    make_program: Callable[..., Any], make_card: Callable[..., Any],
                                                    db_session: Session) -> None:
    card = make_card(make_program())
    with app.app_context():
        wallet = app.extensions[CHANNELS].google()
    kinds = [google.send_message(db_session, setup=wallet.setup, card=card, header="Weekend", body=f"Offer {n}",
                                 message_id=f"campaign-{n}", client=wallet.client, now=utcnow())
             for n in range(12)]
    assert kinds == ["TEXT_AND_NOTIFY"] * 3 + ["TEXT"] * 9
    messages = remote(fake, card)["messages"]
    assert len(messages) == 10
    assert messages[-1]["body"] == "Offer 11" and messages[0]["body"] == "Offer 2"
    # A campaign worker that died after Google took the message sends it again: it is not added twice.
    again = google.send_message(db_session, setup=wallet.setup, card=card, header="Weekend", body="Offer 11",
                                message_id="campaign-11", client=wallet.client, now=utcnow())
    assert again == "TEXT" and remote(fake, card)["messages"] == messages


def test_a_refused_service_account_leaves_the_sale_alone_and_resync_catches_up(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, app: Flask
) -> None:
    _, pos = shop
    enrolled = enrol(pos)
    fake.fail("PATCH", OBJECTS + "/", 403, times=1, reason="permissionDenied")
    body = buy(pos, enrolled["card"]["barcode"], "R-1")  # the sale succeeds
    card = card_of(db_session, enrolled)
    assert remote(fake, card)["loyaltyPoints"]["balance"] != {"int": body["card"]["balance"]}
    assert db_session.scalar(select(OutboxEvent).where(OutboxEvent.processed_at.is_(None))) is None
    with app.app_context():
        assert resync_google.run() == 1
    assert remote(fake, card)["loyaltyPoints"]["balance"] == {"int": body["card"]["balance"]}


def test_without_google_the_calls_go_to_the_channel_outbox(
    app_with: Callable[..., Flask], make_program: Callable[..., Any], make_store: Callable[..., Any],
    fake: FakeGoogleWallet, db_session: Session
) -> None:
    from tests.conftest import PosClient

    offline = app_with(google_api_url="https://walletobjects.googleapis.com/walletobjects/v1",
                       google_token_url="https://oauth2.googleapis.com/token")
    program = make_program(tiers=[("Only", "0", "10")])
    pos = PosClient(offline.test_client(), make_store(program, "Till"))
    enrolled = enrol(pos)
    buy(pos, enrolled["card"]["barcode"], "R-1", amount=str(Decimal("50.00")))
    messages = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "google_wallet")
                                  .order_by(ChannelMessage.id)).all()
    calls = [(m.payload["method"], m.payload["path"].split("/")[0]) for m in messages]
    assert calls == [("POST", "loyaltyClass"), ("POST", "loyaltyObject"), ("PATCH", "loyaltyObject")]
    assert messages[-1].payload["body"]["loyaltyPoints"]["balance"] == {"int": 5}
    assert fake.requests == []


def test_a_broken_google_key_file_does_not_hold_back_the_events(
    app_with: Callable[..., Flask], make_program: Callable[..., Any], make_store: Callable[..., Any],
    db_session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import PosClient

    broken = tmp_path / "google-service-account.json"
    broken.write_text('{"type": "service_account"}')
    program = make_program(tiers=[("Only", "0", "10")])
    pos = PosClient(app_with(google_service_account=broken).test_client(), make_store(program, "Till"))
    buy(pos, enrol(pos)["card"]["barcode"], "R-1")
    assert db_session.scalar(select(OutboxEvent).where(OutboxEvent.processed_at.is_(None))) is None
    assert any("google-service-account.json" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_a_campaign_message_google_could_not_take_waits_for_a_retry(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, start_wallet_campaign: StartCampaign
) -> None:
    """The wallet channel writes a batch's offers on the cards together, then adds each Google message on its
    own: Google failing for one card defers that delivery alone (the others are sent), and the retry adds the
    message once."""
    from collections import Counter

    from app.campaigns import send
    from app.models import Delivery

    program, pos = shop
    cards = [card_of(db_session, enrol(pos, phone=f"+3736900011{n}")) for n in range(2)]
    now = utcnow()
    campaign, channels = start_wallet_campaign(program=program, cards=cards, now=now)
    fake.fail("GET", f"{OBJECTS}/{ISSUER}.{cards[0].serial}", 503, times=4, retry_after=0)

    result = send.send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url="https://t.test", now=now)
    assert result.outcomes == Counter({"sent": 1, "deferred": 1})
    rows = {d.card_id: d for d in db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}
    waiting = rows[cards[0].id]
    assert waiting.status == "queued" and waiting.error.startswith("google wallet:") and waiting.not_before > now
    assert [m["body"] for m in remote(fake, cards[1])["messages"]] == ["Double points"]
    assert remote(fake, cards[0]).get("messages", []) == []
    assert cards[0].offer_text == "Double points"  # the pass has it either way

    later = now + send.RETRY_AFTER + timedelta(minutes=1)
    result = send.send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url="https://t.test",
                             now=later)
    assert result.outcomes == Counter({"sent": 1})
    assert (waiting.status, waiting.error) == ("sent", None)
    assert [m["body"] for m in remote(fake, cards[0])["messages"]] == ["Double points"]
