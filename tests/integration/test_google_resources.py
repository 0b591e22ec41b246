"""Every body Tallypass builds for Google Wallet fits Google's own definition of the resource: the
``walletobjects`` v1 discovery document, through the validator the stand-in of Google's API uses
(tests/fakes/google_discovery.py). A field the resource does not have (``rewardsTier`` on an object was one), a
wrong JSON type or an enum value Google does not know fails here, whatever the card's state.

The bodies are taken where the code really builds them: the requests recorded in the channel outbox (class and
object inserts, PATCHes with and without ``notifyPreference``, addMessage), the class and object resources, and
the payloads inside signed save links. Each recorded request is matched to its method in the discovery document
(by HTTP method and path), so a new kind of request is checked too."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.google_wallet import SAVE_URL_PREFIX, ServiceAccount
from app.db import utcnow
from app.models import Card, ChannelMessage, GoogleClass, GoogleObject
from app.wallet import google
from tests.fakes import google_discovery as discovery

ISSUER = "3388000000000000000"
SERVED = ("loyaltyclass", "loyaltyobject")


@pytest.fixture
def setup(apple_certs: Path) -> google.GoogleSetup:
    account = ServiceAccount.from_file(apple_certs / "google-service-account.json")
    return google.GoogleSetup(issuer_id=ISSUER, base_url="https://tallypass.test",
                              origins=("https://tallypass.test",), account=account)


def _method_of(method: str, path: str) -> dict[str, Any]:
    """The discovery method a recorded request (``PATCH loyaltyObject/<id>``) is a call of."""
    for resource in SERVED:
        for spec in discovery.document()["resources"][resource]["methods"].values():
            pattern = re.escape(spec["path"].removeprefix("walletobjects/v1/")).replace(r"\{resourceId\}", "[^/]+")
            if spec["httpMethod"] == method and re.fullmatch(pattern, path):
                return spec
    raise AssertionError(f"{method} {path} is no method of the walletobjects discovery document")


def google_refusals(method: str, path: str, body: Any) -> list[str]:
    """What Google's front end would refuse in this request's body (empty: nothing)."""
    spec = _method_of(method, path)
    request = spec["request"]["$ref"]
    whole_resource = request in ("LoyaltyClass", "LoyaltyObject")
    return [str(v) for v in discovery.problems(request, body, at="resource" if whole_resource else "",
                                               complete=spec["httpMethod"] != "PATCH")]


def recorded(db_session: Session, since: int = 0) -> list[ChannelMessage]:
    return list(db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "google_wallet",
                                                                ChannelMessage.id > since)
                                   .order_by(ChannelMessage.id)))


def assert_google_accepts_everything_recorded(db_session: Session) -> list[tuple[str, str]]:
    messages = recorded(db_session)
    assert messages, "nothing was recorded"
    refused = [(m.id, m.payload["method"], m.payload["path"], errors) for m in messages
               if (errors := google_refusals(m.payload["method"], m.payload["path"], m.payload["body"]))]
    assert refused == []
    return [(m.payload["method"], m.payload["path"].split("/", 1)[0]) for m in messages]


def change(db_session: Session, setup: google.GoogleSetup, card: Card, *, notify: bool = False, **fields: Any
           ) -> None:
    """Change the card (a new version) and record the PATCH that brings Google's object up to it."""
    for name, value in fields.items():
        setattr(card, name, value)
    card.version += 1
    db_session.flush()
    google.sync_card(db_session, setup=setup, card=card, notify=notify, client=None, now=utcnow())


# ------------------------------------------------------------------------------------------------ the guard


def test_every_request_body_fits_the_discovery_document_in_every_card_state(
    db_session: Session, setup: google.GoogleSetup, make_program: Callable[..., Any],
    make_store: Callable[..., Any], make_card: Callable[..., Any]
) -> None:
    tiered = make_program(name="Cafea & Co. — programul de fidelitate", logo_text="Cafea",
                          terms="Points expire after a year.",
                          tiers=[("Silver", "100", "2"), ("Gold", "200", "3"), ("Platinum", "300", "4")])
    for n in range(12):  # more stores than a class may hold locations
        make_store(tiered, f"Shop {n}", latitude=47 + n / 100, longitude=28.8)
    untiered = make_program(tiers=[])
    stamps = make_program(kind="stamps", stamps_required=8, tiers=[])
    open_stamps = make_program(kind="stamps", stamps_required=None, tiers=[])

    card = make_card(tiered, balance=40, name="Ștefan Țurcanu-Popescu de la Chișinău")  # no tier yet
    google.sync_card(db_session, setup=setup, card=card, notify=False, client=None, now=utcnow())
    tiers = {t.name: t for t in tiered.tiers}
    change(db_session, setup, card, notify=True, tier=tiers["Gold"], balance=250)  # tier reached, notifying
    change(db_session, setup, card, tier=tiers["Platinum"], balance=2_000_000_000)
    change(db_session, setup, card, tier=None, balance=0)  # spend left the window: no tier again
    geo = [{"latitude": 47.0 + n / 100, "longitude": 28.8, "name": f"Shop {n}"} for n in range(12)]
    change(db_session, setup, card, geo_locations=geo)  # a geo campaign's stores
    change(db_session, setup, card, geo_locations=None)  # ...and after it
    change(db_session, setup, card, status="voided")
    others = [make_card(untiered, balance=7), make_card(stamps), make_card(open_stamps)]
    others[1].stamps, others[2].stamps = 3, 11
    for other in others:
        google.sync_card(db_session, setup=setup, card=other, notify=False, client=None, now=utcnow())
        change(db_session, setup, other, notify=True, balance=other.balance + 1, stamps=other.stamps + 1)
    now = utcnow()
    kinds = [google.send_message(db_session, setup=setup, card=card, header="Weekend offer " * 20, body="Ș" * 2000,
                                 message_id=f"campaign-{n}", client=None, now=now + timedelta(minutes=n))
             for n in range(4)]  # the tier change used one notification of three

    calls = assert_google_accepts_everything_recorded(db_session)
    assert kinds == ["TEXT_AND_NOTIFY"] * 2 + ["TEXT"] * 2
    assert {("POST", "loyaltyClass"), ("POST", "loyaltyObject"), ("PATCH", "loyaltyObject")} <= set(calls)
    assert any(path.endswith("/addMessage") for _, path in
               ((m.payload["method"], m.payload["path"]) for m in recorded(db_session)))


def test_class_and_object_resources_fit_the_document(
    db_session: Session, setup: google.GoogleSetup, make_program: Callable[..., Any],
    make_store: Callable[..., Any], make_card: Callable[..., Any]
) -> None:
    program = make_program(name="P" * 120, tiers=[("Bronze", "0", "1")])
    make_store(program, "Till", latitude=47.0, longitude=28.8)
    stores = list(program.stores)
    card = make_card(program, balance=5)
    for resource in (google.class_resource(setup, program, stores),
                     *(google.class_resource(setup, program, stores, compact=n) for n in (20, 40))):
        assert discovery.problems("LoyaltyClass", resource) == []
    for resource in (google.object_resource(setup, card), google.object_resource(setup, card, compact=True)):
        assert discovery.problems("LoyaltyObject", resource) == []
    assert discovery.problems("LoyaltyObject", google.changing_fields(card), complete=False) == []


def _save_payload(url: str, account: ServiceAccount) -> dict[str, Any]:
    token = url.removeprefix(SAVE_URL_PREFIX)
    return jwt.decode(token, account.private_key.public_key(), algorithms=["RS256"], audience="google")["payload"]


def test_save_link_payloads_fit_the_document(db_session: Session, setup: google.GoogleSetup,
                                             make_program: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    """The payload of a save JWT is a ``Resources`` of the document: the fat one (class and object), the one
    with the object alone, and the skinny one (ids)."""
    assert setup.account is not None
    card = make_card(make_program(tiers=[("Bronze", "0", "1")]), balance=12)
    payloads = [_save_payload(google.save_link(db_session, setup=setup, card=card, now=utcnow()), setup.account)]
    db_session.add(GoogleClass(program_id=card.program_id, class_id=google.class_id(setup, card.program),
                               inserted_at=utcnow()))
    db_session.flush()
    payloads.append(_save_payload(google.save_link(db_session, setup=setup, card=card, now=utcnow()), setup.account))
    db_session.add(GoogleObject(card_id=card.id, object_id=google.object_id(setup, card), inserted_at=utcnow(),
                                notifications=[]))
    db_session.flush()
    payloads.append(_save_payload(google.save_link(db_session, setup=setup, card=card, now=utcnow()), setup.account))

    assert [sorted(p) for p in payloads] == [["loyaltyClasses", "loyaltyObjects"], ["loyaltyObjects"],
                                             ["loyaltyObjects"]]
    assert discovery.problems("Resources", payloads[0], at="") == []
    assert discovery.problems("Resources", payloads[1], at="") == []
    # the skinny payload names objects Google has (ids only): each is checked as a partial LoyaltyObject
    assert payloads[2]["loyaltyObjects"] == [{"id": google.object_id(setup, card),
                                              "classId": google.class_id(setup, card.program)}]
    assert discovery.problems("LoyaltyObject", payloads[2]["loyaltyObjects"][0], complete=False) == []


# ------------------------------------------------------------------------------------------------ the guard's guard


@pytest.mark.parametrize(
    ("schema", "body", "complete", "expected"),
    [
        ("LoyaltyObject", {"rewardsTier": "Gold"}, False,
         "Invalid JSON payload received. Unknown name \"rewardsTier\" at 'resource': Cannot find field."),
        ("LoyaltyObject", {"loyaltyPoints": {"balance": {"int": "many"}}}, False,
         "Invalid value at 'resource.loyalty_points.balance.int' (TYPE_INT32), \"many\""),
        ("LoyaltyObject", {"barcode": {"type": "QR"}}, False, "Invalid value at 'resource.barcode.type' (TYPE_ENUM)"),
        ("LoyaltyObject", {"messages": [{"header": "h", "colour": "red"}]}, False,
         "Unknown name \"colour\" at 'resource.messages[0]'"),
        ("LoyaltyObject", {"state": "ACTIVE"}, True, "Missing required field: classId"),
        ("LoyaltyClass", {"rewardsTierLabel": 7}, False, "(TYPE_STRING), 7"),
        ("Resources", {"loyaltyObjects": [{"id": "1.a", "classId": "1.b", "rewardsTier": "Gold"}]}, False,
         "Unknown name \"rewardsTier\" at 'loyalty_objects[0]'"),
    ],
)
def test_the_validator_finds_what_google_refuses(schema: str, body: dict, complete: bool, expected: str) -> None:
    found = discovery.problems(schema, body, at="" if schema == "Resources" else "resource", complete=complete)
    assert any(expected in str(v) for v in found), found


def test_the_validator_takes_what_google_takes() -> None:
    """proto3 JSON: int64 as a string or a number, legacy enum aliases the document lists, proto field names,
    null for "absent"."""
    body = {"id": "1.a", "classId": "1.b", "state": "active", "loyalty_points": {"balance": {"money": {
        "currencyCode": "EUR", "micros": 1_500_000}}}, "secondaryLoyaltyPoints": {"balance": {"money": {
            "currencyCode": "EUR", "micros": "-2"}}}, "barcode": {"type": "qrCode"}, "heroImage": None}
    assert discovery.problems("LoyaltyObject", body) == []
    assert discovery.canonical_enum("LoyaltyClass", "reviewStatus", "underReview") == "UNDER_REVIEW"
