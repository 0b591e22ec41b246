"""Customers, their per-channel consent, and their cards (customer × programme)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.program import MONEY

if TYPE_CHECKING:
    from app.models.program import Program, Tier

CONSENT_CHANNELS = ("sms", "email", "push", "wallet")


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    birthday: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    home_store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id"))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    rfm_recency: Mapped[int | None]
    rfm_frequency: Mapped[int | None]
    rfm_monetary: Mapped[int | None]
    rfm_segment: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    anonymized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    cards: Mapped[list[Card]] = relationship(back_populates="customer")
    consents: Mapped[list[Consent]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )


class Consent(Base):
    """Whether a customer agreed to hear from us on one channel, and when that last changed."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("customer_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(32), default="")  # "pos", "signup", "sms-stop", ...
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="consents")


class Card(Base):
    """A customer's card in one programme. ``version`` and ``updated_at`` change with every
    visible change; they drive PassKit ``lastUpdated``/``If-Modified-Since`` and Google sync."""

    __tablename__ = "card"
    __table_args__ = (
        UniqueConstraint("program_id", "customer_id"),
        CheckConstraint("balance >= 0", name="balance_nonnegative"),
        CheckConstraint("stamps >= 0", name="stamps_nonnegative"),
        Index("ix_card_program_updated", "program_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    serial: Mapped[str] = mapped_column(String(36), unique=True)
    barcode: Mapped[str] = mapped_column(String(32), unique=True)
    apple_auth_token: Mapped[str] = mapped_column(String(64))
    page_token: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | voided
    balance: Mapped[int] = mapped_column(default=0)
    stamps: Mapped[int] = mapped_column(default=0)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tier.id"))
    lifetime_spend: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    window_spend: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    offer_text: Mapped[str] = mapped_column(String(255), default="")
    # A campaign's offer lasts until its end (then the beat clears it); a geo campaign's stores replace the
    # nearest stores in the pass's locations and Google's merchantLocations meanwhile.
    offer_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    geo_locations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # [{latitude, longitude, name}]
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    program: Mapped[Program] = relationship()
    customer: Mapped[Customer] = relationship(back_populates="cards")
    tier: Mapped[Tier | None] = relationship()
