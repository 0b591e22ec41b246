"""The customer's own card (CONTRACTS.md §3 ``links``), reachable only through its secret token: the
card page, the wallet links, web-push opt-in, consents, a copy of their data, and erasure."""

from __future__ import annotations

import json

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest, NotFound, Unavailable
from app.loyalty import customers, enrollment
from app.models import CONSENT_CHANNELS, Card
from app.wallet import google
from app.wallet.links import card_links
from app.web.forms import check_csrf
from app.web.join import consent_texts
from app.web.wallet import google_wallet, pkpass_response, web_pusher

bp = Blueprint("card", __name__, url_prefix="/c")

MAX_TOKEN = 64
NOTICE = "notice"


def _card(token: str) -> Card:
    card = get_session().scalar(select(Card).where(Card.page_token == token)) if len(token) <= MAX_TOKEN else None
    if card is None:
        raise NotFound("there is no card at this address")
    return card


def _platform() -> str:
    agent = request.user_agent.string
    if "Android" in agent:
        return "android"
    if any(device in agent for device in ("iPhone", "iPad", "Macintosh")):
        return "apple"
    return "other"


def ledger_kinds() -> dict[str, str]:
    return {"earn": _("Purchase"), "redeem": _("Points used"), "bonus": _("Bonus"), "expire": _("Expired"),
            "adjust": _("Adjustment"), "refund": _("Refund")}


@bp.get("/<token>")
def page(token: str) -> Response:
    card = _card(token)
    summary = customers.summary(get_session(), card=card, now=utcnow())
    pusher = web_pusher()
    notices = {"saved": _("Your choices are saved."), "erased": _("Your account is deleted.")}
    html = render_template("card/page.html", program=card.program, summary=summary, platform=_platform(),
                           links=card_links(card, ""), consent_texts=consent_texts(), kinds=ledger_kinds(),
                           vapid_key=pusher.config.vapid_key.application_server_key if pusher else None,
                           notice=notices.get(request.args.get(NOTICE, "")))
    response = Response(html)
    response.headers["Cache-Control"] = "private, no-store"
    return response


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


@bp.post("/<token>/consents")
def consents(token: str) -> Response:
    card = _card(token)
    check_csrf()
    db = get_session()
    choices = {channel: request.form.get(f"consent_{channel}") == "yes" for channel in CONSENT_CHANNELS}
    enrollment.set_consents(db, customer=card.customer, consents=choices, source="card-page", now=utcnow())
    db.commit()
    return redirect(url_for("card.page", token=token, **{NOTICE: "saved"}), code=303)


@bp.get("/<token>/data.json")
def data(token: str) -> Response:
    card = _card(token)
    body = json.dumps(customers.export(get_session(), customer=card.customer), ensure_ascii=False, indent=2)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-loyalty-data.json"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<token>/delete")
def erase(token: str) -> Response:
    card = _card(token)
    check_csrf()
    if request.form.get("confirm") != "yes":
        raise BadRequest("tick the box to confirm", code="confirmation-required")
    db = get_session()
    customers.anonymise(db, customer=card.customer, now=utcnow())
    db.commit()
    return redirect(url_for("card.page", token=token, **{NOTICE: "erased"}), code=303)


@bp.route("/<token>/push", methods=["POST", "DELETE"])
def push(token: str) -> Response:
    """The page's script sends the browser's ``PushSubscription.toJSON()`` here (or DELETEs it)."""
    from app.messaging import webpush

    card = _card(token)
    check_csrf()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("endpoint"), str):
        raise BadRequest("send the browser's PushSubscription as JSON", code="malformed-json")
    db = get_session()
    if request.method == "DELETE":
        webpush.unsubscribe(db, customer=card.customer, endpoint=body["endpoint"])
        db.commit()
        return Response(status=204)
    keys = body.get("keys") if isinstance(body.get("keys"), dict) else {}
    webpush.subscribe(db, customer=card.customer, endpoint=body["endpoint"], p256dh=str(keys.get("p256dh", "")),
                      auth=str(keys.get("auth", "")), now=utcnow())
    enrollment.set_consents(db, customer=card.customer, consents={"push": True}, source="card-page", now=utcnow())
    db.commit()
    return Response(status=201)
