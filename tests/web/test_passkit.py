"""The PassKit web service, endpoint by endpoint, with Apple's status codes
(CONTRACTS.md §4; ../shared/reference/apple_wallet.md §3 table)."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.loyalty import ledger
from app.models import AppleDevice, AppleRegistration, Card
from app.wallet import apple

PASS_TYPE = "pass.dev.tallypass.loyalty"
DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "ab" * 32


def auth(card: Card, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"ApplePass {token if token is not None else card.apple_auth_token}"}


def registration_url(card: Card, device: str = DEVICE, pass_type: str = PASS_TYPE) -> str:
    return f"/passkit/v1/devices/{device}/registrations/{pass_type}/{card.serial}"


def register(client: FlaskClient, card: Card, device: str = DEVICE, token: str = TOKEN) -> Any:
    return client.post(registration_url(card, device), json={"pushToken": token}, headers=auth(card))


def serials(client: FlaskClient, device: str = DEVICE, since: str | None = None) -> Any:
    query = f"?passesUpdatedSince={since}" if since is not None else ""
    return client.get(f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}{query}")


@pytest.fixture
def card(make_program: Callable[..., Any], make_card: Callable[..., Any]) -> Card:
    return make_card(make_program(), balance=40)


def registrations(db_session: Session) -> int:
    return db_session.scalar(select(func.count()).select_from(AppleRegistration)) or 0


# ---------------------------------------------------------------- 1. register


def test_register_is_201_then_200(client: FlaskClient, card: Card, db_session: Session) -> None:
    assert register(client, card).status_code == 201
    assert register(client, card).status_code == 200
    assert registrations(db_session) == 1


def test_register_updates_a_devices_push_token(client: FlaskClient, card: Card, db_session: Session) -> None:
    register(client, card, token="aa" * 32)
    assert register(client, card, token="bb" * 32).status_code == 200
    assert db_session.scalars(select(AppleDevice.push_token)).all() == ["bb" * 32]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "ApplePass wrong-token-wrong-token"}, {"Authorization": "Bearer {token}"},
    {"Authorization": "ApplePass"},
])
def test_register_without_the_passs_token_is_401(client: FlaskClient, card: Card, db_session: Session,
                                                 headers: dict[str, str]) -> None:
    headers = {k: v.format(token=card.apple_auth_token) for k, v in headers.items()}
    response = client.post(registration_url(card), json={"pushToken": TOKEN}, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert registrations(db_session) == 0


def test_register_for_an_unknown_serial_or_pass_type_is_401(client: FlaskClient, card: Card) -> None:
    other = f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE}/no-such-serial"
    assert client.post(other, json={"pushToken": TOKEN}, headers=auth(card)).status_code == 401
    wrong_type = registration_url(card, pass_type="pass.com.someone.else")
    assert client.post(wrong_type, json={"pushToken": TOKEN}, headers=auth(card)).status_code == 401


def test_another_cards_token_does_not_open_this_card(client: FlaskClient, card: Card,
                                                     make_card: Callable[..., Any]) -> None:
    other = make_card(card.program)
    response = client.post(registration_url(card), json={"pushToken": TOKEN}, headers=auth(other))
    assert response.status_code == 401


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400), (b"[]", 400), (b"{}", 422), (b'{"pushToken": "not hex!"}', 422),
    (json.dumps({"pushToken": "a" * 201}).encode(), 422),
])
def test_register_with_a_bad_body_is_refused(client: FlaskClient, card: Card, db_session: Session,
                                             body: bytes, status: int) -> None:
    headers = {**auth(card), "Content-Type": "application/json"}
    response = client.post(registration_url(card), data=body, headers=headers)
    assert response.status_code == status
    assert registrations(db_session) == 0


def test_register_with_a_malformed_device_id_is_400(client: FlaskClient, card: Card) -> None:
    response = client.post(registration_url(card, device="x" * 65), json={"pushToken": TOKEN}, headers=auth(card))
    assert response.status_code == 400


# ---------------------------------------------------------------- 2. serial numbers


def test_serials_of_an_unknown_device_is_204(client: FlaskClient) -> None:
    assert serials(client).status_code == 204


def test_serials_without_a_tag_lists_every_registered_card(client: FlaskClient, card: Card,
                                                           make_card: Callable[..., Any]) -> None:
    second = make_card(card.program)
    make_card(card.program)  # not registered on this device
    register(client, card)
    register(client, second)
    response = serials(client)
    assert response.status_code == 200
    body = response.json
    assert sorted(body["serialNumbers"]) == sorted([card.serial, second.serial])
    assert isinstance(body["lastUpdated"], str)  # a number makes the phone ignore the list


def test_serials_since_a_tag_are_those_changed_strictly_after_it(
    client: FlaskClient, card: Card, make_card: Callable[..., Any], db_session: Session
) -> None:
    second = make_card(card.program)
    register(client, card)
    register(client, second)
    tag = serials(client).json["lastUpdated"]
    assert serials(client, since=tag).status_code == 204  # nothing changed since

    ledger.grant_bonus(db_session, card=second, points=5, reason="review",
                       now=datetime.now(UTC) + timedelta(seconds=1))
    db_session.flush()
    response = serials(client, since=tag)
    assert response.status_code == 200
    assert response.json["serialNumbers"] == [second.serial]
    assert int(response.json["lastUpdated"]) > int(tag)
    assert serials(client, since=response.json["lastUpdated"]).status_code == 204


def test_serials_with_a_garbled_tag_lists_everything(client: FlaskClient, card: Card) -> None:
    register(client, card)
    assert serials(client, since="yesterday").json["serialNumbers"] == [card.serial]


def test_serials_for_another_pass_type_is_204(client: FlaskClient, card: Card) -> None:
    register(client, card)
    assert client.get(f"/passkit/v1/devices/{DEVICE}/registrations/pass.other").status_code == 204


# ---------------------------------------------------------------- 3. latest pass


def test_latest_pass_is_the_signed_pass_with_last_modified(client: FlaskClient, card: Card) -> None:
    response = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.serial}", headers=auth(card))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.apple.pkpass"
    assert response.last_modified is not None
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert json.loads(archive.read("pass.json"))["serialNumber"] == card.serial


def test_latest_pass_is_304_until_the_card_changes(client: FlaskClient, card: Card, db_session: Session) -> None:
    card.updated_at = datetime.now(UTC) - timedelta(minutes=5)  # changed a while ago
    db_session.flush()
    url = f"/passkit/v1/passes/{PASS_TYPE}/{card.serial}"
    first = client.get(url, headers=auth(card))
    since = first.headers["Last-Modified"]
    unchanged = client.get(url, headers={**auth(card), "If-Modified-Since": since})
    assert unchanged.status_code == 304
    assert unchanged.data == b""

    ledger.grant_bonus(db_session, card=card, points=5, reason="review")
    db_session.flush()
    changed = client.get(url, headers={**auth(card), "If-Modified-Since": since})
    assert changed.status_code == 200


def test_latest_pass_needs_the_token(client: FlaskClient, card: Card) -> None:
    url = f"/passkit/v1/passes/{PASS_TYPE}/{card.serial}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth(card, "x" * 32)).status_code == 401
    assert client.get(f"/passkit/v1/passes/pass.other/{card.serial}", headers=auth(card)).status_code == 401


def test_two_changes_in_one_second_are_not_hidden_by_a_304() -> None:
    """Last-Modified has whole seconds: a pass fetched between two changes of the same second must
    not look current to the phone's next If-Modified-Since."""
    first_change = datetime(2026, 11, 23, 10, 0, 0, 200_000, tzinfo=UTC)
    card = Card(updated_at=first_change)
    served_at = first_change + timedelta(milliseconds=300)
    stamp = apple.last_modified(card, served_at)
    card.updated_at = first_change + timedelta(milliseconds=500)  # second change, same second
    assert apple.modified_since(card, stamp)
    # Once that second is over, the pass's own second is its Last-Modified and then earns a 304.
    later = apple.last_modified(card, first_change + timedelta(seconds=3))
    assert later == first_change.replace(microsecond=0)
    assert not apple.modified_since(card, later)


# ---------------------------------------------------------------- 4. unregister


def test_unregister_is_200_and_stops_listing(client: FlaskClient, card: Card, db_session: Session) -> None:
    register(client, card)
    response = client.delete(registration_url(card), headers=auth(card))
    assert response.status_code == 200
    assert registrations(db_session) == 0
    assert db_session.scalar(select(func.count()).select_from(AppleDevice)) == 0  # no cards left on it
    assert serials(client).status_code == 204
    assert client.delete(registration_url(card), headers=auth(card)).status_code == 200  # idempotent


def test_unregister_keeps_the_devices_other_cards(client: FlaskClient, card: Card,
                                                  make_card: Callable[..., Any]) -> None:
    other = make_card(card.program)
    register(client, card)
    register(client, other)
    client.delete(registration_url(card), headers=auth(card))
    assert serials(client).json["serialNumbers"] == [other.serial]


def test_unregister_needs_the_token(client: FlaskClient, card: Card, db_session: Session) -> None:
    register(client, card)
    assert client.delete(registration_url(card), headers=auth(card, "y" * 32)).status_code == 401
    assert registrations(db_session) == 1


# ---------------------------------------------------------------- 5. log


def test_log_is_200_and_written_to_the_log(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.web.passkit"):
        response = client.post("/passkit/v1/log", json={"logs": ["Web service error for pass.x: 401\x07"]})
    assert response.status_code == 200
    assert any("Web service error for pass.x: 401 " in r.getMessage() for r in caplog.records)


def test_log_refuses_garbage(client: FlaskClient) -> None:
    assert client.post("/passkit/v1/log", data=b"{", content_type="application/json").status_code == 400
    assert client.post("/passkit/v1/log", json={"logs": ["x"] * 51}).status_code == 422
