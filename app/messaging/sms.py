"""Text messages, on the domain side: sending one (or recording it in the channel outbox), following its
delivery status, and honouring STOP and START from the customer.

Every message we attempt becomes an ``SmsMessage``:

- ``skipped`` / ``opted-out``: the number sent STOP to this sender (``SmsOptOut``), so nothing was sent.
  Carriers require a STOP to be honoured per sender number; the gateway itself refuses such a message
  with error 21610, and a 21610 we did not know of (an inbound STOP we missed) is recorded as an opt-out.
- ``outbox``: the deployment has no SMS gateway; the message is in the channel outbox (``ChannelMessage``).
- the gateway's status (``queued``/``accepted``) and its message sid, moved forward by status callbacks
  (``record_status``) to ``sent``, ``delivered``, ``undelivered`` or ``failed``.
- ``failed`` with the gateway's error code when it refused the message (21211 invalid number, …).

An unreachable gateway (``SmsUnavailable``) records nothing and propagates: the caller retries later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.channels.sms import (
    MAX_BODY,
    UNSUBSCRIBED_RECIPIENT,
    SmsClient,
    SmsRejected,
    mask_phone,
    opt_out_action,
)
from app.db import utcnow
from app.loyalty.enrollment import set_consents
from app.models import ChannelMessage, Customer, SmsMessage, SmsOptOut

log = logging.getLogger(__name__)

CHANNEL = "sms"
SMS_PATH = "/sms"  # the webhooks: SMS_PATH + STATUS_PATH (delivery statuses), SMS_PATH + INBOUND_PATH (replies)
STATUS_PATH = "/status"
INBOUND_PATH = "/inbound"
OPTED_OUT = "opted-out"  # error_code of a message skipped because of an opt-out
MAX_NUMBER = 20  # characters of a phone number or sender we store

# Delivery statuses in the order a message goes through them (Twilio's message status values). A callback
# moves a message only forward: they can arrive out of order, and a terminal status (rank 4) is never
# replaced by an earlier one nor by another terminal one. "read" (WhatsApp, RCS) may follow "delivered".
STATUS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5,
}
TERMINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank >= 4)

_E164 = re.compile(r"\+[1-9]\d{1,14}")


def status_callback_url(base_url: str) -> str:
    """The URL to hand the gateway as ``StatusCallback`` (the service's public base URL + ``/sms/status``)."""
    return base_url.rstrip("/") + SMS_PATH + STATUS_PATH


def opted_out(session: Session, *, phone: str, sender: str) -> bool:
    """Whether ``phone`` sent STOP to ``sender`` (and no START since)."""
    found = session.scalars(select(SmsOptOut.id).where(SmsOptOut.phone == phone, SmsOptOut.sender == sender))
    return found.first() is not None


def send_sms(
    session: Session,
    *,
    to: str,
    body: str,
    sender: str,
    client: SmsClient | None,
    customer_id: int | None = None,
    status_callback: str | None = None,
    now: datetime | None = None,
) -> SmsMessage:
    """Send ``body`` to ``to`` (E.164) from ``sender``, and return its ``SmsMessage`` (flushed).

    Skipped without a request (status ``skipped``, error ``opted-out``) when ``to`` sent STOP to ``sender``.
    With ``client`` None (no gateway configured) the message is recorded in the channel outbox, status
    ``outbox``. A refusal by the gateway is status ``failed`` with its error code; 21610 (the recipient
    unsubscribed at the gateway) also records the opt-out. ``status_callback`` is usually
    ``status_callback_url(settings.base_url)``.

    :raise SmsUnavailable: the gateway could not be reached after the client's retries; nothing is recorded.
        When ``possibly_sent`` is set the message may exist at the gateway: sending again risks a duplicate.
    :raise SmsError: the gateway accepted the request but answered without a message sid.
    :raise ValueError: an empty or over-long body, a recipient or sender too long to be a phone number, or a
        client configured for another sender.
    """
    now = now or utcnow()
    if not body or not body.strip():
        raise ValueError("an SMS needs a non-empty body")
    if len(body) > MAX_BODY:
        raise ValueError(f"an SMS body holds at most {MAX_BODY} characters, not {len(body)}")
    for name, value in (("to", to), ("sender", sender)):
        if not value or len(value) > MAX_NUMBER:
            raise ValueError(f"{name} must be a phone number, short code or sender id of at most {MAX_NUMBER} "
                             "characters")
    if client is not None and client.sender != sender:
        raise ValueError("the SMS client sends from another number than sender")
    message = SmsMessage(customer_id=customer_id, to=to, sender=sender, body=body, created_at=now, updated_at=now)
    if opted_out(session, phone=to, sender=sender):
        message.status, message.error_code = "skipped", OPTED_OUT
        log.info("sms to %s skipped: opted out of %s", mask_phone(to), sender)
    elif client is None:
        message.status = "outbox"
        session.add(ChannelMessage(channel=CHANNEL, recipient=to, card_id=None, created_at=now,
                                   payload={"from": sender, "body": body}))
    else:
        try:
            sent = client.send(to, body, status_callback=status_callback)
        except SmsRejected as exc:
            message.status = "failed"
            message.error_code = str(exc.code) if exc.code is not None else f"http-{exc.status}"
            if exc.code == UNSUBSCRIBED_RECIPIENT:
                _record_opt_out(session, phone=to, sender=sender, now=now)
        else:
            message.provider_sid, message.status = sent.sid, sent.status[:20]
    session.add(message)
    session.flush()
    return message


def record_status(session: Session, *, sid: str, status: str, error_code: str | None, now: datetime) -> bool:
    """A delivery-status callback: move the message with this gateway sid to ``status`` (with the gateway's
    ``error_code`` for ``undelivered``/``failed``) unless it is already there or further along
    (``STATUS_RANK``). Unknown statuses change nothing. Returns False when no message has this sid."""
    message = session.scalars(
        select(SmsMessage).where(SmsMessage.provider_sid == sid).with_for_update()
    ).one_or_none()
    if message is None:
        return False
    status = (status or "").strip().lower()
    rank = STATUS_RANK.get(status)
    if rank is None:
        log.info("sms %s: status %r is not one we track", sid, status[:40])
        return True
    if rank <= STATUS_RANK.get(message.status, -1):
        return True  # a late or repeated callback
    message.status = status
    if error_code:
        message.error_code = str(error_code)[:20]
    message.updated_at = now
    session.flush()
    return True


def handle_inbound(
    session: Session, *, from_: str, to: str, params: Mapping[str, Any], now: datetime
) -> Literal["stop", "start", "help"] | None:
    """An incoming message from ``from_`` to our number ``to``; ``params`` are the webhook's fields (``Body``,
    ``OptOutType``…). STOP (``opt_out_action``) records the opt-out from ``to`` and withdraws the customer's
    SMS consent (source ``sms-stop``); START removes the opt-out and grants it again (``sms-start``); HELP and
    other messages store nothing (the gateway answers STOP/START/HELP itself). Returns the action taken."""
    action = opt_out_action(params)
    if action is None or action == "help":
        return action
    if not _E164.fullmatch(from_ or "") or not to or len(to) > MAX_NUMBER:
        log.warning("sms %s from %s to %s ignored: not a phone number we can record", action, mask_phone(from_),
                    mask_phone(to))
        return None
    customer = session.scalars(select(Customer).where(Customer.phone == from_)).one_or_none()
    if action == "stop":
        _record_opt_out(session, phone=from_, sender=to, now=now)
    else:
        session.execute(delete(SmsOptOut).where(SmsOptOut.phone == from_, SmsOptOut.sender == to))
    if customer is not None:
        set_consents(session, customer=customer, consents={"sms": action == "start"}, source=f"sms-{action}",
                     now=now)
    log.info("sms %s from %s to %s%s", action, mask_phone(from_), to, "" if customer else " (no customer)")
    session.flush()
    return action


def _record_opt_out(session: Session, *, phone: str, sender: str, now: datetime) -> None:
    if opted_out(session, phone=phone, sender=sender):
        return
    try:
        with session.begin_nested():  # a concurrent STOP (or a retried webhook) may insert it first
            session.add(SmsOptOut(phone=phone, sender=sender, created_at=now))
    except IntegrityError:
        pass
