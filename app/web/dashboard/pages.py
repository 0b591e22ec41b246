"""What dashboard views share: the programme being looked at, rendering with the signed-in user, form
errors from pydantic, and paging. Views stay thin; the work is in domain services."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Response, abort, redirect, render_template, request, url_for
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from app.database import get_session
from app.errors import NotFound
from app.models import Program
from app.web.dashboard.access import current_user, may

M = TypeVar("M", bound=BaseModel)
PAGE_SIZE = 50


def programme() -> tuple[Program, list[Program]]:
    """The programme chosen with ``?program=<slug>`` (else the first), and all of them for the switcher."""
    programs = list(get_session().scalars(select(Program).order_by(Program.name)))
    if not programs:
        if may(current_user(), "admin"):  # a shop starting from nothing: the wizard
            abort(redirect(url_for("dashboard.programme_new"), code=303))
        raise NotFound("there is no programme yet: an administrator creates one with the New programme wizard, "
                       "`flask --app app program create` or the API")
    slug = request.args.get("program") or request.form.get("program")
    chosen = next((p for p in programs if p.slug == slug), None) if slug else programs[0]
    if chosen is None:
        raise NotFound(f"there is no programme {slug!r}")
    return chosen, programs


def render(template: str, *, status: int = 200, **context: Any) -> Response:
    """``template`` with the signed-in user (for the header and role-dependent buttons)."""
    context.setdefault("user", current_user())
    return Response(render_template(template, **context), status=status)


def field_errors(error: ValidationError) -> dict[str, str]:
    """pydantic's errors as ``{field: message}``, the first message per field, for showing beside it."""
    out: dict[str, str] = {}
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "form"
        message = str(item["msg"]).removeprefix("Value error, ")
        out.setdefault(field, message[:1].upper() + message[1:])
    return out


def validate_form(model: type[M], data: dict[str, Any], **context: Any) -> tuple[M | None, dict[str, str]]:
    """``(model, {})`` or ``(None, errors per field)``; nothing reaches a service unvalidated."""
    try:
        return model.model_validate(data, context=context or None), {}
    except ValidationError as error:
        return None, field_errors(error)


def page_number() -> int:
    """``?page=N`` (1-based; anything else is the first page)."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
