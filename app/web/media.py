"""Public images other services fetch from us: Google Wallet loads a programme's logo from a URL
(../shared/reference/google_wallet.md §1: images must be publicly reachable)."""

from __future__ import annotations

from flask import Blueprint, Response

from app.channels.apple_pass import DESIGN_DIR
from app.wallet.google import LOGO_PATH

bp = Blueprint("media", __name__)

_LOGO = DESIGN_DIR / "logo@3x.png"


@bp.get(LOGO_PATH)
def program_logo() -> Response:
    response = Response(_LOGO.read_bytes(), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
