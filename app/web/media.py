"""Public files served from fixed paths: the programme logo Google Wallet fetches (images must be
publicly reachable; ../shared/reference/google_wallet.md §1) and the web-push service worker, which
must sit at the root to control every page."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from app.channels.apple_pass import DESIGN_DIR
from app.wallet.google import LOGO_PATH

bp = Blueprint("media", __name__)

_LOGO = DESIGN_DIR / "logo@3x.png"


@bp.get(LOGO_PATH)
def program_logo() -> Response:
    response = Response(_LOGO.read_bytes(), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    response = current_app.send_static_file("sw.js")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response
