"""Engine, session factory and the declarative base.

Plain SQLAlchemy (not Flask-SQLAlchemy) so requests, Celery tasks, CLI commands and benchmarks share
one session factory. The entrypoint owns the transaction: services flush, the caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, Select, create_engine, event, exc, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def count_rows(session: Session, query: Select[Any]) -> int:
    """How many rows ``query`` gives (for paging: its ORDER BY is dropped)."""
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def utcnow() -> datetime:
    return datetime.now(UTC)


PING_AFTER_IDLE_SECONDS = 10.0
# How long opening a connection to PostgreSQL may take, unless the URL sets ``connect_timeout`` itself. Without
# it, a database host that stopped answering (rather than refusing) holds every request for minutes.
CONNECT_TIMEOUT_SECONDS = 5
TIMEOUT_SET = "tallypass.statement_timeout"  # what this connection's statement_timeout was set to (ms; None: reset)

StatementTimeout = Callable[[], float]


def make_engine(url: str, *, pool_size: int = 10, ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
                statement_timeout: StatementTimeout | None = None) -> Engine:
    """An engine with a bounded pool, dead idle connections replaced before use, and on PostgreSQL a short
    connect timeout and, with ``statement_timeout``, a statement timeout per connection.

    ``statement_timeout`` is asked at every checkout how many seconds a statement may run for the code
    about to use the connection (0: leave the server's own setting, normally none); see
    ``_statement_timeout_at_checkout``. ``hide_parameters``: an error never carries the values of its statement
    (names, phones and e-mails would reach the logs with it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args,
                           hide_parameters=True)
    _ping_when_idle(engine, ping_after_idle)
    if statement_timeout is not None:
        _statement_timeout_at_checkout(engine, statement_timeout)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that sat idle, without a round trip per request.

    ``pool_pre_ping`` would ping on every checkout: a tenth of the POS API's CPU under load. A
    connection returned less than ``idle_seconds`` ago is trusted; an older one is pinged and, if dead,
    replaced before the request sees it. A server that dies under load fails the requests that were
    using it (503, see ``app.db_outage``), and SQLAlchemy then discards every pooled connection it opened
    before the failure, so the first requests after the server is back succeed."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return  # new (just connected) or recently used
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise exc.DisconnectionError("an idle pooled connection is gone")  # the pool reconnects


def _statement_timeout_at_checkout(engine: Engine, seconds_for: StatementTimeout) -> None:
    """PostgreSQL's ``statement_timeout`` for whoever checks a connection out: one engine serves web requests
    (short) and, in the same process, CLI commands or tasks (long, or none). The setting is a session ``SET``
    made only when it differs from what the connection already has, so a process that keeps to one kind of
    work pays one round trip per new connection and nothing per request. A statement cut by it raises
    ``QueryCanceled`` (SQLSTATE 57014); the transaction is rolled back and the connection stays usable."""

    @event.listens_for(engine, "checkout")
    def _set_timeout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        seconds = seconds_for()
        wanted = max(1, round(seconds * 1000)) if seconds > 0 else None
        if record.info.get(TIMEOUT_SET) == wanted:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout" if wanted is None else f"SET statement_timeout = {wanted:d}")
            dbapi_connection.commit()  # a SET inside a transaction would be undone by its rollback
        except Exception as error:
            raise exc.DisconnectionError(f"could not set statement_timeout: {type(error).__name__}") from error
        record.info[TIMEOUT_SET] = wanted


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself, so SAVEPOINTs work (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite). IMMEDIATE takes the write lock up front: the
    # development server's concurrent writers then wait instead of failing with "database is locked".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(
    bind: Any, *, dispatch: Callable[[list[int]], None] | None = None, **options: Any
) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (views serialise after committing).

    ``dispatch`` receives the ids of outbox events once the transaction that wrote them has
    committed (see ``app.outbox``)."""
    from app import outbox  # local import: outbox imports the models, which import this module

    factory = sessionmaker(bind=bind, expire_on_commit=False, info={"outbox_dispatch": dispatch}, **options)
    outbox.install(factory)
    return factory
