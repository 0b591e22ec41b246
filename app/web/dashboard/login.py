"""Signing in and out of the dashboard. A user with two-factor sign-in gives the code from their app (or a
recovery code) after the password, before any session is made; wrong codes are throttled like wrong passwords.
A cashier lands on the till."""

from __future__ import annotations

import math
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, session, url_for

from app.database import get_session
from app.db import utcnow
from app.merchants import audit, two_factor
from app.merchants.users import authenticate
from app.models import User
from app.web import ratelimit
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, landing, requires, sign_in, sign_out
from app.web.forms import check_csrf, limit_ip

MAX_FIELD = 254


# How long the second step of a two-factor sign-in may wait for its code after the password was right.
SECOND_STEP_SECONDS = 300
PENDING_FIELD = "two_factor_pending"  # in Flask's signed cookie: {"user", "email", "at", "next"}


@bp.get("/login")
def login() -> Response:
    if (user := current_user()) is not None:
        return redirect(landing(user, request.args.get("next")))
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
    if user.two_factor:
        # No session yet: the password was right, the code comes next (within SECOND_STEP_SECONDS).
        db.commit()  # a re-hashed password, if any
        session.clear()
        session[PENDING_FIELD] = {"user": user.id, "email": user.email, "at": now.timestamp(), "next": target}
        return redirect(url_for("dashboard.login_code"), code=303)
    audit.record(db, actor=user, action="login", now=now, ip=request.remote_addr)
    sign_in(user)  # the server-side session, committed with the audit record
    db.commit()
    return redirect(landing(user, target), code=303)


def _pending() -> dict[str, Any] | None:
    """The sign-in waiting for its second step in this browser, if it is recent enough."""
    pending = session.get(PENDING_FIELD)
    if (not isinstance(pending, dict) or not isinstance(pending.get("at"), float)
            or not 0 <= utcnow().timestamp() - pending["at"] < SECOND_STEP_SECONDS):
        return None
    return pending


@bp.get("/login/code")
def login_code() -> Response:
    if _pending() is None:
        session.pop(PENDING_FIELD, None)
        return redirect(url_for("dashboard.login"))
    return _code_form({}, status=200)


@bp.post("/login/code")
def login_code_post() -> Response:
    check_csrf()
    limit_ip("login")
    pending = _pending()
    if pending is None:
        session.pop(PENDING_FIELD, None)
        flash("That sign-in took too long: enter your password again.", "error")
        return redirect(url_for("dashboard.login"), code=303)
    code = request.form.get("code", "").strip()[:64]
    if not code:
        return _code_form({"code": "Enter the 6-digit code from your authenticator app, or a recovery code."},
                          status=422)
    email = pending["email"]
    throttle, address = ratelimit.sign_in_throttle(), ratelimit.client_address()
    if held := throttle.held(address, email):
        response = _code_form({"code": _held_message(held)}, status=429)
        response.headers["Retry-After"] = str(held.retry_after)
        return response
    db, now = get_session(), utcnow()
    user = db.get(User, pending["user"])
    used = None
    if user is not None and user.is_active:
        used = two_factor.verify(db, user=user, code=code, now=now, secret_key=current_app.config["SECRET_KEY"])
    if user is None or used is None:
        throttle.failed(address, email)
        audit.record(db, actor=email, action="login-failed", now=now, ip=request.remote_addr,
                     details={"step": "two-factor"})
        db.commit()
        return _code_form({"code": "That code is not right, or was used already. Wait for the next code in "
                                   "your app and try again."}, status=401)
    throttle.succeeded(address, email)
    audit.record(db, actor=user, action="login", now=now, ip=request.remote_addr, details={"two_factor": used})
    sign_in(user)  # drops the pending step with the rest of the cookie
    db.commit()
    if used == "recovery":
        left = two_factor.recovery_codes_left(db, user=user)
        flash(f"You signed in with a recovery code; {left} left. If your phone is lost, turn two-factor sign-in "
              "off and on again on your account page to get new codes.", "warning")
    return redirect(landing(user, pending.get("next")), code=303)


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


def _code_form(errors: dict[str, str], *, status: int) -> Response:
    return Response(render_template("dashboard/login_code.html", errors=errors), status=status)


def _form(email: str, errors: dict[str, str], target: str, *, status: int) -> Response:
    html = render_template("dashboard/login.html", email=email, errors=errors, next=target)
    return Response(html, status=status)
