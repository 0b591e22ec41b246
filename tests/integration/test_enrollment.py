"""Integration tests for enrolment (app.loyalty.enrollment.enrol) against the real schema."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import errors
from app.loyalty import enrollment, ledger
from app.models import Card, Consent, Customer, LedgerEntry, OutboxEvent

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
Factory = Callable[..., Any]


# ---------------------------------------------------------------- helpers


def luhn_valid(number: str) -> bool:
    """Independent Luhn check of a full number (check digit included)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def assert_consistent(session: Session, card: Card) -> None:
    session.flush()
    lots = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.remaining), 0)).where(
            LedgerEntry.card_id == card.id, LedgerEntry.remaining.is_not(None)
        )
    )
    assert card.balance >= 0
    assert card.balance == ledger.ledger_sum(session, card.id)
    assert int(lots or 0) == card.balance


def entries(session: Session, card_id: int) -> list[LedgerEntry]:
    session.flush()
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card_id).order_by(LedgerEntry.id)))


def events(session: Session, topic: str, **match: Any) -> list[OutboxEvent]:
    session.flush()
    rows = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id))
    return [ev for ev in rows if all(ev.payload.get(k) == v for k, v in match.items())]


def count(session: Session, model: Any, *where: Any) -> int:
    session.flush()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def program(make_program: Factory) -> Any:
    return make_program(welcome_bonus=50, referrer_bonus=100, referred_bonus=25)


# ---------------------------------------------------------------- new customers


def test_luhn_digit_known_values() -> None:
    assert enrollment.luhn_digit("7992739871") == "3"  # the textbook example 79927398713
    assert enrollment.luhn_digit("1") == "8"
    assert enrollment.luhn_digit("0") == "0"
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_new_phone_gets_a_card_with_welcome_bonus(db_session: Session, program: Any, make_store: Factory) -> None:
    store = make_store(program, name="Centre", timezone="Europe/Chisinau").store

    result = enrollment.enrol(
        db_session, program=program, phone="+37369123456", name="  Ana Popescu ", email="ana@example.com",
        birthday=date(1990, 2, 28), consents={"sms": True, "email": False, "push": True}, home_store=store,
        source="signup", now=T0,
    )

    assert result.created is True
    card = result.card
    customer = card.customer
    assert (customer.phone, customer.name, customer.email) == ("+37369123456", "Ana Popescu", "ana@example.com")
    assert customer.birthday == date(1990, 2, 28)
    assert customer.home_store_id == store.id
    assert customer.timezone == "Europe/Chisinau"
    assert customer.referred_by_id is None
    assert len(customer.referral_code) == 8
    assert set(customer.referral_code) <= set("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

    # The card
    assert card.program_id == program.id
    assert card.status == "active"
    assert str(uuid.UUID(card.serial)) == card.serial
    assert len(card.barcode) == 13 and card.barcode.isdigit()
    assert card.barcode[0] != "0"
    assert luhn_valid(card.barcode)
    assert enrollment.luhn_digit(card.barcode[:12]) == card.barcode[12]
    assert len(card.apple_auth_token) >= 16
    assert card.page_token and card.page_token != card.apple_auth_token
    assert card.tier is not None and card.tier.name == "Bronze"
    assert card.stamps == 0
    assert card.created_at == T0
    assert card.updated_at == T0

    # The welcome bonus is a lot that expires like any other points.
    assert card.balance == 50
    (welcome,) = entries(db_session, card.id)
    assert (welcome.kind, welcome.points, welcome.remaining, welcome.reason) == ("bonus", 50, 50, "welcome")
    assert welcome.expires_at == T0 + timedelta(days=365)
    assert card.version == 2  # issued (1), then the welcome bonus
    (changed,) = events(db_session, "card.changed", card_id=card.id)
    assert changed.payload["reasons"] == ["bonus"]
    assert changed.payload["balance"] == 50
    assert_consistent(db_session, card)

    # Consents, one row per channel, with when and where they were given.
    rows = db_session.scalars(select(Consent).where(Consent.customer_id == customer.id)).all()
    assert {(c.channel, c.granted, c.source, c.changed_at) for c in rows} == {
        ("sms", True, "signup", T0), ("email", False, "signup", T0), ("push", True, "signup", T0),
    }

    (enrolled,) = events(db_session, "customer.enrolled", customer_id=customer.id)
    assert enrolled.payload == {"customer_id": customer.id, "card_id": card.id, "program_id": program.id,
                                "source": "signup"}


def test_programme_without_welcome_bonus(db_session: Session, make_program: Factory) -> None:
    program = make_program()
    result = enrollment.enrol(db_session, program=program, phone="+37369123457", now=T0)
    assert result.created is True
    assert result.card.balance == 0
    assert result.card.version == 1
    assert entries(db_session, result.card.id) == []
    assert events(db_session, "card.changed", card_id=result.card.id) == []
    assert result.card.customer.timezone == program.timezone
    assert len(events(db_session, "customer.enrolled", card_id=result.card.id)) == 1


def test_same_phone_again_returns_the_card_and_changes_nothing(db_session: Session, program: Any) -> None:
    first = enrollment.enrol(db_session, program=program, phone="+37369123456", name="Ana",
                             consents={"sms": True}, now=T0)
    card = first.card
    n_customers, n_cards = count(db_session, Customer), count(db_session, Card)
    n_entries = len(entries(db_session, card.id))
    n_enrolled = len(events(db_session, "customer.enrolled"))
    version = card.version

    again = enrollment.enrol(db_session, program=program, phone="+37369123456", name="Someone else",
                             consents={"sms": False}, now=T0 + timedelta(days=3))

    assert again.created is False
    assert again.card.id == card.id
    assert card.balance == 50  # no second welcome bonus
    assert card.version == version
    assert len(entries(db_session, card.id)) == n_entries
    assert (count(db_session, Customer), count(db_session, Card)) == (n_customers, n_cards)
    assert len(events(db_session, "customer.enrolled")) == n_enrolled
    assert card.customer.name == "Ana"
    (sms,) = db_session.scalars(select(Consent).where(Consent.customer_id == card.customer_id)).all()
    assert (sms.granted, sms.changed_at) == (True, T0)
    assert_consistent(db_session, card)


def test_same_phone_in_another_programme_gets_a_second_card(db_session: Session, program: Any,
                                                            make_program: Factory) -> None:
    first = enrollment.enrol(db_session, program=program, phone="+37369123456", now=T0)
    other = make_program(welcome_bonus=7)

    second = enrollment.enrol(db_session, program=other, phone="+37369123456", now=T0 + timedelta(days=1))

    assert second.created is True
    assert second.card.id != first.card.id
    assert second.card.customer_id == first.card.customer_id
    assert second.card.program_id == other.id
    assert second.card.balance == 7
    assert first.card.balance == 50
    assert count(db_session, Customer, Customer.phone == "+37369123456") == 1
    assert_consistent(db_session, second.card)


def test_cards_get_distinct_valid_identifiers(db_session: Session, program: Any) -> None:
    cards = [enrollment.enrol(db_session, program=program, phone=f"+3736977{n:04d}", now=T0).card
             for n in range(25)]
    assert len({c.serial for c in cards}) == 25
    assert len({c.barcode for c in cards}) == 25
    assert len({c.apple_auth_token for c in cards}) == 25
    assert len({c.customer.referral_code for c in cards}) == 25
    assert all(len(c.barcode) == 13 and luhn_valid(c.barcode) for c in cards)


# ---------------------------------------------------------------- referrals


def test_referral_credits_both_sides(db_session: Session, program: Any) -> None:
    referrer = enrollment.enrol(db_session, program=program, phone="+37369000001", now=T0).card
    code = referrer.customer.referral_code
    version = referrer.version
    later = T0 + timedelta(days=1)

    result = enrollment.enrol(db_session, program=program, phone="+37369000002",
                              referral_code=f" {code.lower()} ", now=later)

    referred = result.card
    assert result.created is True
    assert referred.balance == 50 + 25
    assert [(e.kind, e.points, e.reason) for e in entries(db_session, referred.id)] == [
        ("bonus", 50, "welcome"), ("bonus", 25, "referred")]
    assert referred.customer.referred_by_id == referrer.customer_id

    assert referrer.balance == 50 + 100
    assert referrer.version == version + 1
    assert referrer.updated_at == later
    bonus = entries(db_session, referrer.id)[-1]
    assert (bonus.kind, bonus.points, bonus.remaining) == ("bonus", 100, 100)
    assert bonus.reason == f"referral of customer {referred.customer_id}"
    assert bonus.expires_at == later + timedelta(days=365)
    last = events(db_session, "card.changed", card_id=referrer.id)[-1].payload
    assert (last["reasons"], last["balance"], last["version"]) == (["bonus"], 150, referrer.version)

    assert_consistent(db_session, referrer)
    assert_consistent(db_session, referred)


@pytest.mark.parametrize("code", ["NOSUCHCD", "x"])
def test_unknown_referral_code_is_refused(db_session: Session, program: Any, code: str) -> None:
    enrollment.enrol(db_session, program=program, phone="+37369000001", now=T0)
    n_enrolled = len(events(db_session, "customer.enrolled"))

    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        enrollment.enrol(db_session, program=program, phone="+37369000002", referral_code=code, now=T0)

    assert exc.value.code == "invalid-referral-code"
    assert exc.value.status == 422
    assert [e.field for e in exc.value.errors] == ["referral_code"]
    assert count(db_session, Customer, Customer.phone == "+37369000002") == 0
    assert len(events(db_session, "customer.enrolled")) == n_enrolled


def test_own_referral_code_is_refused(db_session: Session, program: Any, make_program: Factory) -> None:
    first = enrollment.enrol(db_session, program=program, phone="+37369000001", now=T0)
    other = make_program(referred_bonus=25)
    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        enrollment.enrol(db_session, program=other, phone="+37369000001",
                         referral_code=first.card.customer.referral_code, now=T0)
    assert exc.value.code == "invalid-referral-code"
    assert count(db_session, Card, Card.customer_id == first.card.customer_id) == 1


# ---------------------------------------------------------------- consents


def test_unknown_consent_channel_is_refused(db_session: Session, program: Any) -> None:
    n_customers, n_cards = count(db_session, Customer), count(db_session, Card)

    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        enrollment.enrol(db_session, program=program, phone="+37369000003",
                         consents={"sms": True, "fax": True}, now=T0)

    assert exc.value.code == "unknown-channel"
    assert [e.field for e in exc.value.errors] == ["consents.fax"]
    assert (count(db_session, Customer), count(db_session, Card)) == (n_customers, n_cards)
    assert count(db_session, Customer, Customer.phone == "+37369000003") == 0
    assert events(db_session, "customer.enrolled") == []


def test_referral_by_a_customer_without_a_card_here_credits_the_new_customer(
    db_session, make_program, make_card
):
    from app.loyalty import enrollment

    other = make_program()
    referrer_card = make_card(other)
    here = make_program(referred_bonus=25, referrer_bonus=100)
    result = enrollment.enrol(db_session, program=here, phone="+37369888111",
                              referral_code=referrer_card.customer.referral_code)
    assert result.card.balance == 25
    assert result.card.customer.referred_by_id == referrer_card.customer_id
    assert referrer_card.balance == 0  # the referrer has no card in this programme to credit
