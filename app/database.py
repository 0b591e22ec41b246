"""One SQLAlchemy session per request, kept on ``g`` and closed at teardown (flaskr's pattern)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app import db_outage
from app.db import StatementTimeout, make_engine, make_session_factory
from app.settings import Settings

ENGINE = "tallypass.engine"
SESSIONS = "tallypass.sessions"
# How long bookkeeping may wait for a lock or run, on PostgreSQL, before it gives up (the request goes on).
BOOKKEEPING_TIMEOUT_MS = 2000

log = logging.getLogger(__name__)


def init_app(app: Flask, settings: Settings) -> None:
    from app.tasks.outbox import dispatch_events

    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                         statement_timeout=statement_timeout(settings))
    app.extensions[ENGINE] = engine
    # Tests replace this factory with one bound to their rolled-back connection.
    app.extensions[SESSIONS] = make_session_factory(engine, dispatch=dispatch_events)
    app.teardown_appcontext(_close_session)


def statement_timeout(settings: Settings) -> StatementTimeout:
    """Web requests get ``TALLYPASS_DB_STATEMENT_TIMEOUT``; anything else that uses the database from this
    app (Celery tasks in a worker, CLI commands) gets ``TALLYPASS_DB_WORKER_STATEMENT_TIMEOUT``. A task run
    inline inside a request (no broker configured) is part of that request and gets the web's."""
    web, other = settings.db_statement_timeout, settings.db_worker_statement_timeout
    return lambda: web if has_request_context() else other


def sessions() -> sessionmaker[Session]:
    return current_app.extensions[SESSIONS]


def get_session() -> Session:
    if "db" not in g:
        g.db = sessions()()
    return g.db


def best_effort_write(what: str, write: Callable[[Session], object]) -> bool:
    """Bookkeeping on a read (an API token's "last used", ...): ``write(session)`` runs in a short transaction
    of its own on this request's session, and if the database refuses it (read-only after a failover, a
    lock, a timeout, or a bug) the failure is logged, without personal data, and the request goes on to
    answer. Whatever the request read before is committed first. Returns whether the write was committed.

    A write the answer depends on must not use this: its failure must fail the request."""
    session = get_session()
    session.commit()
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL lock_timeout = {BOOKKEEPING_TIMEOUT_MS:d}"))
            session.execute(text(f"SET LOCAL statement_timeout = {BOOKKEEPING_TIMEOUT_MS:d}"))
        write(session)
        session.commit()
    except SQLAlchemyError as error:
        try:
            session.rollback()  # the session stays usable; what it had loaded reloads when next read
        except SQLAlchemyError:
            discard_session()  # the connection is gone: the next get_session() starts afresh
        outage = db_outage.outage_of(error)
        log.log(logging.WARNING if outage else logging.ERROR, "could not record %s (%s); the request goes on",
                what, db_outage.describe(error))
        return False
    return True


def discard_session() -> None:
    """Roll back and close this request's session after a failure, so its connection goes back to the pool
    clean (or, if the failure killed it, is discarded); a later ``get_session()`` starts afresh."""
    session = g.pop("db", None)
    if session is None:
        return
    try:
        session.rollback()
    except SQLAlchemyError as error:  # the connection died with the transaction: nothing to roll back
        log.info("rollback after a failure failed too: %s", db_outage.describe(error))
    _close_quietly(session)


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        _close_quietly(session)


def _close_quietly(session: Session) -> None:
    """Close ``session``; a connection that died after the request was answered must not turn that answer
    into a 500 at teardown: it is discarded, and the pool replaces it."""
    try:
        session.close()
    except SQLAlchemyError as error:
        log.info("closing a session failed (%s); its connection is discarded", db_outage.describe(error))
        with contextlib.suppress(SQLAlchemyError):
            session.invalidate()
