"""The channels a campaign message can go out on, behind one small interface (STYLE.md: a registry of
strategies). Each answers whether it can reach a customer now and sends one rendered message.

- ``wallet``: the text becomes the card's offer field (its changeMessage ``%@`` shows it on the lock
  screen after the APNs push the version bump triggers) and a Google Wallet message
  (``TEXT_AND_NOTIFY`` within Google's budget);
- ``push``: a web-push notification to the customer's browsers;
- ``sms``: a text through the gateway (per-sender STOP honoured).

Without credentials each still "sends" into the channel outbox, so campaigns run end to end anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.campaigns.templating import Rendered
from app.channels.google_wallet import GoogleWalletClient
from app.channels.sms import SmsClient, SmsUnavailable
from app.channels.webpush import WebPusher
from app.loyalty import ledger
from app.messaging import sms as sms_service
from app.messaging import webpush
from app.models import AppleRegistration, Card, Delivery, GoogleObject, SmsOptOut, WebPushSubscription
from app.wallet import google
from app.wallet.google import GoogleSetup

OFFER_LENGTH = 255


class SendFailed(Exception):
    """The channel could not deliver; ``retry`` says whether trying again later may work."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason, self.retry = reason, retry


class Channel(Protocol):
    name: str
    repeatable: bool  # sending the same delivery twice shows the customer one message (see send.prepare)

    def reachable(self, session: Session, card: Card) -> bool: ...

    def opted_out(self, session: Session, card: Card) -> bool:
        """The customer said no to this channel (withdrew consent, or STOP to the SMS sender)."""
        ...

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered,
             now: datetime) -> str | None: ...


def _consent(card: Card, channel: str) -> bool:
    return any(c.channel == channel and c.granted for c in card.customer.consents)


def _withdrawn(card: Card, channel: str) -> bool:
    return any(c.channel == channel and not c.granted for c in card.customer.consents)


@dataclass
class WalletChannel:
    google_setup: GoogleSetup | None
    google_client: GoogleWalletClient | None
    name: str = "wallet"
    repeatable: bool = True  # the same offer on the pass again, and a Google message with the same id

    def reachable(self, session: Session, card: Card) -> bool:
        if not _consent(card, "wallet"):
            return False
        apple = exists().where(AppleRegistration.card_id == card.id)
        saved = exists().where(GoogleObject.card_id == card.id, GoogleObject.inserted_at.is_not(None))
        return bool(session.scalar(select(apple | saved)))

    def opted_out(self, session: Session, card: Card) -> bool:
        return _withdrawn(card, "wallet")

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered, now: datetime) -> str:
        card.offer_text = message.body[:OFFER_LENGTH]
        ledger.touch(session, card, now=now, reasons=["offer"], campaign_id=delivery.campaign_id)
        if self.google_setup is not None:
            google.send_message(session, setup=self.google_setup, card=card, header=message.title or card.program.name,
                                body=message.body, message_id=f"campaign-{delivery.campaign_id}",
                                client=self.google_client, now=now)
        return f"card-version-{card.version}"


@dataclass
class PushChannel:
    pusher: WebPusher | None
    name: str = "push"
    repeatable: bool = False  # a notification already shown would show again

    def reachable(self, session: Session, card: Card) -> bool:
        return _consent(card, "push") and bool(session.scalar(
            select(exists().where(WebPushSubscription.customer_id == card.customer_id))))

    def opted_out(self, session: Session, card: Card) -> bool:
        return _withdrawn(card, "push")

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered, now: datetime) -> None:
        payload = {"title": message.title or card.program.name, "body": message.body,
                   "tag": f"campaign-{delivery.campaign_id}", "url": None}
        sent = webpush.notify_customer(session, customer_id=card.customer_id, payload=payload, pusher=self.pusher,
                                       now=now, topic=f"campaign{delivery.campaign_id}", card_id=card.id)
        if self.pusher is not None and sent == 0:
            raise SendFailed("no browser took the notification", retry=False)
        return None


@dataclass
class SmsChannel:
    client: SmsClient | None
    sender: str
    name: str = "sms"
    repeatable: bool = False  # Twilio-style gateways have no idempotency key: a second POST is a second text

    def reachable(self, session: Session, card: Card) -> bool:
        phone = card.customer.phone
        if not phone or not _consent(card, "sms"):
            return False
        return not session.scalar(select(exists().where(SmsOptOut.phone == phone, SmsOptOut.sender == self.sender)))

    def opted_out(self, session: Session, card: Card) -> bool:
        phone = card.customer.phone
        return _withdrawn(card, "sms") or bool(phone and session.scalar(
            select(exists().where(SmsOptOut.phone == phone, SmsOptOut.sender == self.sender))))

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered, now: datetime) -> str:
        try:
            record = sms_service.send_sms(session, to=card.customer.phone, body=message.body, sender=self.sender,
                                          client=self.client, customer_id=card.customer_id, now=now)
        except SmsUnavailable as exc:
            raise SendFailed(f"the SMS gateway is unavailable: {exc}", retry=not exc.possibly_sent) from exc
        if record.status in ("failed", "skipped"):
            raise SendFailed(f"sms {record.status}: {record.error_code}", retry=False)
        return record.provider_sid or f"sms-{record.id}"
