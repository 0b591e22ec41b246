"""Who is signed in to the dashboard, and what their role lets them do.

Roles are ordered: a viewer reads, a marketer also changes programmes and sends campaigns, an admin also
manages users, stores' POS keys and API tokens. Every view declares the least role it needs with
``@requires(role)``; the decorator stores it on the view, so a test can check that no dashboard route
lacks one.

Sessions live in the database (``app.merchants.dashboard_sessions``); Flask's signed cookie carries only the
session's random token. Signing out revokes that session; changing a password or disabling a user revokes all of
theirs; idle and over-age sessions are refused. So a copied cookie stops working the moment any of these happens.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.database import get_session
from app.db import utcnow
from app.errors import Forbidden, Unauthorized
from app.merchants import audit, dashboard_sessions
from app.merchants.dashboard_sessions import Lifetime
from app.merchants.users import ROLE_RANK
from app.models import DashboardSession, User

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

RANK = ROLE_RANK
COOKIE_FIELD = "dashboard_session"  # the key in Flask's session cookie that holds the session's token
TILL_PATH = "/till/"  # the cashiers' web app (app.web.till), where a cashier lands after signing in


def lifetime() -> Lifetime:
    return Lifetime.configured(current_app.config["TALLYPASS"])


def sign_in(user: User) -> None:
    """A fresh session for ``user``, added to the request's transaction (the caller commits). Anything in the
    cookie from before, such as a fixed session or another user's, is dropped; a session it held ends."""
    db, now = get_session(), utcnow()
    previous = session.get(COOKIE_FIELD)
    if isinstance(previous, str):
        dashboard_sessions.end(db, token=previous, now=now, reason="signed-in-again")
    _row, token = dashboard_sessions.start(db, user=user, now=now, lifetime=lifetime())
    session.clear()
    session.permanent = True
    session[COOKIE_FIELD] = token
    g.dashboard_user = user


def sign_out() -> None:
    """End this browser's session in the database, then forget it in the cookie. The revocation is committed
    before the cookie is cleared: a sign-out that could not be recorded fails visibly and can be retried."""
    token, user = session.get(COOKIE_FIELD), current_user()
    if isinstance(token, str):
        db, now = get_session(), utcnow()
        dashboard_sessions.end(db, token=token, now=now)
        if user is not None:
            audit.record(db, actor=user, action="logout", now=now, ip=request.remote_addr)
        db.commit()
    session.clear()
    g.dashboard_user = None


def current_user() -> User | None:
    """The signed-in user, looked up once per request. A lookup that fails (the database being down) is not
    tried again in the same request, so the error page it leads to never fails the same way."""
    if "dashboard_user" not in g:
        g.dashboard_user = None
        g.dashboard_user = _resolve()
    return g.dashboard_user


def current_session() -> DashboardSession | None:
    """The signed-in browser's session row (for ``set_password(keep=...)``), once ``current_user`` found it."""
    current_user()
    return g.get("dashboard_session")


def _resolve() -> User | None:
    token = session.get(COOKIE_FIELD)
    if not isinstance(token, str):
        return None
    db = get_session()
    # Nothing else has happened in this request's transaction yet, so committing "last seen" commits only that.
    # (Every dashboard request starts so today; test_last_seen_is_written_at_most_once_a_minute fails if a hook
    # that runs first starts using the database, which would leave busy sessions to hit the idle timeout.)
    fresh = not db.in_transaction()
    now = utcnow()
    row = dashboard_sessions.find(db, token=token, now=now, lifetime=lifetime())
    if row is None:
        session.pop(COOKIE_FIELD, None)  # revoked, expired or unknown: the browser forgets it
        return None
    user = row.user
    g.dashboard_session = row
    if fresh:
        _mark_seen(db, row, now)
    return user


def _mark_seen(db: Session, row: DashboardSession, now: datetime) -> None:
    """Record the visit (at most once a minute) in a transaction of its own, committed before the view runs. It
    is bookkeeping: if the database refuses the write, the request carries on with what it read."""
    try:
        if dashboard_sessions.mark_seen(db, row=row, now=now):
            db.commit()
    except SQLAlchemyError as error:
        db.rollback()
        log.warning("could not record dashboard session activity (%s); carrying on", type(error).__name__)


def may(user: User | None, role: str) -> bool:
    return user is not None and RANK[user.role] >= RANK[role]


def requires(role: str) -> Callable[[F], F]:
    """The view needs a signed-in user with at least ``role``. Anonymous: a page is redirected to the sign-in
    form (and back afterwards), a form post is refused (401). Too small a role: 403."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                if request.method == "GET":
                    return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
                raise Unauthorized("sign in to the dashboard first", code="signed-out")
            if user.role == "cashier" and role != "cashier":
                # The dashboard is for managers: a cashier asking for it gets told where to go instead.
                return Response(render_template("dashboard/for_managers.html", user=user, till=TILL_PATH,
                                                program=None), status=403)
            if not may(user, role):
                raise Forbidden(f"this needs the {role} role; you are signed in as a {user.role}",
                                code="role-too-small")
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path inside the dashboard or the till (never another site)."""
    if (target and target.startswith(("/dashboard", TILL_PATH.rstrip("/"))) and not urlsplit(target).netloc
            and "\\" not in target and target.isprintable()):  # no CR/LF: the target goes into the Location header
        return target
    return url_for("dashboard.overview")


def landing(user: User, target: str | None) -> str:
    """Where ``user`` goes after signing in: the page they asked for, if they may open it; a cashier goes to the
    till unless they asked for a page of the till or their account."""
    chosen = safe_next(target)
    if user.role == "cashier" and not chosen.startswith((TILL_PATH.rstrip("/"), "/dashboard/account")):
        return TILL_PATH
    return chosen
