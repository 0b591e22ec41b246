"""Text messages, on the domain side: sending one (or recording it in the channel outbox), following its
delivery status, and honouring STOP and START from the customer.

Every message we attempt becomes an ``SmsMessage``:

- ``skipped`` / ``opted-out``: the number sent STOP to this sender (``SmsOptOut``), so nothing was sent.
  Carriers require a STOP to be honoured per sender number; the gateway itself refuses such a message
  with error 21610, and a 21610 we did not know of (an inbound STOP we missed) is recorded as an opt-out.
- ``outbox``: the deployment has no SMS gateway; the message is in the channel outbox (``ChannelMessage``).
- the gateway's status (``queued``/``accepted``) and its message sid, moved forward by status callbacks
  (``record_report``) to ``sent``, ``delivered``, ``undelivered`` or ``failed``; the same report moves a
  campaign delivery sent as that text to ``delivered``, or ``failed`` with the gateway's error code. A report
  that arrives before its text is committed (a campaign batch commits after its last text) is kept and
  applied a little later (``apply_early_reports``).
- ``failed`` with the gateway's error code when it refused the message (21211 invalid number, …).

An unreachable gateway (``SmsUnavailable``) records nothing and propagates: the caller retries later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.channels.sms import (
    INBOUND_PATH,
    MAX_BODY,
    STATUS_PATH,
    UNSUBSCRIBED_RECIPIENT,
    WEBHOOK_PATH,
    SmsClient,
    SmsRejected,
    mask_phone,
    opt_out_action,
    status_callback_url,
)
from app.db import utcnow
from app.loyalty.enrollment import set_consents
from app.models import ChannelMessage, Customer, Delivery, SmsMessage, SmsOptOut, SmsStatusReport

log = logging.getLogger(__name__)

CHANNEL = "sms"
SMS_PATH = WEBHOOK_PATH  # the webhooks: SMS_PATH + STATUS_PATH (delivery statuses), SMS_PATH + INBOUND_PATH (replies)
__all__ = ["INBOUND_PATH", "SMS_PATH", "STATUS_PATH", "apply_early_reports", "handle_inbound", "opted_out",
           "record_report", "record_status", "send_sms", "status_callback_url"]
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
KEEP_EARLY_REPORTS = timedelta(days=1)  # a report whose text never appears is dropped after this long
EARLY_REPORTS_PER_RUN = 1000

_E164 = re.compile(r"\+[1-9]\d{1,14}")


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
    unsubscribed at the gateway) also records the opt-out. Every message carries the client's
    ``StatusCallback`` (``/sms/status``), whose reports ``record_status`` applies; ``status_callback``
    replaces that URL for this message only (callers normally leave it out).

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


def record_report(session: Session, *, sid: str, status: str, error_code: str | None, now: datetime) -> bool:
    """A delivery-status report (the ``StatusCallback`` webhook) about the text the gateway knows as ``sid``:
    its ``SmsMessage`` moves forward (``record_status``), and a campaign delivery sent as this text becomes
    ``delivered``, or ``failed`` with the gateway's error code (``campaigns.send.record_provider_status``).
    A report about a text not committed yet (its campaign batch is still sending, or the request that sent
    it has not finished) is kept as an ``SmsStatusReport`` for ``apply_early_reports``. Returns whether the
    text was known."""
    from app.campaigns import send as campaign_send  # campaigns build on this module, not the other way

    status = (status or "").strip().lower()[:20]
    known = record_status(session, sid=sid, status=status, error_code=error_code, now=now)
    changed = campaign_send.record_provider_status(session, channel=CHANNEL, provider_id=sid, status=status,
                                                   error=error_code, now=now)
    if not (known or changed) and status in STATUS_RANK:
        session.add(SmsStatusReport(provider_sid=sid, status=status,
                                    error_code=str(error_code)[:20] if error_code else None, received_at=now))
        session.flush()
    return known or bool(changed)


def apply_early_reports(session: Session, *, now: datetime, limit: int = EARLY_REPORTS_PER_RUN) -> int:
    """Apply the kept reports (``record_report``) whose text is now recorded, in the order they arrived, each
    once; drop those older than ``KEEP_EARLY_REPORTS`` that never found their text. Returns how many were
    applied. Workers running this side by side skip each other's rows."""
    recorded = or_(exists().where(SmsMessage.provider_sid == SmsStatusReport.provider_sid),
                   exists().where(Delivery.channel == CHANNEL, Delivery.provider_id == SmsStatusReport.provider_sid))
    reports = session.scalars(select(SmsStatusReport).where(recorded).order_by(SmsStatusReport.id).limit(limit)
                              .with_for_update(skip_locked=True, of=SmsStatusReport)).all()
    for report in reports:
        record_report(session, sid=report.provider_sid, status=report.status, error_code=report.error_code, now=now)
        session.delete(report)
    stale = session.execute(delete(SmsStatusReport).where(SmsStatusReport.received_at < now - KEEP_EARLY_REPORTS))
    if stale.rowcount:
        log.info("dropped %d sms status report(s) whose message never appeared", stale.rowcount)
    session.flush()
    return len(reports)


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
