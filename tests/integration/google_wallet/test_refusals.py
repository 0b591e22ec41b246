"""Bodies Google Wallet refuses (400 and the like), against the strict local stand-in of Google's API over HTTP
(tests/fakes/google_wallet_api.py): the refusal is kept with Google's answer, shown once in the outbox (dashboard
and JSON API), and the same content is not sent again on every event or resync, while its next change is tried.
A refused class holds its objects back instead of being sent again before each of them; a refused object waits
alone; a refused campaign message fails its delivery without retries. 429/5xx stay retried
(test_sync.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import Card, ChannelMessage, Delivery, GoogleClass, GoogleObject
from app.tasks.passes import resync_google, sync_google_class
from app.wallet import google
from tests.fakes.google_wallet_api import FakeGoogleWallet
from tests.integration.google_wallet.conftest import ISSUER, StartCampaign
from tests.web.api_client import api_token, call
from tests.web.dashboard_client import sign_in_as

API = "/walletobjects/v1/"
UNKNOWN_TIER = 'Invalid JSON payload received. Unknown name "rewardsTier" at \'resource\': Cannot find field.'


@pytest.fixture
def shop(make_program: Callable[..., Any], make_store: Callable[..., Any], pos_for: Callable[..., Any]) -> Any:
    program = make_program(tiers=[("Bronze", "0", "1"), ("Silver", "100", "2")])
    return program, pos_for(make_store(program, "Till", latitude=47.02, longitude=28.83))


def enrol(pos: Any, phone: str = "+37369000111") -> Card:
    response = pos.post("/customers", {"phone": phone, "name": "Ion Rusu"})
    assert response.status_code == 201, response.json
    return response.json["card"]["barcode"]


def card_of(db_session: Session, barcode: str) -> Card:
    return db_session.scalars(select(Card).where(Card.barcode == barcode)).one()


def buy(pos: Any, barcode: str, receipt: str) -> None:
    response = pos.post("/purchases", {"receipt_id": receipt, "card": barcode, "amount": "500.00"})
    assert response.status_code == 201, response.json


def calls(fake: FakeGoogleWallet, since: int = 0) -> list[tuple[str, str]]:
    """The API requests the fake got, as (method, "loyaltyClass" | "loyaltyObject" [+ "/addMessage"])."""
    out = []
    for r in fake.requests[since:]:
        if r.path.startswith(API):
            kind, *rest = r.path.removeprefix(API).split("/")
            out.append((r.method, kind + ("/addMessage" if rest[-1:] == ["addMessage"] else "")))
    return out


def refusals(db_session: Session) -> list[ChannelMessage]:
    return [m for m in db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "google_wallet")
                                          .order_by(ChannelMessage.id)) if "refused" in m.payload]


def object_row(db_session: Session, card: Card) -> GoogleObject:
    """As the service left it (the app's session wrote it on the same connection)."""
    return db_session.scalars(select(GoogleObject).where(GoogleObject.card_id == card.id)
                              .execution_options(populate_existing=True)).one()


def class_row(db_session: Session, program: Any) -> GoogleClass:
    return db_session.scalars(select(GoogleClass).where(GoogleClass.program_id == program.id)
                              .execution_options(populate_existing=True)).one()


def resync(app: Flask) -> int:
    with app.app_context():
        return resync_google.run()


@pytest.fixture
def objects_with_a_tier_field(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Every object body carries ``rewardsTier`` again, the defect of issue 17; call the result to fix it."""
    real = google.changing_fields
    monkeypatch.setattr(google, "changing_fields", lambda card: {**real(card), "rewardsTier": "Gold"})
    return lambda: monkeypatch.setattr(google, "changing_fields", real)


@pytest.fixture
def classes_with_points(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Every class body carries ``loyaltyPoints``, a LoyaltyObject field; call the result to fix it."""
    real = google.class_resource

    def wrong(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**real(*args, **kwargs), "loyaltyPoints": {"label": "Points", "balance": {"int": 0}}}

    monkeypatch.setattr(google, "class_resource", wrong)
    return lambda: monkeypatch.setattr(google, "class_resource", real)


def test_a_refused_object_is_recorded_once_and_its_content_not_sent_again(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, app: Flask, objects_with_a_tier_field: Callable[[], None]
) -> None:
    program, pos = shop
    card = card_of(db_session, enrol(pos))
    assert calls(fake) == [("POST", "loyaltyClass"), ("POST", "loyaltyObject")]
    [refused] = refusals(db_session)
    assert (refused.recipient, refused.card_id) == (f"{ISSUER}.{card.serial}", card.id)
    assert (refused.payload["method"], refused.payload["path"]) == ("POST", "loyaltyObject")
    assert refused.payload["body"]["rewardsTier"] == "Gold"  # the body Google refused, as sent
    assert refused.payload["refused"] == {"status": 400, "reason": "invalid", "message": UNKNOWN_TIER}
    row = object_row(db_session, card)
    assert row.inserted_at is None and row.refused_digest is not None and UNKNOWN_TIER in row.refusal
    assert class_row(db_session, program).inserted_at is not None  # the object's refusal did not undo the class

    before, refused_digest = len(fake.requests), row.refused_digest
    assert resync(app) == 0 and resync(app) == 0  # the beat job, twice
    with app.app_context():
        sync_google_class(db_session, {"program_id": program.id})  # a programme saved without a visible change
    assert calls(fake, before) == []  # neither the class nor the refused object went again

    buy(pos, card.barcode, "R-1")  # a new content: tried once, and the class is not sent before it
    assert calls(fake, before) == [("POST", "loyaltyObject")]
    assert len(refusals(db_session)) == 1  # the same answer again: the row knows, the outbox has it once
    assert object_row(db_session, card).refused_digest not in (None, refused_digest)

    objects_with_a_tier_field()  # a release without the defect: the next resync brings the object in
    assert resync(app) == 1
    db_session.refresh(card)
    assert fake.objects[f"{ISSUER}.{card.serial}"]["loyaltyPoints"]["balance"] == {"int": card.balance}
    row = object_row(db_session, card)
    assert row.inserted_at is not None and (row.refused_digest, row.refusal) == (None, None)


def test_a_refused_class_holds_its_objects_back_and_is_not_sent_again(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, app: Flask, classes_with_points: Callable[[], None]
) -> None:
    program, pos = shop
    cards = [card_of(db_session, enrol(pos, phone=f"+3736900011{n}")) for n in range(3)]
    buy(pos, cards[0].barcode, "R-1")
    assert resync(app) == 0
    # one try of the class; its objects wait instead of meeting a certain 404, nothing is repeated
    assert calls(fake) == [("POST", "loyaltyClass")]
    google_class = class_row(db_session, program)
    assert google_class.inserted_at is None and "Unknown name \"loyaltyPoints\"" in google_class.refusal
    [refused] = refusals(db_session)
    assert (refused.recipient, refused.card_id, refused.payload["path"]) == (f"{ISSUER}.{program.slug}", None,
                                                                            "loyaltyClass")
    assert all(object_row(db_session, card).inserted_at is None for card in cards)

    classes_with_points()  # fixed: the resync job sends the class, then the objects that waited for it
    assert resync(app) == 3
    assert calls(fake)[1:] == [("POST", "loyaltyClass")] + [("POST", "loyaltyObject")] * 3
    assert set(fake.objects) == {f"{ISSUER}.{card.serial}" for card in cards}
    assert class_row(db_session, program).refusal is None


def test_a_refused_class_update_leaves_the_objects_going(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    program, pos = shop
    barcode = enrol(pos)  # the class and the object are at Google
    real = google.class_resource
    monkeypatch.setattr(google, "class_resource", lambda *a, **kw: {**real(*a, **kw), "rewardsTier": ["Gold"]})
    before = len(fake.requests)
    with app.app_context():
        sync_google_class(db_session, {"program_id": program.id})  # the programme changed: the update is refused
    buy(pos, barcode, "R-1")
    assert resync(app) == 0
    # Google keeps the class it had: the objects go on, and the refused update is not tried again
    assert calls(fake, before) == [("POST", "loyaltyClass"), ("PATCH", "loyaltyObject")]
    card = card_of(db_session, barcode)
    assert fake.objects[f"{ISSUER}.{card.serial}"]["loyaltyPoints"]["balance"] == {"int": card.balance}
    [refused] = refusals(db_session)
    assert (refused.payload["path"], refused.recipient) == ("loyaltyClass", f"{ISSUER}.{program.slug}")
    google_class = class_row(db_session, program)
    assert google_class.inserted_at is not None and "Proto field is not repeating" in google_class.refusal


def test_a_refused_campaign_message_fails_its_delivery_once(
    fake: FakeGoogleWallet, db_session: Session, app: Flask, make_program: Callable[..., Any],
    make_store: Callable[..., Any], pos_for: Callable[..., Any], start_wallet_campaign: StartCampaign
) -> None:
    """A message Google refuses would be refused again: the delivery fails (no retry), the outbox shows why."""
    from app.campaigns import send

    program = make_program(tiers=[])  # a card Google takes; only the message is refused
    pos = pos_for(make_store(program, "Till"))
    card = card_of(db_session, enrol(pos))
    now = utcnow()
    campaign, channels = start_wallet_campaign(program=program, cards=[card], now=now)
    message = "Invalid value at 'message.message_type' (TYPE_ENUM), \"SHOUT\""
    fake.fail("POST", f"{API}loyaltyObject/{ISSUER}.{card.serial}/addMessage", 400, times=5, reason="invalid",
              message=message)

    result = send.send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url="https://t.test", now=now)

    assert result.outcomes == Counter({"failed": 1})
    delivery = db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).one()
    assert delivery.status == "failed" and message in delivery.error
    assert [(m.payload["method"], m.payload["path"].rsplit("/", 1)[-1], m.payload["refused"]["message"])
            for m in refusals(db_session)] == [("POST", "addMessage", message)]
    assert [m for m, path in calls(fake) if path.endswith("/addMessage")] == ["POST"]  # tried once


def test_the_outbox_shows_googles_refusals(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, client: FlaskClient,
    objects_with_a_tier_field: Callable[[], None]
) -> None:
    _, pos = shop
    card = card_of(db_session, enrol(pos))
    token = api_token(db_session, "marketer")
    listed = call(client, "GET", "/outbox?channel=google_wallet", token).json
    [item] = [i for i in listed["items"] if i["refusal"] is not None]
    assert item["refusal"] == {"status": 400, "reason": "invalid", "message": UNKNOWN_TIER}
    assert item["payload"]["body"]["id"] == item["recipient"] == f"{ISSUER}.{card.serial}"
    assert all(i["refusal"] is None for i in listed["items"] if i is not item)
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert "refusal" in schema["MessageOut"]["properties"]

    sign_in_as(client, db_session, "marketer")
    page = client.get("/dashboard/outbox?channel=google_wallet")
    assert page.status_code == 200
    shown = page.text[page.text.index('class="dash-error outbox-refusal"'):]
    shown = shown[:shown.index("</p>")]
    assert "Refused by Google" in shown and "POST loyaltyObject" in shown and "400 invalid" in shown
    assert "Unknown name &#34;rewardsTier&#34; at &#39;resource&#39;: Cannot find field." in shown
    customer = client.get(f"/dashboard/customers/{card.customer_id}")
    assert customer.status_code == 200
    note = customer.text[customer.text.index('id="google-refusal"'):]
    assert note[:note.index("</p>")].count("Google refused its last content") == 1
    assert "waiting to be created at Google" in customer.text and "400 invalid: Invalid JSON payload" in note


def test_an_object_google_could_not_take_is_retried_without_the_class_again(
    shop: Any, fake: FakeGoogleWallet, db_session: Session, app: Flask
) -> None:
    """503s (after the client's retries) are not a refusal: the object's row stays behind its card and the resync
    job tries it again, without sending the class Google took again before it (neither is undone with the
    object's savepoint)."""
    program, pos = shop
    fake.fail("POST", API + "loyaltyObject", 503, times=4, retry_after=0)  # every attempt of the client
    card = card_of(db_session, enrol(pos))
    assert calls(fake) == [("POST", "loyaltyClass")] + [("POST", "loyaltyObject")] * 4
    assert class_row(db_session, program).inserted_at is not None and refusals(db_session) == []

    assert resync(app) == 1
    assert calls(fake)[5:] == [("POST", "loyaltyObject")]
    assert f"{ISSUER}.{card.serial}" in fake.objects
