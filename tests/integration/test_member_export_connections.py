"""The members' CSV export, streamed, gives its database connection back: after the last line, and when the
client goes away half-way. Before, the stream ran on the request's session after it had been closed at the
end of the request: 40 exports left 8 connections "idle in transaction" (one for over 10 minutes), which
blocked a migration's ALTER TABLE."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text

from app.database import SESSIONS
from app.db import utcnow
from app.loyalty import enrollment
from app.merchants import tokens
from app.merchants.users import create_user
from app.models import Program
from tests.web.dashboard_client import PASSWORD, csrf

pytestmark = pytest.mark.committing

EXPORTS = 40


def _end_idle_transactions(engine: Engine) -> int:
    """How many connections sat idle in a transaction; they are ended, so that a failure here does not also
    hang the tables' clean-up (TRUNCATE waits for their locks)."""
    with engine.connect() as conn:
        return len(conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")).all())


def test_exports_give_their_connections_back(committing_app: Flask, engine: Engine) -> None:
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        program = Program(slug="export", name="Export")
        session.add(program)
        session.flush()
        for n in range(30):
            enrollment.enrol(session, program=program, phone=f"+373694400{n:02d}", name=f"Client {n}")
        _, token = tokens.issue(session, name="exports", role="marketer", now=utcnow())
        create_user(session, email="marketer@shop.test", password=PASSWORD, role="marketer")
    dashboard = committing_app.test_client()
    signed_in = dashboard.post("/dashboard/login", data={"csrf_token": csrf(dashboard), "email": "marketer@shop.test",
                                                         "password": PASSWORD})
    assert signed_in.status_code == 303
    api = committing_app.test_client()
    checked_out = engine.pool.checkedout()  # type: ignore[attr-defined]

    for n in range(EXPORTS):
        if n % 2:
            response = api.get("/api/v1/customers/export.csv?program=export",
                               headers={"Authorization": f"Bearer {token}"}, buffered=False)
        else:
            response = dashboard.get("/dashboard/customers/export.csv?program=export", buffered=False)
        assert response.status_code == 200 and response.mimetype == "text/csv"
        if n % 4 < 2:  # read to the end, as a browser saving the file does
            rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
            assert len(rows) == 31 and rows[0][0] == "phone"
            assert sorted(r[1] for r in rows[1:]) == sorted(f"Client {i}" for i in range(30))
        else:  # the client reads the first line and goes away: the server closes the response
            assert next(iter(response.response)).startswith(b"phone")
        response.close()

    still_out = engine.pool.checkedout() - checked_out  # type: ignore[attr-defined]
    assert _end_idle_transactions(engine) == 0
    assert still_out == 0
    with factory() as session:  # and the export wrote nothing but its audit lines
        assert session.scalar(select(Program.name).where(Program.slug == "export")) == "Export"
