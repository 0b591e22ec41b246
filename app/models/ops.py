"""Operational records: stored POS responses for idempotent retries, the transactional outbox, and the
messages channels recorded instead of sending."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class IdempotencyRecord(Base):
    """The first response to a POS request with an ``Idempotency-Key``, replayed for 24 h."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("store_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int]
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class OutboxEvent(Base):
    """A fact written in the same transaction as the change it announces (``card.changed``,
    ``customer.enrolled``…). Handed to Celery after commit; a sweeper re-sends any left behind."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        # The events waiting, in the order they are claimed (by id): a claim reads its batch off the front
        # instead of sorting the whole backlog, which grows large while a campaign runs.
        Index(
            "ix_outbox_event_pending",
            "id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class ChannelMessage(Base):
    """What a channel would have sent, recorded because it has no credentials (CONTRACTS.md §2:
    "the matching channel writes to the outbox"). The dashboard lists these; nothing reads them back."""

    __tablename__ = "channel_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))  # "apns", "google_wallet", "web_push", "sms"
    recipient: Mapped[str] = mapped_column(String(255))  # a device token (shortened), an object id, a phone
    card_id: Mapped[int | None] = mapped_column(ForeignKey("card.id", ondelete="SET NULL"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AuditEvent(Base):
    """Who changed what (append-only), for the dashboard's audit log: ``actor`` is the user's e-mail, an API
    token's name, or "cli"; ``target`` is e.g. "card:12"; ``details`` holds what changed."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(120))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))
