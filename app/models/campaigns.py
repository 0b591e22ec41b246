"""Campaigns: a message to a segment over an ordered list of channels, with A/B variants, a holdout, and
one ``Delivery`` row per customer (unique per campaign, so nobody is messaged twice)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.program import PERCENT

CAMPAIGN_STATES = ("draft", "scheduled", "running", "paused", "finished", "cancelled")
DELIVERY_STATES = ("queued", "sending", "sent", "delivered", "failed", "skipped", "holdout")
CAMPAIGN_CHANNELS = ("wallet", "push", "sms")


class Campaign(Base):
    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint("state IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled')",
                        name="state"),
        CheckConstraint("holdout_percent >= 0 AND holdout_percent <= 50", name="holdout_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segment.id", ondelete="SET NULL"))  # None: everyone
    state: Mapped[str] = mapped_column(String(16), default="draft")
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)  # in order of preference
    holdout_percent: Mapped[Decimal] = mapped_column(PERCENT, default=Decimal("0"))
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # offer and geo locations last until then
    geo_store_ids: Mapped[list[int] | None] = mapped_column(JSON)  # a geo campaign's stores
    quiet_start_hour: Mapped[int] = mapped_column(default=21)  # customer's local time
    quiet_end_hour: Mapped[int] = mapped_column(default=9)
    max_per_week: Mapped[int | None]  # frequency cap per customer over every campaign
    conversion_days: Mapped[int] = mapped_column(default=7)
    error_threshold_percent: Mapped[int] = mapped_column(default=20)  # auto-pause above it
    automation: Mapped[str | None] = mapped_column(String(32), index=True)  # welcome, birthday, ... templates
    pause_reason: Mapped[str | None] = mapped_column(String(255))
    audience_size: Mapped[int | None]
    materialised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    variants: Mapped[list[CampaignVariant]] = relationship(back_populates="campaign", order_by="CampaignVariant.id",
                                                           cascade="all, delete-orphan")


class CampaignVariant(Base):
    """One version of the message; customers are split between variants by weight."""

    __tablename__ = "campaign_variant"
    __table_args__ = (UniqueConstraint("campaign_id", "name"), CheckConstraint("weight > 0", name="weight_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    weight: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(String(120), default="")
    body: Mapped[str] = mapped_column(Text)  # a sandboxed Jinja template: {{ first_name }}, {{ balance }}, ...
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    campaign: Mapped[Campaign] = relationship(back_populates="variants")


PENDING = "status IN ('queued', 'sending')"


class Delivery(Base):
    """A campaign's message to one customer: which variant (none for the holdout), which channel, what
    happened. Senders claim ``queued`` rows in batches under a lease; a crashed worker's lease expires."""

    __tablename__ = "delivery"
    __table_args__ = (
        # An automation messages a customer again on each occurrence (a birthday's year, a tier change...).
        UniqueConstraint("campaign_id", "customer_id", "occurrence"),
        Index("ix_delivery_campaign_status", "campaign_id", "status"),
        Index("ix_delivery_customer_sent", "customer_id", "sent_at"),
        # What is left to send, in claiming order (``send.claim``): first attempts by id, then retries.
        # PostgreSQL cannot get this order from the primary key, so it reads the batch here; ordered by id
        # alone it walked the primary key past every row already sent (it cannot know those are the low ids).
        Index("ix_delivery_pending", "campaign_id", "attempts", "id", postgresql_where=text(PENDING),
              sqlite_where=text(PENDING)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_variant.id", ondelete="SET NULL"))
    occurrence: Mapped[str] = mapped_column(String(40), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(String(64))  # why skipped or failed
    channel: Mapped[str | None] = mapped_column(String(16))
    # A resend of a message that may have arrived (``send.retry``, "interrupted"): it goes out on this channel
    # only, where the copy replaces the first; None: on the campaign's first channel that reaches the customer.
    resend_channel: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    # the channel's id of what it sent (an SMS sid…); indexed: each delivery report looks its row up by it
    provider_id: Mapped[str | None] = mapped_column(String(120), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # quiet hours: wait until then
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
