"""The till's pages: the app's shell (or, for a cashier at several stores, the choice of store), the page its
service worker shows with no network, the web-app manifest and the service worker itself.

The manifest, the service worker and the offline page hold nothing private: browsers fetch them without the
session cookie, so they answer everyone."""

from __future__ import annotations

import json

from babel.numbers import get_currency_symbol
from flask import Response, current_app, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from app.database import get_session
from app.loyalty.enrollment import BARCODE_DIGITS
from app.models import User
from app.web.forms import csrf_token
from app.web.till import bp
from app.web.till.access import stores_for, till_user

ICON_SIZES = (192, 512)


@bp.get("/")
@till_user(json=False)
def shell(user: User) -> str:
    """The till at the store in ``?store=``; without one, the only store the user serves at, or the choice."""
    session = get_session()
    stores = stores_for(session, user)
    raw = request.args.get("store", "")
    chosen = next((s for s in stores if raw.isdigit() and str(s.id) == raw), None)
    if chosen is None and len(stores) == 1 and not raw:
        chosen = stores[0]
    if chosen is None:
        return render_template("till/stores.html", stores=stores, user=user, asked=raw)
    program = chosen.program
    return render_template("till/till.html", store=chosen, program=program, user=user, csrf=csrf_token(),
                           texts=_texts(), many_stores=len(stores) > 1, barcode_length=BARCODE_DIGITS + 1,
                           currency=get_currency_symbol(program.currency, locale=str(get_locale() or "en")))


@bp.get("/offline")
def offline() -> str:
    """What the service worker shows when the till is opened with no network."""
    return render_template("till/offline.html")


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    icons = [{"src": url_for("static", filename=f"till/icon-{size}.png"), "sizes": f"{size}x{size}",
              "type": "image/png", "purpose": "any"} for size in ICON_SIZES]
    icons.append({"src": url_for("static", filename="till/icon-maskable-512.png"), "sizes": "512x512",
                  "type": "image/png", "purpose": "maskable"})
    body = {"name": _("Tallypass till"), "short_name": _("Till"), "id": "/till/", "start_url": "/till/",
            "scope": "/till/", "display": "standalone", "orientation": "any", "background_color": "#f8fafc",
            "theme_color": "#0f172a", "icons": icons, "lang": str(get_locale() or "en")}
    response = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    """The till's service worker, at the top of /till/ so that it serves the whole app."""
    response = current_app.send_static_file("till/sw.js")
    response.headers["Cache-Control"] = "no-cache"
    return response



def _texts() -> dict[str, str]:
    """What the till's script writes on the page, in the cashier's language."""
    return {
        "offline": _("No network — nothing was recorded."),
        "scanning": _("Point the camera at the card's QR code."),
        "no_camera": _("No camera here: type the card number or the phone."),
        "camera_refused": _("The camera is not allowed: type the card number or the phone."),
        "not_found": _("No card with this number or phone in this programme."),
        "unexpected": _("Something went wrong; nothing was recorded. Try again."),
        "balance": _("Points: %(points)s"),
        "points_whole": _("Enter a whole number of points, 0 or more."),
        "up_to": _("Most points for this amount: %(points)s (−%(discount)s)."),
        "cap": _("Points may pay up to %(cap)s of a purchase."),
        "stamps_of": _("Stamps: %(stamps)s of %(required)s"),
        "no_tier": _("No tier"),
        "reward": _("Reward to give: %(name)s"),
    }
