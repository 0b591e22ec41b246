"""No POS answer carries a card's secret (its ``/c/<token>`` page link or its Apple auth token), except the 201
that created the customer and their card: a store key must never open somebody else's card page, where their
data can be downloaded, their consents changed and their account erased.

The walk covers every route of the POS blueprint, each with successes, idempotent replays and refusals;
the test fails when a route is added to the blueprint but not to the walk.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import BonusRule, Card, Customer

NEW_PHONE = "+37369555001"


@pytest.fixture
def program(make_program):
    return make_program(welcome_bonus=10, reward_threshold=100, reward_name="Voucher")


def walk(app: Flask, pos_for: Any, make_store: Any, program: Any, make_program: Any, make_card: Any,
         db_session: Session) -> list[tuple[str, str, Any]]:
    """Every POS route, answered every way it can answer: ``[(endpoint, what, response)]``."""
    db_session.add(BonusRule(program_id=program.id, event_name="review", points=5, limit_per_period=1,
                             period="day"))
    member = make_card(program, phone="+37369555002", balance=80, name="Ana Popescu")  # 90 with the welcome
    elsewhere = make_card(make_program(), phone="+37369555003", name="Ion Rusu")
    stamps = make_program(kind="stamps", stamps_required=2, stamp_reward="Tea", tiers=[])
    stamp_card = make_card(stamps, phone="+37369555004")
    pos, stamp_pos = pos_for(make_store(program)), pos_for(make_store(stamps, name="Cafe"))
    db_session.flush()
    adapter = app.url_map.bind("tallypass.test")
    answers: list[tuple[str, str, Any]] = []

    def record(status: int, what: str, method: str, path: str, response: Any) -> None:
        assert response.status_code == status, (what, response.get_data(as_text=True))
        endpoint, _ = adapter.match("/api/v1/pos" + path.split("?")[0], method=method)
        answers.append((endpoint, what, response))

    def post(status: int, what: str, path: str, payload: Any, key: str | None = None, till: Any = pos) -> None:
        record(status, what, "POST", path, till.post(path, payload, key=key))

    def get(status: int, what: str, path: str, till: Any = pos) -> None:
        record(status, what, "GET", path, till.get(path))

    # enrolment: a new customer (the one answer with links), its replay, known phones, refusals
    post(201, "new customer", "/customers", {"phone": NEW_PHONE, "name": "Nou Client"}, key="new")
    post(201, "new customer replayed", "/customers", {"phone": NEW_PHONE, "name": "Nou Client"}, key="new")
    post(200, "the new customer again", "/customers", {"phone": NEW_PHONE})
    post(200, "member", "/customers", {"phone": member.customer.phone}, key="member")
    post(200, "member replayed", "/customers", {"phone": member.customer.phone}, key="member")
    post(200, "member again", "/customers", {"phone": member.customer.phone})
    post(201, "customer of another programme", "/customers", {"phone": elsewhere.customer.phone})
    post(422, "invalid", "/customers", {"phone": "12"})
    post(422, "bad referral", "/customers", {"phone": "+37369555009", "referral_code": "NOPE"}, key="ref")
    post(422, "bad referral replayed", "/customers", {"phone": "+37369555009", "referral_code": "NOPE"}, key="ref")

    # lookups
    get(200, "lookup", f"/cards/{member.barcode}")
    get(200, "lookup with amount", f"/cards/{member.barcode}?amount=50.00")
    get(422, "lookup bad amount", f"/cards/{member.barcode}?amount=x")
    get(200, "lookup stamps", f"/cards/{stamp_card.barcode}", till=stamp_pos)
    get(404, "lookup unknown", "/cards/0000000000000")
    get(404, "lookup in another programme", f"/cards/{elsewhere.barcode}")

    # purchases: by barcode and phone, with a reward, replays, refusals
    post(201, "purchase", "/purchases", {"receipt_id": "r1", "card": member.barcode, "amount": "100.00"}, key="p1")
    post(201, "purchase replayed", "/purchases", {"receipt_id": "r1", "card": member.barcode, "amount": "100.00"},
         key="p1")
    post(201, "purchase with reward", "/purchases", {"receipt_id": "r2", "phone": member.customer.phone,
                                                      "amount": "1000.00"})
    assert answers[-1][2].get_json()["rewards"][0]["name"] == "Voucher"
    post(200, "same receipt", "/purchases", {"receipt_id": "r2", "phone": member.customer.phone,
                                             "amount": "1000.00"})
    post(409, "receipt reused", "/purchases", {"receipt_id": "r2", "card": member.barcode, "amount": "1.00"})
    post(201, "stamp purchase", "/purchases", {"receipt_id": "s1", "card": stamp_card.barcode, "amount": "5.00"},
         till=stamp_pos)
    post(201, "stamp purchase with reward", "/purchases", {"receipt_id": "s2", "card": stamp_card.barcode,
                                                            "amount": "5.00"}, till=stamp_pos)
    post(422, "over the balance", "/purchases", {"receipt_id": "r3", "card": member.barcode, "amount": "10.00",
                                                 "redeem_points": 100_000})
    post(404, "unknown card", "/purchases", {"receipt_id": "r4", "card": "0000000000000", "amount": "1.00"})
    post(422, "invalid purchase", "/purchases", {"receipt_id": "r5", "card": member.barcode, "amount": "-1"})

    # refunds
    post(201, "refund", "/refunds", {"refund_id": "f1", "receipt_id": "r1", "amount": "50.00"}, key="f1")
    post(201, "refund replayed", "/refunds", {"refund_id": "f1", "receipt_id": "r1", "amount": "50.00"}, key="f1")
    post(422, "refund over", "/refunds", {"refund_id": "f2", "receipt_id": "r1", "amount": "500.00"})
    post(404, "refund unknown", "/refunds", {"refund_id": "f3", "receipt_id": "nope", "amount": "1.00"})

    # events
    post(201, "event", "/events", {"event_id": "e1", "card": member.barcode, "name": "review"}, key="e1")
    post(201, "event replayed", "/events", {"event_id": "e1", "card": member.barcode, "name": "review"}, key="e1")
    post(201, "event over the limit", "/events", {"event_id": "e2", "phone": member.customer.phone,
                                                  "name": "review"})
    post(422, "unknown event", "/events", {"event_id": "e3", "card": member.barcode, "name": "dance"})
    return answers


def secrets_of_every_card(db_session: Session) -> dict[str, str]:
    """{secret: barcode} of every card: its page token (the /c/ link) and its Apple auth token."""
    found: dict[str, str] = {}
    for card in db_session.scalars(select(Card)):
        found[card.page_token] = found[card.apple_auth_token] = card.barcode
    return found


def test_no_pos_answer_shows_a_secret_but_the_new_customers_own(app, pos_for, make_store, program, make_program,
                                                                make_card, db_session):
    answers = walk(app, pos_for, make_store, program, make_program, make_card, db_session)
    new_card = db_session.scalars(select(Card).join(Card.customer).where(Customer.phone == NEW_PHONE)).one()
    secrets = secrets_of_every_card(db_session)
    assert len(secrets) >= 10

    for endpoint, what, response in answers:
        assert response.status_code < 500, (what, response.get_data(as_text=True))
        text = response.get_data(as_text=True) + "\n" + str(response.headers)
        if what in ("new customer", "new customer replayed"):
            assert response.status_code == 201
            assert response.get_json()["card"]["links"]["page"] == f"https://tallypass.test/c/{new_card.page_token}"
            shown = {secret for secret in secrets if secret in text}
            assert shown <= {new_card.page_token}, (what, shown)
            continue
        assert "/c/" not in text, (endpoint, what, text)
        leaked = {barcode for secret, barcode in secrets.items() if secret in text}
        assert not leaked, (endpoint, what, leaked)

    # a route added to the POS blueprint fails here until the walk above covers it
    routes = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("pos.")}
    assert {endpoint for endpoint, _, _ in answers} == routes
