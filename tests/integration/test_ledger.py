"""Integration tests for the ledger services (app.loyalty.ledger) against the real schema.

Every test drives the services with explicit ``now=`` datetimes and checks what a customer or a till
would notice (balance, discount, amount due, tier, rewards, stamps), with exact numbers, plus the ledger
invariants: ``card.balance == sum(ledger points) == sum(open lots' remaining)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import errors
from app.loyalty import ledger
from app.models import BonusEvent, BonusRule, Card, LedgerEntry, OutboxEvent, Purchase, Refund, Reward

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
DAY = timedelta(days=1)

Factory = Callable[..., Any]


# ---------------------------------------------------------------- helpers


def money(value: str) -> Decimal:
    return Decimal(value)


def open_lots_total(session: Session, card_id: int) -> int:
    session.flush()
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.remaining), 0)).where(
                LedgerEntry.card_id == card_id, LedgerEntry.remaining.is_not(None)
            )
        )
        or 0
    )


def assert_consistent(session: Session, card: Card) -> None:
    """The ledger invariants: balance == sum of entries == sum of what is left in the lots, never < 0."""
    session.flush()
    assert card.balance >= 0
    assert card.balance == ledger.ledger_sum(session, card.id)
    assert open_lots_total(session, card.id) == card.balance


def entries(session: Session, card_id: int, kind: str | None = None) -> list[LedgerEntry]:
    session.flush()
    stmt = select(LedgerEntry).where(LedgerEntry.card_id == card_id)
    if kind is not None:
        stmt = stmt.where(LedgerEntry.kind == kind)
    return list(session.scalars(stmt.order_by(LedgerEntry.id)))


def card_events(session: Session, card_id: int) -> list[OutboxEvent]:
    session.flush()
    rows = session.scalars(
        select(OutboxEvent).where(OutboxEvent.topic == "card.changed").order_by(OutboxEvent.id)
    )
    return [ev for ev in rows if ev.payload.get("card_id") == card_id]


def count(session: Session, model: Any, *where: Any) -> int:
    session.flush()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def purchase(session: Session, store: Any, card: Card, receipt: str, amount: str, redeem: int = 0,
             now: datetime = T0, **kw: Any) -> ledger.PurchaseResult:
    return ledger.record_purchase(session, store=store, card=card, receipt_id=receipt, amount=money(amount),
                                  redeem_points=redeem, now=now, **kw)


def refund(session: Session, store: Any, refund_id: str, receipt: str, amount: str,
           now: datetime = T0) -> ledger.RefundResult:
    return ledger.record_refund(session, store=store, refund_id=refund_id, receipt_id=receipt,
                                amount=money(amount), now=now)


class Snapshot:
    """What a refused call must leave untouched."""

    def __init__(self, session: Session, card: Card) -> None:
        session.flush()
        self.balance = card.balance
        self.version = card.version
        self.entries = count(session, LedgerEntry, LedgerEntry.card_id == card.id)
        self.purchases = count(session, Purchase, Purchase.card_id == card.id)
        self.events = len(card_events(session, card.id))

    def assert_unchanged(self, session: Session, card: Card) -> None:
        session.refresh(card)
        assert card.balance == self.balance
        assert card.version == self.version
        assert count(session, LedgerEntry, LedgerEntry.card_id == card.id) == self.entries
        assert count(session, Purchase, Purchase.card_id == card.id) == self.purchases
        assert len(card_events(session, card.id)) == self.events
        assert_consistent(session, card)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def program(make_program: Factory) -> Any:
    return make_program()


@pytest.fixture
def shop(make_store: Factory, program: Any) -> Any:
    return make_store(program, name="Main street").store


# ---------------------------------------------------------------- purchases: earning and redeeming


def test_purchase_earns_tier_rate_on_amount(db_session: Session, program: Any, shop: Any,
                                            make_card: Factory) -> None:
    card = make_card(program)
    assert card.tier.name == "Bronze"
    version = card.version

    result = purchase(db_session, shop, card, "R-1", "250.00")

    assert result.replayed is False
    p = result.purchase
    assert (p.redeemed_points, p.discount, p.amount_due, p.earned_points) == (0, money("0.00"), money("250.00"), 7)
    assert card.balance == 7
    assert card.version == version + 1
    assert card.updated_at == T0
    assert card.lifetime_spend == money("250.00")
    assert card.window_spend == money("250.00")
    (earn,) = entries(db_session, card.id)
    assert (earn.kind, earn.points, earn.remaining, earn.purchase_id) == ("earn", 7, 7, p.id)
    assert earn.expires_at == T0 + timedelta(days=365)
    last = card_events(db_session, card.id)[-1].payload
    assert last["version"] == card.version
    assert last["balance"] == 7
    assert last["reasons"] == ["purchase"]
    assert (last["earned"], last["redeemed"]) == (7, 0)
    assert_consistent(db_session, card)


def test_redemption_discounts_and_earns_on_money_part_only(db_session: Session, program: Any, shop: Any,
                                                          make_card: Factory) -> None:
    card = make_card(program, balance=200)

    p = purchase(db_session, shop, card, "R-1", "300.00", redeem=100).purchase

    assert p.redeemed_points == 100
    assert p.discount == money("100.00")
    assert p.amount_due == money("200.00")
    assert p.earned_points == 6  # 3 % of 200.00, not of 300.00
    assert card.balance == 200 - 100 + 6
    assert [(e.kind, e.points) for e in entries(db_session, card.id)] == [("bonus", 200), ("redeem", -100),
                                                                         ("earn", 6)]
    assert card_events(db_session, card.id)[-1].payload["redeemed"] == 100
    assert_consistent(db_session, card)


@pytest.mark.parametrize(
    ("amount", "earned"),
    [("0.01", 0), ("33.33", 0), ("33.34", 1), ("66.66", 1), ("99.99", 2), ("100.00", 3), ("233.33", 6)],
)
def test_earning_rounds_down(db_session: Session, program: Any, shop: Any, make_card: Factory,
                             amount: str, earned: int) -> None:
    card = make_card(program)
    p = purchase(db_session, shop, card, "R-1", amount).purchase
    assert p.earned_points == earned
    assert card.balance == earned
    assert_consistent(db_session, card)


def test_point_value_other_than_one(db_session: Session, make_program: Factory, make_store: Factory,
                                    make_card: Factory) -> None:
    program = make_program(point_value=money("0.10"))
    store = make_store(program).store
    card = make_card(program, balance=500)

    p = purchase(db_session, store, card, "R-1", "250.00", redeem=300).purchase

    assert p.discount == money("30.00")  # 300 points × 0.10
    assert p.amount_due == money("220.00")
    assert p.earned_points == 66  # 3 % of 220.00 = 6.60 → 66 points of 0.10
    assert card.balance == 500 - 300 + 66
    assert_consistent(db_session, card)


def test_zero_amount_purchase_earns_nothing(db_session: Session, program: Any, shop: Any,
                                           make_card: Factory) -> None:
    card = make_card(program, balance=40)
    p = purchase(db_session, shop, card, "R-0", "0.00").purchase
    assert (p.amount, p.amount_due, p.earned_points, p.redeemed_points) == (money("0.00"), money("0.00"), 0, 0)
    assert card.balance == 40
    assert [e.kind for e in entries(db_session, card.id)] == ["bonus"]
    assert_consistent(db_session, card)


def test_redemption_exactly_at_cap_is_allowed(db_session: Session, program: Any, shop: Any,
                                              make_card: Factory) -> None:
    card = make_card(program, balance=200)
    p = purchase(db_session, shop, card, "R-1", "300.00", redeem=150).purchase  # 50 % of 300.00
    assert (p.discount, p.amount_due, p.earned_points) == (money("150.00"), money("150.00"), 4)
    assert card.balance == 200 - 150 + 4
    assert_consistent(db_session, card)


def test_redemption_over_cap_is_refused_and_changes_nothing(db_session: Session, program: Any, shop: Any,
                                                             make_card: Factory) -> None:
    card = make_card(program, balance=200)
    before = Snapshot(db_session, card)

    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        purchase(db_session, shop, card, "R-1", "300.00", redeem=151)

    assert exc.value.code == "over-redemption-cap"
    assert exc.value.status == 422
    before.assert_unchanged(db_session, card)
    assert count(db_session, Purchase, Purchase.receipt_id == "R-1") == 0

    # The till can retry the same receipt within the cap.
    p = purchase(db_session, shop, card, "R-1", "300.00", redeem=150).purchase
    assert p.redeemed_points == 150
    assert_consistent(db_session, card)


def test_redemption_over_balance_is_refused_and_changes_nothing(db_session: Session, program: Any, shop: Any,
                                                                 make_card: Factory) -> None:
    card = make_card(program, balance=100)
    before = Snapshot(db_session, card)

    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        purchase(db_session, shop, card, "R-1", "300.00", redeem=120)  # within the cap of 150

    assert exc.value.code == "insufficient-points"
    before.assert_unchanged(db_session, card)
    assert count(db_session, Purchase, Purchase.receipt_id == "R-1") == 0


def test_negative_amount_is_refused(db_session: Session, program: Any, shop: Any, make_card: Factory) -> None:
    card = make_card(program, balance=10)
    before = Snapshot(db_session, card)
    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        purchase(db_session, shop, card, "R-1", "-1.00")
    assert exc.value.code == "negative-amount"
    before.assert_unchanged(db_session, card)


# ---------------------------------------------------------------- receipts: replay and conflicts


def test_same_receipt_same_content_is_a_replay(db_session: Session, program: Any, shop: Any,
                                               make_card: Factory) -> None:
    card = make_card(program, balance=100)
    first = purchase(db_session, shop, card, "R-1", "300.00", redeem=100)
    assert card.balance == 6
    before = Snapshot(db_session, card)

    # Re-running the redemption would now fail (balance 6); a replay must not.
    again = purchase(db_session, shop, card, "R-1", "300.00", redeem=100, now=T0 + timedelta(minutes=1))

    assert again.replayed is True
    assert again.purchase.id == first.purchase.id
    assert (again.purchase.discount, again.purchase.amount_due, again.purchase.earned_points) == (
        money("100.00"), money("200.00"), 6)
    before.assert_unchanged(db_session, card)


@pytest.mark.parametrize(("amount", "redeem"), [("300.01", 100), ("300.00", 99), ("300.00", 0)])
def test_same_receipt_different_content_conflicts(db_session: Session, program: Any, shop: Any,
                                                  make_card: Factory, amount: str, redeem: int) -> None:
    card = make_card(program, balance=200)
    purchase(db_session, shop, card, "R-1", "300.00", redeem=100)
    before = Snapshot(db_session, card)

    with pytest.raises(errors.Conflict) as exc, db_session.begin_nested():
        purchase(db_session, shop, card, "R-1", amount, redeem=redeem)

    assert exc.value.code == "duplicate-receipt"
    assert exc.value.status == 409
    before.assert_unchanged(db_session, card)


def test_same_receipt_for_another_card_conflicts(db_session: Session, program: Any, shop: Any,
                                                 make_card: Factory) -> None:
    card, other = make_card(program), make_card(program)
    purchase(db_session, shop, card, "R-1", "100.00")
    with pytest.raises(errors.Conflict) as exc, db_session.begin_nested():
        purchase(db_session, shop, other, "R-1", "100.00")
    assert exc.value.code == "duplicate-receipt"
    db_session.refresh(other)
    assert other.balance == 0


def test_same_receipt_at_another_store_is_another_purchase(db_session: Session, program: Any, shop: Any,
                                                           make_store: Factory, make_card: Factory) -> None:
    other_shop = make_store(program, name="Airport").store
    card = make_card(program)

    first = purchase(db_session, shop, card, "R-1", "250.00")
    second = purchase(db_session, other_shop, card, "R-1", "250.00")

    assert second.replayed is False
    assert second.purchase.id != first.purchase.id
    assert card.balance == 14
    assert count(db_session, Purchase, Purchase.card_id == card.id) == 2
    assert_consistent(db_session, card)


# ---------------------------------------------------------------- tiers


def test_crossing_the_threshold_moves_the_card_up(db_session: Session, program: Any, shop: Any,
                                                  make_card: Factory) -> None:
    card = make_card(program)

    purchase(db_session, shop, card, "R-1", "999.99")
    assert card.tier.name == "Bronze"
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["purchase"]

    p = purchase(db_session, shop, card, "R-2", "0.01", now=T0 + timedelta(hours=1)).purchase
    assert card.tier.name == "Silver"
    assert card.window_spend == money("1000.00")
    assert p.earned_points == 0  # earned at the old rate, before the move
    assert "tier" in card_events(db_session, card.id)[-1].payload["reasons"]

    p = purchase(db_session, shop, card, "R-3", "100.00", now=T0 + timedelta(hours=2)).purchase
    assert p.earned_points == 5  # 5 % at Silver
    assert card.balance == 29 + 0 + 5
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["purchase"]  # no move this time
    assert_consistent(db_session, card)


def test_gold_tier_from_one_big_purchase(db_session: Session, program: Any, shop: Any,
                                         make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "5000.00")
    assert card.tier.name == "Gold"
    assert card.balance == 150
    p = purchase(db_session, shop, card, "R-2", "100.00", now=T0 + DAY).purchase
    assert p.earned_points == 10
    assert_consistent(db_session, card)


def test_refund_below_threshold_moves_the_card_down(db_session: Session, program: Any, shop: Any,
                                                    make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "1000.00")  # Bronze 3 % → 30, then Silver
    purchase(db_session, shop, card, "R-2", "100.00", now=T0 + DAY)  # Silver 5 % → 5
    assert card.tier.name == "Silver"
    assert card.balance == 35
    version = card.version

    refund(db_session, shop, "F-1", "R-1", "200.00", now=T0 + 2 * DAY)

    assert card.window_spend == money("900.00")
    assert card.tier.name == "Bronze"
    assert card.balance == 35 - 6  # 30 × 200/1000
    assert card.version == version + 1
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["refund", "tier"]
    assert_consistent(db_session, card)


def test_nightly_reevaluation_drops_tier_when_spend_leaves_window(db_session: Session, program: Any, shop: Any,
                                                                  make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "1200.00")
    assert card.tier.name == "Silver"
    version = card.version

    last_id, changed = ledger.reevaluate_tiers(db_session, now=T0 + timedelta(days=364))
    assert last_id >= card.id
    assert changed == 0
    assert card.tier.name == "Silver"
    assert card.version == version

    later = T0 + timedelta(days=366)
    _, changed = ledger.reevaluate_tiers(db_session, now=later)

    assert changed == 1
    assert card.tier.name == "Bronze"
    assert card.window_spend == money("0.00")
    assert card.lifetime_spend == money("1200.00")
    assert card.version == version + 1
    assert card.updated_at == later
    assert card.balance == 36  # points are untouched by a tier move
    event = card_events(db_session, card.id)[-1].payload
    assert event["reasons"] == ["tier"]
    assert event["version"] == card.version

    # Running again changes nothing.
    assert ledger.reevaluate_tiers(db_session, now=later)[1] == 0
    assert card.version == version + 1
    assert_consistent(db_session, card)


def test_reevaluation_pages_with_after_id(db_session: Session, program: Any, shop: Any,
                                          make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "1200.00")
    last_id, changed = ledger.reevaluate_tiers(db_session, now=T0 + timedelta(days=400), after_id=card.id)
    assert (last_id, changed) == (card.id, 0)  # nothing after this card in this test
    assert card.tier.name == "Silver"


# ---------------------------------------------------------------- refunds


def test_full_refund_reverses_earned_and_returns_redeemed(db_session: Session, program: Any, shop: Any,
                                                          make_card: Factory) -> None:
    card = make_card(program, balance=200)
    p = purchase(db_session, shop, card, "R-1", "300.00", redeem=100).purchase
    assert card.balance == 106
    (earn,) = entries(db_session, card.id, "earn")
    version = card.version

    result = refund(db_session, shop, "F-1", "R-1", "300.00", now=T0 + DAY)

    assert result.replayed is False
    r = result.refund
    assert (r.points_returned, r.points_reversed, r.purchase_id) == (100, 6, p.id)
    assert card.balance == 200
    assert p.refunded_amount == money("300.00")
    assert card.lifetime_spend == money("0.00")
    assert card.window_spend == money("0.00")
    assert card.version == version + 1
    assert card.updated_at == T0 + DAY
    (returned,) = entries(db_session, card.id, "refund_return")
    (reversal,) = entries(db_session, card.id, "refund_reversal")
    assert (returned.points, returned.refund_id, returned.purchase_id) == (100, r.id, p.id)
    assert (reversal.points, reversal.refund_id, reversal.reverses_id) == (-6, r.id, earn.id)
    assert earn.remaining == 0  # the reversal took the points of this purchase first
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["refund"]
    assert_consistent(db_session, card)


def test_partial_refunds_add_up_exactly(db_session: Session, make_program: Factory, make_store: Factory,
                                        make_card: Factory) -> None:
    program = make_program(tiers=[("Member", "0", "10")])
    store = make_store(program).store
    card = make_card(program, balance=50)
    p = purchase(db_session, store, card, "R-1", "100.00", redeem=50).purchase
    assert (p.amount_due, p.earned_points) == (money("50.00"), 5)
    assert card.balance == 5

    got = []
    for i, (amount, balance_after) in enumerate([("33.33", 20), ("33.33", 35), ("33.34", 50)], start=1):
        r = refund(db_session, store, f"F-{i}", "R-1", amount, now=T0 + i * timedelta(hours=1)).refund
        got.append((r.points_returned, r.points_reversed))
        assert card.balance == balance_after
        assert_consistent(db_session, card)

    assert got == [(16, 1), (17, 2), (17, 2)]
    assert sum(g[0] for g in got) == 50  # every redeemed point came back
    assert sum(g[1] for g in got) == 5  # every earned point was taken back
    assert p.refunded_amount == money("100.00")
    assert card.balance == 50

    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        refund(db_session, store, "F-4", "R-1", "0.01")
    assert exc.value.code == "refund-exceeds-purchase"


def test_refund_over_remaining_refundable_is_refused(db_session: Session, program: Any, shop: Any,
                                                     make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "100.00")
    refund(db_session, shop, "F-1", "R-1", "60.00")
    assert card.balance == 2  # 3 − floor(3 × 0.6)
    before = Snapshot(db_session, card)

    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        refund(db_session, shop, "F-2", "R-1", "40.01")

    assert exc.value.code == "refund-exceeds-purchase"
    before.assert_unchanged(db_session, card)
    assert count(db_session, Refund, Refund.refund_id == "F-2") == 0

    refund(db_session, shop, "F-2", "R-1", "40.00")
    assert card.balance == 0
    assert_consistent(db_session, card)


def test_refund_of_unknown_receipt_is_not_found(db_session: Session, program: Any, shop: Any,
                                                make_store: Factory, make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "100.00")
    other_shop = make_store(program, name="Airport").store

    with pytest.raises(errors.NotFound) as exc:
        refund(db_session, shop, "F-1", "NOPE", "10.00")
    assert exc.value.status == 404
    with pytest.raises(errors.NotFound):  # the receipt belongs to the other store
        refund(db_session, other_shop, "F-1", "R-1", "10.00")
    assert card.balance == 3


def test_refund_reversal_is_clamped_when_points_were_spent(db_session: Session, program: Any, shop: Any,
                                                           make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "1000.00")  # +30, now Silver
    purchase(db_session, shop, card, "R-2", "100.00", redeem=30, now=T0 + DAY)  # −30, +3 (5 % of 70.00)
    assert card.balance == 3

    r = refund(db_session, shop, "F-1", "R-1", "1000.00", now=T0 + 2 * DAY).refund

    assert (r.points_returned, r.points_reversed) == (0, 3)
    assert card.balance == 0
    (reversal,) = entries(db_session, card.id, "refund_reversal")
    assert reversal.points == -3
    assert "27 points not recoverable" in reversal.reason
    assert card.tier.name == "Bronze"  # window spend is 100.00 now
    assert_consistent(db_session, card)

    # Refunding the other purchase on an empty balance still works and gives the 30 points back.
    r2 = refund(db_session, shop, "F-2", "R-2", "100.00", now=T0 + 3 * DAY).refund
    assert (r2.points_returned, r2.points_reversed) == (30, 3)
    assert card.balance == 27
    assert_consistent(db_session, card)


def test_refund_replay_and_conflict(db_session: Session, program: Any, shop: Any, make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-1", "100.00")
    purchase(db_session, shop, card, "R-2", "100.00")
    first = refund(db_session, shop, "F-1", "R-1", "100.00")
    assert card.balance == 3
    before = Snapshot(db_session, card)

    # The purchase is fully refunded, yet the same refund sent again is a replay, not an error.
    again = refund(db_session, shop, "F-1", "R-1", "100.00", now=T0 + timedelta(minutes=5))
    assert again.replayed is True
    assert again.refund.id == first.refund.id
    before.assert_unchanged(db_session, card)

    for receipt, amount in [("R-1", "50.00"), ("R-2", "100.00")]:
        with pytest.raises(errors.Conflict) as exc, db_session.begin_nested():
            refund(db_session, shop, "F-1", receipt, amount)
        assert exc.value.code == "duplicate-refund"
        before.assert_unchanged(db_session, card)
    assert count(db_session, Refund, Refund.refund_id == "F-1") == 1


# ---------------------------------------------------------------- FIFO lots and expiry


def test_redemption_consumes_soonest_expiring_lot_first(db_session: Session, program: Any, shop: Any,
                                                        make_card: Factory) -> None:
    card = make_card(program)
    late = ledger.grant_bonus(db_session, card=card, points=100, reason="late", now=T0)
    early = ledger.grant_bonus(db_session, card=card, points=50, reason="early", now=T0 - timedelta(days=100))
    assert late is not None and early is not None
    assert early.id > late.id  # created second, expires first
    assert early.expires_at == T0 + timedelta(days=265)

    purchase(db_session, shop, card, "R-1", "300.00", redeem=70)

    assert early.remaining == 0
    assert late.remaining == 80
    assert card.balance == 150 - 70 + 6
    assert_consistent(db_session, card)


def test_expiry_burns_only_unspent_remainder_of_due_lots(db_session: Session, program: Any, shop: Any,
                                                         make_card: Factory) -> None:
    card = make_card(program)
    late = ledger.grant_bonus(db_session, card=card, points=100, reason="late", now=T0)
    early = ledger.grant_bonus(db_session, card=card, points=50, reason="early", now=T0 - timedelta(days=100))
    assert late is not None and early is not None
    purchase(db_session, shop, card, "R-1", "300.00", redeem=30)  # 30 from the early lot; +8 earned
    assert (early.remaining, late.remaining, card.balance) == (20, 100, 128)
    (earn,) = entries(db_session, card.id, "earn")
    version = card.version

    assert ledger.expire_due(db_session, now=early.expires_at - timedelta(seconds=1)) == 0
    assert card.version == version

    due_at = early.expires_at
    assert ledger.expire_due(db_session, now=due_at) == 20

    assert card.balance == 108
    assert card.version == version + 1
    assert card.updated_at == due_at
    (expire,) = entries(db_session, card.id, "expire")
    assert (expire.points, expire.reverses_id, expire.remaining) == (-20, early.id, None)
    assert early.remaining == 0
    assert (late.remaining, earn.remaining) == (100, 8)
    payload = card_events(db_session, card.id)[-1].payload
    assert (payload["reasons"], payload["expired"], payload["balance"]) == (["expire"], 20, 108)
    assert_consistent(db_session, card)

    assert ledger.expire_due(db_session, now=due_at) == 0
    assert card.version == version + 1

    # A year after earning, the rest goes too.
    assert ledger.expire_due(db_session, now=T0 + timedelta(days=366)) == 108
    assert card.balance == 0
    assert sorted((e.reverses_id, e.points) for e in entries(db_session, card.id, "expire")) == sorted(
        [(early.id, -20), (late.id, -100), (earn.id, -8)]
    )
    assert_consistent(db_session, card)


def test_points_never_expire_without_expiry_days(db_session: Session, make_program: Factory, make_store: Factory,
                                                 make_card: Factory) -> None:
    program = make_program(expiry_days=None)
    store = make_store(program).store
    card = make_card(program)
    lot = ledger.grant_bonus(db_session, card=card, points=40, reason="gift", now=T0)
    purchase(db_session, store, card, "R-1", "100.00")
    assert lot is not None and lot.expires_at is None
    assert all(e.expires_at is None for e in entries(db_session, card.id))
    version = card.version

    assert ledger.expire_due(db_session, now=T0 + timedelta(days=365 * 50)) == 0

    assert card.balance == 43
    assert card.version == version
    assert entries(db_session, card.id, "expire") == []
    assert_consistent(db_session, card)


# ---------------------------------------------------------------- threshold rewards


@pytest.fixture
def reward_program(make_program: Factory) -> Any:
    return make_program(reward_threshold=1000, reward_name="Gift certificate", reward_value=money("10.00"))


def test_purchase_reaching_threshold_issues_reward(db_session: Session, reward_program: Any,
                                                   make_store: Factory, make_card: Factory) -> None:
    store = make_store(reward_program).store
    card = make_card(reward_program, balance=990)
    assert card.balance == 990

    result = purchase(db_session, store, card, "R-1", "400.00")  # +12 → 1002

    assert result.purchase.earned_points == 12
    (reward,) = result.rewards
    assert card.balance == 2
    assert (reward.kind, reward.name, reward.value, reward.card_id) == (
        "threshold", "Gift certificate", money("10.00"), card.id)
    assert reward.issued_at == T0
    assert len(reward.code) >= 8
    (debit,) = entries(db_session, card.id, "reward")
    assert debit.points == -1000
    assert reward.ledger_entry_id == debit.id
    assert "reward" in card_events(db_session, card.id)[-1].payload["reasons"]
    assert count(db_session, Reward, Reward.card_id == card.id) == 1
    assert_consistent(db_session, card)


def test_bonus_over_twice_the_threshold_issues_one_reward_counting_two(db_session: Session, reward_program: Any,
                                                                       make_card: Factory) -> None:
    card = make_card(reward_program)
    version = card.version

    ledger.grant_bonus(db_session, card=card, points=2050, reason="launch", now=T0)

    assert card.balance == 50
    (reward,) = db_session.scalars(select(Reward).where(Reward.card_id == card.id)).all()
    assert (reward.quantity, reward.value, reward.name) == (2, money("10.00"), "Gift certificate")
    (debit,) = entries(db_session, card.id, "reward")
    assert (debit.points, debit.reason, reward.ledger_entry_id) == (-2000, "2 × Gift certificate", debit.id)
    assert card.version == version + 1
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["bonus", "reward"]
    assert_consistent(db_session, card)


@pytest.fixture
def generous(make_program: Factory) -> Any:
    """A point per unit of money and a reward per point, with the purchase limit raised: every unit spent
    crosses the threshold once."""
    return make_program(reward_threshold=1, reward_name="Sticker", reward_value=money("0.01"),
                        max_purchase_amount=money("10000000.00"), tiers=[("All", "0", "100")])


def test_a_purchase_crossing_a_million_thresholds_writes_a_bounded_number_of_rows(
        db_session: Session, generous: Any, make_store: Factory, make_card: Factory) -> None:
    store = make_store(generous).store
    card = make_card(generous)
    rows_before = count(db_session, LedgerEntry, LedgerEntry.card_id == card.id)

    result = purchase(db_session, store, card, "R-big", "1000000.00")

    assert result.purchase.earned_points == 1_000_000
    (reward,) = result.rewards
    assert (reward.kind, reward.quantity) == ("threshold", 1_000_000)
    assert count(db_session, Reward, Reward.card_id == card.id) == 1
    assert count(db_session, LedgerEntry, LedgerEntry.card_id == card.id) == rows_before + 2  # earn, reward
    (debit,) = entries(db_session, card.id, "reward")
    assert debit.points == -1_000_000 and debit.reason == "1000000 × Sticker"
    assert card.balance == 0
    assert_consistent(db_session, card)

    # Refunding it: the points became rewards (which stay issued), so none can be taken back; it stays cheap.
    undone = refund(db_session, store, "F-big", "R-big", "1000000.00", now=T0 + DAY)
    assert (undone.refund.points_reversed, undone.refund.points_returned) == (0, 0)
    assert result.purchase.refunded_amount == money("1000000.00")
    assert count(db_session, Reward, Reward.card_id == card.id) == 1
    assert count(db_session, LedgerEntry, LedgerEntry.card_id == card.id) == rows_before + 2
    assert card.balance == 0 and card.lifetime_spend == 0
    assert_consistent(db_session, card)


def test_a_partly_converted_purchase_is_refunded_from_what_is_left(db_session: Session, generous: Any,
                                                                  make_store: Factory, make_card: Factory) -> None:
    generous.reward_threshold = 1000
    store = make_store(generous).store
    card = make_card(generous)
    purchase(db_session, store, card, "R-mid", "2500.00")  # +2500 → two rewards in one row, 500 left
    (reward,) = db_session.scalars(select(Reward).where(Reward.card_id == card.id)).all()
    assert reward.quantity == 2 and card.balance == 500

    result = refund(db_session, store, "F-mid", "R-mid", "2500.00", now=T0 + DAY)

    assert result.refund.points_reversed == 500  # what is left of the purchase's points; the rewards stay
    assert card.balance == 0
    assert_consistent(db_session, card)


# ---------------------------------------------------------------- the largest purchase amount


def test_a_purchase_at_the_programme_limit_is_accepted_and_one_cent_over_is_refused(
        db_session: Session, program: Any, shop: Any, make_card: Factory) -> None:
    assert program.max_purchase_amount == money("100000.00")  # the default
    card = make_card(program)
    assert purchase(db_session, shop, card, "R-edge", "100000.00").purchase.amount == money("100000.00")

    before = Snapshot(db_session, card)
    with pytest.raises(errors.RuleViolation) as refused:
        purchase(db_session, shop, card, "R-over", "100000.01")
    assert refused.value.code == "amount-over-limit"
    assert "100000.00" in refused.value.detail and "max_purchase_amount" in refused.value.detail
    assert [e.field for e in refused.value.errors] == ["amount"]
    before.assert_unchanged(db_session, card)


def test_a_recorded_purchase_replays_and_refunds_in_full_after_the_limit_is_lowered(
        db_session: Session, program: Any, shop: Any, make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-old", "5000.00")
    program.max_purchase_amount = money("1000.00")
    db_session.flush()

    assert purchase(db_session, shop, card, "R-old", "5000.00").replayed
    with pytest.raises(errors.RuleViolation) as refused:
        purchase(db_session, shop, card, "R-new", "5000.00")
    assert refused.value.code == "amount-over-limit"
    with pytest.raises(errors.RuleViolation) as too_much:
        refund(db_session, shop, "F-absurd", "R-old", "5000.01")
    assert too_much.value.code == "amount-over-limit" and "5000.00" in too_much.value.detail
    assert refund(db_session, shop, "F-old", "R-old", "5000.00").refund.amount == money("5000.00")


def test_points_a_card_cannot_hold_are_refused_not_overflowed(db_session: Session, make_program: Factory,
                                                              make_store: Factory, make_card: Factory) -> None:
    from app.loyalty import rules

    program = make_program(point_value=money("0.01"), max_purchase_amount=money("9999999999.99"),
                           tiers=[("All", "0", "100")])
    store, card = make_store(program).store, make_card(program)
    before = Snapshot(db_session, card)
    with pytest.raises(errors.RuleViolation) as refused:
        purchase(db_session, store, card, "R-huge", "9999999999.99")  # would earn 999,999,999,999 points
    assert refused.value.code == "points-over-limit"
    before.assert_unchanged(db_session, card)
    ledger.grant_bonus(db_session, card=card, points=rules.MAX_POINTS - 5, reason="almost full", now=T0)
    with pytest.raises(errors.RuleViolation) as full:
        ledger.adjust(db_session, card=card, points=6, reason="one too many", actor="user:1", now=T0)
    assert full.value.code == "points-over-limit"


def test_balance_below_threshold_issues_no_reward(db_session: Session, reward_program: Any,
                                                  make_card: Factory) -> None:
    card = make_card(reward_program, balance=999)
    assert card.balance == 999
    assert count(db_session, Reward, Reward.card_id == card.id) == 0
    assert_consistent(db_session, card)


# ---------------------------------------------------------------- stamps


@pytest.fixture
def stamp_program(make_program: Factory) -> Any:
    return make_program(kind="stamps", stamps_required=3, stamp_min_amount=money("5.00"),
                        stamp_reward="Free coffee", tiers=[])


def test_stamps_collect_and_convert_to_reward(db_session: Session, stamp_program: Any, make_store: Factory,
                                              make_card: Factory) -> None:
    store = make_store(stamp_program).store
    card = make_card(stamp_program)

    steps = [("R-1", "4.99", False, 0), ("R-2", "5.00", True, 1), ("R-3", "7.50", True, 2)]
    for i, (receipt, amount, stamped, stamps) in enumerate(steps):
        result = purchase(db_session, store, card, receipt, amount, now=T0 + i * timedelta(hours=1))
        assert result.purchase.stamped is stamped
        assert card.stamps == stamps
        assert result.rewards == []

    result = purchase(db_session, store, card, "R-4", "12.00", now=T0 + DAY)

    assert card.stamps == 0
    (reward,) = result.rewards
    assert (reward.kind, reward.name, reward.purchase_id) == ("stamps", "Free coffee", result.purchase.id)
    assert "reward" in card_events(db_session, card.id)[-1].payload["reasons"]
    assert card.balance == 0
    assert entries(db_session, card.id) == []  # stamps never touch the points ledger
    assert_consistent(db_session, card)


def test_stamp_card_refuses_redemption(db_session: Session, stamp_program: Any, make_store: Factory,
                                       make_card: Factory) -> None:
    store = make_store(stamp_program).store
    card = make_card(stamp_program)
    before = Snapshot(db_session, card)
    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        purchase(db_session, store, card, "R-1", "10.00", redeem=1)
    assert exc.value.code == "redemption-not-allowed"
    before.assert_unchanged(db_session, card)
    assert card.stamps == 0


def test_full_refund_of_stamped_purchase_removes_the_stamp(db_session: Session, stamp_program: Any,
                                                           make_store: Factory, make_card: Factory) -> None:
    store = make_store(stamp_program).store
    card = make_card(stamp_program)
    purchase(db_session, store, card, "R-1", "6.00")
    purchase(db_session, store, card, "R-2", "5.00")
    purchase(db_session, store, card, "R-3", "2.00")  # no stamp
    assert card.stamps == 2

    refund(db_session, store, "F-0", "R-3", "2.00")  # unstamped purchase: stamps stay
    assert card.stamps == 2
    refund(db_session, store, "F-1", "R-2", "2.00")  # partial: the stamp stays
    assert card.stamps == 2
    version = card.version

    refund(db_session, store, "F-2", "R-2", "3.00")  # now fully refunded

    assert card.stamps == 1
    assert card.version == version + 1
    assert_consistent(db_session, card)


# ---------------------------------------------------------------- manual adjustments


def test_adjust_up_and_down_with_reason_and_actor(db_session: Session, program: Any, make_card: Factory) -> None:
    card = make_card(program, balance=100)
    version = card.version

    up = ledger.adjust(db_session, card=card, points=25, reason="goodwill", actor="user:7", now=T0)
    assert (up.kind, up.points, up.remaining, up.reason, up.actor) == ("adjust", 25, 25, "goodwill", "user:7")
    assert card.balance == 125
    assert (card.version, card.updated_at) == (version + 1, T0)
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["adjust"]

    down = ledger.adjust(db_session, card=card, points=-40, reason="typo at the till", actor="user:7",
                         now=T0 + DAY)
    assert (down.kind, down.points, down.remaining, down.reason, down.actor) == (
        "adjust", -40, None, "typo at the till", "user:7")
    assert card.balance == 85
    assert (card.version, card.updated_at) == (version + 2, T0 + DAY)
    assert_consistent(db_session, card)

    ledger.adjust(db_session, card=card, points=-85, reason="close account", actor="user:1", now=T0 + 2 * DAY)
    assert card.balance == 0
    assert_consistent(db_session, card)


@pytest.mark.parametrize(
    ("points", "reason", "code"),
    [(0, "nothing", "invalid-points"), (5, "", "reason-required"), (5, "   ", "reason-required"),
     (-101, "too much", "insufficient-points")],
)
def test_adjust_refusals(db_session: Session, program: Any, make_card: Factory, points: int, reason: str,
                         code: str) -> None:
    card = make_card(program, balance=100)
    before = Snapshot(db_session, card)
    # More than the balance conflicts with the card's state (409); the others are bad requests (422)
    refusal = errors.Conflict if code == "insufficient-points" else errors.RuleViolation
    with pytest.raises(refusal) as exc, db_session.begin_nested():
        ledger.adjust(db_session, card=card, points=points, reason=reason, actor="user:7", now=T0)
    assert exc.value.code == code
    before.assert_unchanged(db_session, card)


# ---------------------------------------------------------------- non-purchase events


@pytest.fixture
def review_rule(db_session: Session, program: Any) -> BonusRule:
    rule = BonusRule(program_id=program.id, event_name="review", points=20, limit_per_period=1, period="day")
    db_session.add(rule)
    db_session.flush()
    return rule


def test_event_bonus_limited_per_day(db_session: Session, program: Any, shop: Any, review_rule: BonusRule,
                                     make_card: Factory) -> None:
    card = make_card(program)
    version = card.version

    first = ledger.record_event(db_session, store=shop, card=card, event_id="E-1", name="review", now=T0)
    assert (first.replayed, first.event.bonus, first.event.reason) == (False, 20, None)
    assert card.balance == 20
    assert (card.version, card.updated_at) == (version + 1, T0)
    (bonus,) = entries(db_session, card.id, "bonus")
    assert (bonus.points, bonus.remaining, bonus.reason) == (20, 20, "event review")
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["bonus"]
    events_before = len(card_events(db_session, card.id))

    second = ledger.record_event(db_session, store=shop, card=card, event_id="E-2", name="review",
                                 now=T0 + timedelta(hours=13))  # 23:00 the same day
    assert second.replayed is False
    assert second.event.bonus == 0
    assert second.event.reason == "limit of 1 per day reached"
    assert card.balance == 20
    assert card.version == version + 1  # nothing visible changed
    assert len(card_events(db_session, card.id)) == events_before
    assert count(db_session, BonusEvent, BonusEvent.card_id == card.id) == 2

    third = ledger.record_event(db_session, store=shop, card=card, event_id="E-3", name="review",
                                now=T0 + timedelta(hours=14))  # 00:00 the next day
    assert third.event.bonus == 20
    assert card.balance == 40
    assert card.version == version + 2
    assert_consistent(db_session, card)


def test_event_day_follows_store_timezone(db_session: Session, program: Any, make_store: Factory,
                                          review_rule: BonusRule, make_card: Factory) -> None:
    store = make_store(program, name="Manhattan", timezone="America/New_York").store
    card = make_card(program)
    evening = datetime(2026, 6, 2, 23, 30, tzinfo=UTC)  # 19:30 in New York, 2 June

    def post(event_id: str, at: datetime) -> int:
        return ledger.record_event(db_session, store=store, card=card, event_id=event_id, name="review",
                                   now=at).event.bonus

    assert post("E-1", evening) == 20
    assert post("E-2", evening + timedelta(hours=4)) == 0  # 3 June UTC, still 2 June in New York
    assert post("E-3", evening + timedelta(hours=5)) == 20  # 00:30 on 3 June in New York
    assert card.balance == 40
    assert_consistent(db_session, card)


def test_event_replay_conflict_and_unknown(db_session: Session, program: Any, shop: Any,
                                           review_rule: BonusRule, make_card: Factory) -> None:
    card = make_card(program)
    first = ledger.record_event(db_session, store=shop, card=card, event_id="E-1", name="review", now=T0)
    before = Snapshot(db_session, card)

    again = ledger.record_event(db_session, store=shop, card=card, event_id="E-1", name="review",
                                now=T0 + DAY)  # a new day: a new event would earn 20 again
    assert again.replayed is True
    assert again.event.id == first.event.id
    before.assert_unchanged(db_session, card)

    with pytest.raises(errors.Conflict) as exc, db_session.begin_nested():
        ledger.record_event(db_session, store=shop, card=card, event_id="E-1", name="checkin", now=T0 + DAY)
    assert exc.value.code == "duplicate-event"

    with pytest.raises(errors.RuleViolation) as exc2, db_session.begin_nested():
        ledger.record_event(db_session, store=shop, card=card, event_id="E-9", name="dance", now=T0 + DAY)
    assert exc2.value.code == "unknown-event"
    before.assert_unchanged(db_session, card)
    assert count(db_session, BonusEvent, BonusEvent.event_id == "E-9") == 0


def test_event_rule_of_another_programme_does_not_apply(db_session: Session, program: Any, shop: Any,
                                                        make_program: Factory, make_card: Factory) -> None:
    other = make_program()
    db_session.add(BonusRule(program_id=other.id, event_name="review", points=20, limit_per_period=None))
    db_session.flush()
    card = make_card(program)
    with pytest.raises(errors.RuleViolation) as exc, db_session.begin_nested():
        ledger.record_event(db_session, store=shop, card=card, event_id="E-1", name="review", now=T0)
    assert exc.value.code == "unknown-event"


# ---------------------------------------------------------------- visible changes: version, updated_at, outbox


def test_every_visible_change_bumps_version_and_writes_card_changed(db_session: Session, program: Any,
                                                                    shop: Any, review_rule: BonusRule,
                                                                    make_card: Factory) -> None:
    card = make_card(program)

    def steps() -> list[tuple[datetime, Callable[[datetime], Any]]]:
        return [
            (T0, lambda at: ledger.grant_bonus(db_session, card=card, points=10, reason="birthday", now=at)),
            (T0 + timedelta(hours=1), lambda at: purchase(db_session, shop, card, "R-1", "1000.00", now=at)),
            (T0 + timedelta(hours=2), lambda at: purchase(db_session, shop, card, "R-2", "40.00", redeem=20,
                                                          now=at)),
            (T0 + timedelta(hours=3), lambda at: refund(db_session, shop, "F-1", "R-2", "40.00", now=at)),
            (T0 + timedelta(hours=4), lambda at: ledger.adjust(db_session, card=card, points=5, reason="sorry",
                                                               actor="user:1", now=at)),
            (T0 + timedelta(hours=5), lambda at: ledger.record_event(db_session, store=shop, card=card,
                                                                     event_id="E-1", name="review", now=at)),
            (T0 + timedelta(days=366), lambda at: ledger.reevaluate_tiers(db_session, now=at)),
            (T0 + timedelta(days=366, hours=1), lambda at: ledger.expire_due(db_session, now=at)),
        ]

    for at, step in steps():
        version, n_events = card.version, len(card_events(db_session, card.id))
        step(at)
        assert card.version == version + 1, at
        assert card.updated_at == at
        events = card_events(db_session, card.id)
        assert len(events) == n_events + 1
        assert events[-1].payload["card_id"] == card.id
        assert events[-1].payload["version"] == card.version
        assert events[-1].payload["balance"] == card.balance
        assert events[-1].processed_at is None  # dispatched only after commit
        assert_consistent(db_session, card)

    assert card.balance == 0  # everything expired in the end
    assert card.tier.name == "Bronze"


# ---------------------------------------------------------------- lookups


def test_find_card_by_barcode_or_phone(db_session: Session, program: Any, make_program: Factory,
                                       make_card: Factory) -> None:
    card = make_card(program, phone="+37369555001")
    assert ledger.find_card(db_session, program_id=program.id, barcode=card.barcode).id == card.id
    assert ledger.find_card(db_session, program_id=program.id, phone="+37369555001", lock=True).id == card.id

    other = make_program()
    with pytest.raises(errors.NotFound):
        ledger.find_card(db_session, program_id=other.id, barcode=card.barcode)
    with pytest.raises(errors.NotFound):
        ledger.find_card(db_session, program_id=program.id, phone="+37369555999")
    card.status = "voided"
    db_session.flush()
    with pytest.raises(errors.NotFound):
        ledger.find_card(db_session, program_id=program.id, barcode=card.barcode)
    with pytest.raises(errors.NotFound):
        ledger.lock_card(db_session, card.id + 10_000)


# ---------------------------------------------------------------- edge cases found in review


def test_refund_of_a_converted_stamp_keeps_later_stamps(db_session: Session, stamp_program: Any,
                                                        make_store: Factory, make_card: Factory) -> None:
    store = make_store(stamp_program).store
    card = make_card(stamp_program)
    for i in range(4):  # the third converts to a reward; the fourth is on the card
        purchase(db_session, store, card, f"S{i}", "6.00", now=T0 + i * DAY)
    assert card.stamps == 1

    refund(db_session, store, "F-S2", "S2", "6.00", now=T0 + 5 * DAY)

    assert card.stamps == 1  # the refunded purchase's stamp was already used up by the reward
    refund(db_session, store, "F-S3", "S3", "6.00", now=T0 + 5 * DAY)
    assert card.stamps == 0  # the fourth purchase's stamp is still on the card: it goes


def test_refund_does_not_take_back_points_that_already_expired(db_session: Session, program: Any, shop: Any,
                                                               make_card: Factory) -> None:
    card = make_card(program)
    purchase(db_session, shop, card, "R-exp", "1000.00", now=T0)  # +30, expiring T0 + 365 days
    ledger.grant_bonus(db_session, card=card, points=100, reason="later", now=T0 + 300 * DAY)
    assert ledger.expire_due(db_session, now=T0 + 366 * DAY) == 30
    assert card.balance == 100

    result = refund(db_session, shop, "F-exp", "R-exp", "1000.00", now=T0 + 367 * DAY)

    assert result.refund.points_reversed == 0
    assert card.balance == 100
    assert_consistent(db_session, card)


def test_adjustment_reaching_the_threshold_issues_a_reward(db_session: Session, reward_program: Any,
                                                           make_card: Factory) -> None:
    card = make_card(reward_program, balance=990)
    ledger.adjust(db_session, card=card, points=20, reason="goodwill", actor="user:1", now=T0)
    assert card.balance == 10
    assert count(db_session, Reward, Reward.card_id == card.id) == 1
    assert card_events(db_session, card.id)[-1].payload["reasons"] == ["adjust", "reward"]
    assert_consistent(db_session, card)


def test_refund_returning_points_over_the_threshold_issues_a_reward(db_session: Session, reward_program: Any,
                                                                    make_store: Factory, make_card: Factory) -> None:
    store = make_store(reward_program).store
    card = make_card(reward_program, balance=999)
    purchase(db_session, store, card, "R-ret", "200.00", redeem=100)  # 899 + 3 earned = 902
    result = refund(db_session, store, "F-ret", "R-ret", "200.00")  # +100 returned, -3 reversed = 999
    assert (result.refund.points_returned, result.refund.points_reversed) == (100, 3)
    assert card.balance == 999 and count(db_session, Reward, Reward.card_id == card.id) == 0
    ledger.adjust(db_session, card=card, points=1, reason="rounding", actor="user:1", now=T0)
    assert card.balance == 0 and count(db_session, Reward, Reward.card_id == card.id) == 1


def test_purchase_with_a_card_of_another_programme_or_voided_is_refused(
    db_session: Session, program: Any, shop: Any, make_program: Factory, make_card: Factory
) -> None:
    foreign = make_card(make_program())
    with pytest.raises(errors.NotFound):
        purchase(db_session, shop, foreign, "R-foreign", "10.00")
    voided = make_card(program)
    voided.status = "voided"
    with pytest.raises(errors.NotFound):
        purchase(db_session, shop, voided, "R-void", "10.00")
