"""Text messages: each SMS we handed to the gateway with its delivery status, and the numbers that
told a sender STOP (carriers require honouring it per sender number)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class SmsMessage(Base):
    __tablename__ = "sms_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    to: Mapped[str] = mapped_column(String(20))  # E.164
    sender: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(String(1600))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)  # the gateway's message id
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, sent, delivered, failed, ...
    error_code: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsStatusReport(Base):
    """A delivery-status report the gateway sent before the message it is about was committed here.

    A campaign batch records its texts (``SmsMessage``, ``Delivery.provider_id``) when the whole batch
    commits, seconds after the first went out, while the gateway reports "sent" and "delivered" within
    seconds; such an early report is kept here and applied once the message exists
    (``messaging.sms.apply_early_reports``, every minute). Reports that never find their message (a text
    whose batch was lost, or one sent by another application on the account) are dropped after a day."""

    __tablename__ = "sms_status_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsOptOut(Base):
    """``phone`` sent STOP to ``sender``; removed by START."""

    __tablename__ = "sms_opt_out"
    __table_args__ = (UniqueConstraint("phone", "sender"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    sender: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PhoneCheck(Base):
    """A one-time code sent by SMS to prove someone holds a phone (signing up with a number that
    already has a card). Stored as a keyed hash; a few attempts, a few minutes."""

    __tablename__ = "phone_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
