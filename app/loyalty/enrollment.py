"""Enrolment: a customer joins a programme and gets a card, with welcome and referral bonuses."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import outbox
from app.db import utcnow
from app.errors import FieldError, RuleViolation
from app.loyalty import ledger, rules
from app.merchants.stores import StoreLike
from app.models import CONSENT_CHANNELS, Card, Consent, Customer, Program, Tier

BARCODE_DIGITS = 12  # plus a Luhn check digit, so a mistyped number is caught at the till
_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes


@dataclass
class Enrolment:
    card: Card
    created: bool  # False: the phone already had a card in this programme
    customer_created: bool = False  # True: this call also created the customer (the phone was unknown)


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _new_barcode(session: Session) -> str:
    while True:
        body = str(secrets.randbelow(9 * 10 ** (BARCODE_DIGITS - 1)) + 10 ** (BARCODE_DIGITS - 1))
        code = body + luhn_digit(body)
        if session.scalars(select(Card.id).where(Card.barcode == code)).first() is None:
            return code


def new_referral_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))
        if session.scalars(select(Customer.id).where(Customer.referral_code == code)).first() is None:
            return code


def base_tier(session: Session, program: Program) -> Tier | None:
    tiers = session.scalars(select(Tier).where(Tier.program_id == program.id)).all()
    return rules.tier_for(rules.ZERO_MONEY, [(t, t.qualifying_spend) for t in tiers])


def issue_card(session: Session, *, program: Program, customer: Customer, now: datetime) -> Card:
    card = Card(
        program_id=program.id, customer_id=customer.id, serial=str(uuid.uuid4()),
        barcode=_new_barcode(session),
        apple_auth_token=secrets.token_urlsafe(24),  # 32 chars; Apple requires at least 16
        page_token=secrets.token_urlsafe(24), tier=base_tier(session, program),
        created_at=now, updated_at=now,
    )
    session.add(card)
    session.flush()
    return card


def set_consents(
    session: Session, *, customer: Customer, consents: dict[str, bool], source: str, now: datetime
) -> None:
    """Record each channel's yes/no with the time it changed; unchanged answers keep their time."""
    unknown = set(consents) - set(CONSENT_CHANNELS)
    if unknown:
        raise RuleViolation(
            f"unknown consent channel(s): {', '.join(sorted(unknown))}", code="unknown-channel",
            errors=[FieldError(f"consents.{c}", f"must be one of {', '.join(CONSENT_CHANNELS)}")
                    for c in sorted(unknown)],
        )
    current = {c.channel: c for c in customer.consents}
    for channel, granted in consents.items():
        row = current.get(channel)
        if row is None:
            customer.consents.append(Consent(channel=channel, granted=granted, source=source, changed_at=now))
        elif row.granted != granted:
            row.granted, row.source, row.changed_at = granted, source, now


def enrol(
    session: Session, *, program: Program, phone: str, name: str = "", email: str | None = None,
    birthday: date | None = None, consents: dict[str, bool] | None = None,
    referral_code: str | None = None, home_store: StoreLike | None = None, source: str = "pos",
    now: datetime | None = None,
) -> Enrolment:
    """Give the customer with this phone (E.164) a card in the programme.

    A phone that already has a card gets it back (``created=False``) and nothing else changes.
    A new card gets the welcome bonus; with a valid referral code the new card gets the referred bonus
    and the referrer's card in this programme (if any) the referrer bonus. A customer we already knew
    (a card in another programme) keeps their details, and ``consents`` only fills in the channels they
    have not answered yet: whoever enrols them cannot change what they chose.

    :raise RuleViolation: unknown referral code or consent channel.
    """
    now = now or utcnow()
    customer = session.scalars(select(Customer).where(Customer.phone == phone)).one_or_none()
    if customer is not None:
        card = session.scalars(
            select(Card).where(Card.program_id == program.id, Card.customer_id == customer.id)
        ).one_or_none()
        if card is not None:
            return Enrolment(card=card, created=False)

    referrer: Customer | None = None
    referrer_card: Card | None = None
    if referral_code:
        referrer = session.scalars(
            select(Customer).where(Customer.referral_code == referral_code.strip().upper())
        ).one_or_none()
        if referrer is None or (customer is not None and referrer.id == customer.id):
            raise RuleViolation("this referral code is not valid", code="invalid-referral-code",
                                errors=[FieldError("referral_code", "no customer has this code")])
        referrer_card = session.scalars(
            select(Card).where(Card.program_id == program.id, Card.customer_id == referrer.id,
                               Card.status == "active")
        ).one_or_none()

    customer_created = customer is None
    if customer is None:
        customer = Customer(
            phone=phone, name=name.strip(), email=email, birthday=birthday,
            referral_code=new_referral_code(session), home_store_id=home_store.id if home_store else None,
            referred_by_id=referrer.id if referrer else None,
            timezone=home_store.timezone if home_store else program.timezone, created_at=now,
        )
        session.add(customer)
        session.flush()
    answered = set() if customer_created else {c.channel for c in customer.consents}
    new_answers = {channel: granted for channel, granted in (consents or {}).items() if channel not in answered}
    set_consents(session, customer=customer, consents=new_answers, source=source, now=now)
    card = issue_card(session, program=program, customer=customer, now=now)

    ledger.grant_bonus(session, card=card, points=program.welcome_bonus, reason="welcome", now=now)
    if referrer is not None:
        ledger.grant_bonus(session, card=card, points=program.referred_bonus, reason="referred", now=now)
    if referrer_card is not None:  # a referrer without a card here is credited, but earns nothing here
        ledger.grant_bonus(session, card=referrer_card, points=program.referrer_bonus,
                           reason=f"referral of customer {customer.id}", now=now)
    outbox.emit(session, "customer.enrolled",
                {"customer_id": customer.id, "card_id": card.id, "program_id": program.id, "source": source})
    session.flush()
    return Enrolment(card=card, created=True, customer_created=customer_created)
