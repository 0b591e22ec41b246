"""The marketers' JSON API (``/api/v1``), with bearer API tokens; the dashboard's powers over HTTP.

``Authorization: Bearer tp_…`` (made in the dashboard, or ``flask --app app token create NAME``). Each view
is declared with :func:`app.web.api.openapi.operation`, which checks the token's role, validates the body
and query with pydantic, serialises the answer and describes it all in ``/api/v1/openapi.json``. Errors
are problem+json like everywhere.

The modules of this package each hold one area (segments, campaigns, ...) and register on ``bp``.
"""

from __future__ import annotations

import importlib
import pkgutil

from flask import Blueprint, g, request
from sqlalchemy import select

from app.database import best_effort_write, get_session
from app.db import utcnow
from app.errors import NotFound, Unauthorized
from app.merchants import tokens as token_service  # (a submodule here may be called tokens)
from app.models import ApiToken, Program

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC = {"api.openapi_document"}


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    now = utcnow()
    row = token_service.verify(get_session(), token=token.strip()) if scheme.lower() == "bearer" else None
    if row is not None and token_service.use_to_note(row, now=now):
        # "Last used" must never fail the request: it is written apart, and skipped if the database refuses.
        token_id = row.id
        best_effort_write("an API token's last use",
                          lambda session: token_service.note_use(session, token_id=token_id, now=now))
        row = get_session().get(ApiToken, token_id)  # the same row (reloaded if that write failed)
    if row is None:
        raise Unauthorized("send a valid API token as 'Authorization: Bearer <token>'")
    g.api_token = row


def program_by_slug(slug: str) -> Program:
    program = get_session().scalar(select(Program).where(Program.slug == slug))
    if program is None:
        raise NotFound(f"there is no programme {slug!r}")
    return program


def get_or_404(model: type, row_id: int, what: str):  # noqa: ANN201 (returns an instance of ``model``)
    row = get_session().get(model, row_id)
    if row is None:
        raise NotFound(f"there is no such {what}")
    return row


def api_actor() -> str:
    """Who the audit log says made a change through the API."""
    return f"api-token:{g.api_token.prefix}"


def _register_views() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_register_views()
