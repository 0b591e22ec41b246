"""Signing in and out of the dashboard."""

from __future__ import annotations

import math

from flask import Response, redirect, render_template, request, url_for

from app.database import get_session
from app.db import utcnow
from app.merchants import audit
from app.merchants.users import authenticate
from app.web import ratelimit
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires, safe_next, sign_in, sign_out
from app.web.forms import check_csrf, limit_ip

MAX_FIELD = 254


@bp.get("/login")
def login() -> Response:
    if current_user() is not None:
        return redirect(safe_next(request.args.get("next")))
    return _form("", {}, request.args.get("next", ""), status=200)


@bp.post("/login")
def login_post() -> Response:
    check_csrf()
    limit_ip("login")
    email = request.form.get("email", "").strip()[:MAX_FIELD]
    password = request.form.get("password", "")[:1024]
    target = request.form.get("next", "")
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "Enter the e-mail address you were invited with."
    if not password:
        errors["password"] = "Enter your password."  # noqa: S105 (a message)
    if errors:
        return _form(email, errors, target, status=422)
    throttle, address = ratelimit.sign_in_throttle(), ratelimit.client_address()
    if held := throttle.held(address, email):
        response = _form(email, {"password": _held_message(held)}, target, status=429)
        response.headers["Retry-After"] = str(held.retry_after)
        return response
    db = get_session()
    now = utcnow()
    user = authenticate(db, email=email, password=password, now=now)
    if user is None:
        throttle.failed(address, email)
        audit.record(db, actor=email.lower(), action="login-failed", now=now, ip=request.remote_addr)
        db.commit()
        return _form(email, {"password": "That e-mail address and password do not match an active account."},
                     target, status=401)
    throttle.succeeded(address, email)
    audit.record(db, actor=user, action="login", now=now, ip=request.remote_addr)
    sign_in(user)  # the server-side session, committed with the audit record
    db.commit()
    return redirect(safe_next(target), code=303)


@bp.post("/logout")
@requires("viewer")
def logout() -> Response:
    check_csrf()
    sign_out()
    return redirect(url_for("dashboard.login"), code=303)


def _held_message(held: ratelimit.Held) -> str:
    """Said the same whether or not the account exists."""
    seconds = held.retry_after
    wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    if held.why == "account":
        return f"Too many wrong passwords for this e-mail address from your network. Try again in {wait}."
    return f"Too many failed sign-ins from your network. Try again in {wait}."


def _form(email: str, errors: dict[str, str], target: str, *, status: int) -> Response:
    html = render_template("dashboard/login.html", email=email, errors=errors, next=target)
    return Response(html, status=status)
