"""The customer's own card (CONTRACTS.md §3 ``links``), reachable only through its secret token: the
card page, the wallet links, web-push opt-in, consents, a copy of their data, and erasure."""

from __future__ import annotations

import io
import json

import segno
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from app.channels.registry import ChannelUnavailable
from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest, NotFound, Unavailable
from app.loyalty import customers, enrollment
from app.models import CONSENT_CHANNELS, Card
from app.wallet import google
from app.wallet.links import card_links
from app.web.forms import check_csrf
from app.web.join import consent_texts, icons, join_url
from app.web.wallet import channels, google_wallet, pkpass_response, web_pusher

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
    """A label for every kind of ledger entry (``LEDGER_KINDS``), in the page's language."""
    return {"earn": _("Purchase"), "redeem": _("Points used"), "bonus": _("Bonus"), "expire": _("Expired"),
            "adjust": _("Adjustment"), "refund_reversal": _("Refund: points taken back"),
            "refund_return": _("Refund: points given back"), "reward": _("Reward")}


def configured_wallets() -> dict[str, bool]:
    """Which wallets this server can add the card to: Apple with its pass signing material, Google with its
    service account. A wallet set up wrongly counts as absent (its reason is logged when it is built)."""
    try:
        apple = channels().apple() is not None
    except ChannelUnavailable:
        apple = False
    try:
        google_ready = channels().google().setup.account is not None
    except ChannelUnavailable:
        google_ready = False
    return {"apple": apple, "google": google_ready}


def barcode_svg(value: str, *, title: str) -> Markup:
    """The card's barcode value as a QR code, the one its Apple and Google passes carry: an SVG element (with its
    namespace) that scales to its box, black on white with the standard quiet zone of four modules. Always a full
    QR code: segno would pick a Micro QR for a short number, which phones' and tills' scanners do not read."""
    svg = io.BytesIO()
    segno.make_qr(value, error="m").save(svg, kind="svg", xmldecl=False, svgns=True, scale=1, border=4,
                                      omitsize=True, dark="#000000", light="#ffffff", svgclass="barcode",
                                      lineclass=None, title=title)
    return Markup(svg.getvalue().decode())  # noqa: S704 (segno's own markup; the title is escaped by segno)


def _wallet_wording() -> dict[str, str]:
    """The badges' official wording: Apple's and Google's localized badges say this (ru, ro), not our own."""
    return {"apple_small": _("Add to"), "apple": "Apple Wallet",
            "google": _("Add to Google Wallet")}


@bp.get("/<token>")
def page(token: str) -> Response:
    card = _card(token)
    summary = customers.summary(get_session(), card=card, now=utcnow())
    pusher = web_pusher()
    notices = {"saved": _("Your choices are saved."), "erased": _("Your account is deleted.")}
    html = render_template("card/page.html", program=card.program, summary=summary, platform=_platform(),
                           links=card_links(card, ""), consent_texts=consent_texts(), kinds=ledger_kinds(),
                           vapid_key=pusher.config.vapid_key.application_server_key if pusher else None,
                           notice=notices.get(request.args.get(NOTICE, "")), wallets=configured_wallets(),
                           qr=barcode_svg(card.barcode, title=_("Your card's code")), wording=_wallet_wording(),
                           invite_url=join_url(card.program, ref=card.customer.referral_code),
                           manifest=url_for("card.manifest", token=token), amount=customers.plain_amount)
    response = Response(html)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<token>/manifest.webmanifest")
def manifest(token: str) -> Response:
    """The card as a home-screen app: it opens on the card's own secret page (iOS sends web push only to such
    an app). Private: the address holds the card's token."""
    card = _card(token)
    start = url_for("card.page", token=token)
    body = {"name": _("%(programme)s card", programme=card.program.name), "short_name": card.program.name[:30],
            "start_url": start, "scope": start, "id": start, "display": "standalone",
            "background_color": "#ffffff", "theme_color": card.program.background_color, "icons": icons()}
    response = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
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
