"""What a customer sees of their card and may do with their data: the card page's figures, a copy of
everything we hold (GDPR art. 15/20), and erasure (art. 17) that keeps the books consistent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.loyalty import ledger
from app.models import (
    CONSENT_CHANNELS,
    Card,
    Customer,
    LedgerEntry,
    Purchase,
    Tier,
    WebPushSubscription,
)

EXPIRY_HORIZON = timedelta(days=30)
HISTORY = 10


@dataclass
class CardSummary:
    card: Card
    next_tier: Tier | None
    spend_to_next: Decimal | None  # money still to spend in the window for the next tier
    progress: int  # 0..100 towards the next tier (100 at the top tier)
    history: list[LedgerEntry] = field(default_factory=list)
    expiring: list[tuple[datetime, int]] = field(default_factory=list)  # (when, points) within 30 days
    consents: dict[str, bool] = field(default_factory=dict)


def summary(session: Session, *, card: Card, now: datetime) -> CardSummary:
    tiers = sorted(card.program.tiers, key=lambda t: t.qualifying_spend)
    current = card.tier.qualifying_spend if card.tier else Decimal("0")
    next_tier = next((t for t in tiers if t.qualifying_spend > card.window_spend and t.qualifying_spend > current),
                     None)
    if next_tier is None:
        spend_to_next, progress = None, 100
    else:
        span = next_tier.qualifying_spend - current
        spend_to_next = next_tier.qualifying_spend - card.window_spend
        progress = max(0, min(100, int((card.window_spend - current) * 100 / span))) if span > 0 else 0
    history = list(session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card.id)
                                   .order_by(LedgerEntry.id.desc()).limit(HISTORY)))
    lots = session.execute(
        select(LedgerEntry.expires_at, LedgerEntry.remaining)
        .where(LedgerEntry.card_id == card.id, LedgerEntry.remaining > 0, LedgerEntry.expires_at.is_not(None),
               LedgerEntry.expires_at <= now + EXPIRY_HORIZON)
        .order_by(LedgerEntry.expires_at)
    ).all()
    consents = {channel: False for channel in CONSENT_CHANNELS}
    consents.update({c.channel: c.granted for c in card.customer.consents})
    return CardSummary(card=card, next_tier=next_tier, spend_to_next=spend_to_next, progress=progress,
                       history=history, expiring=[(when, points) for when, points in lots], consents=consents)


def export(session: Session, *, customer: Customer) -> dict[str, Any]:
    """Everything we hold about the customer, as plain JSON types."""
    cards = list(session.scalars(select(Card).where(Card.customer_id == customer.id).order_by(Card.id)))
    card_ids = [c.id for c in cards]
    entries = session.scalars(select(LedgerEntry).where(LedgerEntry.card_id.in_(card_ids)).order_by(LedgerEntry.id))
    purchases = session.scalars(select(Purchase).where(Purchase.card_id.in_(card_ids)).order_by(Purchase.id))
    subscriptions = session.scalars(select(WebPushSubscription).where(WebPushSubscription.customer_id == customer.id))
    return {
        "customer": {
            "name": customer.name, "phone": customer.phone, "email": customer.email,
            "birthday": customer.birthday.isoformat() if customer.birthday else None,
            "locale": customer.locale, "timezone": customer.timezone, "referral_code": customer.referral_code,
            "created_at": customer.created_at.isoformat(), "tags": list(customer.tags or []),
        },
        "consents": [{"channel": c.channel, "granted": c.granted, "source": c.source,
                      "changed_at": c.changed_at.isoformat()} for c in customer.consents],
        "cards": [{"programme": c.program.name, "barcode": c.barcode, "balance": c.balance, "stamps": c.stamps,
                   "tier": c.tier.name if c.tier else None, "status": c.status,
                   "created_at": c.created_at.isoformat()} for c in cards],
        "ledger": [{"card": e.card_id, "kind": e.kind, "points": e.points, "reason": e.reason,
                    "created_at": e.created_at.isoformat(),
                    "expires_at": e.expires_at.isoformat() if e.expires_at else None} for e in entries],
        "purchases": [{"card": p.card_id, "receipt_id": p.receipt_id, "amount": str(p.amount),
                       "occurred_at": p.occurred_at.isoformat()} for p in purchases],
        "web_push_subscriptions": [{"endpoint": s.endpoint, "created_at": s.created_at.isoformat()}
                                   for s in subscriptions],
    }


def anonymise(session: Session, *, customer: Customer, now: datetime) -> None:
    """Forget who the customer is: personal data cleared, every consent withdrawn, push subscriptions
    deleted, cards voided (their passes update to "voided" on the phones). The ledger, purchases and
    balances stay as they are, so the programme's totals do not change."""
    customer.name, customer.phone, customer.email, customer.birthday = "", None, None, None
    customer.tags, customer.anonymized_at = [], now
    for consent in customer.consents:
        if consent.granted:
            consent.granted, consent.source, consent.changed_at = False, "erasure", now
    session.execute(delete(WebPushSubscription).where(WebPushSubscription.customer_id == customer.id))
    for card in session.scalars(select(Card).where(Card.customer_id == customer.id).with_for_update()):
        if card.status != "voided":
            card.status = "voided"
            ledger.touch(session, card, now=now, reasons=["voided"])
    session.flush()
