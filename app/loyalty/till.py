"""What the till (``/till/``) shows before anything is recorded: a card's state, the most points that may pay
for an amount, and the purchase as it would be recorded (the confirmation step).

Pure reads over a loaded card, with the rules the ledger applies (``rules.plan_purchase``,
``rules.max_redeemable``, ``rules.check_amount``, ``rules.add_stamps``), so what the cashier confirms is what
``purchases.record`` then writes. The recording itself goes through the POS API's services unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.loyalty import rules
from app.models import Card

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Quote:
    """A purchase as the ledger would record it now."""

    amount: Decimal
    redeemed: int
    discount: Decimal
    amount_due: Decimal
    earned: int
    balance_after: int
    stamps_after: int | None  # stamp programmes only
    rewards: int  # stamp rewards the purchase completes


def max_redeemable(card: Card, amount: Decimal) -> int:
    """The most points that may pay for ``amount`` on this card (the balance, limited by the programme's cap)."""
    program = card.program
    if program.kind != "points":
        return 0
    return rules.max_redeemable(balance=card.balance, amount=amount, cap_percent=program.redeem_cap_percent,
                                point_value=program.point_value)


def quote(card: Card, *, amount: Decimal, redeem_points: int) -> Quote:
    """The purchase of ``amount`` paying ``redeem_points`` points, as ``ledger.record_purchase`` would record it.

    :raise RuleViolation: the same refusals as the ledger: amount over the programme's limit, points on a stamp
        card, more points than the balance or the cap allows.
    """
    program = card.program
    rules.check_amount(amount, program.max_purchase_amount)
    if program.kind == "stamps":
        if redeem_points:
            raise rules.RuleViolation("redemption-not-allowed", "A stamp card has no points to redeem.",
                                      "redeem_points")
        stamped = rules.add_stamps(stamps=card.stamps, amount=amount, min_amount=program.stamp_min_amount,
                                   required=program.stamps_required or 1)
        return Quote(amount=amount, redeemed=0, discount=ZERO, amount_due=amount, earned=0,
                     balance_after=card.balance, stamps_after=stamped.stamps, rewards=stamped.rewards)
    earn_percent = card.tier.earn_percent if card.tier is not None else Decimal("0")
    plan = rules.plan_purchase(amount=amount, redeem_points=redeem_points, balance=card.balance,
                               earn_percent=earn_percent, cap_percent=program.redeem_cap_percent,
                               point_value=program.point_value)
    return Quote(amount=amount, redeemed=plan.redeemed, discount=plan.discount, amount_due=plan.amount_due,
                 earned=plan.earned, balance_after=card.balance - plan.redeemed + plan.earned, stamps_after=None,
                 rewards=0)
