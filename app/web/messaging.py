"""Sending a text from a request: the gateway client from the channels, the outbox without one."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from app.channels.sms import SmsUnavailable
from app.db import utcnow
from app.errors import Unavailable
from app.messaging import sms
from app.models import SmsMessage
from app.web.wallet import channels


def sms_sender() -> str | None:
    """The number campaign SMS go out from (``TALLYPASS_SMS_FROM``): a STOP sent to it opts out of it."""
    return current_app.config["TALLYPASS"].sms_from


def send_text(session: Session, *, to: str, body: str, customer_id: int | None = None) -> SmsMessage:
    """:raise Unavailable: the gateway cannot take the message now (the shopper may try again)."""
    settings = current_app.config["TALLYPASS"]
    client = channels().sms()
    callback = sms.status_callback_url(settings.base_url) if client is not None else None
    try:
        return sms.send_sms(session, to=to, body=body, customer_id=customer_id, client=client,
                            sender=client.sender if client is not None else (settings.sms_from or "Tallypass"),
                            status_callback=callback, now=utcnow())
    except SmsUnavailable:
        raise Unavailable("we could not send the text message right now; please try again in a minute") from None
