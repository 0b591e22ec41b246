"""The signed-in user's own account (every role, a cashier too: the till links here): changing the password
(this session stays, every other one ends) and two-factor sign-in (turning it on with a QR code and a code from
the app, then ten recovery codes shown once; turning it off with the password)."""

from __future__ import annotations

import io

import segno
from flask import Response, current_app, flash, redirect, request, url_for
from markupsafe import Markup

from app.database import get_session
from app.db import utcnow
from app.errors import AppError
from app.merchants import two_factor, users
from app.models import User
from app.web.dashboard import bp
from app.web.dashboard.access import TILL_PATH, current_session, current_user, requires
from app.web.dashboard.pages import render
from app.web.dashboard.tokens import any_programme
from app.web.forms import check_csrf, limit_ip

MAX_PASSWORD = 1024


def _me() -> User:
    user = current_user()
    assert user is not None  # @requires made sure
    return user


def _page(template: str, *, status: int = 200, **context: object) -> Response:
    user = _me()
    program, programs = (None, []) if user.role == "cashier" else any_programme()
    return render(template, status=status, program=program, programs=programs, till=TILL_PATH, **context)


@bp.get("/account", endpoint="account")
@requires("cashier")
def account() -> Response:
    return _page("dashboard/account.html", errors={})


@bp.post("/account/password")
@requires("cashier")
def account_password() -> Response:
    check_csrf()
    limit_ip("account-password")
    user = _me()
    current = request.form.get("current", "")[:MAX_PASSWORD]
    new, again = request.form.get("password", "")[:MAX_PASSWORD], request.form.get("confirm", "")[:MAX_PASSWORD]
    errors: dict[str, str] = {}
    if not users.check_password(user, current):
        errors["current"] = "This is not your current password."
    if len(new) < users.MIN_PASSWORD_LENGTH:
        errors["password"] = f"Choose a password of at least {users.MIN_PASSWORD_LENGTH} characters."
    elif new != again:
        errors["confirm"] = "The two new passwords differ: type the same one twice."
    if errors:
        return _page("dashboard/account.html", status=422, errors=errors)
    db = get_session()
    ended = users.set_password(db, user=user, password=new, now=utcnow(), actor=user, keep=current_session())
    db.commit()
    others = f" You were signed out on {ended} other device{'s' if ended != 1 else ''}." if ended else ""
    flash(f"Your password is changed.{others}", "success")
    return redirect(url_for("dashboard.account"), code=303)


def _secret_key() -> str:
    return str(current_app.config["SECRET_KEY"])


def _qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (no external request, allowed by the pages' CSP)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, svgns=True, scale=5, border=3,
                                    dark="#111827", light="#ffffff", title="QR code for your authenticator app")
    return Markup(out.getvalue().decode())  # noqa: S704 (segno's own SVG, with our URI escaped by segno)


def _enrolment(secret: str, *, status: int, errors: dict[str, str]) -> Response:
    user = _me()
    uri = two_factor.provisioning_uri(user, secret)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return _page("dashboard/two_factor.html", status=status, qr=_qr_svg(uri), secret=grouped, uri=uri,
                 errors=errors, codes=None)


@bp.post("/account/two-factor")
@requires("cashier")
def account_two_factor_begin() -> Response:
    """Start (or restart) enrolling: a new secret, its QR code, and the form for the first code."""
    check_csrf()
    db, user = get_session(), _me()
    try:
        secret = two_factor.begin(db, user=user, secret_key=_secret_key())
    except AppError as error:
        db.rollback()
        flash(error.detail[:1].upper() + error.detail[1:] + ".", "error")
        return redirect(url_for("dashboard.account"), code=303)
    db.commit()
    return _enrolment(secret, status=200, errors={})


@bp.post("/account/two-factor/confirm")
@requires("cashier")
def account_two_factor_confirm() -> Response:
    check_csrf()
    limit_ip("two-factor-confirm")
    db, user = get_session(), _me()
    secret = two_factor.pending_secret(user, secret_key=_secret_key())
    if secret is None:
        flash("Start again: press “Turn on two-factor sign-in”.", "error")
        return redirect(url_for("dashboard.account"), code=303)
    code = request.form.get("code", "")[:64]
    try:
        codes = two_factor.confirm(db, user=user, code=code, now=utcnow(), secret_key=_secret_key())
    except AppError as error:
        db.rollback()
        return _enrolment(secret, status=422, errors={e.field: e.message[:1].upper() + e.message[1:] + "."
                                                      for e in error.errors})
    db.commit()
    return _page("dashboard/two_factor.html", status=200, codes=codes, errors={}, qr=None, secret=None, uri=None)


@bp.post("/account/two-factor/disable")
@requires("cashier")
def account_two_factor_disable() -> Response:
    check_csrf()
    limit_ip("account-password")
    db, user = get_session(), _me()
    if not users.check_password(user, request.form.get("current_2fa", "")[:MAX_PASSWORD]):
        return _page("dashboard/account.html", status=422,
                     errors={"current_2fa": "This is not your password: two-factor sign-in stays on."})
    two_factor.disable(db, user=user, now=utcnow(), actor=user)
    db.commit()
    flash("Two-factor sign-in is off. You can remove Tallypass from your authenticator app.", "success")
    return redirect(url_for("dashboard.account"), code=303)
