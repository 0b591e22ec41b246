"""The marketers' dashboard (``/dashboard``): HTML pages behind a session login, each with the least role
that may use it (``access.requires``). Forms carry a CSRF token; every page is sent with a strict Content
Security Policy (scripts and styles only from our own static files) and is never cached."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, Response

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
SESSION_HOURS = 12


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    from app.web.dashboard import login, overview  # noqa: F401 (the views register on ``bp``)

    settings = app.config["TALLYPASS"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.register_blueprint(bp)
