"""What every HTML form needs: a CSRF token bound to the browser's session, and per-IP limits.

The token lives in Flask's signed session cookie and in a hidden field (or the ``X-CSRF-Token``
header for the page's own fetch calls); they must match, compared in constant time. No library does
this without pulling in WTForms, which the plain forms here do not need."""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session

from app.errors import Forbidden
from app.web import ratelimit

SESSION_KEY = "csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def csrf_token() -> str:
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """:raise Forbidden: the form did not come from a page we served to this browser."""
    expected = session.get(SESSION_KEY, "")
    given = request.form.get(FIELD) or request.headers.get(HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("this form has expired; reload the page and try again", code="csrf-failed")


def limit_ip(scope: str) -> None:
    """:raise RateLimited: this address sent too many of these forms."""
    ratelimit.check_ip(scope, request.remote_addr or "-")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
