"""API tokens (admin): the list, creating one (shown once), revoking."""

from __future__ import annotations

from typing import Literal

from flask import Response, flash, redirect, request, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.database import get_session
from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.merchants import tokens
from app.models import ApiToken, Program
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires
from app.web.dashboard.pages import programme, render, validate_form
from app.web.forms import check_csrf

ROLE_HINTS = {
    "viewer": "Viewer: reads figures, segments and campaigns; changes nothing.",
    "marketer": "Marketer: also creates segments and sends campaigns.",
    "admin": "Admin: also manages stores' POS keys, API tokens and reads the audit log.",
}


class TokenForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    role: Literal["viewer", "marketer", "admin"]


@bp.get("/tokens", endpoint="tokens")
@requires("admin")
def token_list() -> Response:
    return _page({"name": "", "role": "marketer"}, {}, status=200)


@bp.post("/tokens")
@requires("admin")
def tokens_create() -> Response:
    check_csrf()
    data = {"name": request.form.get("name", "")[:300].replace("\x00", ""), "role": request.form.get("role", "")[:20]}
    form, errors = validate_form(TokenForm, data)
    if errors.get("name"):
        errors["name"] = "Name the token after what will use it, e.g. “CRM sync” (1 to 120 characters)."
    if errors.get("role"):
        errors["role"] = "Choose what the token may do."
    if form is None:
        return _page(data, errors, status=422)
    db = get_session()
    try:
        row, token = tokens.issue(db, name=form.name, role=form.role, now=utcnow(),
                                  actor=current_user() or "dashboard")
    except InvalidInput as error:
        return _page(data, {e.field: e.message for e in error.errors}, status=422)
    db.commit()
    # The token is in this answer only: it is stored as a hash and cannot be shown again.
    return _page({"name": "", "role": "marketer"}, {}, status=201, created=row, token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@requires("admin")
def tokens_revoke(token_id: int) -> Response:
    check_csrf()
    db = get_session()
    row = tokens.revoke(db, token_id=token_id, actor=current_user() or "dashboard", now=utcnow())
    db.commit()
    flash(f"Token “{row.name}” ({row.prefix}…) revoked: requests with it are refused from now on.", "success")
    return redirect(url_for("dashboard.tokens"), code=303)


def _page(form: dict[str, str], errors: dict[str, str], *, status: int, created: ApiToken | None = None,
          token: str | None = None) -> Response:
    program, programs = any_programme()
    return render("dashboard/tokens.html", status=status, tokens=tokens.all_tokens(get_session()), form=form,
                  errors=errors, created=created, token=token, role_hints=ROLE_HINTS, program=program,
                  programs=programs)


def any_programme() -> tuple[Program | None, list[Program]]:
    """The ``?program=`` being looked at, for the menu's links; admin pages work without any programme."""
    try:
        return programme()
    except NotFound:
        return None, []
