"""An API token's "last used" is bookkeeping: written at most once a minute, in a short transaction of its own,
and never the reason a request fails or waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.database import SESSIONS
from app.db import utcnow
from app.merchants import tokens
from app.models import ApiToken
from tests.web.api_client import call
from tests.web.test_reads_without_writes import make_read_only


def _last_used(db_session: Session, token: str) -> object:
    return db_session.scalar(select(ApiToken.last_used_at).where(ApiToken.prefix == token[:10]))


def test_a_read_records_the_last_use_at_most_once_a_minute(client: FlaskClient, token: str,
                                                           db_session: Session) -> None:
    assert _last_used(db_session, token) is None
    assert call(client, "GET", "/programs", token).status_code == 200
    first = _last_used(db_session, token)
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    assert call(client, "GET", "/programs", token).status_code == 200
    assert _last_used(db_session, token) == first  # within the minute: not written again
    db_session.execute(ApiToken.__table__.update().values(last_used_at=first - timedelta(minutes=2)))
    db_session.commit()
    assert call(client, "GET", "/programs", token).status_code == 200
    assert _last_used(db_session, token) > first


def test_a_read_answers_when_the_last_use_cannot_be_written(client: FlaskClient, token: str,
                                                            connection: Connection, is_postgres: bool,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with make_read_only(connection, is_postgres):
        response = call(client, "GET", "/programs", token)
    assert response.status_code == 200, response.get_json(force=True)
    assert response.get_json()["items"] == []
    logged = [r.getMessage() for r in caplog.records if "last use" in r.getMessage()]
    assert logged and token not in logged[0] and token[:10] not in logged[0]


def test_a_refused_token_is_still_refused_when_its_use_cannot_be_written(
        client: FlaskClient, db_session: Session, connection: Connection, is_postgres: bool) -> None:
    row, token = tokens.issue(db_session, name="old", now=utcnow())
    row.revoked_at = utcnow()
    db_session.commit()
    with make_read_only(connection, is_postgres):
        assert call(client, "GET", "/programs", token).status_code == 401
        assert call(client, "GET", "/programs", "tp_not-a-token").status_code == 401


@pytest.fixture
def committed_token(committing_app: Flask) -> Iterator[tuple[str, int]]:
    with committing_app.extensions[SESSIONS].begin() as session:
        row, token = tokens.issue(session, name="busy", role="viewer", now=utcnow())
    yield token, row.id


@pytest.mark.committing
def test_a_token_row_locked_elsewhere_is_skipped_not_waited_for(committing_app: Flask, database_url: str,
                                                                committed_token: tuple[str, int]) -> None:
    """A revoke in progress (or any long transaction on the token's row) must not hold every API read."""
    token, token_id = committed_token
    libpq = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    answers: list[int] = []
    with psycopg.connect(libpq) as holder:
        holder.execute("SELECT 1 FROM api_token WHERE id = %s FOR UPDATE", (token_id,))
        reader = threading.Thread(target=lambda: answers.append(
            call(committing_app.test_client(), "GET", "/programs", token).status_code))
        started = time.monotonic()
        reader.start()
        reader.join(10)
        waited = time.monotonic() - started
        holder.rollback()
    reader.join(10)
    assert answers == [200]
    assert waited < 3
