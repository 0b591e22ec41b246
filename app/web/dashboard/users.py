"""The Users page (admin): everyone who signs in, inviting someone (a one-time link shown once), and per user:
changing the role (and a cashier's stores), disabling or enabling, a password-reset link, resetting two-factor
sign-in, removing. The rules and guard rails (the last active admin stays) are in ``app.merchants``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from flask import Response, flash, redirect, request, url_for
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.database import get_session
from app.db import utcnow
from app.errors import AppError, NotFound
from app.merchants import invitations, two_factor, users
from app.models import USER_ROLES, Program, Store, User
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires
from app.web.dashboard.pages import render, validate_form
from app.web.dashboard.tokens import any_programme
from app.web.forms import check_csrf

ROLE_HINTS = {
    "admin": "Admin: everything, including users, stores' POS keys, API tokens and the audit log.",
    "marketer": "Marketer: changes programmes, segments and campaigns.",
    "viewer": "Viewer: reads figures, customers, segments and campaigns; changes nothing.",
    "cashier": "Cashier: only the till, at the stores ticked below; never the dashboard.",
}
MAX_STORES = 200


class InviteForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Literal["admin", "marketer", "viewer", "cashier"]


def _store_ids() -> tuple[list[int], str | None]:
    raw = request.form.getlist("stores")[:MAX_STORES]
    if any(not value.isdigit() or len(value) > 12 for value in raw):
        return [], "Choose stores from the list."
    return [int(value) for value in raw], None


def _errors(error: AppError) -> dict[str, str]:
    found = {e.field: e.message[:1].upper() + e.message[1:] + "." for e in error.errors}
    return found or {"form": error.detail[:1].upper() + error.detail[1:] + "."}


@bp.get("/users", endpoint="users")
@requires("admin")
def users_list() -> Response:
    return _list_page({"email": "", "role": "marketer", "stores": []}, {}, status=200)


@bp.post("/users")
@requires("admin")
def users_invite() -> Response:
    check_csrf()
    store_ids, store_error = _store_ids()
    data = {"email": request.form.get("email", "")[:300].replace("\x00", ""),
            "role": request.form.get("role", "")[:20], "stores": store_ids}
    form, errors = validate_form(InviteForm, {"email": data["email"], "role": data["role"]})
    if errors.get("email"):
        errors["email"] = "Enter the e-mail address of the person to invite, e.g. ana@example.com."
    if errors.get("role"):
        errors["role"] = "Choose what the person may do."
    if store_error:
        errors["stores"] = store_error
    if form is None or errors:
        return _list_page(data, errors, status=422)
    db = get_session()
    try:
        issued = invitations.invite(db, email=form.email, role=form.role, store_ids=store_ids, now=utcnow(),
                                    actor=current_user() or "dashboard")
    except AppError as error:
        db.rollback()
        return _list_page(data, _errors(error) if error.errors else {"email": _errors(error)["form"]},
                          status=error.status)
    db.commit()
    return _list_page({"email": "", "role": "marketer", "stores": []}, {}, status=201,
                      link=_link_url(issued), linked=issued.link.user, purpose="invite")


def _link_url(issued: invitations.IssuedLink) -> str:
    return url_for("dashboard.link", token=issued.token, _external=True)


def _list_page(form: dict[str, object], errors: dict[str, str], *, status: int, link: str | None = None,
               linked: User | None = None, purpose: str | None = None) -> Response:
    db = get_session()
    program, programs = any_programme()
    return render("dashboard/users.html", status=status, users=users.all_users(db), form=form, errors=errors,
                  stores=_all_stores(), roles=USER_ROLES, role_hints=ROLE_HINTS, link=link, linked=linked,
                  purpose=purpose, invited=invitations.pending_links(db, now=utcnow()), program=program,
                  programs=programs)


def _all_stores() -> list[tuple[Store, Program]]:
    rows = get_session().execute(select(Store, Program).join(Program, Program.id == Store.program_id)
                                 .where(Store.closed_at.is_(None)).order_by(Program.name, Store.name))
    return [(store, program) for store, program in rows]


def _user(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        raise NotFound(f"there is no user {user_id}")
    return user


@bp.get("/users/<int:user_id>")
@requires("admin")
def users_show(user_id: int) -> Response:
    user = _user(user_id)
    return _user_page(user, {"role": user.role, "stores": [store.id for store in user.stores]}, {}, status=200)


def _user_page(shown: User, form: dict[str, object], errors: dict[str, str], *, status: int,
               link: str | None = None, purpose: str | None = None) -> Response:
    db = get_session()
    program, programs = any_programme()
    return render("dashboard/user.html", status=status, shown=shown, form=form, errors=errors,
                  stores=_all_stores(), roles=USER_ROLES, role_hints=ROLE_HINTS, link=link, purpose=purpose,
                  invitation=invitations.pending_links(db, now=utcnow()).get(shown.id), program=program,
                  programs=programs, codes_left=two_factor.recovery_codes_left(db, user=shown))


@bp.post("/users/<int:user_id>/role")
@requires("admin")
def users_role(user_id: int) -> Response:
    check_csrf()
    shown = _user(user_id)
    store_ids, store_error = _store_ids()
    role = request.form.get("role", "")[:20]
    form = {"role": role, "stores": store_ids}
    if store_error or role not in USER_ROLES:
        errors = {"stores": store_error} if store_error else {}
        if role not in USER_ROLES:
            errors["role"] = "Choose what the person may do."
        return _user_page(shown, form, errors, status=422)
    db = get_session()
    try:
        users.change_role(db, user=shown, role=role, store_ids=store_ids, now=utcnow(),
                          actor=current_user() or "dashboard")
    except AppError as error:
        db.rollback()
        found = _errors(error)
        return _user_page(_user(user_id), form, {"role": found.pop("form")} if "form" in found else found,
                          status=error.status)
    db.commit()
    flash(f"{shown.email} is now a {role}.", "success")
    return redirect(url_for("dashboard.users_show", user_id=user_id), code=303)


Act = Callable[[Session, User, datetime, "User | str"], object]


def _action(user_id: int, name: str, done: str, act: Act) -> Response:
    """Run ``act(db, user, now, actor)``; on a refusal, show the user's page with the reason beside ``name``."""
    check_csrf()
    shown = _user(user_id)
    db = get_session()
    try:
        act(db, shown, utcnow(), current_user() or "dashboard")
    except AppError as error:
        db.rollback()
        shown = _user(user_id)
        return _user_page(shown, {"role": shown.role, "stores": [s.id for s in shown.stores]},
                          {name: _errors(error).get("form", error.detail)}, status=error.status)
    db.commit()
    flash(done.format(email=shown.email), "success")
    return redirect(url_for("dashboard.users_show", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/disable")
@requires("admin")
def users_disable(user_id: int) -> Response:
    return _action(user_id, "active", "{email} is disabled and signed out everywhere.",
                   lambda db, user, now, actor: users.disable_user(db, user=user, now=now, actor=actor))


@bp.post("/users/<int:user_id>/enable")
@requires("admin")
def users_enable(user_id: int) -> Response:
    return _action(user_id, "active", "{email} may sign in again.",
                   lambda db, user, now, actor: users.enable_user(db, user=user, now=now, actor=actor))


@bp.post("/users/<int:user_id>/two-factor-reset")
@requires("admin")
def users_two_factor_reset(user_id: int) -> Response:
    return _action(user_id, "two_factor", "Two-factor sign-in of {email} is off; they can turn it on again.",
                   lambda db, user, now, actor: two_factor.reset(db, user=user, now=now, actor=actor))


@bp.post("/users/<int:user_id>/link")
@requires("admin")
def users_link(user_id: int) -> Response:
    """A password-reset link, or a fresh invitation link for someone who has not used theirs (shown once)."""
    check_csrf()
    shown = _user(user_id)
    db, actor = get_session(), current_user() or "dashboard"
    try:
        if shown.invitation_pending:
            issued = invitations.reissue_invitation(db, user=shown, now=utcnow(), actor=actor)
        else:
            issued = invitations.issue_reset(db, user=shown, now=utcnow(), actor=actor)
    except AppError as error:
        db.rollback()
        shown = _user(user_id)
        return _user_page(shown, {"role": shown.role, "stores": [s.id for s in shown.stores]},
                          {"link": _errors(error)["form"]}, status=error.status)
    db.commit()
    return _user_page(shown, {"role": shown.role, "stores": [s.id for s in shown.stores]}, {}, status=201,
                      link=_link_url(issued), purpose=issued.link.purpose)


@bp.post("/users/<int:user_id>/remove")
@requires("admin")
def users_remove(user_id: int) -> Response:
    check_csrf()
    shown = _user(user_id)
    email, db = shown.email, get_session()
    try:
        users.remove_user(db, user=shown, now=utcnow(), actor=current_user() or "dashboard")
    except AppError as error:
        db.rollback()
        shown = _user(user_id)
        return _user_page(shown, {"role": shown.role, "stores": [s.id for s in shown.stores]},
                          {"remove": _errors(error)["form"]}, status=error.status)
    db.commit()
    flash(f"{email} is removed: the account and its sessions are gone (the audit log keeps what they did).",
          "success")
    return redirect(url_for("dashboard.users"), code=303)
