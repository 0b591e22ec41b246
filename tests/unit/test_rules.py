"""Unit tests for the pure loyalty rules in app.loyalty.rules."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.loyalty.rules import (
    Lot,
    PurchasePlan,
    RefundPlan,
    RuleViolation,
    StampResult,
    add_stamps,
    bonus_allowed,
    consume_fifo,
    earn_points,
    expiry_for,
    is_birthday,
    max_redeemable,
    money_for,
    period_start,
    plan_purchase,
    plan_refund,
    prorated,
    remove_stamp,
    threshold_rewards,
    tier_for,
)

D = Decimal
UTC = UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- RuleViolation


def test_rule_violation_keeps_code_message_field() -> None:
    err = RuleViolation("insufficient-points", "Not enough points.", "redeem_points")
    assert err.code == "insufficient-points"
    assert err.message == "Not enough points."
    assert err.field == "redeem_points"
    assert str(err) == "Not enough points."
    assert isinstance(err, Exception)


def test_rule_violation_field_defaults_to_none() -> None:
    assert RuleViolation("negative-amount", "x").field is None


# ----------------------------------------------------------------- exact flooring (earning at 100 %) / money_for


@pytest.mark.parametrize(
    ("value", "point_value", "expected"),
    [
        (D("0"), D("1.00"), 0),
        (D("0.00"), D("0.01"), 0),
        (D("0.99"), D("1.00"), 0),
        (D("1.00"), D("1.00"), 1),
        (D("10.99"), D("1.00"), 10),
        (D("10.00"), D("0.50"), 20),
        (D("10.49"), D("0.50"), 20),
        (D("0.3"), D("0.1"), 3),  # float would give 2.999... -> 2
        (D("1.23"), D("0.01"), 123),
        (D("12345678901234567890123456789.99"), D("0.01"), 1234567890123456789012345678999),
    ],
)
def test_earning_at_100_percent_floors_exactly(value: Decimal, point_value: Decimal, expected: int) -> None:
    assert earn_points(value, D("100"), point_value) == expected


def test_earning_on_a_negative_value_is_rule_violation() -> None:
    with pytest.raises(RuleViolation) as exc:
        earn_points(D("-0.01"), D("100"), D("1.00"))
    assert exc.value.code == "negative-amount"


@pytest.mark.parametrize("point_value", [D("0"), D("-1.00"), D("NaN"), D("Infinity")])
def test_earning_rejects_bad_point_value(point_value: Decimal) -> None:
    with pytest.raises(ValueError):
        earn_points(D("10.00"), D("100"), point_value)


@pytest.mark.parametrize(
    ("points", "point_value", "expected"),
    [
        (0, D("1.00"), "0.00"),
        (1, D("1.00"), "1.00"),
        (7, D("0.10"), "0.70"),
        (3, D("0.333"), "1.00"),  # 0.999 -> half up
        (1, D("0.005"), "0.01"),  # exactly half -> up
        (1, D("0.004"), "0.00"),
        (250, D("0.01"), "2.50"),
    ],
)
def test_money_for_quantizes_to_cents(points: int, point_value: Decimal, expected: str) -> None:
    result = money_for(points, point_value)
    assert result == D(expected)
    assert str(result) == expected


def test_money_for_rejects_negative_points_and_bad_point_value() -> None:
    with pytest.raises(ValueError):
        money_for(-1, D("1.00"))
    with pytest.raises(ValueError):
        money_for(1, D("0"))


# --------------------------------------------------------------------------- earn_points


@pytest.mark.parametrize(
    ("paid", "percent", "point_value", "expected"),
    [
        (D("0"), D("3"), D("1.00"), 0),
        (D("0.00"), D("100"), D("0.01"), 0),
        (D("99.99"), D("3"), D("1.00"), 2),  # 2.9997 -> 2
        (D("100.00"), D("3"), D("1.00"), 3),
        (D("33.33"), D("3"), D("1.00"), 0),
        (D("33.34"), D("3"), D("1.00"), 1),  # 1.0002
        (D("10.00"), D("10"), D("0.10"), 10),
        (D("10.00"), D("0"), D("1.00"), 0),
        (D("19.99"), D("2.5"), D("0.01"), 49),  # 49.975
        (D("50.00"), D("100"), D("1.00"), 50),
        (D("0.30"), D("10"), D("0.01"), 3),  # 0.03 / 0.01, float would floor to 2
    ],
)
def test_earn_points_rounds_down(paid: Decimal, percent: Decimal, point_value: Decimal, expected: int) -> None:
    assert earn_points(paid, percent, point_value) == expected


def test_earn_points_negative_paid_is_rule_violation() -> None:
    with pytest.raises(RuleViolation) as exc:
        earn_points(D("-1.00"), D("3"), D("1.00"))
    assert exc.value.code == "negative-amount"


def test_earn_points_rejects_negative_percent_and_bad_point_value() -> None:
    with pytest.raises(ValueError):
        earn_points(D("1.00"), D("-1"), D("1.00"))
    with pytest.raises(ValueError):
        earn_points(D("1.00"), D("3"), D("0"))


# --------------------------------------------------------------------------- max_redeemable


@pytest.mark.parametrize(
    ("balance", "amount", "cap", "point_value", "expected"),
    [
        (1000, D("100.00"), D("50"), D("1.00"), 50),
        (30, D("100.00"), D("50"), D("1.00"), 30),  # balance limits
        (0, D("100.00"), D("50"), D("1.00"), 0),
        (1000, D("0.00"), D("50"), D("1.00"), 0),
        (1000, D("99.99"), D("50"), D("1.00"), 49),  # 49.995 -> 49
        (1000, D("10.00"), D("100"), D("0.01"), 1000),
        (5000, D("10.00"), D("100"), D("0.01"), 1000),
        (1000, D("10.00"), D("0"), D("1.00"), 0),
        (-5, D("10.00"), D("50"), D("1.00"), 0),  # never negative
        (10, D("-10.00"), D("50"), D("1.00"), 0),
    ],
)
def test_max_redeemable(balance: int, amount: Decimal, cap: Decimal, point_value: Decimal, expected: int) -> None:
    assert max_redeemable(balance=balance, amount=amount, cap_percent=cap, point_value=point_value) == expected


# --------------------------------------------------------------------------- plan_purchase


def _plan(**overrides: object) -> PurchasePlan:
    kwargs: dict[str, object] = dict(
        amount=D("100.00"),
        redeem_points=0,
        balance=100,
        earn_percent=D("5"),
        cap_percent=D("50"),
        point_value=D("1.00"),
    )
    kwargs.update(overrides)
    return plan_purchase(**kwargs)  # type: ignore[arg-type]


def test_plan_purchase_without_redemption_earns_on_full_amount() -> None:
    assert _plan() == PurchasePlan(redeemed=0, discount=D("0.00"), amount_due=D("100.00"), earned=5)


def test_plan_purchase_earns_on_money_part_only() -> None:
    plan = _plan(redeem_points=40)
    assert plan.redeemed == 40
    assert plan.discount == D("40.00")
    assert plan.amount_due == D("60.00")
    assert plan.earned == 3  # 5 % of 60.00, not of 100.00
    assert str(plan.discount) == "40.00"
    assert str(plan.amount_due) == "60.00"


def test_plan_purchase_rounding_down_on_money_part() -> None:
    plan = _plan(amount=D("99.99"), redeem_points=0, earn_percent=D("3"))
    assert plan.earned == 2
    plan = _plan(amount=D("99.99"), redeem_points=10, earn_percent=D("3"))
    assert plan.amount_due == D("89.99")
    assert plan.earned == 2  # 2.6997


def test_plan_purchase_cap_exactly_reached_is_allowed() -> None:
    plan = _plan(redeem_points=50)
    assert plan == PurchasePlan(redeemed=50, discount=D("50.00"), amount_due=D("50.00"), earned=2)


def test_plan_purchase_cap_plus_one_is_refused() -> None:
    with pytest.raises(RuleViolation) as exc:
        _plan(redeem_points=51)
    assert exc.value.code == "over-redemption-cap"
    assert exc.value.field == "redeem_points"
    assert "50" in exc.value.message


def test_plan_purchase_cap_uses_floor() -> None:
    # 50 % of 99.99 = 49.995 -> at most 49 points
    assert _plan(amount=D("99.99"), redeem_points=49).redeemed == 49
    with pytest.raises(RuleViolation) as exc:
        _plan(amount=D("99.99"), redeem_points=50)
    assert exc.value.code == "over-redemption-cap"
    assert "49" in exc.value.message


def test_plan_purchase_more_than_balance_is_refused() -> None:
    with pytest.raises(RuleViolation) as exc:
        _plan(redeem_points=31, balance=30)
    assert exc.value.code == "insufficient-points"
    assert exc.value.field == "redeem_points"
    assert "30" in exc.value.message


def test_plan_purchase_balance_check_before_cap_check() -> None:
    with pytest.raises(RuleViolation) as exc:
        _plan(redeem_points=80, balance=60)
    assert exc.value.code == "insufficient-points"


def test_plan_purchase_whole_balance_is_allowed() -> None:
    assert _plan(redeem_points=30, balance=30).redeemed == 30


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        (dict(amount=D("-0.01")), "negative-amount", "amount"),
        (dict(redeem_points=-1), "invalid-points", "redeem_points"),
    ],
)
def test_plan_purchase_invalid_input(overrides: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(RuleViolation) as exc:
        _plan(**overrides)
    assert exc.value.code == code
    assert exc.value.field == field


def test_plan_purchase_zero_amount() -> None:
    assert _plan(amount=D("0.00")) == PurchasePlan(redeemed=0, discount=D("0.00"), amount_due=D("0.00"), earned=0)
    with pytest.raises(RuleViolation) as exc:
        _plan(amount=D("0.00"), redeem_points=1)
    assert exc.value.code == "over-redemption-cap"


def test_plan_purchase_full_redemption_at_100_percent_cap() -> None:
    plan = _plan(amount=D("12.34"), redeem_points=1234, balance=2000, cap_percent=D("100"), point_value=D("0.01"))
    assert plan == PurchasePlan(redeemed=1234, discount=D("12.34"), amount_due=D("0.00"), earned=0)


def test_plan_purchase_amount_due_never_negative() -> None:
    # Point value with 3 dp: 3 × 0.335 = 1.005 -> discount rounds up to 1.01 > 1.00 paid.
    plan = _plan(
        amount=D("1.00"), redeem_points=3, balance=3, cap_percent=D("101"), point_value=D("0.335")
    )
    assert plan.discount == D("1.01")
    assert plan.amount_due == D("0.00")
    assert plan.earned == 0
    # Cap above 100 %: discount may exceed the amount, amount_due stays 0.00.
    plan = _plan(amount=D("10.00"), redeem_points=15, balance=20, cap_percent=D("150"))
    assert plan.discount == D("15.00")
    assert plan.amount_due == D("0.00")


def test_plan_purchase_small_point_value() -> None:
    plan = _plan(amount=D("25.50"), redeem_points=550, balance=1000, earn_percent=D("10"), point_value=D("0.01"))
    assert plan.discount == D("5.50")
    assert plan.amount_due == D("20.00")
    assert plan.earned == 200


# --------------------------------------------------------------------------- tier_for

TIERS = [("gold", D("1000.00")), ("bronze", D("0.00")), ("silver", D("500.00"))]


@pytest.mark.parametrize(
    ("spend", "expected"),
    [
        (D("0.00"), "bronze"),
        (D("499.99"), "bronze"),
        (D("500.00"), "silver"),  # exactly at threshold qualifies
        (D("500.01"), "silver"),
        (D("999.99"), "silver"),  # just below doesn't
        (D("1000.00"), "gold"),
        (D("1000000"), "gold"),
    ],
)
def test_tier_for_boundaries(spend: Decimal, expected: str) -> None:
    assert tier_for(spend, TIERS) == expected


def test_tier_for_moving_down_after_spend_drops() -> None:
    assert tier_for(D("1000.00"), TIERS) == "gold"
    assert tier_for(D("999.99"), TIERS) == "silver"  # e.g. after a refund
    assert tier_for(D("100.00"), TIERS) == "bronze"


def test_tier_for_none_when_nothing_qualifies() -> None:
    tiers = [(1, D("100.00")), (2, D("200.00"))]
    assert tier_for(D("99.99"), tiers) is None
    assert tier_for(D("-1.00"), tiers) is None
    assert tier_for(D("100.00"), []) is None


def test_tier_for_ties_first_given_wins() -> None:
    tiers = [("a", D("100")), ("b", D("100")), ("c", D("50"))]
    assert tier_for(D("150"), tiers) == "a"
    assert tier_for(D("150"), list(reversed(tiers))) == "b"


# --------------------------------------------------------------------------- prorated / plan_refund


@pytest.mark.parametrize(
    ("total", "purchase", "before", "refund", "expected"),
    [
        (7, D("100.00"), D("0"), D("100.00"), 7),
        (7, D("100.00"), D("0"), D("50.00"), 3),
        (7, D("100.00"), D("50.00"), D("50.00"), 4),
        (0, D("100.00"), D("0"), D("10.00"), 0),
        (10, D("100.00"), D("0"), D("0.01"), 0),
        (10, D("100.00"), D("99.99"), D("0.01"), 1),
        (100, D("3.00"), D("0"), D("1.00"), 33),
    ],
)
def test_prorated(total: int, purchase: Decimal, before: Decimal, refund: Decimal, expected: int) -> None:
    assert prorated(total, purchase, before, refund) == expected


@pytest.mark.parametrize("refund", [D("0"), D("0.00"), D("-5.00")])
def test_prorated_non_positive_refund(refund: Decimal) -> None:
    with pytest.raises(RuleViolation) as exc:
        prorated(7, D("100.00"), D("0"), refund)
    assert exc.value.code == "negative-amount"
    assert exc.value.field == "amount"


@pytest.mark.parametrize(
    ("before", "refund", "remainder"),
    [
        (D("0"), D("100.01"), "100.00"),
        (D("60.00"), D("40.01"), "40.00"),
        (D("100.00"), D("0.01"), "0.00"),
    ],
)
def test_prorated_refund_exceeding_purchase(before: Decimal, refund: Decimal, remainder: str) -> None:
    with pytest.raises(RuleViolation) as exc:
        prorated(7, D("100.00"), before, refund)
    assert exc.value.code == "refund-exceeds-purchase"
    assert exc.value.field == "amount"
    assert remainder in exc.value.message


def test_prorated_zero_purchase_cannot_be_refunded() -> None:
    with pytest.raises(RuleViolation) as exc:
        prorated(0, D("0.00"), D("0.00"), D("0.01"))
    assert exc.value.code == "refund-exceeds-purchase"


def test_plan_refund_larger_than_purchase() -> None:
    with pytest.raises(RuleViolation) as exc:
        plan_refund(
            purchase_amount=D("50.00"), refunded_before=D("0"), refund_amount=D("60.00"),
            earned=5, redeemed=0, balance=100,
        )
    assert exc.value.code == "refund-exceeds-purchase"
    assert exc.value.field == "amount"


def test_plan_refund_full() -> None:
    plan = plan_refund(
        purchase_amount=D("100.00"), refunded_before=D("0"), refund_amount=D("100.00"),
        earned=7, redeemed=5, balance=50,
    )
    assert plan == RefundPlan(points_returned=5, points_reversed=7, reversal_shortfall=0)


def test_plan_refund_three_partial_refunds_sum_to_whole() -> None:
    purchase = D("100.00")
    before = D("0.00")
    balance = 100
    plans = []
    for part in (D("33.33"), D("33.33"), D("33.34")):
        plan = plan_refund(
            purchase_amount=purchase, refunded_before=before, refund_amount=part,
            earned=7, redeemed=5, balance=balance,
        )
        plans.append(plan)
        balance += plan.points_returned - plan.points_reversed
        before += part
    assert [p.points_returned for p in plans] == [1, 2, 2]
    assert [p.points_reversed for p in plans] == [2, 2, 3]
    assert sum(p.points_returned for p in plans) == 5
    assert sum(p.points_reversed for p in plans) == 7
    assert all(p.reversal_shortfall == 0 for p in plans)
    assert before == purchase
    with pytest.raises(RuleViolation) as exc:  # nothing left to refund
        plan_refund(
            purchase_amount=purchase, refunded_before=before, refund_amount=D("0.01"),
            earned=7, redeemed=5, balance=balance,
        )
    assert exc.value.code == "refund-exceeds-purchase"


def test_plan_refund_reversal_clamped_at_zero_with_shortfall() -> None:
    plan = plan_refund(
        purchase_amount=D("100.00"), refunded_before=D("0"), refund_amount=D("100.00"),
        earned=10, redeemed=0, balance=3,
    )
    assert plan == RefundPlan(points_returned=0, points_reversed=3, reversal_shortfall=7)


def test_plan_refund_returned_points_cover_reversal_first() -> None:
    plan = plan_refund(
        purchase_amount=D("100.00"), refunded_before=D("0"), refund_amount=D("100.00"),
        earned=10, redeemed=4, balance=2,
    )
    # 4 credited back first, so 6 of the 10 earned can be reversed.
    assert plan == RefundPlan(points_returned=4, points_reversed=6, reversal_shortfall=4)


def test_plan_refund_zero_balance_zero_returned() -> None:
    plan = plan_refund(
        purchase_amount=D("10.00"), refunded_before=D("0"), refund_amount=D("10.00"),
        earned=5, redeemed=0, balance=0,
    )
    assert plan == RefundPlan(points_returned=0, points_reversed=0, reversal_shortfall=5)


@pytest.mark.parametrize("seed", range(20))
def test_prorated_partial_refunds_always_sum_to_total(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        cents = rng.randint(1, 10_000_000)
        purchase = D(cents).scaleb(-2)
        total = rng.choice([0, 1, 2, 3, 7, rng.randint(0, 100), rng.randint(0, 1_000_000)])
        redeemed = rng.randint(0, 1000)
        n_parts = rng.randint(1, min(8, cents))
        cuts = sorted(rng.sample(range(1, cents), n_parts - 1)) if n_parts > 1 else []
        bounds = [0, *cuts, cents]
        parts = [D(b - a).scaleb(-2) for a, b in zip(bounds, bounds[1:], strict=False)]
        assert sum(parts) == purchase

        before = D("0.00")
        got_total = got_returned = 0
        for part in parts:
            share = prorated(total, purchase, before, part)
            assert share >= 0
            got_total += share
            plan = plan_refund(
                purchase_amount=purchase, refunded_before=before, refund_amount=part,
                earned=total, redeemed=redeemed, balance=10**9,
            )
            assert plan.points_reversed == share
            assert plan.reversal_shortfall == 0
            got_returned += plan.points_returned
            before += part
        assert got_total == total
        assert got_returned == redeemed


# --------------------------------------------------------------------------- FIFO lots

T0 = utc(2025, 1, 1)


def test_consume_fifo_earliest_expiry_first_never_last() -> None:
    lots = [
        Lot(id=1, remaining=10, expires_at=None),
        Lot(id=2, remaining=5, expires_at=T0 + timedelta(days=30)),
        Lot(id=3, remaining=5, expires_at=T0 + timedelta(days=10)),
    ]
    assert consume_fifo(lots, 3) == [(3, 3)]
    assert consume_fifo(lots, 7) == [(3, 5), (2, 2)]
    assert consume_fifo(lots, 12) == [(3, 5), (2, 5), (1, 2)]
    assert consume_fifo(lots, 20) == [(3, 5), (2, 5), (1, 10)]


def test_consume_fifo_ties_by_id() -> None:
    lots = [
        Lot(id=9, remaining=4, expires_at=T0),
        Lot(id=4, remaining=4, expires_at=T0),
        Lot(id=7, remaining=4, expires_at=None),
        Lot(id=5, remaining=4, expires_at=None),
    ]
    assert consume_fifo(lots, 14) == [(4, 4), (9, 4), (5, 4), (7, 2)]


def test_consume_fifo_skips_empty_lots() -> None:
    lots = [
        Lot(id=1, remaining=0, expires_at=T0),
        Lot(id=2, remaining=-3, expires_at=T0),
        Lot(id=3, remaining=2, expires_at=T0 + timedelta(days=1)),
    ]
    assert consume_fifo(lots, 2) == [(3, 2)]


def test_consume_fifo_zero_points() -> None:
    assert consume_fifo([Lot(id=1, remaining=5, expires_at=None)], 0) == []
    assert consume_fifo([], 0) == []


@pytest.mark.parametrize(
    ("lots", "points"),
    [
        ([], 1),
        ([Lot(id=1, remaining=5, expires_at=None)], 6),
        ([Lot(id=1, remaining=5, expires_at=T0), Lot(id=2, remaining=0, expires_at=None)], 6),
    ],
)
def test_consume_fifo_insufficient_lots(lots: list[Lot], points: int) -> None:
    with pytest.raises(RuleViolation) as exc:
        consume_fifo(lots, points)
    assert exc.value.code == "insufficient-points"


def test_consume_fifo_negative_points() -> None:
    with pytest.raises(ValueError):
        consume_fifo([Lot(id=1, remaining=5, expires_at=None)], -1)


def test_consume_fifo_does_not_mutate_input() -> None:
    lots = [Lot(id=2, remaining=5, expires_at=None), Lot(id=1, remaining=5, expires_at=T0)]
    snapshot = list(lots)
    consume_fifo(lots, 7)
    assert lots == snapshot


@pytest.mark.parametrize(
    ("earned_at", "days", "expected"),
    [
        (utc(2025, 1, 1, 12), 1, utc(2025, 1, 2, 12)),
        (utc(2025, 1, 31), 30, utc(2025, 3, 2)),
        (utc(2024, 2, 28), 365, utc(2025, 2, 27)),  # leap year
        (utc(2025, 6, 15, 8, 30), 365, utc(2026, 6, 15, 8, 30)),
        (utc(2025, 6, 15), None, None),
    ],
)
def test_expiry_for(earned_at: datetime, days: int | None, expected: datetime | None) -> None:
    assert expiry_for(earned_at, days) == expected


@pytest.mark.parametrize("days", [0, -1])
def test_expiry_for_rejects_non_positive_days(days: int) -> None:
    with pytest.raises(ValueError):
        expiry_for(utc(2025, 1, 1), days)


# --------------------------------------------------------------------------- stamps


@pytest.mark.parametrize(
    ("stamps", "amount", "min_amount", "required", "expected"),
    [
        (0, D("10.00"), D("5.00"), 10, StampResult(stamps=1, rewards=0, added=1)),
        (8, D("10.00"), D("5.00"), 10, StampResult(stamps=9, rewards=0, added=1)),
        (9, D("10.00"), D("5.00"), 10, StampResult(stamps=0, rewards=1, added=1)),  # wraps
        (9, D("4.99"), D("5.00"), 10, StampResult(stamps=9, rewards=0, added=0)),  # below minimum
        (3, D("5.00"), D("5.00"), 10, StampResult(stamps=4, rewards=0, added=1)),  # exactly minimum
        (0, D("0.00"), D("0.00"), 1, StampResult(stamps=0, rewards=1, added=1)),
        (0, D("0.00"), D("0.01"), 5, StampResult(stamps=0, rewards=0, added=0)),
        (0, D("1.00"), D("0.00"), 1, StampResult(stamps=0, rewards=1, added=1)),
    ],
)
def test_add_stamps(stamps: int, amount: Decimal, min_amount: Decimal, required: int, expected: StampResult) -> None:
    assert add_stamps(stamps=stamps, amount=amount, min_amount=min_amount, required=required) == expected


@pytest.mark.parametrize("required", [0, -1])
def test_add_stamps_rejects_bad_required(required: int) -> None:
    with pytest.raises(ValueError):
        add_stamps(stamps=0, amount=D("10.00"), min_amount=D("5.00"), required=required)


def test_add_stamps_negative_amount() -> None:
    with pytest.raises(RuleViolation) as exc:
        add_stamps(stamps=0, amount=D("-1.00"), min_amount=D("0.00"), required=10)
    assert exc.value.code == "negative-amount"


@pytest.mark.parametrize(("stamps", "expected"), [(5, 4), (1, 0), (0, 0)])
def test_remove_stamp(stamps: int, expected: int) -> None:
    assert remove_stamp(stamps=stamps) == expected


# --------------------------------------------------------------------------- threshold rewards


@pytest.mark.parametrize(
    ("balance", "threshold", "expected"),
    [
        (999, 1000, 0),
        (1000, 1000, 1),
        (1999, 1000, 1),
        (2500, 1000, 2),
        (0, 1000, 0),
        (5000, None, 0),
        (7, 1, 7),
        (-10, 1000, 0),
    ],
)
def test_threshold_rewards(balance: int, threshold: int | None, expected: int) -> None:
    assert threshold_rewards(balance, threshold) == expected


@pytest.mark.parametrize("threshold", [0, -100])
def test_threshold_rewards_rejects_bad_threshold(threshold: int) -> None:
    with pytest.raises(ValueError):
        threshold_rewards(1000, threshold)


# --------------------------------------------------------------------------- periods / bonus limits


@pytest.mark.parametrize(
    ("now", "period", "tz", "expected"),
    [
        (utc(2025, 3, 12, 15, 45), "day", "UTC", utc(2025, 3, 12)),
        (utc(2025, 3, 12, 0, 0), "day", "UTC", utc(2025, 3, 12)),
        (utc(2025, 3, 12, 15, 45), "month", "UTC", utc(2025, 3, 1)),
        (utc(2025, 3, 12, 15, 45), "year", "UTC", utc(2025, 1, 1)),
        # 2025-03-12 is a Wednesday -> week starts Monday 2025-03-10.
        (utc(2025, 3, 12, 15, 45), "week", "UTC", utc(2025, 3, 10)),
        (utc(2025, 3, 10, 0, 0), "week", "UTC", utc(2025, 3, 10)),  # Monday itself
        (utc(2025, 3, 16, 23, 59), "week", "UTC", utc(2025, 3, 10)),  # Sunday
        (utc(2025, 1, 1, 3), "week", "UTC", utc(2024, 12, 30)),  # week spans the year boundary
        # Chisinau (UTC+2 in winter): 23:30 UTC is already 01:30 the next local day.
        (utc(2025, 1, 14, 23, 30), "day", "Europe/Chisinau", utc(2025, 1, 14, 22)),
        (utc(2025, 1, 31, 23, 30), "month", "Europe/Chisinau", utc(2025, 1, 31, 22)),
        (utc(2024, 12, 31, 23, 30), "year", "Europe/Chisinau", utc(2024, 12, 31, 22)),
        # Summer time (UTC+3).
        (utc(2025, 7, 1, 12), "day", "Europe/Chisinau", utc(2025, 6, 30, 21)),
        # Sunday 23:30 UTC is Monday 01:30 local -> a new week has started.
        (utc(2025, 3, 16, 23, 30), "week", "Europe/Chisinau", utc(2025, 3, 16, 22)),
        # West of UTC: 02:00 UTC on the 1st is still the previous local month.
        (utc(2025, 3, 1, 2), "month", "America/New_York", utc(2025, 2, 1, 5)),
        # Santiago skips local midnight (DST starts at 24:00): the day starts at 01:00 local.
        (utc(2023, 9, 3, 12), "day", "America/Santiago", utc(2023, 9, 3, 4)),
    ],
)
def test_period_start(now: datetime, period: str, tz: str, expected: datetime) -> None:
    result = period_start(now, period, tz)  # type: ignore[arg-type]
    assert result == expected
    assert result is not None and result.utcoffset() == timedelta(0)


def test_period_start_accepts_non_utc_input() -> None:
    eet = timezone(timedelta(hours=2))
    now = datetime(2025, 1, 15, 1, 30, tzinfo=eet)  # 2025-01-14 23:30 UTC
    assert period_start(now, "day") == utc(2025, 1, 14)
    assert period_start(now, "day", "Europe/Chisinau") == utc(2025, 1, 14, 22)


def test_period_start_lifetime_is_unbounded() -> None:
    assert period_start(utc(2025, 3, 12), "lifetime") is None
    assert period_start(utc(2025, 3, 12), "lifetime", "Europe/Chisinau") is None


def test_period_start_rejects_naive_and_unknown_period() -> None:
    with pytest.raises(ValueError):
        period_start(datetime(2025, 3, 12), "day")
    with pytest.raises(ValueError):
        period_start(utc(2025, 3, 12), "fortnight")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("used", "limit", "expected"),
    [(0, None, True), (1000, None, True), (0, 1, True), (1, 1, False), (2, 3, True), (3, 3, False), (0, 0, False)],
)
def test_bonus_allowed(used: int, limit: int | None, expected: bool) -> None:
    assert bonus_allowed(used_in_period=used, limit=limit) is expected


# --------------------------------------------------------------------------- birthdays


@pytest.mark.parametrize(
    ("birthday", "today", "expected"),
    [
        (date(1990, 5, 17), date(2025, 5, 17), True),
        (date(1990, 5, 17), date(2025, 5, 18), False),
        (date(1990, 5, 17), date(2025, 6, 17), False),
        (None, date(2025, 5, 17), False),
        (date(2000, 2, 29), date(2024, 2, 29), True),  # leap year: on the day
        (date(2000, 2, 29), date(2024, 2, 28), False),  # leap year: not the day before
        (date(2000, 2, 29), date(2025, 2, 28), True),  # non-leap year: celebrated on 28 Feb
        (date(2000, 2, 29), date(2025, 3, 1), False),
        (date(2000, 2, 29), date(2100, 2, 28), True),  # 2100 is not a leap year
        (date(2001, 2, 28), date(2025, 2, 28), True),
        (date(2001, 2, 28), date(2024, 2, 28), True),
        (date(2001, 2, 28), date(2024, 2, 29), False),
    ],
)
def test_is_birthday(birthday: date | None, today: date, expected: bool) -> None:
    assert is_birthday(birthday, today) is expected
