"""The channels a campaign message can go out on, behind one small interface (STYLE.md: a registry of
strategies). Each answers whether it can reach a customer now and sends one rendered message.

- ``wallet``: the text becomes the card's offer field (its changeMessage ``%@`` shows it on the lock
  screen after the APNs push the version bump triggers) and a Google Wallet message
  (``TEXT_AND_NOTIFY`` within Google's budget);
- ``push``: a web-push notification to the customer's browsers;
- ``sms``: a text through the gateway (per-sender STOP honoured). Every text asks the gateway for delivery
  reports (the client's ``StatusCallback``, /sms/status), which turn the delivery ``delivered``, or
  ``failed`` with the gateway's error code (``messaging.sms.record_report``).

Without credentials each still "sends" into the channel outbox, so campaigns run end to end anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.campaigns.templating import Rendered
from app.channels.google_wallet import GoogleConfigError, GoogleInvalid, GoogleWalletClient, GoogleWalletError
from app.channels.sms import SmsClient, SmsUnavailable
from app.channels.webpush import WebPusher
from app.loyalty import ledger
from app.messaging import sms as sms_service
from app.messaging import webpush
from app.models import (
    AppleRegistration,
    Campaign,
    Card,
    Consent,
    Delivery,
    GoogleObject,
    SmsOptOut,
    Store,
    WebPushSubscription,
)
from app.wallet import google
from app.wallet.google import GoogleSetup

OFFER_LENGTH = 255


class SendFailed(Exception):
    """The channel could not deliver; ``retry`` says whether trying again later may work. ``possibly_sent``:
    the message may have gone out all the same (a gateway error after it took the request), so the delivery
    is recorded as in doubt, not as failed (``send.UNCONFIRMED``)."""

    def __init__(self, reason: str, *, retry: bool, possibly_sent: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.possibly_sent = reason, retry, possibly_sent


class Channel(Protocol):
    name: str
    repeatable: bool  # sending the same delivery twice shows the customer one message (see send.prepare)

    def preload(self, session: Session, cards: Sequence[Card]) -> None:
        """Look up what ``reachable`` needs for a whole batch at once (one query, not one per card)."""
        ...

    def reachable(self, session: Session, card: Card) -> bool: ...

    def opted_out(self, session: Session, card: Card) -> bool:
        """The customer said no to this channel (withdrew consent, or STOP to the SMS sender)."""
        ...

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered,
             now: datetime) -> str | None: ...


Answers = dict[int, bool | None]  # customer id → consent to one channel: granted, withdrawn, or never given


def _answers(session: Session, channel: str, cards: Sequence[Card]) -> Answers:
    """A batch's consents to ``channel`` in one query of two columns (not a Consent object per customer)."""
    ids = [c.customer_id for c in cards]
    found = dict(session.execute(select(Consent.customer_id, Consent.granted)
                                 .where(Consent.customer_id.in_(ids), Consent.channel == channel)).all())
    return {i: found.get(i) for i in ids}


def _answer(answers: Answers, card: Card, channel: str) -> bool | None:
    if card.customer_id in answers:
        return answers[card.customer_id]
    return next((c.granted for c in card.customer.consents if c.channel == channel), None)  # not preloaded


def _consent(answers: Answers, card: Card, channel: str) -> bool:
    return _answer(answers, card, channel) is True


def _withdrawn(answers: Answers, card: Card, channel: str) -> bool:
    return _answer(answers, card, channel) is False


def geo_locations(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    """The campaign's stores as the pass and Google show them while it lasts (``Card.geo_locations``)."""
    stores = session.scalars(select(Store).where(Store.id.in_(campaign.geo_store_ids or []), Store.closed_at.is_(None))
                             .order_by(Store.id))
    return [{"latitude": s.latitude, "longitude": s.longitude, "name": s.name} for s in stores
            if s.latitude is not None and s.longitude is not None]


@dataclass
class WalletChannel:
    google_setup: GoogleSetup | None
    google_client: GoogleWalletClient | None
    name: str = "wallet"
    repeatable: bool = True  # the same offer on the pass again, and a Google message with the same id
    _geo: dict[int, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _apple: dict[int, bool] = field(default_factory=dict, repr=False)  # card id → on a device (preloaded)
    _google: dict[int, bool] = field(default_factory=dict, repr=False)  # card id → object at Google
    _answers: Answers = field(default_factory=dict, repr=False)

    def preload(self, session: Session, cards: Sequence[Card]) -> None:
        self._answers = _answers(session, self.name, cards)
        ids = [c.id for c in cards]
        apple = set(session.scalars(select(AppleRegistration.card_id).where(AppleRegistration.card_id.in_(ids))))
        on_google = set(session.scalars(select(GoogleObject.card_id).where(GoogleObject.card_id.in_(ids),
                                                                          GoogleObject.inserted_at.is_not(None))))
        self._apple = {i: i in apple for i in ids}
        self._google = {i: i in on_google for i in ids}

    def _on_google(self, session: Session, card: Card) -> bool:
        if card.id not in self._google:
            self._google[card.id] = bool(session.scalar(select(exists().where(
                GoogleObject.card_id == card.id, GoogleObject.inserted_at.is_not(None)))))
        return self._google[card.id]

    def reachable(self, session: Session, card: Card) -> bool:
        if not _consent(self._answers, card, "wallet"):
            return False
        if card.id not in self._apple:
            self._apple[card.id] = bool(session.scalar(select(exists().where(AppleRegistration.card_id == card.id))))
        return self._apple[card.id] or self._on_google(session, card)

    def opted_out(self, session: Session, card: Card) -> bool:
        return _withdrawn(self._answers, card, "wallet")

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered, now: datetime) -> str:
        result = self.send_many(session, items=[(delivery, card, message)], now=now)[0]
        if isinstance(result, SendFailed):
            raise result
        return result

    def send_many(self, session: Session, *, items: Sequence[tuple[Delivery, Card, Rendered]], now: datetime
                  ) -> list[str | None | SendFailed]:
        """A batch's offers written on their cards together (``ledger.touch_many``: one UPDATE, one INSERT
        of the events whose APNs pushes follow), then a Google message for each card that has an object
        there, each in a savepoint. One result per item, in order."""
        by_campaign: dict[int, list[tuple[Card, dict[str, Any]]]] = {}
        for delivery, card, message in items:
            campaign = session.get(Campaign, delivery.campaign_id)
            by_campaign.setdefault(delivery.campaign_id, []).append((card, {
                "offer_text": message.body[:OFFER_LENGTH], "offer_until": campaign.ends_at if campaign else None,
                "geo_locations": self._geo_for(session, campaign)}))
        for campaign_id, changes in by_campaign.items():
            ledger.touch_many(session, changes, now=now, reasons=["offer"], campaign_id=campaign_id)
        return [self._google_message(session, delivery, card, message, now) for delivery, card, message in items]

    def _geo_for(self, session: Session, campaign: Campaign | None) -> list[dict[str, Any]] | None:
        if campaign is None or not campaign.geo_store_ids:
            return None
        if campaign.id not in self._geo:  # once per sender, not per message
            self._geo[campaign.id] = geo_locations(session, campaign)
        return self._geo[campaign.id]

    def _google_message(self, session: Session, delivery: Delivery, card: Card, message: Rendered,
                        now: datetime) -> str | SendFailed:
        if self.google_setup is not None and self._on_google(session, card):  # not for an Apple-only card
            try:
                with session.begin_nested():
                    google.send_message(session, setup=self.google_setup, card=card,
                                        header=message.title or card.program.name, body=message.body,
                                        message_id=f"campaign-{delivery.campaign_id}", client=self.google_client,
                                        now=now)
            except GoogleWalletError as exc:  # the pass has the offer; trying again repeats it invisibly
                if isinstance(exc, GoogleInvalid):  # the same message would be refused again: not retried
                    google.note_refusal(session, exc=exc, card_id=card.id, recipient=google.object_id(
                        self.google_setup, card), now=now)
                return SendFailed(f"google wallet: {exc}",
                                  retry=not isinstance(exc, GoogleConfigError | GoogleInvalid))
        return f"card-version-{card.version}"


def push_topic(key: bytes, *, campaign_id: int, customer_id: int) -> str:
    """The web-push ``Topic`` of one campaign's message to one customer (RFC 8030 §5.4: a message still
    waiting at the push service, say for a phone that is off, is replaced by a newer one with the same
    topic). Every attempt of a delivery has the same topic, so a resent message replaces a copy not yet
    delivered instead of following it. 32 base64url characters (the most §5.4 allows) of an HMAC keyed by the
    deployment's secret: the push service sees the topics, and must not learn which subscriptions got the
    same campaign, which a plain "campaign42" would tell it."""
    digest = hmac.new(key, f"campaign:{campaign_id}:customer:{customer_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")  # 24 bytes: 32 characters, no padding


def push_tag(campaign_id: int) -> str:
    """The notification's ``tag`` (app/static/sw.js): a browser shows one notification per tag, so a copy
    that did arrive twice replaces the first on screen instead of stacking a second one."""
    return f"campaign-{campaign_id}"


@dataclass
class PushChannel:
    pusher: WebPusher | None
    topic_key: bytes = b""  # keys ``push_topic``; the deployment's secret (tasks.campaigns.campaign_channels)
    name: str = "push"
    repeatable: bool = False  # a notification already dismissed would show again
    _subscribed: dict[int, bool] = field(default_factory=dict, repr=False)  # customer id → has a browser
    _answers: Answers = field(default_factory=dict, repr=False)

    def preload(self, session: Session, cards: Sequence[Card]) -> None:
        self._answers = _answers(session, self.name, cards)
        ids = [c.customer_id for c in cards]
        found = set(session.scalars(select(WebPushSubscription.customer_id)
                                    .where(WebPushSubscription.customer_id.in_(ids))))
        self._subscribed = {i: i in found for i in ids}

    def reachable(self, session: Session, card: Card) -> bool:
        if not _consent(self._answers, card, "push"):
            return False
        if card.customer_id not in self._subscribed:
            self._subscribed[card.customer_id] = bool(session.scalar(
                select(exists().where(WebPushSubscription.customer_id == card.customer_id))))
        return self._subscribed[card.customer_id]

    def opted_out(self, session: Session, card: Card) -> bool:
        return _withdrawn(self._answers, card, "push")

    def topic(self, delivery: Delivery, card: Card) -> str:
        return push_topic(self.topic_key, campaign_id=delivery.campaign_id, customer_id=card.customer_id)

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered, now: datetime) -> None:
        sent = webpush.notify_customer(session, customer_id=card.customer_id,
                                       payload=self._payload(delivery, card, message), pusher=self.pusher,
                                       now=now, topic=self.topic(delivery, card), card_id=card.id)
        if self.pusher is not None and sent == 0:
            raise SendFailed("no browser took the notification", retry=False)
        return None

    def send_many(self, session: Session, *, items: Sequence[tuple[Delivery, Card, Rendered]], now: datetime
                  ) -> list[str | None | SendFailed] | None:
        """A batch's pushes side by side (``webpush.notify_many``); one result per item, in order. None
        (send them one by one) in outbox mode, or when one customer appears twice in the batch."""
        customers = [card.customer_id for _, card, _ in items]
        if self.pusher is None or len(set(customers)) != len(customers):
            return None
        payloads = {card.customer_id: self._payload(delivery, card, message) for delivery, card, message in items}
        topics = {card.customer_id: self.topic(delivery, card) for delivery, card, _ in items}
        sent = webpush.notify_many(session, payloads=payloads, pusher=self.pusher, now=now, topics=topics)
        return [None if sent[card.customer_id] else SendFailed("no browser took the notification", retry=False)
                for _, card, _ in items]

    @staticmethod
    def _payload(delivery: Delivery, card: Card, message: Rendered) -> dict[str, Any]:
        """``tag`` and ``id`` are the same for every copy of the message (app/static/sw.js: a second copy
        replaces the first on the screen, or shows silently once the first was dismissed)."""
        return {"title": message.title or card.program.name, "body": message.body,
                "tag": push_tag(delivery.campaign_id), "url": None, "id": f"delivery-{delivery.id}"}


@dataclass
class SmsChannel:
    client: SmsClient | None
    sender: str
    name: str = "sms"
    repeatable: bool = False  # Twilio-style gateways have no idempotency key: a second POST is a second text
    _stopped: dict[str, bool] = field(default_factory=dict, repr=False)  # phone → sent STOP to our sender
    _answers: Answers = field(default_factory=dict, repr=False)

    def preload(self, session: Session, cards: Sequence[Card]) -> None:
        self._answers = _answers(session, self.name, cards)
        phones = [c.customer.phone for c in cards if c.customer.phone]
        found = set(session.scalars(select(SmsOptOut.phone).where(SmsOptOut.phone.in_(phones),
                                                                   SmsOptOut.sender == self.sender)))
        self._stopped = {p: p in found for p in phones}

    def _said_stop(self, session: Session, phone: str) -> bool:
        if phone not in self._stopped:
            self._stopped[phone] = bool(session.scalar(select(exists().where(
                SmsOptOut.phone == phone, SmsOptOut.sender == self.sender))))
        return self._stopped[phone]

    def reachable(self, session: Session, card: Card) -> bool:
        phone = card.customer.phone
        if not phone or not _consent(self._answers, card, "sms"):
            return False
        return not self._said_stop(session, phone)

    def opted_out(self, session: Session, card: Card) -> bool:
        phone = card.customer.phone
        return _withdrawn(self._answers, card, "sms") or bool(phone and self._said_stop(session, phone))

    def send(self, session: Session, *, delivery: Delivery, card: Card, message: Rendered, now: datetime) -> str:
        try:
            record = sms_service.send_sms(session, to=card.customer.phone, body=message.body, sender=self.sender,
                                          client=self.client, customer_id=card.customer_id, now=now)
        except SmsUnavailable as exc:
            raise SendFailed(f"the SMS gateway is unavailable: {exc}", retry=not exc.possibly_sent,
                             possibly_sent=exc.possibly_sent) from exc
        if record.status in ("failed", "skipped"):
            raise SendFailed(f"sms {record.status}: {record.error_code}", retry=False)
        return record.provider_sid or f"sms-{record.id}"
