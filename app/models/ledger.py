"""The append-only points ledger and the receipt-level records it links to.

Invariant: ``card.balance == sum(entry.points)`` and no entry ever changes its points. Credit entries
(earn, bonus, returned redemptions, positive adjustments) are FIFO lots: ``remaining`` is what is left
of them to spend or expire; debits consume lots, soonest-expiring first.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.customer import Card
from app.models.program import MONEY

LEDGER_KINDS = (
    "earn",  # points for the money part of a purchase
    "redeem",  # points spent at the till
    "bonus",  # welcome, birthday, referral, non-purchase events
    "expire",  # lots that reached their expiry date
    "adjust",  # manual correction, with a reason
    "refund_reversal",  # earned points taken back when a purchase is refunded
    "refund_return",  # redeemed points given back when a purchase is refunded
    "reward",  # points converted into a threshold reward
)


class Purchase(Base):
    __tablename__ = "purchase"
    __table_args__ = (
        UniqueConstraint("store_id", "receipt_id"),
        Index("ix_purchase_card_occurred", "card_id", "occurred_at"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        CheckConstraint("refunded_amount <= amount", name="refund_within_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id"))
    receipt_id: Mapped[str] = mapped_column(String(128))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    redeemed_points: Mapped[int] = mapped_column(default=0)
    discount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    amount_due: Mapped[Decimal] = mapped_column(MONEY)
    earned_points: Mapped[int] = mapped_column(default=0)
    stamped: Mapped[bool] = mapped_column(default=False)
    refunded_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    card: Mapped[Card] = relationship()


class Refund(Base):
    __tablename__ = "refund"
    __table_args__ = (
        UniqueConstraint("store_id", "refund_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id"))
    refund_id: Mapped[str] = mapped_column(String(128))
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchase.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    points_reversed: Mapped[int] = mapped_column(default=0)
    points_returned: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purchase: Mapped[Purchase] = relationship()


class LedgerEntry(Base):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('earn', 'redeem', 'bonus', 'expire', 'adjust', 'refund_reversal', "
            "'refund_return', 'reward')",
            name="kind",
        ),
        CheckConstraint("remaining IS NULL OR (remaining >= 0 AND remaining <= points)", name="remaining"),
        Index("ix_ledger_entry_card_created", "card_id", "created_at"),
        # Open lots per card, for FIFO consumption and the expiry job.
        Index(
            "ix_ledger_entry_open_lots",
            "card_id",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"))
    kind: Mapped[str] = mapped_column(String(20))
    points: Mapped[int]
    remaining: Mapped[int | None]  # credit lots only
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchase.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refund.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    reason: Mapped[str] = mapped_column(String(255), default="")
    actor: Mapped[str] = mapped_column(String(120), default="")  # "store:3", "user:7", "system"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purchase: Mapped[Purchase | None] = relationship()


class BonusEvent(Base):
    """A non-purchase event posted by a POS; ``event_id`` is unique per store like a receipt."""

    __tablename__ = "bonus_event"
    __table_args__ = (
        UniqueConstraint("store_id", "event_id"),
        Index("ix_bonus_event_card_name", "card_id", "name", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id"))
    event_id: Mapped[str] = mapped_column(String(128))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"))
    name: Mapped[str] = mapped_column(String(64))
    bonus: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reward(Base):
    """A reward the card earned: a free item from a full stamp card, or a certificate at a threshold.

    ``quantity`` rewards of the same kind earned by one change (a purchase crossing the threshold several
    times) are one row with one code, worth ``quantity × value``: the work of issuing them does not grow with
    their number."""

    __tablename__ = "reward"
    __table_args__ = (
        CheckConstraint("kind IN ('stamps', 'threshold')", name="kind"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    value: Mapped[Decimal | None] = mapped_column(MONEY)  # of one; the row is worth quantity × value
    quantity: Mapped[int] = mapped_column(default=1, server_default="1")
    code: Mapped[str] = mapped_column(String(32), unique=True)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchase.id"))
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    purchase: Mapped[Purchase | None] = relationship()
