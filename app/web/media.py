"""Public files served from fixed paths: the programme logo Google Wallet fetches (images must be
publicly reachable; ../shared/reference/google_wallet.md §1) and the web-push service worker, which
must sit at the root to control every page."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from app.channels.apple_pass import DESIGN_DIR
from app.database import get_session
from app.errors import NotFound
from app.wallet.google import LOGO_PATH
from app.wallet.images import public_logo

bp = Blueprint("media", __name__)

_LOGO = DESIGN_DIR / "logo@3x.png"


@bp.get(LOGO_PATH)
def program_logo() -> Response:
    response = Response(_LOGO.read_bytes(), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/media/programs/<int:program_id>/logo-<digest>.png")
def uploaded_logo(program_id: int, digest: str) -> Response:
    """A programme's uploaded logo (Google Wallet's class points here); the name holds its hash."""
    png = public_logo(get_session(), program_id=program_id, digest=digest)
    if png is None:
        raise NotFound("there is no such logo")
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    response = current_app.send_static_file("sw.js")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response
