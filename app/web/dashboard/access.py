"""Who is signed in to the dashboard, and what their role lets them do.

Roles are ordered: a viewer reads, a marketer also changes programmes and sends campaigns, an admin also
manages users, stores' POS keys and API tokens. Every view declares the least role it needs with
``@requires(role)``; the decorator stores it on the view, so a test can check that no dashboard route
lacks one. The session holds the user's id and a fingerprint of their password hash: changing the
password (or deactivating the user) ends every session at once."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for

from app.database import get_session
from app.errors import Forbidden, Unauthorized
from app.merchants.users import ROLE_RANK
from app.models import User

F = TypeVar("F", bound=Callable[..., Any])

RANK = ROLE_RANK
USER_KEY, FINGERPRINT_KEY = "user_id", "user_fp"


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def sign_in(user: User) -> None:
    """A fresh session for ``user`` (anything from before, such as a fixed session id, is dropped)."""
    session.clear()
    session.permanent = True
    session[USER_KEY], session[FINGERPRINT_KEY] = user.id, _fingerprint(user)


def sign_out() -> None:
    session.clear()


def current_user() -> User | None:
    if "dashboard_user" not in g:
        user = None
        user_id = session.get(USER_KEY)
        if isinstance(user_id, int):
            found = get_session().get(User, user_id)
            if found is not None and found.is_active and hmac.compare_digest(
                    _fingerprint(found), str(session.get(FINGERPRINT_KEY, ""))):
                user = found
        g.dashboard_user = user
    return g.dashboard_user


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
            if not may(user, role):
                raise Forbidden(f"this needs the {role} role; you are signed in as a {user.role}",
                                code="role-too-small")
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path inside the dashboard (never another site)."""
    if (target and target.startswith("/dashboard") and not urlsplit(target).netloc and "\\" not in target
            and target.isprintable()):  # no CR/LF: the target goes into the Location header
        return target
    return url_for("dashboard.overview")
