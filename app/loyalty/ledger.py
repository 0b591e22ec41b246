"""Ledger services: every change to a card's points goes through here.

Plain functions ``fn(session, *, ...)`` that flush and never commit. Each locks the card row first
(``SELECT … FOR UPDATE``), so concurrent purchases and redemptions on one card are serialised by the
database and can neither overdraw nor lose an update. Each visible change bumps ``card.version`` and
writes an ``OutboxEvent(card.changed)`` in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app import outbox
from app.bulk import update_rows
from app.db import utcnow
from app.errors import Conflict, FieldError, NotFound, RuleViolation
from app.loyalty import rules
from app.merchants.stores import StoreLike
from app.models import (
    BonusEvent,
    BonusRule,
    Card,
    Customer,
    LedgerEntry,
    Program,
    Purchase,
    Refund,
    Reward,
    Tier,
)

CARD_CHANGED = "card.changed"
R = TypeVar("R", Purchase, Refund, BonusEvent)


# ---------------------------------------------------------------- results


@dataclass
class PurchaseResult:
    purchase: Purchase
    card: Card
    replayed: bool = False
    rewards: list[Reward] = field(default_factory=list)


@dataclass
class RefundResult:
    refund: Refund
    card: Card
    replayed: bool = False


@dataclass
class EventResult:
    event: BonusEvent
    card: Card
    replayed: bool = False


# ---------------------------------------------------------------- lookups and locks


_LOCKED = "ledger.locked_cards"


def _remember_lock(session: Session, card: Card) -> None:
    session.info.setdefault(_LOCKED, {})[card.id] = session.get_nested_transaction() or session.get_transaction()


def _locking(stmt: Select[tuple[Card]]) -> Select[tuple[Card]]:
    """Lock the card row (not the programme's) and load the programme in the same statement."""
    return (
        stmt.options(joinedload(Card.program, innerjoin=True))
        .with_for_update(of=Card)
        .execution_options(populate_existing=True)
    )


def lock_card(session: Session, card_id: int) -> Card:
    """Load a card (and its programme, in the same statement) with the card row locked until the
    transaction ends. A card this transaction already locked is not selected again."""
    tx = session.info.get(_LOCKED, {}).get(card_id)
    if tx is not None and tx.is_active and (held := session.get(Card, card_id)) is not None:
        return held
    card = session.scalars(_locking(select(Card).where(Card.id == card_id))).one_or_none()
    if card is None:
        raise NotFound(f"card {card_id} does not exist", code="card-not-found")
    _remember_lock(session, card)
    return card


def find_card(
    session: Session, *, program_id: int, barcode: str | None = None, phone: str | None = None,
    lock: bool = False,
) -> Card:
    """The active card in a programme by its barcode or its holder's phone (E.164).

    :raise NotFound: no such card.
    """
    stmt = select(Card).where(Card.program_id == program_id, Card.status == "active")
    if barcode is not None:
        stmt = stmt.where(Card.barcode == barcode)
        what = f"barcode {barcode}"
    elif phone is not None:
        stmt = stmt.join(Customer, Customer.id == Card.customer_id).where(Customer.phone == phone)
        what = f"phone {phone}"
    else:
        raise ValueError("give a barcode or a phone")
    card = session.scalars(_locking(stmt) if lock else stmt).one_or_none()
    if card is None:
        raise NotFound(f"no card with {what} in this programme", code="card-not-found")
    if lock:
        _remember_lock(session, card)
    return card


# ---------------------------------------------------------------- ledger primitives


def _credit(
    session: Session, card: Card, kind: str, points: int, *, now: datetime, program: Program,
    reason: str = "", actor: str = "", **links: Any,
) -> LedgerEntry:
    """Add a lot of ``points`` that expires by the programme's rule.

    :raise RuleViolation: the card would hold more than ``rules.MAX_POINTS``.
    """
    rules.check_points(card.balance + points, field="points")
    entry = LedgerEntry(
        card_id=card.id, kind=kind, points=points, remaining=points,
        expires_at=rules.expiry_for(now, program.expiry_days), reason=reason, actor=actor,
        created_at=now, **links,
    )
    session.add(entry)
    card.balance += points
    return entry


def _open_lots(session: Session, card: Card) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.card_id == card.id, LedgerEntry.remaining > 0)
        )
    )


def _debit(
    session: Session, card: Card, kind: str, points: int, *, now: datetime, reason: str = "",
    actor: str = "", prefer_lot: LedgerEntry | None = None, **links: Any,
) -> LedgerEntry:
    """Take ``points`` from the card's lots, soonest-expiring first (``prefer_lot`` before all).

    :raise RuleViolation: the card holds fewer points.
    """
    lots = {lot.id: lot for lot in _open_lots(session, card)}
    takes: list[tuple[int, int]] = []
    left = points
    if prefer_lot is not None and prefer_lot.id in lots:
        first = min(left, lots.pop(prefer_lot.id).remaining or 0)
        if first:
            takes.append((prefer_lot.id, first))
            left -= first
    view = [rules.Lot(id=lot.id, remaining=lot.remaining or 0, expires_at=lot.expires_at) for lot in lots.values()]
    takes += rules.consume_fifo(view, left)
    if prefer_lot is not None:
        lots[prefer_lot.id] = prefer_lot
    for lot_id, taken in takes:
        lots[lot_id].remaining = (lots[lot_id].remaining or 0) - taken
    entry = LedgerEntry(
        card_id=card.id, kind=kind, points=-points, reason=reason, actor=actor, created_at=now,
        reverses_id=prefer_lot.id if prefer_lot is not None else None, **links,
    )
    session.add(entry)
    card.balance -= points
    return entry


def touch(session: Session, card: Card, *, now: datetime, reasons: list[str], **payload: Any) -> None:
    """Record a visible change: new pass version, and a ``card.changed`` event for the channels."""
    _bump(card, now)
    session.flush()
    _announce(session, card, reasons, **payload)


def touch_many(session: Session, changes: Sequence[tuple[Card, Mapping[str, Any]]], *, now: datetime,
               reasons: list[str], **payload: Any) -> None:
    """``touch`` for many cards, each with its own new column values (every mapping has the same keys): a
    campaign batch's offers. One UPDATE for all of them (``bulk.update_rows``), bumping ``version`` in SQL
    (``version + 1``: a purchase committed in between is not overwritten, unlike a version computed here)
    and returning the new versions, which are also set on the ``Card`` objects; one INSERT of the events."""
    if not changes:
        return
    session.flush()  # nothing pending on these cards can be written over them later
    table = Card.__table__
    cards = {card.id: (card, values) for card, values in changes}
    now_state = update_rows(session, table, {card.id: {**values, "updated_at": now} for card, values in changes},
                            also={"version": table.c.version + 1}, returning=["version", "balance"])
    for card_id, version, balance in now_state:  # the rows are locked by the UPDATE: these are ours
        card, values = cards[card_id]
        for key, value in {**values, "version": version, "balance": balance, "updated_at": now}.items():
            set_committed_value(card, key, value)
    outbox.emit_many(session, CARD_CHANGED, [
        card_changed(card_id=card.id, version=card.version, balance=card.balance, reasons=reasons, **payload)
        for card, _ in changes])


def _settle(session: Session, card: Card, *, now: datetime, actor: str, reasons: list[str],
            **payload: Any) -> list[Reward]:
    """The end of every change that may raise the balance: threshold rewards, then ``touch``."""
    rewards = _issue_threshold_rewards(session, card, card.program, now=now, actor=actor)
    touch(session, card, now=now, reasons=[*reasons, "reward"] if rewards else reasons, **payload)
    return rewards


def _bump(card: Card, now: datetime) -> None:
    card.version += 1
    card.updated_at = now


def card_changed(*, card_id: int, version: int, balance: int, reasons: list[str], **extra: Any) -> dict[str, Any]:
    """The payload of a ``card.changed`` event (the one shape every writer of it uses)."""
    return {"card_id": card_id, "version": version, "balance": balance, "reasons": reasons, **extra}


def _announce(session: Session, card: Card, reasons: list[str], **payload: Any) -> None:
    outbox.emit(session, CARD_CHANGED, card_changed(card_id=card.id, version=card.version, balance=card.balance,
                                                    reasons=reasons, **payload))


def _tiers(session: Session, program_id: int) -> list[Tier]:
    return list(session.scalars(select(Tier).where(Tier.program_id == program_id).order_by(Tier.id)))


def _window_start(program: Program, now: datetime) -> datetime:
    return now - timedelta(days=program.tier_window_days)


def _window_spend(session: Session, card: Card, program: Program, now: datetime) -> Decimal:
    total = session.scalar(
        select(func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0)).where(
            Purchase.card_id == card.id, Purchase.occurred_at >= _window_start(program, now)
        )
    )
    return Decimal(total).quantize(Decimal("0.01"))


def _apply_tier(card: Card, tiers: list[Tier]) -> bool:
    """Move the card to the tier its window spend qualifies for; True if the tier changed."""
    tier = rules.tier_for(card.window_spend, [(t, t.qualifying_spend) for t in tiers])
    new_id = tier.id if tier is not None else None
    if new_id == card.tier_id:
        return False
    card.tier_id = new_id
    card.tier = tier
    return True


def _reevaluate_tier(session: Session, card: Card, program: Program, now: datetime) -> bool:
    """Recompute the rolling-window spend and move the card up or down; True if the tier changed."""
    card.window_spend = _window_spend(session, card, program, now)
    return _apply_tier(card, _tiers(session, program.id))


def _reward_code() -> str:
    return secrets.token_hex(6).upper()


def _issue_threshold_rewards(
    session: Session, card: Card, program: Program, *, now: datetime, actor: str
) -> list[Reward]:
    """Convert points into a reward when the balance reaches the programme's threshold. However many times it
    reaches it, one ledger entry and one reward carrying the count (``Reward.quantity``): a purchase worth a
    million rewards costs what a purchase worth one does, and holds its card's lock as briefly."""
    count = rules.threshold_rewards(card.balance, program.reward_threshold)
    if not count:
        return []
    threshold = program.reward_threshold or 0
    name = program.reward_name or f"Reward for {threshold} points"
    entry = _debit(session, card, "reward", count * threshold, now=now, actor=actor,
                   reason=name if count == 1 else f"{count} × {name}")
    session.flush()
    reward = Reward(
        card_id=card.id, kind="threshold", name=name, value=program.reward_value, quantity=count,
        code=_reward_code(), ledger_entry_id=entry.id, issued_at=now,
    )
    session.add(reward)
    return [reward]


def _already_recorded(
    session: Session, model: type[R], key_column: Any, *, store: StoreLike, key: str,
    content: Callable[[R], tuple[Any, ...]], expected: tuple[Any, ...], what: str, code: str,
) -> R | None:
    """The record a store already made under this natural key (receipt, refund, event id), if any.
    A retry with the same content is answered from it; other content under the same key is refused.

    :raise Conflict: the key was used with different content.
    """
    existing = session.scalars(
        select(model).where(model.store_id == store.id, key_column == key)  # type: ignore[attr-defined]
    ).one_or_none()
    if existing is not None and content(existing) != expected:
        raise Conflict(f"{what} {key} was already recorded with different content", code=code)
    return existing


def _check_card_at_store(card: Card, store: StoreLike) -> None:
    if card.program_id != store.program_id or card.status != "active":
        raise NotFound("no such active card in this store's programme", code="card-not-found")


def _earn_percent(card: Card) -> Decimal:
    return card.tier.earn_percent if card.tier is not None else Decimal("0")


# ---------------------------------------------------------------- purchases


def record_purchase(
    session: Session, *, store: StoreLike, card: Card, receipt_id: str, amount: Decimal,
    redeem_points: int = 0, occurred_at: datetime | None = None,
    items: list[dict[str, Any]] | None = None, actor: str = "", now: datetime | None = None,
) -> PurchaseResult:
    """Redeem first (capped by the balance and the programme's cap), then earn on the money part at
    the card's tier rate, re-evaluate the tier, issue any threshold rewards.

    A receipt already recorded for this store with the same content is returned as a replay.

    :raise Conflict: the receipt was recorded with different content.
    :raise RuleViolation: negative amount, not enough points, over the cap.
    """
    now = now or utcnow()
    card = lock_card(session, card.id)
    _check_card_at_store(card, store)
    existing = _already_recorded(
        session, Purchase, Purchase.receipt_id, store=store, key=receipt_id,
        content=lambda p: (p.card_id, p.amount, p.redeemed_points), expected=(card.id, amount, redeem_points),
        what="receipt", code="duplicate-receipt",
    )
    if existing is not None:
        return PurchaseResult(purchase=existing, card=card, replayed=True)

    # Read everything first and write at the end, so the whole purchase goes out in one flush.
    program = card.program
    rules.check_amount(amount, program.max_purchase_amount)
    tiers = _tiers(session, program.id)  # also puts card.tier in the identity map: no lazy load
    occurred_at = occurred_at or now
    if program.kind == "stamps":
        if redeem_points:
            raise RuleViolation(
                "this programme collects stamps; it has no points to redeem", code="redemption-not-allowed",
                errors=[FieldError("redeem_points", "must be 0 on a stamp card")],
            )
        if amount < 0:
            raise RuleViolation("amount must not be negative", code="negative-amount",
                                errors=[FieldError("amount", "must not be negative")])
        plan = rules.PurchasePlan(redeemed=0, discount=Decimal("0.00"), amount_due=amount, earned=0)
    else:
        plan = rules.plan_purchase(
            amount=amount, redeem_points=redeem_points, balance=card.balance,
            earn_percent=_earn_percent(card), cap_percent=program.redeem_cap_percent,
            point_value=program.point_value,
        )

    purchase = Purchase(
        store_id=store.id, receipt_id=receipt_id, card_id=card.id, amount=amount,
        redeemed_points=plan.redeemed, discount=plan.discount, amount_due=plan.amount_due,
        earned_points=plan.earned, items=items, occurred_at=occurred_at, created_at=now,
    )
    reasons = ["purchase"]
    if plan.redeemed:
        _debit(session, card, "redeem", plan.redeemed, now=now, actor=actor, purchase=purchase)
    if plan.earned:
        _credit(session, card, "earn", plan.earned, now=now, program=program, actor=actor, purchase=purchase)
    session.add(purchase)

    rewards: list[Reward] = []
    if program.kind == "stamps" and program.stamps_required:
        stamped = rules.add_stamps(stamps=card.stamps, amount=amount, min_amount=program.stamp_min_amount,
                                   required=program.stamps_required)
        purchase.stamped = bool(stamped.added)
        card.stamps = stamped.stamps
        if stamped.rewards:
            reward = Reward(card_id=card.id, kind="stamps", name=program.stamp_reward or "Reward",
                            quantity=stamped.rewards, code=_reward_code(), purchase=purchase, issued_at=now)
            session.add(reward)
            rewards.append(reward)

    card.lifetime_spend += amount
    # Spend only grows here; what leaves the rolling window is taken off by the nightly re-evaluation
    # (and by refunds, which recompute it), so no sum over the card's purchases on the hot path.
    if occurred_at >= _window_start(program, now):
        card.window_spend += amount
    if _apply_tier(card, tiers):
        reasons.append("tier")
    rewards += _issue_threshold_rewards(session, card, program, now=now, actor=actor)
    if rewards:
        reasons.append("reward")
    _bump(card, now)
    session.flush()  # the one flush of the purchase: its rows and the card's single UPDATE
    _announce(session, card, reasons, purchase_id=purchase.id, earned=plan.earned, redeemed=plan.redeemed)
    return PurchaseResult(purchase=purchase, card=card, rewards=rewards)


def record_refund(
    session: Session, *, store: StoreLike, refund_id: str, receipt_id: str, amount: Decimal,
    actor: str = "", now: datetime | None = None,
) -> RefundResult:
    """Reverse a purchase pro rata: give back the redeemed points, take back the earned points
    (never below a zero balance), and re-evaluate the tier.

    :raise NotFound: no such receipt at this store.
    :raise Conflict: the refund id was used with different content.
    :raise RuleViolation: the refunds would exceed the purchase.
    """
    now = now or utcnow()
    purchase = session.scalars(
        select(Purchase).where(Purchase.store_id == store.id, Purchase.receipt_id == receipt_id)
    ).one_or_none()
    if purchase is None:
        raise NotFound(f"no purchase with receipt {receipt_id} at this store", code="receipt-not-found")
    card = lock_card(session, purchase.card_id)
    session.refresh(purchase)  # another refund may have committed while we waited for the lock

    existing_refund = _already_recorded(
        session, Refund, Refund.refund_id, store=store, key=refund_id,
        content=lambda r: (r.purchase_id, r.amount), expected=(purchase.id, amount),
        what="refund", code="duplicate-refund",
    )
    if existing_refund is not None:
        return RefundResult(refund=existing_refund, card=card, replayed=True)
    # A purchase recorded before the programme lowered its limit can still be refunded in full.
    rules.check_amount(amount, max(card.program.max_purchase_amount, purchase.amount))

    earn_lot = session.scalars(
        select(LedgerEntry).where(LedgerEntry.purchase_id == purchase.id, LedgerEntry.kind == "earn")
    ).first()
    plan = rules.plan_refund(
        purchase_amount=purchase.amount, refunded_before=purchase.refunded_amount, refund_amount=amount,
        earned=purchase.earned_points, redeemed=purchase.redeemed_points, balance=card.balance,
    )
    # Points of this purchase that already expired went back to the merchant: never take them twice.
    reversed_before = -int(session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.purchase_id == purchase.id, LedgerEntry.kind == "refund_reversal")
    ) or 0)
    reversible = purchase.earned_points - _expired_from(session, earn_lot) - reversed_before
    points_reversed = max(0, min(plan.points_reversed, reversible))
    shortfall = plan.points_reversed + plan.reversal_shortfall - points_reversed
    program = card.program
    refund = Refund(store_id=store.id, refund_id=refund_id, purchase_id=purchase.id, amount=amount,
                    points_reversed=points_reversed, points_returned=plan.points_returned, created_at=now)
    session.add(refund)
    session.flush()

    if plan.points_returned:
        _credit(session, card, "refund_return", plan.points_returned, now=now, program=program, actor=actor,
                purchase_id=purchase.id, refund_id=refund.id, reason=f"refund {refund_id}")
    if points_reversed:
        _debit(session, card, "refund_reversal", points_reversed, now=now, actor=actor,
               prefer_lot=earn_lot, purchase_id=purchase.id, refund_id=refund.id,
               reason=f"refund {refund_id}" + (f" ({shortfall} points not recoverable)" if shortfall else ""))

    purchase.refunded_amount += amount
    if purchase.stamped and purchase.refunded_amount == purchase.amount and not _stamp_converted(
        session, card, purchase
    ):
        card.stamps = rules.remove_stamp(stamps=card.stamps)
    card.lifetime_spend -= amount
    reasons = ["refund", "tier"] if _reevaluate_tier(session, card, program, now) else ["refund"]
    _settle(session, card, now=now, actor=actor, reasons=reasons, refund_id=refund.id)
    return RefundResult(refund=refund, card=card)


def _expired_from(session: Session, lot: LedgerEntry | None) -> int:
    if lot is None:
        return 0
    return -int(session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.reverses_id == lot.id, LedgerEntry.kind == "expire")
    ) or 0)


def _stamp_converted(session: Session, card: Card, purchase: Purchase) -> bool:
    """Whether a stamp reward was issued at or after this purchase, i.e. its stamp was used up."""
    return session.scalars(
        select(Reward.id).where(Reward.card_id == card.id, Reward.kind == "stamps",
                                Reward.purchase_id >= purchase.id)
    ).first() is not None


# ---------------------------------------------------------------- bonuses and adjustments


def grant_bonus(
    session: Session, *, card: Card, points: int, reason: str, actor: str = "system",
    now: datetime | None = None,
) -> LedgerEntry | None:
    """Credit a bonus lot (welcome, birthday, referral…). Zero points is a no-op."""
    if points < 0:
        raise ValueError("a bonus cannot be negative")
    if points == 0:
        return None
    now = now or utcnow()
    card = lock_card(session, card.id)
    entry = _credit(session, card, "bonus", points, now=now, program=card.program, reason=reason, actor=actor)
    _settle(session, card, now=now, actor=actor, reasons=["bonus"])
    return entry


def adjust(
    session: Session, *, card: Card, points: int, reason: str, actor: str, now: datetime | None = None
) -> LedgerEntry:
    """A manual correction with a reason, by a named actor.

    :raise RuleViolation: zero points or no reason. :raise Conflict: taking more than the balance holds.
    """
    if points == 0:
        raise RuleViolation("an adjustment must change the balance", code="invalid-points",
                            errors=[FieldError("points", "must not be 0")])
    if not reason.strip():
        raise RuleViolation("an adjustment needs a reason", code="reason-required",
                            errors=[FieldError("reason", "is required")])
    now = now or utcnow()
    card = lock_card(session, card.id)
    if points > 0:
        entry = _credit(session, card, "adjust", points, now=now, program=card.program, reason=reason,
                        actor=actor)
    else:
        if -points > card.balance:
            raise Conflict(
                f"cannot take {-points} points from a balance of {card.balance}", code="insufficient-points",
                errors=[FieldError("points", f"at most {card.balance} can be taken")],
            )
        entry = _debit(session, card, "adjust", -points, now=now, reason=reason, actor=actor)
    _settle(session, card, now=now, actor=actor, reasons=["adjust"])
    return entry


def record_event(
    session: Session, *, store: StoreLike, card: Card, event_id: str, name: str, actor: str = "",
    now: datetime | None = None,
) -> EventResult:
    """Reward a non-purchase action (a review, a check-in) within the rule's per-period limit.

    :raise RuleViolation: the programme has no rule for this event name.
    :raise Conflict: the event id was used with different content.
    """
    now = now or utcnow()
    card = lock_card(session, card.id)
    _check_card_at_store(card, store)
    existing = _already_recorded(
        session, BonusEvent, BonusEvent.event_id, store=store, key=event_id,
        content=lambda e: (e.card_id, e.name), expected=(card.id, name), what="event", code="duplicate-event",
    )
    if existing is not None:
        return EventResult(event=existing, card=card, replayed=True)

    rule = session.scalars(
        select(BonusRule).where(BonusRule.program_id == card.program_id, BonusRule.event_name == name)
    ).one_or_none()
    if rule is None:
        raise RuleViolation(f"the programme does not reward the event {name!r}", code="unknown-event",
                            errors=[FieldError("name", "unknown event name")])

    since = rules.period_start(now, rule.period, store.timezone)  # type: ignore[arg-type]
    used_stmt = select(func.count()).select_from(BonusEvent).where(
        BonusEvent.card_id == card.id, BonusEvent.name == name, BonusEvent.bonus > 0
    )
    if since is not None:
        used_stmt = used_stmt.where(BonusEvent.created_at >= since)
    used = session.scalar(used_stmt) or 0

    event = BonusEvent(store_id=store.id, event_id=event_id, card_id=card.id, name=name, created_at=now)
    if rules.bonus_allowed(used_in_period=used, limit=rule.limit_per_period):
        event.bonus = rule.points
    else:
        event.reason = f"limit of {rule.limit_per_period} per {rule.period} reached"
    session.add(event)
    if event.bonus:
        _credit(session, card, "bonus", event.bonus, now=now, program=card.program, actor=actor,
                reason=f"event {name}")
        _settle(session, card, now=now, actor=actor, reasons=["bonus"])
    else:
        session.flush()
    return EventResult(event=event, card=card)


# ---------------------------------------------------------------- scheduled jobs


def expire_due(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Burn lots whose expiry date has passed, for up to ``limit`` cards; returns the points expired.
    Call repeatedly (each call in its own transaction) until it returns 0."""
    now = now or utcnow()
    card_ids = list(
        session.scalars(
            select(LedgerEntry.card_id)
            .where(LedgerEntry.remaining > 0, LedgerEntry.expires_at <= now)
            .distinct()
            .limit(limit)
        )
    )
    total = 0
    for card_id in card_ids:
        card = lock_card(session, card_id)
        due = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.card_id == card.id, LedgerEntry.remaining > 0, LedgerEntry.expires_at <= now)
            .order_by(LedgerEntry.expires_at, LedgerEntry.id)
        ).all()
        expired = 0
        for lot in due:
            points = lot.remaining or 0
            session.add(LedgerEntry(card_id=card.id, kind="expire", points=-points, reverses_id=lot.id,
                                    reason="expired", actor="system", created_at=now))
            lot.remaining = 0
            expired += points
        if expired:
            card.balance -= expired
            total += expired
            touch(session, card, now=now, reasons=["expire"], expired=expired)
    return total


def reevaluate_tiers(session: Session, *, now: datetime | None = None, after_id: int = 0,
                     limit: int = 1000) -> tuple[int, int]:
    """Nightly: spend leaves the rolling window as days pass, so tiers can drop without a purchase.
    Processes cards with ``id > after_id``; returns (last card id seen, cards whose tier changed)."""
    now = now or utcnow()
    ids = list(session.scalars(
        select(Card.id).where(Card.id > after_id, Card.status == "active").order_by(Card.id).limit(limit)
    ))
    changed = 0
    for card_id in ids:
        card = lock_card(session, card_id)
        if _reevaluate_tier(session, card, card.program, now):
            changed += 1
            touch(session, card, now=now, reasons=["tier"])
    return (ids[-1] if ids else after_id), changed


def ledger_sum(session: Session, card_id: int) -> int:
    return int(session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.card_id == card_id)
    ) or 0)
