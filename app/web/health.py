"""``GET /healthz`` for load balancers: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

import logging

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.database import get_session

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}, 200
