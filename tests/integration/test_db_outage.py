"""Which database errors are outages (503) and which are bugs (500), decided on errors PostgreSQL really raises:
a list of exception classes written from memory is how "every DBAPIError is an outage" or "a read-only
standby is a bug" would slip in."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.engine import make_url

from app import create_app, db_outage
from app.channels.registry import EXTENSION as CHANNELS
from app.database import ENGINE, get_session
from app.db import make_engine
from app.settings import Settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=2)
    yield engine
    engine.dispose()


def _raised(run: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 (any error: the test classifies it)
        run()
    return caught.value


def _in_transaction(engine: Engine, *statements: str) -> Callable[[], object]:
    def run() -> None:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    return run


def _kind(error: BaseException) -> str | None:
    outage = db_outage.outage_of(error)
    return outage.kind if outage else None


def test_errors_that_mean_the_database_is_unavailable(pg: Engine, pg_url: str) -> None:
    read_only = _raised(_in_transaction(pg, "SET TRANSACTION READ ONLY", "CREATE TEMP TABLE t (x int)"))
    assert _kind(read_only) == db_outage.READ_ONLY
    assert _kind(_raised(_in_transaction(pg, "SET LOCAL statement_timeout = 50", "SELECT pg_sleep(2)"))) == \
        db_outage.TIMEOUT
    refused = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert _kind(_raised(refused.connect)) == db_outage.UNREACHABLE
    refused.dispose()


def test_a_backend_terminated_mid_transaction_is_unreachable_and_the_pool_recovers(pg: Engine, pg_url: str) -> None:
    """What a restart (or a failover) does to the connections the app holds: 57P01 admin_shutdown."""
    libpq = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with pg.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with psycopg.connect(libpq, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        error = _raised(lambda: conn.exec_driver_sql("SELECT 1"))
    assert _kind(error) == db_outage.UNREACHABLE
    with pg.connect() as conn:  # no restart: the next checkout gets a live connection
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1


def test_a_pool_with_no_free_connection_is_overloaded(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        with engine.connect():
            error = _raised(engine.connect)
        assert isinstance(error, exc.TimeoutError) and _kind(error) == db_outage.OVERLOADED
    finally:
        engine.dispose()


def test_errors_that_are_bugs_stay_bugs(pg: Engine) -> None:
    bugs = [
        _raised(_in_transaction(pg, "SELECT * FROM no_such_table")),  # 42P01
        _raised(_in_transaction(pg, "SELECT 1/0")),  # 22012
        _raised(_in_transaction(pg, "CREATE TEMP TABLE u (x int UNIQUE)", "INSERT INTO u VALUES (1), (1)")),  # 23505
        _raised(_in_transaction(pg, "SELEC 1")),  # 42601
        _raised(_in_transaction(pg, "SELECT 'x'::int")),  # 22P02
    ]
    sqlite = create_engine("sqlite://")
    bugs.append(_raised(lambda: sqlite.connect().exec_driver_sql("SELECT * FROM no_such_table")))
    bugs.append(ValueError("not a database error"))
    for bug in bugs:
        assert _kind(bug) is None, bug
    assert isinstance(bugs[-2], exc.OperationalError)  # SQLite's "no such table" is an OperationalError, and a bug
    sqlite.dispose()


def test_sqlite_busy_and_read_only_are_outages_too() -> None:
    for code, kind in ((sqlite3.SQLITE_BUSY, db_outage.OVERLOADED), (sqlite3.SQLITE_READONLY, db_outage.READ_ONLY)):
        orig = sqlite3.OperationalError("database is locked")
        orig.sqlite_errorcode = code
        assert _kind(exc.OperationalError("INSERT …", {}, orig)) == kind


def test_what_is_logged_about_an_error_holds_no_parameters(pg: Engine) -> None:
    phone = "+37369123456"

    def run() -> None:
        with pg.begin() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.execute(text("CREATE TEMP TABLE p AS SELECT CAST(:phone AS text) AS phone"), {"phone": phone})

    described = db_outage.describe(_raised(run))
    assert described == "ReadOnlySqlTransaction, SQLSTATE 25006"
    assert phone not in described


@pytest.fixture
def buggy_app(settings: Settings, pg_url: str) -> Iterator[Flask]:
    app = create_app(settings)

    @app.get("/api/v1/_test/bug")
    def bug() -> object:
        return get_session().execute(text("SELECT * FROM no_such_table")).all()

    yield app
    app.extensions[CHANNELS].close()
    app.extensions[ENGINE].dispose()


def test_a_database_bug_is_still_a_logged_500_not_a_503(buggy_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="app.web"):
        response = buggy_app.test_client().get("/api/v1/_test/bug")
    assert response.status_code == 500 and "Retry-After" not in response.headers
    assert response.get_json(force=True)["type"].endswith("/internal-error")
    assert any(record.exc_info for record in caplog.records if record.name == "app.web")


def test_the_pos_key_lookup_answers_503_when_the_database_is_down(settings: Settings) -> None:
    """Before any view runs, a till's key is looked up in the database (cached a few seconds): concurrent
    tills during an outage each get 503, none a 500 from the cache."""
    down = create_app(settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/x"}))
    statuses: list[int] = []

    def call() -> None:
        statuses.append(down.test_client().get("/api/v1/pos/cards/123", headers={
            "Tallypass-Key": "pk_x", "Tallypass-Signature": "t=1,v1=00"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    down.extensions[CHANNELS].close()
    down.extensions[ENGINE].dispose()
    assert statuses == [503] * 4
