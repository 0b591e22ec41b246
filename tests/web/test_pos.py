"""The POS API through the test client: every status code of CONTRACTS.md §3, with problem+json."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import signing
from app.loyalty import card_link_texts, ledger
from app.models import (
    Card,
    ChannelMessage,
    IdempotencyRecord,
    LedgerEntry,
    OutboxEvent,
    Purchase,
    SmsMessage,
    SmsOptOut,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def program(make_program):
    return make_program(welcome_bonus=0)


@pytest.fixture
def creds(program, make_store):
    return make_store(program, name="Centru")


@pytest.fixture
def pos(pos_for, creds):
    return pos_for(creds)


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    if code:
        assert body["type"].endswith("/" + code), body
    return body


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


# ---------------------------------------------------------------- enrolment and lookup


def test_enrol_creates_card_then_returns_existing(pos, program, db_session):
    program.welcome_bonus = 50
    db_session.flush()
    r = pos.post("/customers", {"phone": "+37369123456", "name": "Ana Popescu", "consents": {"sms": True}},
                 key="enrol-1")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    card = body["card"]
    assert card["balance"] == 50 and card["tier"] == "Bronze"
    assert len(card["barcode"]) == 13 and card["serial"]
    links = card["links"]
    assert set(links) == {"page", "apple_pass", "google_save"}
    assert all(link.startswith("https://tallypass.test/c/") for link in links.values())
    assert "link_sms" not in body

    again = pos.post("/customers", {"phone": "+373 69 123 456"}, key="enrol-2")
    assert again.status_code == 200
    assert again.get_json()["card"]["barcode"] == card["barcode"]
    assert again.get_json()["customer_id"] == body["customer_id"]


def sms_to(db_session, phone: str) -> list[SmsMessage]:
    return list(db_session.scalars(select(SmsMessage).where(SmsMessage.to == phone).order_by(SmsMessage.id)))


def test_enrolling_a_known_phone_texts_the_link_to_that_phone_and_shows_the_till_no_secret(pos, program, make_card,
                                                                                           db_session):
    card = make_card(program, phone="+37369123400", name="Ana Popescu")
    r = pos.post("/customers", {"phone": "+37369123400", "name": "Somebody Else"}, key="enrol-known")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body == {"customer_id": card.customer_id, "link_sms": "sent",
                    "card": {"serial": card.serial, "barcode": card.barcode, "balance": 0, "tier": "Bronze"}}
    text = r.get_data(as_text=True)
    assert "/c/" not in text and card.page_token not in text and card.apple_auth_token not in text
    (message,) = sms_to(db_session, "+37369123400")
    assert message.body == f"Your {program.name} card: https://tallypass.test/c/{card.page_token}"
    assert message.customer_id == card.customer_id and message.status == "outbox"  # no gateway in the tests
    outbox = db_session.scalars(select(ChannelMessage).where(ChannelMessage.recipient == "+37369123400")).one()
    assert outbox.payload["body"] == message.body
    assert card.customer.name == "Ana Popescu"  # the till changes nothing of a known customer


def test_the_link_is_texted_at_most_once_a_day_however_often_a_till_asks(pos, program, make_card, db_session):
    card = make_card(program, phone="+37369123401")
    statuses = [pos.post("/customers", {"phone": "+37369123401"}).get_json()["link_sms"] for _ in range(5)]
    assert statuses == ["sent"] + ["already-sent"] * 4
    (message,) = sms_to(db_session, "+37369123401")
    message.created_at -= card_link_texts.RESEND_AFTER + timedelta(seconds=1)
    db_session.flush()
    assert pos.post("/customers", {"phone": "+37369123401"}).get_json()["link_sms"] == "sent"
    assert len(sms_to(db_session, "+37369123401")) == 2
    assert card.customer.locale == "en"


def test_the_link_is_not_texted_to_a_number_that_sent_stop(pos, program, make_card, db_session, settings):
    make_card(program, phone="+37369123402")
    db_session.add(SmsOptOut(phone="+37369123402", sender=settings.sms_from or "Tallypass"))
    db_session.flush()
    r = pos.post("/customers", {"phone": "+37369123402"})
    assert r.status_code == 200 and r.get_json()["link_sms"] == "not-sent"
    assert [m.status for m in sms_to(db_session, "+37369123402")] == ["skipped"]


def test_a_known_customer_joining_another_programme_gets_the_card_but_the_till_not_the_link(
        pos, program, make_program, make_card, db_session):
    from app.models import Consent

    other = make_card(make_program(), phone="+37369123403", name="Ion Rusu", consents={"sms": False})
    r = pos.post("/customers", {"phone": "+37369123403", "consents": {"sms": True, "email": True}}, key="e-3")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["customer_id"] == other.customer_id and body["link_sms"] == "sent"
    assert "links" not in body["card"] and "/c/" not in r.get_data(as_text=True)
    new_card = db_session.scalars(select(Card).where(Card.program_id == program.id,
                                                     Card.customer_id == other.customer_id)).one()
    (message,) = sms_to(db_session, "+37369123403")
    assert message.body.endswith(f"/c/{new_card.page_token}")
    consents = {c.channel: c.granted for c in db_session.scalars(
        select(Consent).where(Consent.customer_id == other.customer_id))}
    assert consents == {"sms": False, "email": True}  # the answer given stands; a new one is recorded


def test_the_link_text_is_in_the_customers_language(pos, program, make_card, db_session):
    card = make_card(program, phone="+37369123404")
    card.customer.locale = "ro"
    db_session.flush()
    pos.post("/customers", {"phone": "+37369123404"})
    (message,) = sms_to(db_session, "+37369123404")
    assert message.body.startswith(f"Cardul dumneavoastră {program.name}: https://tallypass.test/c/")


def test_a_replayed_enrolment_does_not_text_again(pos, program, make_card, db_session):
    make_card(program, phone="+37369123405")
    first = pos.post("/customers", {"phone": "+37369123405"}, key="same")
    replay = pos.post("/customers", {"phone": "+37369123405"}, key="same")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == first.get_json()
    assert len(sms_to(db_session, "+37369123405")) == 1


def test_enrol_validation_errors_are_listed_by_field(pos):
    r = pos.post("/customers", {"phone": "12", "email": "nope", "birthday": "2999-01-01",
                                "consents": {"fax": True}})
    body = assert_problem(r, 422, "validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert {"phone", "email", "birthday", "consents"} <= fields


def test_card_lookup_with_max_redeemable(pos, program, make_card):
    card = make_card(program, balance=120, name="Ion Rusu")
    r = pos.get(f"/cards/{card.barcode}?amount=100.00")
    assert r.status_code == 200
    assert r.get_json() == {
        "barcode": card.barcode, "name": "Ion R.", "balance": 120, "tier": "Bronze",
        "max_redeemable_for": {"amount": "100.00", "points": 50, "discount": "50.00"},
    }
    assert "max_redeemable_for" not in pos.get(f"/cards/{card.barcode}").get_json()
    bad = assert_problem(pos.get(f"/cards/{card.barcode}?amount=-1"), 422, "validation-error")
    assert [e["field"] for e in bad["errors"]] == ["amount"]
    assert_problem(pos.get("/cards/0000000000000"), 404, "card-not-found")


@pytest.mark.parametrize(("name", "shown"), [
    ("Ion Rusu", "Ion R."), ("Ana Maria  Popescu-Ionescu", "Ana P."), ("Cher", "Cher"), ("", ""),
    ("Ольга Петрова", "Ольга П."),
])
def test_the_till_sees_the_first_name_and_an_initial(pos, program, make_card, name, shown):
    card = make_card(program, name=name)
    assert pos.get(f"/cards/{card.barcode}").get_json()["name"] == shown


def test_card_of_another_programme_is_not_found(pos, make_program, make_card):
    other = make_card(make_program())
    assert_problem(pos.get(f"/cards/{other.barcode}"), 404)


# ---------------------------------------------------------------- purchases


def test_purchase_redeems_then_earns(pos, program, make_card, db_session):
    card = make_card(program, balance=200)
    r = pos.post("/purchases", {"receipt_id": "R-1", "card": card.barcode, "amount": "300.00",
                                "redeem_points": 100}, key="p-1")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["redeemed"] == 100 and body["discount"] == "100.00" and body["amount_due"] == "200.00"
    assert body["earned"] == 6  # 3 % of the 200.00 paid in money
    assert body["card"] == {"barcode": card.barcode, "balance": 106, "tier": "Bronze"}
    assert ledger.ledger_sum(db_session, card.id) == 106
    events = db_session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "card.changed")).all()
    assert any(e.payload["card_id"] == card.id and e.payload["balance"] == 106 for e in events)


def test_purchase_by_phone(pos, program, make_card):
    card = make_card(program, phone="+37369000777")
    r = pos.post("/purchases", {"receipt_id": "R-2", "phone": "+37369000777", "amount": "100"})
    assert r.status_code == 201
    assert r.get_json()["card"]["barcode"] == card.barcode


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"receipt_id": "X", "amount": "-5.00"}, 422, "validation-error"),
        ({"receipt_id": "X", "amount": 5.5}, 422, "validation-error"),  # floats are refused
        ({"receipt_id": "X", "amount": "5.555"}, 422, "validation-error"),
        ({"receipt_id": "X", "amount": "10.00", "redeem_points": 1000}, 422, "insufficient-points"),
        ({"receipt_id": "X", "amount": "10.00", "redeem_points": 6}, 422, "over-redemption-cap"),
        ({"receipt_id": "X", "amount": "10.00", "redeem_points": -1}, 422, "validation-error"),
        ({"receipt_id": "X", "amount": "10.00", "unknown": 1}, 422, "validation-error"),
        ({"amount": "10.00"}, 422, "validation-error"),
    ],
)
def test_purchase_refused_changes_nothing(pos, program, make_card, db_session, payload, status, code):
    card = make_card(program, balance=100)
    entries = count(db_session, LedgerEntry)
    r = pos.post("/purchases", {"card": card.barcode, **payload}, key="bad-1")
    body = assert_problem(r, status, code)
    if status == 422 and code == "validation-error":
        assert body["errors"]
    db_session.refresh(card)
    assert card.balance == 100
    assert count(db_session, LedgerEntry) == entries
    assert count(db_session, Purchase) == 0


@pytest.mark.parametrize("amount", ["١٠٠.٠٠", "１００", "10٠", "۱۰۰"])  # Arabic-Indic, full width, mixed, Persian
def test_amounts_in_digits_other_than_0_to_9_are_refused_everywhere_the_till_sends_one(pos, program, make_card,
                                                                                        db_session, amount):
    card = make_card(program, balance=100)
    made = pos.post("/purchases", {"receipt_id": "ok", "card": card.barcode, "amount": "100.00"})
    assert made.status_code == 201
    refused = [
        pos.post("/purchases", {"receipt_id": "digits", "card": card.barcode, "amount": amount}),
        pos.post("/refunds", {"refund_id": "digits", "receipt_id": "ok", "amount": amount}),
        pos.get(f"/cards/{card.barcode}?amount={amount}"),
    ]
    for response in refused:
        body = assert_problem(response, 422, "validation-error")
        assert [(e["field"], "digits 0-9" in e["message"]) for e in body["errors"]] == [("amount", True)]
    assert count(db_session, Purchase) == 1


def test_cap_exactly_reached_is_allowed(pos, program, make_card):
    card = make_card(program, balance=100)
    r = pos.post("/purchases", {"receipt_id": "cap", "card": card.barcode, "amount": "10.00", "redeem_points": 5})
    assert r.status_code == 201
    assert r.get_json()["amount_due"] == "5.00"


def test_both_card_and_phone_is_refused(pos, program, make_card):
    card = make_card(program, phone="+37369000778")
    r = pos.post("/purchases", {"receipt_id": "Y", "card": card.barcode, "phone": "+37369000778", "amount": "1"})
    assert_problem(r, 422)


def test_unknown_card_is_404(pos):
    assert_problem(pos.post("/purchases", {"receipt_id": "Z", "card": "123", "amount": "1.00"}), 404)


def test_duplicate_receipt(pos, program, make_card, db_session):
    card = make_card(program)
    first = pos.post("/purchases", {"receipt_id": "R-9", "card": card.barcode, "amount": "100.00"}, key="a")
    assert first.status_code == 201
    # Same receipt, same content, another (or no) key: the purchase is not recorded twice.
    same = pos.post("/purchases", {"receipt_id": "R-9", "card": card.barcode, "amount": "100.00"}, key="b")
    assert same.status_code == 200
    assert same.get_json()["purchase_id"] == first.get_json()["purchase_id"]
    different = pos.post("/purchases", {"receipt_id": "R-9", "card": card.barcode, "amount": "90.00"}, key="c")
    assert_problem(different, 409, "duplicate-receipt")
    assert count(db_session, Purchase) == 1
    db_session.refresh(card)
    assert card.balance == 3


# ---------------------------------------------------------------- the largest purchase amount


def test_amounts_over_the_programmes_limit_are_refused_with_the_limit_named(pos, program, make_card, db_session):
    program.max_purchase_amount = Decimal("2000.00")
    db_session.flush()
    card = make_card(program, balance=100)
    edge = pos.post("/purchases", {"receipt_id": "edge", "card": card.barcode, "amount": "2000.00"})
    assert edge.status_code == 201, edge.get_json()

    over = assert_problem(pos.post("/purchases", {"receipt_id": "over", "card": card.barcode, "amount": "2000.01"}),
                          422, "amount-over-limit")
    assert "2000.00" in over["detail"] and "largest purchase amount" in over["detail"]
    assert over["errors"] == [{"field": "amount", "message": over["detail"]}]
    huge = pos.post("/purchases", {"receipt_id": "huge", "phone": card.customer.phone, "amount": "9999999999.99"})
    assert_problem(huge, 422, "amount-over-limit")
    assert count(db_session, Purchase) == 1

    assert_problem(pos.post("/refunds", {"refund_id": "f", "receipt_id": "edge", "amount": "9999999999.99"}), 422,
                   "amount-over-limit")
    assert_problem(pos.get(f"/cards/{card.barcode}?amount=2000.01"), 422, "amount-over-limit")
    assert pos.get(f"/cards/{card.barcode}?amount=2000.00").status_code == 200
    assert pos.post("/refunds", {"refund_id": "f", "receipt_id": "edge", "amount": "2000.00"}).status_code == 201


def test_a_purchase_worth_many_rewards_answers_them_as_one_with_its_quantity(pos, make_program, make_store,
                                                                               make_card):
    program = make_program(reward_threshold=10, reward_name="Coffee", reward_value=Decimal("2.50"),
                           tiers=[("All", "0", "10")])
    till, card = pos_for_store(pos, make_store(program)), make_card(program)
    r = till.post("/purchases", {"receipt_id": "big", "card": card.barcode, "amount": "1005.00"})
    assert r.status_code == 201, r.get_json()
    (reward,) = r.get_json()["rewards"]
    assert (reward["name"], reward["quantity"], reward["value"]) == ("Coffee", 10, "2.50")
    assert r.get_json()["card"]["balance"] == 0 and r.get_json()["earned"] == 100


def test_points_a_card_cannot_hold_get_422_not_500(pos, make_program, make_store, make_card):
    program = make_program(point_value=Decimal("0.01"), max_purchase_amount=Decimal("9999999999.99"),
                           tiers=[("All", "0", "100")])
    till, card = pos_for_store(pos, make_store(program)), make_card(program)
    r = till.post("/purchases", {"receipt_id": "x", "card": card.barcode, "amount": "9999999999.99"})
    assert_problem(r, 422, "points-over-limit")


def pos_for_store(pos, creds):
    from tests.conftest import PosClient

    return PosClient(pos.client, creds)


# ---------------------------------------------------------------- idempotency


def test_replay_returns_identical_response_and_posts_nothing(pos, program, make_card, db_session):
    card = make_card(program, balance=50)
    payload = {"receipt_id": "R-10", "card": card.barcode, "amount": "80.00", "redeem_points": 10}
    first = pos.post("/purchases", payload, key="same-key")
    entries = count(db_session, LedgerEntry)
    events = count(db_session, OutboxEvent)
    # The retry has the keys in another order and other whitespace: still the same request.
    retry_body = json.dumps(dict(reversed(list(payload.items()))), indent=2).encode()
    replay = pos.post("/purchases", None, raw=retry_body, key="same-key")
    assert replay.status_code == first.status_code == 201
    assert replay.get_json() == first.get_json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert count(db_session, LedgerEntry) == entries
    assert count(db_session, OutboxEvent) == events
    db_session.refresh(card)
    assert card.balance == 50 - 10 + 2


def test_key_reused_with_other_body_is_409(pos, program, make_card):
    card = make_card(program)
    pos.post("/purchases", {"receipt_id": "R-11", "card": card.barcode, "amount": "10.00"}, key="k")
    r = pos.post("/purchases", {"receipt_id": "R-12", "card": card.barcode, "amount": "10.00"}, key="k")
    assert_problem(r, 409, "idempotency-key-reused")


def test_key_reused_on_another_endpoint_is_409(pos, program, make_card):
    card = make_card(program)
    pos.post("/purchases", {"receipt_id": "R-13", "card": card.barcode, "amount": "10.00"}, key="k2")
    r = pos.post("/refunds", {"refund_id": "F", "receipt_id": "R-13", "amount": "10.00"}, key="k2")
    assert_problem(r, 409, "idempotency-key-reused")


def test_domain_error_is_stored_and_replayed(pos, program, make_card, db_session):
    card = make_card(program, balance=3)
    payload = {"receipt_id": "R-14", "card": card.barcode, "amount": "100.00", "redeem_points": 10}
    first = assert_problem(pos.post("/purchases", payload, key="err"), 422, "insufficient-points")
    replay = pos.post("/purchases", payload, key="err")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert assert_problem(replay, 422) == first
    assert count(db_session, Purchase) == 0


def test_validation_errors_are_not_stored(pos, program, make_card, db_session):
    card = make_card(program)
    assert_problem(pos.post("/purchases", {"card": card.barcode, "amount": "x"}, key="v"), 422)
    assert count(db_session, IdempotencyRecord) == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\tkey"])
def test_bad_idempotency_key_is_400(pos, program, make_card, key):
    card = make_card(program)
    r = pos.post("/purchases", {"receipt_id": "R-15", "card": card.barcode, "amount": "1.00"},
                 headers={"Idempotency-Key": key})
    assert_problem(r, 400, "bad-idempotency-key")


# ---------------------------------------------------------------- refunds and events


def test_refund_reverses_pro_rata(pos, program, make_card):
    card = make_card(program, balance=100)
    pos.post("/purchases", {"receipt_id": "R-20", "card": card.barcode, "amount": "1000.00", "redeem_points": 100})
    # 900.00 paid in money at 3 % = 27 earned; balance 27
    half = pos.post("/refunds", {"refund_id": "F-1", "receipt_id": "R-20", "amount": "500.00"}, key="f1")
    assert half.status_code == 201
    assert half.get_json() == {"refund_id": "F-1", "points_reversed": 13, "points_returned": 50,
                               "card": {"barcode": card.barcode, "balance": 64, "tier": "Bronze"}}
    rest = pos.post("/refunds", {"refund_id": "F-2", "receipt_id": "R-20", "amount": "500.00"})
    assert rest.get_json()["points_reversed"] == 14 and rest.get_json()["points_returned"] == 50
    assert rest.get_json()["card"]["balance"] == 100
    over = pos.post("/refunds", {"refund_id": "F-3", "receipt_id": "R-20", "amount": "0.01"})
    assert_problem(over, 422, "refund-exceeds-purchase")


def test_refund_of_unknown_receipt_is_404(pos):
    assert_problem(pos.post("/refunds", {"refund_id": "F", "receipt_id": "nope", "amount": "1.00"}), 404)


def test_refund_must_be_positive(pos):
    assert_problem(pos.post("/refunds", {"refund_id": "F", "receipt_id": "x", "amount": "0"}), 422)


def test_event_bonus_with_period_limit(pos, program, make_card, db_session):
    from app.models import BonusRule

    db_session.add(BonusRule(program_id=program.id, event_name="review", points=50, limit_per_period=1,
                             period="month"))
    db_session.flush()
    card = make_card(program)
    first = pos.post("/events", {"event_id": "E-1", "card": card.barcode, "name": "review"})
    assert first.status_code == 201
    assert first.get_json() == {"bonus": 50, "card": {"barcode": card.barcode, "balance": 50, "tier": "Bronze"}}
    second = pos.post("/events", {"event_id": "E-2", "card": card.barcode, "name": "review"})
    assert second.status_code == 201
    assert second.get_json()["bonus"] == 0 and "limit" in second.get_json()["reason"]
    assert_problem(pos.post("/events", {"event_id": "E-3", "card": card.barcode, "name": "dance"}), 422,
                   "unknown-event")


# ---------------------------------------------------------------- authentication and transport


def test_missing_signature_is_401(client):
    r = client.post("/api/v1/pos/purchases", json={"receipt_id": "x"})
    assert_problem(r, 401, "signature-missing")


def test_wrong_signature_is_401(pos, creds):
    body = b'{"receipt_id": "x", "card": "1", "amount": "1.00"}'
    headers = pos.headers(body)
    headers["Tallypass-Signature"] = signing.signature_header("sk_wrong", body)
    assert_problem(pos.client.post("/api/v1/pos/purchases", data=body, headers=headers), 401, "signature-invalid")


def test_tampered_body_is_401(pos):
    body = b'{"receipt_id": "x", "card": "1", "amount": "1.00"}'
    headers = pos.headers(body)
    tampered = body.replace(b"1.00", b"9.00")
    assert_problem(pos.client.post("/api/v1/pos/purchases", data=tampered, headers=headers), 401)


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_signature_is_401(pos, skew):
    body = b"{}"
    headers = pos.headers(body, timestamp=int(time.time()) + skew)
    r = pos.client.post("/api/v1/pos/purchases", data=body, headers=headers)
    assert "300 s" in assert_problem(r, 401, "signature-invalid")["detail"]


def test_second_v1_signature_is_accepted_during_rotation(pos, program, make_card):
    card = make_card(program)
    body = json.dumps({"receipt_id": "rot", "card": card.barcode, "amount": "1.00"}).encode()
    t = int(time.time())
    good = signing.signature_header(pos.creds.secret, body, timestamp=t).split(",")[1]
    headers = pos.headers(body)
    headers["Tallypass-Signature"] = f"t={t},v1={'0' * 64},{good}"
    assert pos.client.post("/api/v1/pos/purchases", data=body, headers=headers).status_code == 201


def test_unknown_and_revoked_keys_are_401(pos, creds, db_session):
    from app.merchants.stores import revoke_credential

    body = b"{}"
    headers = pos.headers(body)
    headers["Tallypass-Key"] = "pk_unknown"
    assert_problem(pos.client.post("/api/v1/pos/purchases", data=body, headers=headers), 401, "unknown-key")
    revoke_credential(db_session, key_id=creds.key_id)
    db_session.commit()
    assert_problem(pos.post("/purchases", {}), 401, "unknown-key")


def test_a_revoked_key_stops_working_once_the_key_cache_expires(pos, creds, program, make_card, db_session,
                                                                 monkeypatch):
    from app.merchants.stores import revoke_credential
    from app.web import auth

    card = make_card(program)
    assert pos.get(f"/cards/{card.barcode}").status_code == 200  # the key is now cached in this process
    revoke_credential(db_session, key_id=creds.key_id)
    db_session.commit()
    assert pos.get(f"/cards/{card.barcode}").status_code == 200  # accepted for at most KEY_CACHE_SECONDS
    later = time.monotonic() + auth.KEY_CACHE_SECONDS + 0.1
    monkeypatch.setattr(auth.time, "monotonic", lambda: later)
    assert_problem(pos.get(f"/cards/{card.barcode}"), 401, "unknown-key")


def test_malformed_json_is_400(pos):
    assert_problem(pos.post("/purchases", None, raw=b"{not json"), 400, "malformed-json")
    assert_problem(pos.post("/purchases", None, raw=b"[1, 2]"), 400, "malformed-json")


def test_body_over_64_kib_is_413(pos):
    big = json.dumps({"receipt_id": "x", "items": [{"sku": "a" * 1000}] * 70}).encode()
    assert len(big) > 64 * 1024
    assert_problem(pos.post("/purchases", None, raw=big), 413, "payload-too-large")


def test_unknown_api_route_and_method_are_problem_json(client):
    assert_problem(client.get("/api/v1/pos/nothing-here"), 404)
    r = client.get("/api/v1/pos/purchases")
    assert_problem(r, 405)
    assert "POST" in r.headers["Allow"]


def test_html_clients_get_an_error_page(client):
    r = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert "Not found" in r.get_data(as_text=True)


def test_amount_decimal_strings_round_trip(pos, program, make_card, db_session):
    card = make_card(program)
    r = pos.post("/purchases", {"receipt_id": "dec", "card": card.barcode, "amount": "99.99"})
    assert r.get_json()["amount_due"] == "99.99" and r.get_json()["earned"] == 2
    purchase = db_session.scalars(select(Purchase)).one()
    assert purchase.amount == Decimal("99.99")


def test_over_the_key_limit_is_429(settings, connection, make_program, make_store, make_card):
    from app import create_app
    from app.database import SESSIONS
    from app.db import make_session_factory
    from app.tasks.outbox import dispatch_events
    from tests.conftest import PosClient

    limited = create_app(settings.model_copy(update={"pos_rate_limit": "3/minute"}))
    limited.extensions[SESSIONS] = make_session_factory(
        connection, dispatch=dispatch_events, join_transaction_mode="create_savepoint"
    )
    program = make_program()
    card = make_card(program)
    pos = PosClient(limited.test_client(), make_store(program))
    other = PosClient(limited.test_client(), make_store(program, name="Other till"))

    forged = pos.headers(b"")
    forged["Tallypass-Signature"] = "t=1,v1=00"
    for _ in range(5):  # unsigned noise under the key does not use up its limit
        assert pos.client.get(f"/api/v1/pos/cards/{card.barcode}", headers=forged).status_code == 401
    assert [pos.get(f"/cards/{card.barcode}").status_code for _ in range(3)] == [200, 200, 200]
    r = pos.get(f"/cards/{card.barcode}")
    body = assert_problem(r, 429, "rate-limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and body["retry_after"] == int(r.headers["Retry-After"])
    assert other.get(f"/cards/{card.barcode}").status_code == 200  # limits are per key
