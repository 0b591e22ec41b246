"""The PostgreSQL purchase path (``purchases._record_sql``) writes exactly what the reference path
(``ledger.record_purchase``) writes, and leaves every case it does not handle to it untouched.

Twin cards start from the same state; the same purchases go through one path on each twin; then every
row either path touched is compared: the card, the purchases, the ledger entries with their lots, the
outbox events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.loyalty import ledger, purchases
from app.models import Card, LedgerEntry, OutboxEvent, Purchase

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
Factory = Callable[..., Any]


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("the SQL purchase path exists on PostgreSQL only")


def _fast(session: Session, store: Any, card: Card, step: dict[str, Any], *, by_phone: bool = False) -> Any:
    return purchases._record_sql(
        session, store_id=store.id, program_id=store.program_id,
        barcode=None if by_phone else card.barcode, phone=card.customer.phone if by_phone else None,
        receipt_id=step["receipt"], amount=Decimal(step["amount"]), redeem_points=step.get("redeem", 0),
        occurred_at=step.get("occurred_at"), items=step.get("items"), actor="store:test", now=step["now"],
    )


def _reference(session: Session, store: Any, card: Card, step: dict[str, Any]) -> Any:
    return ledger.record_purchase(
        session, store=store, card=card, receipt_id=step["receipt"], amount=Decimal(step["amount"]),
        redeem_points=step.get("redeem", 0), occurred_at=step.get("occurred_at"), items=step.get("items"),
        actor="store:test", now=step["now"],
    )


def _snapshot(session: Session, card_id: int) -> dict[str, Any]:
    session.flush()
    session.expire_all()
    card = session.get(Card, card_id)
    assert card is not None
    purchases_ = session.scalars(select(Purchase).where(Purchase.card_id == card_id).order_by(Purchase.id)).all()
    entries = session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card_id)).all()
    events = [e.payload for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
              if e.topic == "card.changed" and e.payload.get("card_id") == card_id]
    receipt_of = {p.id: p.receipt_id for p in purchases_}
    lot_key = {e.id: (e.kind, e.points, e.created_at) for e in entries}
    return {
        "card": (card.balance, card.stamps, card.tier_id, card.lifetime_spend, card.window_spend, card.version,
                 card.updated_at),
        "purchases": [(p.receipt_id, p.amount, p.redeemed_points, p.discount, p.amount_due, p.earned_points,
                       p.stamped, p.refunded_amount, p.items, p.occurred_at, p.created_at) for p in purchases_],
        "entries": sorted(
            ((e.kind, e.points, e.remaining, e.expires_at, e.reason, e.actor, e.created_at,
              receipt_of.get(e.purchase_id) if e.purchase_id else None,
              lot_key.get(e.reverses_id) if e.reverses_id else None, e.refund_id) for e in entries),
            key=repr,
        ),
        "events": [{k: v for k, v in ev.items() if k not in ("card_id", "purchase_id")} | {
            "purchase": receipt_of.get(ev.get("purchase_id"))} for ev in events],
    }


@pytest.fixture
def twins(db_session: Session, make_program: Factory, make_store: Factory, make_card: Factory) -> Callable[..., Any]:
    """``twins(**programme fields)`` → (store, card) twice: same programme, same history, two stores."""

    def make(**program_fields: Any) -> tuple[tuple[Any, Card], tuple[Any, Card]]:
        program = make_program(**program_fields)
        pairs = []
        for name in ("Fast", "Reference"):
            store = make_store(program, name=name).store
            card = make_card(program)
            # three lots with different expiry dates, granted out of order
            for days_ago, points in ((10, 7), (200, 5), (40, 4)):
                ledger.grant_bonus(db_session, card=card, points=points, reason="setup", now=NOW - days_ago * DAY)
            pairs.append((store, card))
        return pairs[0], pairs[1]

    return make


STEPS: list[dict[str, Any]] = [
    {"receipt": "r1", "amount": "123.45", "now": NOW},  # Bronze 3 %: 3 points
    {"receipt": "r2", "amount": "100.00", "redeem": 9, "now": NOW + DAY},  # draws two lots, soonest expiry first
    {"receipt": "r3", "amount": "1000.00", "now": NOW + 2 * DAY, "items": [{"sku": "A1", "qty": 2}]},  # → Silver
    {"receipt": "r4", "amount": "0.00", "now": NOW + 3 * DAY},
    {"receipt": "r5", "amount": "50.00", "occurred_at": NOW - 400 * DAY, "now": NOW + 3 * DAY},  # outside window
    {"receipt": "r6", "amount": "10.00", "redeem": 5, "now": NOW + 4 * DAY},  # cap: 50 % of 10.00 = 5 points
]


@pytest.mark.parametrize("program_fields", [{}, {"expiry_days": None}, {"point_value": Decimal("0.50")}],
                         ids=["default", "no-expiry", "half-unit-points"])
def test_both_paths_write_the_same_rows(db_session: Session, twins: Callable[..., Any],
                                        program_fields: dict[str, Any]) -> None:
    (fast_store, fast_card), (ref_store, ref_card) = twins(**program_fields)
    assert _snapshot(db_session, fast_card.id) == _snapshot(db_session, ref_card.id)

    for step in STEPS:
        done = _fast(db_session, fast_store, fast_card, step)
        assert done is not None, f"{step['receipt']} fell back to the reference path"
        ref = _reference(db_session, ref_store, ref_card, step)
        assert (done.earned, done.redeemed, done.discount, done.amount_due) == (
            ref.purchase.earned_points, ref.purchase.redeemed_points, ref.purchase.discount, ref.purchase.amount_due)
        assert (done.card.balance, done.card.tier) == (ref.card.balance, ref.card.tier.name if ref.card.tier else None)

    fast, reference = _snapshot(db_session, fast_card.id), _snapshot(db_session, ref_card.id)
    assert fast == reference
    assert fast["card"][0] == sum(e[1] for e in fast["entries"]) == sum(e[2] or 0 for e in fast["entries"])
    assert [ev["reasons"] for ev in fast["events"][-6:]] == [
        ["purchase"], ["purchase"], ["purchase", "tier"], ["purchase"], ["purchase"], ["purchase"]]


def test_lookup_by_phone_takes_the_same_path(db_session: Session, twins: Callable[..., Any]) -> None:
    (store, card), _ = twins()
    done = _fast(db_session, store, card, {"receipt": "p1", "amount": "200.00", "now": NOW}, by_phone=True)
    assert done is not None and done.card.barcode == card.barcode and done.earned == 6


@pytest.mark.parametrize(
    ("step", "code"),
    [({"receipt": "x", "amount": "10.00", "redeem": 6, "now": NOW}, "over-redemption-cap"),
     ({"receipt": "x", "amount": "100.00", "redeem": 17, "now": NOW}, "insufficient-points"),
     ({"receipt": "x", "amount": "-1.00", "now": NOW}, "negative-amount"),
     ({"receipt": "x", "amount": "100000.01", "now": NOW}, "amount-over-limit")],  # the default limit
)
def test_refusals_match_and_write_nothing(db_session: Session, twins: Callable[..., Any], step: dict[str, Any],
                                          code: str) -> None:
    (fast_store, fast_card), (ref_store, ref_card) = twins()
    before = _snapshot(db_session, fast_card.id)
    with pytest.raises(errors.RuleViolation) as fast_refusal:
        _fast(db_session, fast_store, fast_card, step)
    with pytest.raises(errors.RuleViolation) as ref_refusal:
        _reference(db_session, ref_store, ref_card, step)
    assert fast_refusal.value.code == ref_refusal.value.code == code
    assert _snapshot(db_session, fast_card.id) == before


def test_a_purchase_at_the_limit_takes_the_fast_path_and_writes_the_same_rows(db_session: Session,
                                                                               twins: Callable[..., Any]) -> None:
    (fast_store, fast_card), (ref_store, ref_card) = twins(max_purchase_amount=Decimal("2500.00"))
    step = {"receipt": "edge", "amount": "2500.00", "now": NOW}
    assert _fast(db_session, fast_store, fast_card, step) is not None
    _reference(db_session, ref_store, ref_card, step)
    assert _snapshot(db_session, fast_card.id) == _snapshot(db_session, ref_card.id)
    with pytest.raises(errors.RuleViolation) as refused:
        _fast(db_session, fast_store, fast_card, {**step, "receipt": "over", "amount": "2500.01"})
    assert refused.value.code == "amount-over-limit" and "2500.00" in refused.value.detail


def test_cases_it_does_not_handle_are_left_untouched(db_session: Session, twins: Callable[..., Any],
                                                     make_program: Factory, make_store: Factory,
                                                     make_card: Factory) -> None:
    (store, card), _ = twins(reward_threshold=30, reward_name="Voucher")
    before = _snapshot(db_session, card.id)
    # the balance (16) would reach the threshold: the reference path issues the reward
    assert _fast(db_session, store, card, {"receipt": "t1", "amount": "500.00", "now": NOW}) is None
    assert _snapshot(db_session, card.id) == before

    recorded = purchases.record(db_session, store=store, barcode=card.barcode, phone=None, receipt_id="t1",
                                amount=Decimal("500.00"), now=NOW)
    assert [r.kind for r in recorded.rewards] == ["threshold"]
    # the same receipt again: a replay, answered by the reference path
    assert _fast(db_session, store, card, {"receipt": "t1", "amount": "500.00", "now": NOW}) is None
    again = purchases.record(db_session, store=store, barcode=card.barcode, phone=None, receipt_id="t1",
                             amount=Decimal("500.00"), now=NOW)
    assert again.replayed and again.purchase_id == recorded.purchase_id

    stamps = make_program(kind="stamps", stamps_required=3, stamp_min_amount=Decimal("5.00"), stamp_reward="Tea")
    stamp_store, stamp_card = make_store(stamps).store, make_card(stamps)
    assert _fast(db_session, stamp_store, stamp_card, {"receipt": "s1", "amount": "6.00", "now": NOW}) is None
    assert purchases.record(db_session, store=stamp_store, barcode=stamp_card.barcode, phone=None,
                            receipt_id="s1", amount=Decimal("6.00"), now=NOW).card.stamps == 1

    # below the threshold again (31 - 30 = 1 point), the everyday path takes over again
    assert _fast(db_session, store, card, {"receipt": "u1", "amount": "1.00", "now": NOW}) is not None
    with pytest.raises(errors.NotFound):
        purchases.record(db_session, store=store, barcode="0000000000000", phone=None, receipt_id="u2",
                         amount=Decimal("1.00"), now=NOW)
