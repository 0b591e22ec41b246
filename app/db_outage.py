"""Which database errors mean that the database is unavailable, rather than that the code is wrong, and
what state the database is in (for ``/healthz``).

PostgreSQL down, restarting or out of connections, a failover that left a read-only standby, and a statement
cut by the statement timeout are outages: the caller should retry later, so the web layer answers them 503 with
``Retry-After``. Every other database error (a constraint the code did not expect, a syntax error, a missing
table) is a bug and stays a logged 500: an error is an outage only when this module says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exc, text
from sqlalchemy.orm import Session

UNREACHABLE, READ_ONLY, TIMEOUT, OVERLOADED = "unreachable", "read-only", "timeout", "overloaded"


@dataclass(frozen=True)
class Outage:
    kind: str  # one of the four above; also what /healthz says about the database
    code: str  # the problem type's last segment
    detail: str
    retry_after: int  # seconds


OUTAGES = {
    UNREACHABLE: Outage(
        UNREACHABLE, "database-unavailable",
        "The database cannot be reached right now. Retry after the time given in Retry-After; a POS request "
        "retried with the same Idempotency-Key is never applied twice.", 5),
    READ_ONLY: Outage(
        READ_ONLY, "database-read-only",
        "The database accepts no changes right now (it is read-only, for example during a failover). "
        "Retry after the time given in Retry-After.", 30),
    TIMEOUT: Outage(
        TIMEOUT, "database-timeout",
        "The database took longer than this service allows for one request, and the request was stopped. "
        "Retry later; if it keeps happening, ask for less at a time.", 10),
    OVERLOADED: Outage(
        OVERLOADED, "database-busy",
        "The database has no free connection right now. Retry after the time given in Retry-After.", 5),
}

# SQLSTATEs (PostgreSQL, Appendix A "Error codes") that mean an outage. Class 08 (connection exception)
# is taken whole; class 53 (insufficient resources: too many connections, disk full, out of memory) too.
_BY_SQLSTATE = {
    "25006": READ_ONLY,  # read_only_sql_transaction: a hot standby, or default_transaction_read_only
    "57014": TIMEOUT,  # query_canceled: statement_timeout (or an operator's pg_cancel_backend)
    "57P01": UNREACHABLE,  # admin_shutdown: the server is stopping, or terminated this backend
    "57P02": UNREACHABLE,  # crash_shutdown
    "57P03": UNREACHABLE,  # cannot_connect_now: starting up, shutting down, in recovery
}
_BY_SQLSTATE_CLASS = {"08": UNREACHABLE, "53": OVERLOADED}
# The embedded SQLite database of development: SQLITE_BUSY (locked past the busy timeout), SQLITE_READONLY.
_SQLITE_PRIMARY_CODES = {5: OVERLOADED, 8: READ_ONLY}


def outage_of(error: BaseException) -> Outage | None:
    """The outage ``error`` reports, or None when it is not one (then it is a bug: log it, answer 500)."""
    kind = _kind(error)
    return OUTAGES[kind] if kind else None


def _kind(error: BaseException) -> str | None:
    if isinstance(error, exc.TimeoutError):
        return OVERLOADED  # no pooled connection came free within the pool's timeout
    if not isinstance(error, exc.DBAPIError):
        return None
    if error.connection_invalidated:
        return UNREACHABLE  # SQLAlchemy found the connection dead (and discarded the pool's older ones)
    state = getattr(error.orig, "sqlstate", None)
    if state:
        return _BY_SQLSTATE.get(state) or _BY_SQLSTATE_CLASS.get(state[:2])
    if _is_psycopg_operational(error.orig):
        return UNREACHABLE  # no SQLSTATE: psycopg's own "connection failed" / "server closed the connection"
    return _SQLITE_PRIMARY_CODES.get(getattr(error.orig, "sqlite_errorcode", 0) & 0xFF)


def _is_psycopg_operational(orig: BaseException | None) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover (psycopg is a dependency)
        return False
    return isinstance(orig, psycopg.OperationalError)


def database_state(session: Session) -> str:
    """``"ok"`` or ``READ_ONLY`` (the database answers but refuses writes: a hot standby after failover, or
    ``default_transaction_read_only``).

    :raise sqlalchemy.exc.SQLAlchemyError: the database cannot be asked (see :func:`outage_of`).
    """
    if session.get_bind().dialect.name != "postgresql":  # SQLite, in development: read-only by PRAGMA
        return READ_ONLY if session.execute(text("PRAGMA query_only")).scalar() else "ok"
    standby, read_only = session.execute(
        text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'")).one()
    return READ_ONLY if standby or read_only else "ok"


def describe(error: BaseException) -> str:
    """What to log about a database error: its class, SQLSTATE and, for a connection failure, the driver's
    first line (host, port, reason). Never the statement or its parameters, which may hold personal data."""
    orig = getattr(error, "orig", None) or error
    parts = [type(orig).__name__]
    state = getattr(orig, "sqlstate", None)
    if state:
        parts.append(f"SQLSTATE {state}")
    elif _is_psycopg_operational(orig):
        first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
        parts.append(first_line[:200].encode("unicode_escape").decode("ascii"))
    return ", ".join(parts)
