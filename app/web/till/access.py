"""Who may use the till, and at which stores.

A cashier works at the stores its account is bound to (``User.stores``); an admin or marketer may serve at any
store; a viewer may not use the till. Anonymous visitors of the page go to the dashboard's sign-in form and come
back; anonymous JSON calls get 401. The JSON calls ride on the session cookie, so each one carries the page's
CSRF token in the ``X-CSRF-Token`` header (``app.web.forms``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import AppError, FieldError, Forbidden, InvalidInput, Unauthorized
from app.models import Store, User
from app.web.dashboard.access import current_user
from app.web.forms import check_csrf
from app.web.till.messages import as_json, translated

F = TypeVar("F", bound=Callable[..., Any])

ROLES = ("cashier", "marketer", "admin")  # viewers only read the dashboard


def stores_for(session: Session, user: User) -> list[Store]:
    """The open stores ``user`` may serve at, in id order: a cashier's own, anyone else's every one. (A closed store
    keeps its history but serves no more.)"""
    if user.role == "cashier":
        return [store for store in user.stores if store.closed_at is None]
    return list(session.scalars(select(Store).where(Store.closed_at.is_(None)).order_by(Store.id)))


def store_for(session: Session, user: User, store_id: int) -> Store:
    """:raise InvalidInput: ``user`` may not serve at this store (or it does not exist)."""
    store = next((s for s in stores_for(session, user) if s.id == store_id), None)
    if store is None:
        raise InvalidInput("you do not serve at this store", code="store-not-allowed",
                           errors=[FieldError("store", "is not one of your stores")])
    return store


def till_user(*, json: bool) -> Callable[[F], F]:
    """The view needs a signed-in user whose role may use the till; ``json`` views also need the CSRF header.

    Anonymous: a page redirects to the sign-in form (and back here afterwards), a JSON call is 401. A viewer: 403.
    A JSON call's refusals are problem+json in the cashier's language (``messages``).
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not json:
                return checked(*args, **kwargs)
            try:
                return checked(*args, **kwargs)
            except AppError as error:  # the refusal in the cashier's language (5xx: the application's page)
                if error.status >= 500:
                    raise
                return as_json(translated(error, request.path), error.status)

        def checked(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                if not json:
                    return redirect(url_for("dashboard.login", next="/till/"))
                raise Unauthorized("sign in again to use the till", code="signed-out")
            if user.role not in ROLES:
                raise Forbidden(f"the till is for cashiers; you are signed in as a {user.role}",
                                code="role-too-small")
            if json and request.method == "POST":
                check_csrf()
            return view(user, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
