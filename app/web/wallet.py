"""The wallet channels as the web layer sees them, and serving a card's Apple Wallet pass (shared by the
PassKit web service and the customer's link)."""

from __future__ import annotations

import logging

from flask import Response, current_app
from sqlalchemy.orm import Session

from app.channels.apple_pass import MIME_TYPE
from app.channels.registry import EXTENSION, AppleWallet, Channels, ChannelUnavailable, GoogleWallet
from app.db import utcnow
from app.errors import Unavailable
from app.models import Card
from app.wallet import apple

log = logging.getLogger(__name__)


def channels() -> Channels:
    return current_app.extensions[EXTENSION]


def apple_wallet() -> AppleWallet:
    try:
        wallet = channels().apple()
    except ChannelUnavailable:  # logged with its reason when it was built; the public gets no details
        wallet = None
    if wallet is None:
        raise Unavailable("Apple Wallet passes are not set up on this server")
    return wallet


def google_wallet() -> GoogleWallet:
    try:
        return channels().google()
    except ChannelUnavailable:  # logged with its reason; the public gets no details
        raise Unavailable("Google Wallet is not set up on this server") from None


def web_pusher():  # noqa: ANN201 (WebPusher | None; imported lazily with the channel)
    return channels().web_push()


def pkpass_response(session: Session, card: Card, *, attachment: bool = False) -> Response:
    wallet = apple_wallet()
    settings = current_app.config["TALLYPASS"]
    content = apple.pass_content(session, card, base_url=settings.base_url)
    pkpass = wallet.passes.build(content)
    response = Response(pkpass.data, mimetype=MIME_TYPE)
    response.last_modified = apple.last_modified(card, utcnow())
    response.headers["Cache-Control"] = "private, no-cache"
    if attachment:
        response.headers["Content-Disposition"] = f'attachment; filename="{card.program.slug}.pkpass"'
    return response
