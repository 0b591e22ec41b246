"""One-time links (``app.merchants.invitations``): an invitation or a password reset lets its holder choose a
password, then signs them in (unless they use two-factor sign-in: then they sign in with the new password and
their code). A used, expired or unknown link says so, and what to do."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for

from app.database import get_session
from app.db import utcnow
from app.errors import AppError
from app.merchants import invitations
from app.models import UserLink
from app.web.dashboard import bp
from app.web.dashboard.access import landing, sign_in
from app.web.forms import check_csrf, limit_ip

MAX_PASSWORD = 1024


def _page(token: str, link: UserLink | None, *, status: int, errors: dict[str, str] | None = None,
          problem: AppError | None = None) -> Response:
    html = render_template("dashboard/link.html", token=token, link=link, errors=errors or {}, problem=problem,
                           user=None, program=None)
    response = Response(html, status=status)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's address
    return response


@bp.get("/welcome/<token>", endpoint="link")
def link_page(token: str) -> Response:
    try:
        link = invitations.open_link(get_session(), token=token[:200], now=utcnow())
    except AppError as problem:
        return _page("", None, status=problem.status, problem=problem)
    return _page(token, link, status=200)


@bp.post("/welcome/<token>")
def link_post(token: str) -> Response:
    check_csrf()
    limit_ip("one-time-link")
    db, now = get_session(), utcnow()
    try:
        link = invitations.open_link(db, token=token[:200], now=now)
    except AppError as problem:
        return _page("", None, status=problem.status, problem=problem)
    password = request.form.get("password", "")[:MAX_PASSWORD]
    confirm = request.form.get("confirm", "")[:MAX_PASSWORD]
    try:
        user = invitations.use_link(db, token=token[:200], password=password, confirm=confirm, now=now)
    except AppError as problem:
        db.rollback()
        if problem.errors:
            link = invitations.open_link(db, token=token[:200], now=now)
            return _page(token, link, status=problem.status,
                         errors={e.field: e.message[:1].upper() + e.message[1:] + "." for e in problem.errors})
        return _page("", None, status=problem.status, problem=problem)
    if user.two_factor:
        db.commit()
        flash("Your password is set. Sign in with it and the code from your authenticator app.", "success")
        return redirect(url_for("dashboard.login"), code=303)
    sign_in(user)
    db.commit()
    flash("Your password is set and you are signed in.", "success")
    return redirect(landing(user, None), code=303)
