"""Texting a card's secret link to its holder's own phone.

The card page behind the link lets whoever opens it download the customer's data, change their consents and
erase the account, so the link is never shown to a till for a customer it did not just create: when a till
enrols a phone we already know, the link goes by SMS to the phone on the customer's record (the one the
customer holds), the same proof of possession the sign-up page asks for with its one-time code.

A till can repeat the request as often as it likes; the phone gets at most one such text per card in
``RESEND_AFTER`` (an SMS with the same text to the same number in that time, whatever became of it, counts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Unavailable
from app.loyalty import ledger
from app.models import Card, SmsMessage

# A till that calls POST /customers on every sale as "find or create" must not text a regular every visit.
RESEND_AFTER = timedelta(hours=24)
Outcome = Literal["sent", "already-sent", "not-sent"]
# What the text says, in the customer's language (Customer.locale); English for any other.
TEXTS = {
    "en": "Your {programme} card: {link}",
    "ru": "Ваша карта {programme}: {link}",
    "ro": "Cardul dumneavoastră {programme}: {link}",
}
# Statuses of an SmsMessage that did not leave for the phone (app.messaging.sms).
NOT_SENT = frozenset({"skipped", "failed", "undelivered", "canceled"})

Send = Callable[..., SmsMessage]  # send(to=, body=, customer_id=) → the recorded SmsMessage


def text_for(card: Card, link: str) -> str:
    template = TEXTS.get(card.customer.locale, TEXTS["en"])
    return template.format(programme=card.program.name, link=link)


def text_card_link(session: Session, *, card: Card, link: str, send: Send, now: datetime) -> Outcome:
    """Text ``link`` (the card page) to the card holder's phone unless it went there within ``RESEND_AFTER``.

    ``send`` records and sends the message (``app.messaging.sms.send_sms`` with the deployment's gateway, or
    its outbox). The card row is locked first, so two tills asking at once send one text. Returns ``sent``,
    ``already-sent`` (nothing sent now) or ``not-sent`` (the number opted out with STOP, the gateway refused
    it or cannot be reached now; the customer can still open the card through the sign-up page).
    """
    card = ledger.lock_card(session, card.id)
    phone = card.customer.phone
    if not phone:
        return "not-sent"
    body = text_for(card, link)
    recent = session.scalar(
        select(SmsMessage.id).where(SmsMessage.customer_id == card.customer_id, SmsMessage.to == phone,
                                    SmsMessage.body == body, SmsMessage.created_at > now - RESEND_AFTER).limit(1))
    if recent is not None:
        return "already-sent"
    try:
        message = send(to=phone, body=body, customer_id=card.customer_id)
    except Unavailable:  # the gateway is down: nothing recorded, a later request may send it
        return "not-sent"
    return "not-sent" if message.status in NOT_SENT else "sent"
