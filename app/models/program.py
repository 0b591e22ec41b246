"""The loyalty programme and its tiers and bonus rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.merchant import Store

MONEY = Numeric(12, 2)
PERCENT = Numeric(5, 2)

# The largest purchase a programme accepts unless its settings say otherwise: a typo or a scanned barcode in the
# amount field is refused instead of earning millions of points (docs/pos-api.md).
DEFAULT_MAX_PURCHASE_AMOUNT = Decimal("100000.00")
MAX_MONEY = Decimal("9999999999.99")  # what MONEY holds

CARD_KINDS = ("points", "stamps")
BONUS_PERIODS = ("day", "week", "month", "year", "lifetime")


class Program(Base):
    __tablename__ = "program"
    __table_args__ = (
        CheckConstraint("kind IN ('points', 'stamps')", name="kind"),
        CheckConstraint("point_value > 0", name="point_value_positive"),
        CheckConstraint("redeem_cap_percent >= 0 AND redeem_cap_percent <= 100", name="cap_range"),
        CheckConstraint("max_purchase_amount > 0", name="max_purchase_amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16), default="points")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # ISO 3166 region (e.g. "MD") for reading local phone numbers ("069 123 457") on the programme's pages and APIs;
    # None: the process-wide TALLYPASS_DEFAULT_PHONE_REGION (app.phones.region_for).
    phone_region: Mapped[str | None] = mapped_column(String(2))
    # Money value of one point; a purchase earns floor(paid × tier earn % / 100 / point_value).
    point_value: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("1.00"))
    redeem_cap_percent: Mapped[Decimal] = mapped_column(PERCENT, default=Decimal("50"))
    tier_window_days: Mapped[int] = mapped_column(default=365)
    # Purchases (and refunds, and the till's "how many points for this amount") over this are refused.
    max_purchase_amount: Mapped[Decimal] = mapped_column(MONEY, default=DEFAULT_MAX_PURCHASE_AMOUNT,
                                                         server_default=str(DEFAULT_MAX_PURCHASE_AMOUNT))
    expiry_days: Mapped[int | None]  # None: points never expire

    welcome_bonus: Mapped[int] = mapped_column(default=0)
    birthday_bonus: Mapped[int] = mapped_column(default=0)
    referrer_bonus: Mapped[int] = mapped_column(default=0)
    referred_bonus: Mapped[int] = mapped_column(default=0)

    # Stamp cards: a purchase of at least stamp_min_amount adds a stamp; stamps_required give the reward.
    stamps_required: Mapped[int | None]
    stamp_min_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    stamp_reward: Mapped[str | None] = mapped_column(String(120))

    # Threshold reward: at reward_threshold points, that many points become a reward (e.g. a certificate).
    reward_threshold: Mapped[int | None]
    reward_name: Mapped[str | None] = mapped_column(String(120))
    reward_value: Mapped[Decimal | None] = mapped_column(MONEY)

    # RFM: "quintile" scores (relative to the other customers) or "fixed" thresholds for small merchants:
    # rfm_thresholds = {"recency_days": [r5, r4, r3, r2], "frequency": [f2, f3, f4, f5], "monetary": [m2, m3, m4, m5]}
    rfm_mode: Mapped[str] = mapped_column(String(16), default="quintile")
    rfm_window_days: Mapped[int] = mapped_column(default=365)
    rfm_thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rfm_computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the scores are as of this moment

    terms: Mapped[str] = mapped_column(Text, default="")
    # The merchant's privacy policy (an https URL), linked from the sign-up and card pages; None: no link.
    privacy_policy_url: Mapped[str | None] = mapped_column(String(500))
    background_color: Mapped[str] = mapped_column(String(7), default="#1F2937")
    foreground_color: Mapped[str] = mapped_column(String(7), default="#FFFFFF")
    label_color: Mapped[str] = mapped_column(String(7), default="#FBBF24")
    logo_text: Mapped[str | None] = mapped_column(String(60))
    apple_pass_type_id: Mapped[str | None] = mapped_column(String(120))
    google_class_suffix: Mapped[str | None] = mapped_column(String(120))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tiers: Mapped[list[Tier]] = relationship(
        back_populates="program", order_by="Tier.qualifying_spend", cascade="all, delete-orphan"
    )
    bonus_rules: Mapped[list[BonusRule]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )
    stores: Mapped[list[Store]] = relationship(back_populates="program")


class Tier(Base):
    __tablename__ = "tier"
    __table_args__ = (
        UniqueConstraint("program_id", "name"),
        CheckConstraint("earn_percent >= 0 AND earn_percent <= 100", name="earn_range"),
        CheckConstraint("qualifying_spend >= 0", name="spend_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    # Spend over the programme's rolling window that qualifies for this tier.
    qualifying_spend: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    earn_percent: Mapped[Decimal] = mapped_column(PERCENT)
    perks: Mapped[str] = mapped_column(Text, default="")

    program: Mapped[Program] = relationship(back_populates="tiers")


class BonusRule(Base):
    """Points for a non-purchase event posted by the POS (a review, a check-in), with a per-period limit."""

    __tablename__ = "bonus_rule"
    __table_args__ = (
        UniqueConstraint("program_id", "event_name"),
        CheckConstraint("points >= 0", name="points_nonnegative"),
        CheckConstraint("period IN ('day', 'week', 'month', 'year', 'lifetime')", name="period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    event_name: Mapped[str] = mapped_column(String(64))
    points: Mapped[int]
    limit_per_period: Mapped[int | None]  # None: unlimited
    period: Mapped[str] = mapped_column(String(16), default="day")

    program: Mapped[Program] = relationship(back_populates="bonus_rules")
