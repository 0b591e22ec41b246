"""The demo programme: tiers, stores with coordinates, bonus rules and a few hundred customers with a
year of purchase history, all made through the real services so every balance matches its ledger.
Deterministic (seeded) and idempotent: a second run changes nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment, ledger
from app.merchants import stores as store_service
from app.models import BonusRule, Program, Store, Tier
from app.segments import rfm

DEMO_SLUG = "demo"

TIERS = [  # name, qualifying spend over 365 days, earn %
    ("Bronze", Decimal("0"), Decimal("3")),
    ("Silver", Decimal("5000"), Decimal("5")),
    ("Gold", Decimal("15000"), Decimal("7")),
    ("VIP", Decimal("40000"), Decimal("10")),
]
STORES = [  # name, address, latitude, longitude
    ("Centru", "Bd. Ștefan cel Mare 126, Chișinău", 47.0245, 28.8323),
    ("Botanica", "Bd. Dacia 47, Chișinău", 46.9874, 28.8576),
    ("Bălți", "Str. Independenței 1, Bălți", 47.7617, 27.9289),
]
FIRST = ["Ana", "Ion", "Maria", "Andrei", "Elena", "Vlad", "Olga", "Mihai", "Irina", "Dmitri", "Natalia", "Sergiu"]
LAST = ["Popescu", "Rusu", "Ceban", "Ivanov", "Munteanu", "Lungu", "Petrova", "Cojocaru", "Sirbu", "Moraru"]


@dataclass
class DemoSummary:
    created: bool
    program: Program
    stores: list[Store]
    customers: int = 0
    purchases: int = 0
    refunds: int = 0


def load_demo(session: Session, *, customers: int = 300, seed: int = 7, now: datetime | None = None) -> DemoSummary:
    """Create the demo programme unless it exists. Flushes; the caller commits."""
    existing = session.scalars(select(Program).where(Program.slug == DEMO_SLUG)).one_or_none()
    if existing is not None:
        return DemoSummary(created=False, program=existing, stores=list(existing.stores))

    now = now or utcnow()
    rng = random.Random(seed)
    program = Program(
        slug=DEMO_SLUG, name="Cafea & Co. Rewards", currency="MDL", timezone="Europe/Chisinau",
        point_value=Decimal("1.00"), redeem_cap_percent=Decimal("50"), expiry_days=365,
        welcome_bonus=50, birthday_bonus=100, referrer_bonus=100, referred_bonus=50,
        reward_threshold=1000, reward_name="Gift certificate 1000 MDL", reward_value=Decimal("1000.00"),
        terms="1 point = 1 MDL. Points pay up to 50 % of a purchase and expire 365 days after they are earned.",
        logo_text="Cafea & Co.",
    )
    session.add(program)
    session.flush()
    for name, spend, pct in TIERS:
        session.add(Tier(program_id=program.id, name=name, qualifying_spend=spend, earn_percent=pct))
    session.add_all([
        BonusRule(program_id=program.id, event_name="review", points=50, limit_per_period=1, period="month"),
        BonusRule(program_id=program.id, event_name="checkin", points=10, limit_per_period=1, period="day"),
    ])
    shops = [
        store_service.create_store(session, program=program, name=name, address=address, latitude=lat,
                                   longitude=lon, timezone="Europe/Chisinau")
        for name, address, lat, lon in STORES
    ]
    session.flush()
    summary = DemoSummary(created=True, program=program, stores=shops)

    start = now - timedelta(days=365)
    for i in range(customers):
        joined = start + timedelta(days=rng.uniform(0, 330))
        home = rng.choice(shops)
        phone = f"+37369{i:06d}"
        result = enrollment.enrol(
            session, program=program, phone=phone, name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            email=f"customer{i}@example.com",
            birthday=date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28)),
            consents={"sms": rng.random() < 0.6, "email": rng.random() < 0.7, "push": rng.random() < 0.3},
            home_store=home, source="demo", now=joined,
        )
        summary.customers += 1
        card = result.card
        # Spend habits vary a lot: a few big spenders reach Gold/VIP, many visit now and then.
        visits = int(rng.paretovariate(1.3) * 3)
        when = joined
        for _ in range(min(visits, 60)):
            when += timedelta(days=rng.expovariate(1 / 18))
            if when >= now:
                break
            amount = Decimal(rng.randint(3000, 120000)) / 100
            redeem = 0
            if card.balance >= 20 and rng.random() < 0.25:
                redeem = min(card.balance, int(amount * Decimal("0.5")), rng.randint(20, 300))
            receipt = f"D{i:04d}-{summary.purchases:06d}"
            shop = rng.choice(shops) if rng.random() < 0.2 else home
            ledger.record_purchase(
                session, store=shop, card=card,
                receipt_id=receipt, amount=amount, redeem_points=redeem, occurred_at=when, now=when,
                actor="demo",
            )
            summary.purchases += 1
            if rng.random() < 0.03:
                ledger.record_refund(session, store=shop, refund_id=f"R{receipt}", receipt_id=receipt,
                                     amount=(amount / 2).quantize(Decimal("0.01")), actor="demo", now=when)
                summary.refunds += 1
    session.flush()
    # Score RFM now, as the nightly job would at 03:00: the overview's chart and the RFM segments have data at once.
    rfm.recompute(session, program=program, now=now)
    return summary


def remove_demo(session: Session, *, actor: str = "cli") -> dict[str, int] | None:
    """Remove the demo programme and everything it made; rows removed per table, or None when there is none."""
    from app.loyalty.program_removal import remove_program

    program = session.scalars(select(Program).where(Program.slug == DEMO_SLUG)).one_or_none()
    if program is None:
        return None
    return remove_program(session, program=program, actor=actor)
