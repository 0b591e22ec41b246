"""Programme templates a merchant recognises: a coffee shop's stamp card (the 10th coffee free), café points,
retail cashback with tiers (3 % up to 10 %) and a beauty salon's card with a birthday bonus.

A template is only a starting point: it fills the programme's rules, tiers, bonus rules and card design when the
programme is created (``app.loyalty.program_creation``), and everything stays editable on the programme page
afterwards. The colours pass WCAG AA (4.5:1) for text on the card's background (a test checks it).
Amounts are in the programme's own currency, whatever it is; a merchant adjusts tier thresholds to their prices."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class TierTemplate:
    name: str
    qualifying_spend: Decimal
    earn_percent: Decimal
    perks: str = ""


@dataclass(frozen=True)
class BonusRuleTemplate:
    event_name: str
    points: int
    limit_per_period: int | None
    period: str


@dataclass(frozen=True)
class ProgramTemplate:
    name: str  # what the CLI, the API and the wizard call it
    title: str  # what a merchant reads
    description: str
    kind: str  # "points" or "stamps"
    settings: dict[str, Any]  # Program columns (rules, bonuses, terms)
    design: dict[str, str]  # Program colour columns
    tiers: tuple[TierTemplate, ...] = ()
    bonus_rules: tuple[BonusRuleTemplate, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (decimals as strings), for the API, the CLI and the wizard's preview."""
        def plain(value: Any) -> Any:
            return str(value) if isinstance(value, Decimal) else value

        return {
            "name": self.name, "title": self.title, "description": self.description, "kind": self.kind,
            "settings": {k: plain(v) for k, v in self.settings.items()}, "design": dict(self.design),
            "tiers": [{k: plain(v) for k, v in vars(t).items()} for t in self.tiers],
            "bonus_rules": [dict(vars(r)) for r in self.bonus_rules],
        }


TEMPLATES: dict[str, ProgramTemplate] = {t.name: t for t in (
    ProgramTemplate(
        name="coffee-stamps", title="Coffee stamp card",
        description="A stamp for every coffee; after 9 stamps the 10th coffee is free.",
        kind="stamps",
        settings={"stamps_required": 9, "stamp_min_amount": Decimal("0"), "stamp_reward": "Your 10th coffee free",
                  "welcome_bonus": 0, "birthday_bonus": 0, "referrer_bonus": 0, "referred_bonus": 0,
                  "terms": "One stamp for every coffee bought. After 9 stamps, the 10th coffee is free."},
        design={"background_color": "#3B2417", "foreground_color": "#FFFFFF", "label_color": "#F5D0A9"},
    ),
    ProgramTemplate(
        name="cafe-points", title="Café points",
        description="5 % of every bill back in points, a welcome gift, and a bonus for a review.",
        kind="points",
        settings={"point_value": Decimal("1.00"), "redeem_cap_percent": Decimal("50"), "expiry_days": 365,
                  "welcome_bonus": 20, "birthday_bonus": 50, "referrer_bonus": 30, "referred_bonus": 20,
                  "terms": "Earn 5 % of every bill in points; 1 point = 1 unit of currency. Points pay up to half "
                           "a bill and expire a year after they are earned."},
        design={"background_color": "#7C2D12", "foreground_color": "#FFFFFF", "label_color": "#FED7AA"},
        tiers=(TierTemplate("Member", Decimal("0"), Decimal("5")),),
        bonus_rules=(BonusRuleTemplate("review", 20, 1, "month"),),
    ),
    ProgramTemplate(
        name="retail-cashback", title="Retail cashback with tiers",
        description="Cashback in points from 3 % (Bronze) up to 10 % (Platinum) as yearly spend grows.",
        kind="points",
        settings={"point_value": Decimal("1.00"), "redeem_cap_percent": Decimal("30"), "expiry_days": 365,
                  "tier_window_days": 365, "welcome_bonus": 50, "birthday_bonus": 100, "referrer_bonus": 100,
                  "referred_bonus": 50,
                  "terms": "Cashback in points on every purchase: 3 % to 10 % by tier, from your spend over the "
                           "last 365 days. Points pay up to 30 % of a purchase and expire after a year."},
        design={"background_color": "#1E3A8A", "foreground_color": "#FFFFFF", "label_color": "#BFDBFE"},
        tiers=(
            TierTemplate("Bronze", Decimal("0"), Decimal("3")),
            TierTemplate("Silver", Decimal("5000"), Decimal("5")),
            TierTemplate("Gold", Decimal("15000"), Decimal("7")),
            TierTemplate("Platinum", Decimal("40000"), Decimal("10"), "Early access to sales"),
        ),
    ),
    ProgramTemplate(
        name="beauty-salon", title="Beauty salon",
        description="Points on every visit, a birthday gift, and rewards for recommending a friend.",
        kind="points",
        settings={"point_value": Decimal("1.00"), "redeem_cap_percent": Decimal("50"), "expiry_days": 365,
                  "welcome_bonus": 50, "birthday_bonus": 200, "referrer_bonus": 150, "referred_bonus": 100,
                  "terms": "Earn points on every visit, a birthday gift of 200 points, and 150 points for each "
                           "friend you bring. Points pay up to half a visit."},
        design={"background_color": "#831843", "foreground_color": "#FFFFFF", "label_color": "#FBCFE8"},
        tiers=(
            TierTemplate("Client", Decimal("0"), Decimal("5")),
            TierTemplate("Regular", Decimal("3000"), Decimal("8"), "A free treatment upgrade each month"),
        ),
        bonus_rules=(BonusRuleTemplate("review", 50, 1, "month"),),
    ),
)}


def names() -> list[str]:
    return list(TEMPLATES)
