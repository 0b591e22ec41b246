"""What Google Wallet holds of ours: a loyalty class per programme and an object per card, with what
we last sent and the notifications an object has used (Google allows 3 per pass per 24 h;
../shared/reference/google_wallet.md §4), and what Google last refused: the digest of that content (it is
not sent again until it changes) and Google's answer (also shown once in the channel outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class GoogleClass(Base):
    __tablename__ = "google_class"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), unique=True)
    class_id: Mapped[str] = mapped_column(String(160), unique=True)
    content_digest: Mapped[str] = mapped_column(String(64), default="")  # of the class last sent
    inserted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # Google confirmed it exists
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    refused_digest: Mapped[str | None] = mapped_column(String(64))  # of the content Google last refused
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refusal: Mapped[str | None] = mapped_column(String(1000))  # Google's answer: status, reason, message


class GoogleObject(Base):
    __tablename__ = "google_object"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id", ondelete="CASCADE"), unique=True)
    object_id: Mapped[str] = mapped_column(String(160), unique=True)
    synced_version: Mapped[int] = mapped_column(default=0)  # the card version Google (or the outbox) has
    inserted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # Google confirmed it exists
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # ISO timestamps of the notifications sent in the last 24 h (pruned on every write).
    notifications: Mapped[list[str]] = mapped_column(JSON, default=list)
    refused_digest: Mapped[str | None] = mapped_column(String(64))  # of the content Google last refused
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refusal: Mapped[str | None] = mapped_column(String(1000))  # Google's answer: status, reason, message
