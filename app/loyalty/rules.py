"""Pure loyalty-programme rules for Tallypass: earning, redeeming, tiers, refunds,
FIFO point lots, stamps, threshold rewards, bonus periods and birthdays. Standard
library only and free of I/O; money is ``Decimal`` (2 dp), points are ``int``, and
every points rounding is DOWN using exact rational arithmetic (never float).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from app import errors

__all__ = [
    "RuleViolation",
    "MAX_POINTS",
    "check_amount",
    "check_points",
    "money_for",
    "earn_points",
    "max_redeemable",
    "PurchasePlan",
    "plan_purchase",
    "tier_for",
    "prorated",
    "RefundPlan",
    "plan_refund",
    "Lot",
    "consume_fifo",
    "expiry_for",
    "StampResult",
    "add_stamps",
    "remove_stamp",
    "threshold_rewards",
    "Period",
    "period_start",
    "bonus_allowed",
    "is_birthday",
]

T = TypeVar("T")
Period = Literal["day", "week", "month", "year", "lifetime"]

CENT = Decimal("0.01")
MAX_POINTS = 2**31 - 1  # the most points a card (and one ledger entry) holds: the database's integer
ZERO_MONEY = Decimal("0.00")
_HUNDRED = Decimal(100)
_PERIODS: frozenset[str] = frozenset({"day", "week", "month", "year", "lifetime"})


class RuleViolation(errors.RuleViolation):
    """A request that breaks a programme rule; the web layer answers 422 problem+json."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(
            message, code=code, errors=[errors.FieldError(field, message)] if field else None
        )
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- helpers


def _ratio(value: Decimal | int) -> tuple[int, int]:
    """Exact (numerator, denominator) of a finite Decimal or int."""
    if isinstance(value, int):
        return value, 1
    if not value.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return value.as_integer_ratio()


def _floor_div(numerators: Sequence[Decimal | int], denominators: Sequence[Decimal | int]) -> int:
    """floor(prod(numerators) / prod(denominators)), exactly.

    Decimal arithmetic is bounded by the context precision (28 digits by default), so
    the product is computed on integer ratios instead; nothing can round.
    """
    num, den = 1, 1
    for value in numerators:
        n, d = _ratio(value)
        num, den = num * n, den * d
    for value in denominators:
        n, d = _ratio(value)
        if n == 0:
            raise ZeroDivisionError("division by zero")
        num, den = num * d, den * n
    if den < 0:
        num, den = -num, -den
    return num // den


def _check_point_value(point_value: Decimal) -> None:
    if not point_value.is_finite() or point_value <= 0:
        raise ValueError(f"point_value must be > 0, got {point_value}")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- bounds


def check_amount(amount: Decimal, limit: Decimal, *, field: str = "amount") -> None:
    """Refuse an amount over the programme's largest purchase amount (``Program.max_purchase_amount``).

    :raise RuleViolation: ``amount-over-limit``, naming the limit.
    """
    if amount > limit:
        raise RuleViolation(
            "amount-over-limit",
            f"The amount {_money(amount)} is over {_money(limit)}, the largest purchase amount this programme "
            "accepts (the programme setting max_purchase_amount).",
            field,
        )


def check_points(balance: int, *, field: str = "amount") -> None:
    """Refuse a change that would leave a card with more points than it can hold.

    :raise RuleViolation: ``points-over-limit``.
    """
    if balance > MAX_POINTS:
        raise RuleViolation(
            "points-over-limit",
            f"This would give the card {balance} points; a card holds at most {MAX_POINTS}.",
            field,
        )


# --------------------------------------------------------------------------- points / money


def money_for(points: int, point_value: Decimal) -> Decimal:
    """Money value of ``points``, quantized to 0.01.

    ROUND_HALF_UP only matters for point values with more than 2 decimals; with the
    usual ≤ 2 dp point value the product is already exact.
    """
    _check_point_value(point_value)
    if points < 0:
        raise ValueError(f"points must be >= 0, got {points}")
    return _money(Decimal(points) * point_value)


def earn_points(paid: Decimal, earn_percent: Decimal, point_value: Decimal) -> int:
    """Points earned on the money part of a purchase: floor(paid × earn% / 100 / point_value)."""
    _check_point_value(point_value)
    if paid < 0:
        raise RuleViolation("negative-amount", f"Amount must not be negative (got {paid}).")
    if earn_percent < 0:
        raise ValueError(f"earn_percent must be >= 0, got {earn_percent}")
    return _floor_div([paid, earn_percent], [_HUNDRED, point_value])


def max_redeemable(*, balance: int, amount: Decimal, cap_percent: Decimal, point_value: Decimal) -> int:
    """Most points redeemable on ``amount``: the balance limited by the cap; never negative."""
    _check_point_value(point_value)
    if cap_percent < 0:
        raise ValueError(f"cap_percent must be >= 0, got {cap_percent}")
    cap_points = _floor_div([amount, cap_percent], [_HUNDRED, point_value])
    return max(0, min(balance, cap_points))


# --------------------------------------------------------------------------- purchases


@dataclass(frozen=True)
class PurchasePlan:
    redeemed: int
    discount: Decimal
    amount_due: Decimal
    earned: int


def plan_purchase(
    *,
    amount: Decimal,
    redeem_points: int,
    balance: int,
    earn_percent: Decimal,
    cap_percent: Decimal,
    point_value: Decimal,
) -> PurchasePlan:
    """Redeem first, then earn on the part of ``amount`` paid in money."""
    _check_point_value(point_value)
    if amount < 0:
        raise RuleViolation("negative-amount", f"Amount must not be negative (got {amount}).", "amount")
    if redeem_points < 0:
        raise RuleViolation(
            "invalid-points", f"Points to redeem must not be negative (got {redeem_points}).", "redeem_points"
        )
    if redeem_points > balance:
        raise RuleViolation(
            "insufficient-points",
            f"Cannot redeem {redeem_points} points: the balance is {max(balance, 0)}.",
            "redeem_points",
        )
    if cap_percent < 0:
        raise ValueError(f"cap_percent must be >= 0, got {cap_percent}")
    limit = _floor_div([amount, cap_percent], [_HUNDRED, point_value])
    if redeem_points > limit:
        raise RuleViolation(
            "over-redemption-cap",
            f"At most {limit} points can be redeemed on this purchase ({cap_percent}% of {amount}).",
            "redeem_points",
        )
    discount = money_for(redeem_points, point_value)
    amount_due = max(_money(amount - discount), ZERO_MONEY)
    earned = earn_points(amount_due, earn_percent, point_value)
    check_points(balance - redeem_points + earned)
    return PurchasePlan(redeemed=redeem_points, discount=discount, amount_due=amount_due, earned=earned)


# --------------------------------------------------------------------------- tiers


def tier_for(spend: Decimal, thresholds: Sequence[tuple[T, Decimal]]) -> T | None:
    """Tier with the highest qualifying spend ≤ ``spend`` (input order irrelevant; ties: first wins)."""
    best: T | None = None
    best_threshold: Decimal | None = None
    for tier, threshold in thresholds:
        if threshold <= spend and (best_threshold is None or threshold > best_threshold):
            best, best_threshold = tier, threshold
    return best


# --------------------------------------------------------------------------- refunds


def prorated(total: int, purchase_amount: Decimal, refunded_before: Decimal, refund_amount: Decimal) -> int:
    """Share of ``total`` points that belongs to this refund.

    Computed as the difference of two cumulative floors, so successive partial
    refunds always add up exactly to ``total`` once the purchase is fully refunded.
    A zero-amount purchase is never refundable: any positive refund exceeds it.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if refunded_before < 0:
        raise ValueError(f"refunded_before must be >= 0, got {refunded_before}")
    if refund_amount <= 0:
        raise RuleViolation("negative-amount", f"Refund amount must be positive (got {refund_amount}).", "amount")
    refunded_after = refunded_before + refund_amount
    if refunded_after > purchase_amount:
        remainder = max(purchase_amount - refunded_before, Decimal(0))
        raise RuleViolation(
            "refund-exceeds-purchase",
            f"Refund of {refund_amount} exceeds what can still be refunded ({_money(remainder)}).",
            "amount",
        )
    if purchase_amount == 0:  # unreachable after the checks above; kept as a guard
        return total
    return _floor_div([total, refunded_after], [purchase_amount]) - _floor_div(
        [total, refunded_before], [purchase_amount]
    )


@dataclass(frozen=True)
class RefundPlan:
    points_returned: int
    points_reversed: int
    reversal_shortfall: int


def plan_refund(
    *,
    purchase_amount: Decimal,
    refunded_before: Decimal,
    refund_amount: Decimal,
    earned: int,
    redeemed: int,
    balance: int,
) -> RefundPlan:
    """Return redeemed points pro rata, then reverse earned points pro rata.

    Returned points are credited first so they can cover the reversal; the reversal
    never takes the balance below zero and whatever cannot be taken is reported as
    ``reversal_shortfall``.
    """
    returned = prorated(redeemed, purchase_amount, refunded_before, refund_amount)
    due = prorated(earned, purchase_amount, refunded_before, refund_amount)
    reversed_ = max(0, min(due, balance + returned))
    return RefundPlan(points_returned=returned, points_reversed=reversed_, reversal_shortfall=due - reversed_)


# --------------------------------------------------------------------------- lots


@dataclass(frozen=True)
class Lot:
    id: int
    remaining: int
    expires_at: datetime | None


def _fifo_key(lot: Lot) -> tuple[bool, datetime | int, int]:
    # Never-expiring lots sort last; the placeholder 0 is only ever compared with itself.
    return (lot.expires_at is None, lot.expires_at if lot.expires_at is not None else 0, lot.id)


def consume_fifo(lots: Sequence[Lot], points: int) -> list[tuple[int, int]]:
    """Take ``points`` from lots, soonest-expiring first; returns [(lot_id, taken), ...]."""
    if points < 0:
        raise ValueError(f"points must be >= 0, got {points}")
    if points == 0:
        return []
    usable = sorted((lot for lot in lots if lot.remaining > 0), key=_fifo_key)
    available = sum(lot.remaining for lot in usable)
    if available < points:
        raise RuleViolation("insufficient-points", f"Cannot take {points} points: only {available} available.")
    taken: list[tuple[int, int]] = []
    left = points
    for lot in usable:
        take = min(lot.remaining, left)
        taken.append((lot.id, take))
        left -= take
        if left == 0:
            break
    return taken


def expiry_for(earned_at: datetime, expiry_days: int | None) -> datetime | None:
    """When points earned at ``earned_at`` expire; None means they never do."""
    if expiry_days is None:
        return None
    if expiry_days < 1:
        raise ValueError(f"expiry_days must be >= 1 or None, got {expiry_days}")
    return earned_at + timedelta(days=expiry_days)


# --------------------------------------------------------------------------- stamps


@dataclass(frozen=True)
class StampResult:
    stamps: int
    rewards: int
    added: int


def add_stamps(*, stamps: int, amount: Decimal, min_amount: Decimal, required: int) -> StampResult:
    """Add one stamp for a qualifying purchase; every ``required`` stamps become a reward."""
    if required < 1:
        raise ValueError(f"required must be >= 1, got {required}")
    if stamps < 0:
        raise ValueError(f"stamps must be >= 0, got {stamps}")
    if amount < 0:
        raise RuleViolation("negative-amount", f"Amount must not be negative (got {amount}).", "amount")
    added = 1 if amount >= min_amount else 0
    total = stamps + added
    return StampResult(stamps=total % required, rewards=total // required, added=added)


def remove_stamp(*, stamps: int) -> int:
    """Stamp count after refunding a stamped purchase (an already-converted stamp is not clawed back)."""
    return max(stamps - 1, 0)


# --------------------------------------------------------------------------- threshold rewards


def threshold_rewards(balance: int, threshold: int | None) -> int:
    """How many threshold rewards (e.g. gift certificates) ``balance`` converts into now."""
    if threshold is None:
        return 0
    if threshold < 1:
        raise ValueError(f"threshold must be >= 1 or None, got {threshold}")
    return max(balance, 0) // threshold


# --------------------------------------------------------------------------- bonus periods


def period_start(now: datetime, period: Period, tz: str = "UTC") -> datetime | None:
    """Start of the calendar ``period`` containing ``now`` in zone ``tz``, as aware UTC.

    Weeks start Monday 00:00 local time; "lifetime" has no lower bound (None). A local
    midnight that falls in a DST gap resolves to the first instant of the day.
    """
    if period not in _PERIODS:
        raise ValueError(f"unknown period {period!r}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if period == "lifetime":
        return None
    zone = ZoneInfo(tz)
    local_day = now.astimezone(zone).date()
    if period == "day":
        start = local_day
    elif period == "week":
        start = local_day - timedelta(days=local_day.weekday())
    elif period == "month":
        start = local_day.replace(day=1)
    else:
        start = local_day.replace(month=1, day=1)
    return datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC)


def bonus_allowed(*, used_in_period: int, limit: int | None) -> bool:
    """Whether one more event bonus fits within the per-period limit (None = unlimited)."""
    return limit is None or used_in_period < limit


# --------------------------------------------------------------------------- birthdays


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_birthday(birthday: date | None, today: date) -> bool:
    """Whether ``today`` is the birthday; 29 February is celebrated on 28 February in non-leap years."""
    if birthday is None:
        return False
    if birthday.month == 2 and birthday.day == 29 and not _is_leap(today.year):
        return today.month == 2 and today.day == 28
    return (birthday.month, birthday.day) == (today.month, today.day)
