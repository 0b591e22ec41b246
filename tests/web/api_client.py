"""Calling the marketer API (``/api/v1``) from tests with a bearer token (or none)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import tokens


def api_token(db_session: Session, role: str) -> str:
    """A new, committed API token with ``role``."""
    _row, value = tokens.issue(db_session, name=f"{role} token", role=role, now=utcnow())
    db_session.commit()
    return value


def call(client: FlaskClient, method: str, path: str, token: str | None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)
