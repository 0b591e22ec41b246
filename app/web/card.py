"""The customer's own card links (CONTRACTS.md §3 ``links``), reachable only through their secret token."""

from __future__ import annotations

from flask import Blueprint, Response, redirect
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import NotFound, Unavailable
from app.models import Card
from app.wallet import google
from app.web.wallet import google_wallet, pkpass_response

bp = Blueprint("card", __name__, url_prefix="/c")

MAX_TOKEN = 64


def _card(token: str) -> Card:
    card = get_session().scalar(select(Card).where(Card.page_token == token)) if len(token) <= MAX_TOKEN else None
    if card is None:
        raise NotFound("there is no card at this address")
    return card


@bp.get("/<token>/apple.pkpass")
def apple_pass(token: str) -> Response:
    """"Add to Apple Wallet": the signed pass, as a download Safari hands to Wallet."""
    return pkpass_response(get_session(), _card(token), attachment=True)


@bp.get("/<token>/google")
def google_save(token: str) -> Response:
    """"Save to Google Wallet": a redirect to Google's save page with our signed JWT."""
    card = _card(token)
    setup = google_wallet().setup
    if setup.account is None:
        raise Unavailable("Google Wallet is not set up on this server")
    response = redirect(google.save_link(get_session(), setup=setup, card=card, now=utcnow()), code=302)
    response.headers["Cache-Control"] = "no-store"  # the link carries the card's current state
    return response
