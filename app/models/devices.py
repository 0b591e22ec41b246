"""Phones that asked to hear about a card's changes: Apple Wallet devices and their registrations.

Apple's suggested storage (Wallet Developer Guide, "Adding a Web Service"; ../shared/reference/
apple_wallet.md §3): devices (library id, push token), passes, and the many-to-many link between them.
One push token serves every pass of a pass type on that device.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.db import Base, UTCDateTime, utcnow


class AppleDevice(Base):
    """A Wallet installation (``deviceLibraryIdentifier``) and the push token it last gave us."""

    __tablename__ = "apple_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[str] = mapped_column(String(64), unique=True)
    push_token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppleRegistration(Base):
    """This device wants pushes for this card."""

    __tablename__ = "apple_registration"
    __table_args__ = (UniqueConstraint("device_id", "card_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("apple_device.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebPushSubscription(Base):
    """A browser's push subscription (Push API ``PushSubscription.toJSON()``), for a customer who
    opted in on the card page. Deleted when the push service answers 404 or 410. It never moves to another
    customer (app.messaging.webpush: whoever once saw its endpoint and keys could claim it); the browser
    subscribes afresh instead."""

    __tablename__ = "web_push_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))  # the browser's ECDH public key, base64url
    auth: Mapped[str] = mapped_column(String(100))  # the 16-byte auth secret, base64url
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(default=0)

    @validates("customer_id")
    def _stays_with_its_customer(self, _: str, customer_id: int) -> int:
        if self.customer_id is not None and customer_id != self.customer_id:
            raise ValueError("a web push subscription never moves to another customer; the browser subscribes "
                             "afresh (app.messaging.webpush)")
        return customer_id
