"""The whole device story against the real service and a local HTTP/2 TLS APNs (tests/fakes/apns_h2.py):
add the pass, register, buy at the till, the push arrives, the phone asks what changed, downloads the
new pass, gets 304 when nothing changed, unregisters. Also what APNs answers shapes what we keep."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.channels.registry import DEFAULT_APNS_URL
from app.models import AppleRegistration, Card, ChannelMessage, OutboxEvent
from app.settings import Settings
from tests.conftest import PosClient
from tests.fakes.apns_h2 import FakeApns

PASS_TYPE = "pass.dev.tallypass.loyalty"
DEVICE = "0123456789abcdef0123456789abcdef"
TOKEN = "c0ffee" * 10 + "abcd"


@pytest.fixture
def apns(apple_certs: Path) -> Iterator[FakeApns]:
    with FakeApns(client_ca=[apple_certs / "root-ca.pem", apple_certs / "wwdr.pem"]) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, apns: FakeApns) -> Settings:
    return settings.model_copy(update={"apns_url": apns.url, "apns_ca_file": apns.ca_file})


@pytest.fixture
def shop(make_program: Callable[..., Any], make_store: Callable[..., Any], make_card: Callable[..., Any],
         pos_for: Callable[..., Any]) -> dict[str, Any]:
    program = make_program(tiers=[("Member", "0", "10")])
    pos = pos_for(make_store(program, "Till"))
    return {"pos": pos, "card": make_card(program, balance=50)}


def auth(card: Card) -> dict[str, str]:
    return {"Authorization": f"ApplePass {card.apple_auth_token}"}


def register(client: FlaskClient, card: Card, token: str = TOKEN, device: str = DEVICE) -> int:
    url = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}/{card.serial}"
    return client.post(url, json={"pushToken": token}, headers=auth(card)).status_code


def buy(shop: dict[str, Any], receipt: str, amount: str = "100.00") -> dict[str, Any]:
    response = shop["pos"].post("/purchases", {"receipt_id": receipt, "card": shop["card"].barcode, "amount": amount})
    assert response.status_code == 201, response.json
    return response.json


def balance_in(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        document = json.loads(archive.read("pass.json"))
    return next(f["value"] for f in document["storeCard"]["headerFields"] if f["key"] == "balance")


def pushes_to(apns: FakeApns, token: str) -> list[Any]:
    return [r for r in apns.requests if r.token == token]


def wait_for_next_second() -> None:
    time.sleep(1.02 - time.time() % 1)


def test_register_buy_push_list_download_304_unregister(client: FlaskClient, shop: dict[str, Any],
                                                        apns: FakeApns) -> None:
    card = shop["card"]
    added = client.get(f"/c/{card.page_token}/apple.pkpass")  # "Add to Apple Wallet"
    assert balance_in(added.data) == 50
    assert register(client, card) == 201
    tag = client.get(f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE}").json["lastUpdated"]

    assert buy(shop, "R-1")["card"]["balance"] == 60

    [push] = apns.requests
    assert push.method == "POST" and push.path == f"/3/device/{TOKEN}"
    assert push.headers["apns-topic"] == PASS_TYPE
    assert push.body == b"{}"
    assert "CN=Pass Type ID: pass.dev.tallypass.loyalty" in push.client_subject

    listed = client.get(f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE}?passesUpdatedSince={tag}")
    assert listed.status_code == 200
    assert listed.json["serialNumbers"] == [card.serial]

    url = f"/passkit/v1/passes/{PASS_TYPE}/{card.serial}"
    fresh = client.get(url, headers={**auth(card), "If-Modified-Since": added.headers["Last-Modified"]})
    assert fresh.status_code == 200
    assert balance_in(fresh.data) == 60

    wait_for_next_second()  # Last-Modified has whole seconds; see wallet.apple.last_modified
    again = client.get(url, headers=auth(card))
    unchanged = client.get(url, headers={**auth(card), "If-Modified-Since": again.headers["Last-Modified"]})
    assert unchanged.status_code == 304

    delete = client.delete(f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE}/{card.serial}", headers=auth(card))
    assert delete.status_code == 200
    buy(shop, "R-2")
    assert len(apns.requests) == 1  # nobody to tell any more


def test_every_device_of_the_card_is_pushed(client: FlaskClient, shop: dict[str, Any], apns: FakeApns) -> None:
    card = shop["card"]
    phone, watch = "aa" * 32, "bb" * 32
    register(client, card, token=phone, device="phone0000000000000000000000000001")
    register(client, card, token=watch, device="watch000000000000000000000000001")
    buy(shop, "R-1")
    assert sorted(r.token for r in apns.requests) == [phone, watch]
    assert apns.connections == 1


def test_410_forgets_the_device(client: FlaskClient, shop: dict[str, Any], apns: FakeApns,
                                db_session: Session) -> None:
    card = shop["card"]
    register(client, card)
    apns.script(TOKEN, [(410, "Unregistered", None)])
    buy(shop, "R-1")
    assert len(pushes_to(apns, TOKEN)) == 1
    assert db_session.scalar(select(func.count()).select_from(AppleRegistration)) == 0
    assert client.get(f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE}").status_code == 204
    buy(shop, "R-2")
    assert len(pushes_to(apns, TOKEN)) == 1


def test_a_500_is_retried(client: FlaskClient, shop: dict[str, Any], apns: FakeApns, db_session: Session) -> None:
    card = shop["card"]
    register(client, card)
    apns.script(TOKEN, [(500, "InternalServerError", None)])
    buy(shop, "R-1")
    assert [r.token for r in apns.requests] == [TOKEN, TOKEN]  # the second attempt got the default 200
    assert db_session.scalar(select(func.count()).select_from(AppleRegistration)) == 1
    assert db_session.scalar(select(func.count()).where(OutboxEvent.processed_at.is_(None))) == 0


def test_a_refused_certificate_stays_on_the_event_for_the_operator(
    client: FlaskClient, shop: dict[str, Any], apns: FakeApns, db_session: Session
) -> None:
    card = shop["card"]
    register(client, card)
    apns.script(TOKEN, [(403, "BadCertificateEnvironment", None)] * 3)
    buy(shop, "R-1")  # the sale itself succeeds; only the push is refused
    event = db_session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "card.changed")
                               .order_by(OutboxEvent.id.desc())).first()
    assert event is not None and event.processed_at is None
    assert "403 BadCertificateEnvironment" in (event.last_error or "")
    assert db_session.scalar(select(func.count()).select_from(AppleRegistration)) == 1


def test_without_a_reachable_apns_pushes_go_to_the_channel_outbox(
    app_with: Callable[..., Any], shop: dict[str, Any], db_session: Session, apns: FakeApns
) -> None:
    """Stand-in certificates and Apple's own URL: nothing is sent, the push is recorded instead."""
    offline = app_with(apns_url=DEFAULT_APNS_URL, apns_ca_file=None)
    client = offline.test_client()
    card = shop["card"]
    with offline.app_context():
        assert register(client, card) == 201
        PosClient(client, shop["pos"].creds).post("/purchases", {"receipt_id": "R-1", "card": card.barcode,
                                                                 "amount": "10.00"})
    [message] = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "apns")).all()
    assert message.channel == "apns" and message.recipient == TOKEN and message.card_id == card.id
    assert message.payload == {"topic": PASS_TYPE, "body": {}, "card_ids": [card.id]}
    assert apns.requests == []
