"""What a customer sees of their card and may do with their data: the card page's figures, a copy of
everything we hold (GDPR art. 15/20), and erasure (art. 17) that keeps the books consistent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.db import count_rows
from app.loyalty import ledger
from app.models import (
    CONSENT_CHANNELS,
    AppleDevice,
    AppleRegistration,
    BonusRule,
    Card,
    Customer,
    GoogleObject,
    LedgerEntry,
    Program,
    Purchase,
    Refund,
    Tier,
    WebPushSubscription,
)

EXPIRY_HORIZON = timedelta(days=30)
HISTORY = 10


@dataclass
class RewardProgress:
    """How far the card is from its next reward: stamps on a stamp card, points to the threshold reward."""

    kind: Literal["stamps", "threshold"]
    have: int  # stamps or points collected towards it (never more than ``need``)
    need: int
    reward: str | None  # what it is called ("Free coffee"); None: the programme gave it no name

    @property
    def missing(self) -> int:
        return self.need - self.have

    @property
    def percent(self) -> int:
        return self.have * 100 // self.need if self.need else 100


@dataclass
class TierEarning:
    """What a purchase earns on one tier: a point for every ``spend_per_point`` of money paid."""

    tier: str
    qualifying_spend: Decimal
    spend_per_point: Decimal | None  # None: this tier earns no points
    current: bool  # the card is on this tier


@dataclass
class Earning:
    """How points are earned: per tier, the programme's one-off bonuses, and its bonus events."""

    tiers: list[TierEarning]
    welcome: int
    birthday: int
    referrer: int  # for the customer who brought a friend
    referred: int  # for the friend
    events: list[BonusRule]
    stamp_min_amount: Decimal | None  # stamp cards: the least a purchase must be to add a stamp


@dataclass
class CardSummary:
    card: Card
    next_tier: Tier | None
    spend_to_next: Decimal | None  # money still to spend in the window for the next tier
    progress: int  # 0..100 towards the next tier (100 at the top tier)
    history: list[LedgerEntry] = field(default_factory=list)
    expiring: list[tuple[datetime, int]] = field(default_factory=list)  # (when, points) within 30 days
    consents: dict[str, bool] = field(default_factory=dict)
    reward: RewardProgress | None = None  # None: the programme has no stamp or threshold reward
    earning: Earning | None = None


def reward_progress(card: Card) -> RewardProgress | None:
    program = card.program
    if program.kind == "stamps" and program.stamps_required:
        return RewardProgress(kind="stamps", have=min(card.stamps, program.stamps_required),
                              need=program.stamps_required, reward=program.stamp_reward)
    if program.kind == "points" and program.reward_threshold:
        return RewardProgress(kind="threshold", have=min(max(card.balance, 0), program.reward_threshold),
                              need=program.reward_threshold, reward=program.reward_name)
    return None


def plain_amount(amount: Decimal) -> Decimal:
    """An amount to two places, whole amounts without decimals: 10.00 is 10, 12.5 is 12.50."""
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return amount.quantize(Decimal("1")) if amount == amount.to_integral_value() else amount


def spend_per_point(program: Program, earn_percent: Decimal) -> Decimal | None:
    """The money that earns one point at ``earn_percent`` (a purchase earns paid × % / 100 / point value):
    10 % of a 1.00 point is 10; None when the percentage is 0."""
    if earn_percent <= 0:
        return None
    return plain_amount(program.point_value * 100 / earn_percent)


def earning(program: Program, *, tier: Tier | None) -> Earning:
    tiers = [TierEarning(tier=t.name, qualifying_spend=t.qualifying_spend,
                         spend_per_point=spend_per_point(program, t.earn_percent),
                         current=tier is not None and t.id == tier.id)
             for t in sorted(program.tiers, key=lambda t: t.qualifying_spend)]
    return Earning(tiers=tiers, welcome=program.welcome_bonus, birthday=program.birthday_bonus,
                   referrer=program.referrer_bonus, referred=program.referred_bonus,
                   events=sorted((r for r in program.bonus_rules if r.points > 0), key=lambda r: r.event_name),
                   stamp_min_amount=program.stamp_min_amount if program.kind == "stamps" else None)


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
                       history=history, expiring=[(when, points) for when, points in lots], consents=consents,
                       reward=reward_progress(card), earning=earning(card.program, tier=card.tier))


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


# ---------------------------------------------------------------- finding and looking at members (dashboard, API)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(session: Session, *, program_id: int, text: str = "", phone: str | None = None, page: int = 1,
           per_page: int = 50) -> tuple[list[Card], int]:
    """The programme's cards whose holder matches ``text``, newest card first, and how many match.

    A match is any of: the exact barcode; the phone ``phone`` (the caller's E.164 reading of the text);
    phone digits containing the text's digits (three or more: a partial number); the name containing the
    text in any case. An empty text matches every card."""
    stmt = select(Card).join(Customer, Customer.id == Card.customer_id).where(Card.program_id == program_id)
    text = text.strip()
    if text:
        digits = "".join(ch for ch in text if ch.isdigit())
        conditions = [Card.barcode == text, Customer.name.ilike(_like(text), escape="\\")]
        if phone:
            conditions.append(Customer.phone == phone)
        if len(digits) >= 3 and not any(ch.isalpha() for ch in text):
            conditions.append(Customer.phone.contains(digits, autoescape=True))
        stmt = stmt.where(or_(*conditions))
    total = count_rows(session, stmt)
    cards = list(session.scalars(stmt.options(selectinload(Card.customer), selectinload(Card.tier))
                                 .order_by(Card.id.desc()).limit(per_page).offset((page - 1) * per_page)))
    return cards, total


def ledger_page(session: Session, *, card_id: int, page: int = 1, per_page: int = 50
                ) -> tuple[list[LedgerEntry], int]:
    """A card's ledger entries, newest first, and how many there are."""
    total = session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.card_id == card_id)) or 0
    entries = list(session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card_id)
                                   .order_by(LedgerEntry.id.desc()).limit(per_page).offset((page - 1) * per_page)))
    return entries, total


@dataclass
class Devices:
    apple: list[tuple[AppleRegistration, AppleDevice]]  # each Wallet following the card
    web_push: list[WebPushSubscription]
    google: GoogleObject | None  # the card's object at Google (None: never created)


def devices(session: Session, *, card: Card) -> Devices:
    """Where the card lives: Apple Wallets registered for it, the holder's browsers, its Google object."""
    apple = [(r, d) for r, d in session.execute(
        select(AppleRegistration, AppleDevice).join(AppleDevice, AppleDevice.id == AppleRegistration.device_id)
        .where(AppleRegistration.card_id == card.id).order_by(AppleRegistration.id)).all()]
    web_push = list(session.scalars(select(WebPushSubscription)
                                    .where(WebPushSubscription.customer_id == card.customer_id)
                                    .order_by(WebPushSubscription.id)))
    google = session.scalars(select(GoogleObject).where(GoogleObject.card_id == card.id)).one_or_none()
    return Devices(apple=apple, web_push=web_push, google=google)


def purchases(session: Session, *, card_id: int, limit: int = 20) -> list[tuple[Purchase, list[Refund]]]:
    """The card's latest purchases, newest first, each with its refunds."""
    bought = list(session.scalars(select(Purchase).where(Purchase.card_id == card_id)
                                  .order_by(Purchase.occurred_at.desc(), Purchase.id.desc()).limit(limit)))
    refunds: dict[int, list[Refund]] = {}
    if bought:
        for refund in session.scalars(select(Refund).where(Refund.purchase_id.in_([p.id for p in bought]))
                                      .order_by(Refund.id)):
            refunds.setdefault(refund.purchase_id, []).append(refund)
    return [(p, refunds.get(p.id, [])) for p in bought]
