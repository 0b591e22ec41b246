"""Logging: one line per event, tagged with the request id or task id.

Lines go to stderr, not stdout: CLI commands promise exactly one JSON object on stdout with ``--json``.

What is logged often holds what a caller sent (a path, a header, a device's log text), so ``LineFormatter``
escapes every control character in it: a request for ``/c/%00%0A<fake line>`` cannot write a line of its own.
A traceback keeps its lines (they come from our code), but each exception's message is escaped onto one line.

Personal data must not reach the logs through the database either: the engine hides SQL parameters
(``hide_parameters``, ``app/db.py``), and a database error is logged as its SQLSTATE, its condition and the
names of the constraint, table and column, never PostgreSQL's DETAIL (``Key (phone)=(+373…) already exists``,
``Failing row contains (…)``) nor, for data exceptions, a message that quotes the value."""

from __future__ import annotations

import logging
import logging.config
import re
import traceback
from contextvars import ContextVar
from typing import Any

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional overrides (which
# reorder what a terminal shows).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """``text`` with each control character written as an escape (``\\n``, ``\\x00``, ``\\u2028``)."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                                        else f"\\u{ord(m[0]):04x}"), text)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


class LineFormatter(logging.Formatter):
    """One line per record whatever its message holds; a traceback follows on lines of its own, with each
    exception's message escaped onto one line and database errors reduced to what holds no personal data."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return "".join(traceback_lines(ei[1])).rstrip("\n")


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def traceback_lines(last: BaseException) -> list[str]:
    """The traceback Python would print for ``last`` and the exceptions it chains, with each exception's
    message escaped (and database errors summarised); the frames come from our code and are kept as they are."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = last
    joint = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, joint))
        if current.__cause__ is not None:
            current, joint = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, joint = current.__context__, _CONTEXT
        else:
            current = None
    lines: list[str] = []
    for exc, joint in reversed(chain):
        if exc.__traceback__ is not None:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_tb(exc.__traceback__))
        lines.append(escape_controls(_exception_line(exc)) + "\n")
        if joint:
            lines.append(joint)
    return lines


def _exception_line(exc: BaseException) -> str:
    summary = database_error(exc)
    if summary is None:
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}: {summary}"


def database_error(exc: BaseException | None) -> str | None:
    """What a database error may say in a log, or None for another exception: the statement (its text; the
    values are never in it), the SQLSTATE, PostgreSQL's message unless it is a data exception (class 22, whose
    messages quote the value) and the names of the constraint, table and column. Never the DETAIL."""
    from sqlalchemy.exc import StatementError

    if isinstance(exc, StatementError):
        inner = database_error(exc.orig) if exc.orig is not None else None
        if inner is None and exc.orig is not None:
            inner = f"{type(exc.orig).__name__}: {exc.orig}" if type(exc.orig).__module__ == "sqlite3" \
                else type(exc.orig).__name__  # SQLite names the constraint; a Python error may quote a value
        return f"{inner} [SQL: {exc.statement}]"
    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    if not sqlstate or diag is None:  # not a PostgreSQL error (a connection failure says nothing personal)
        return None
    parts = [f"SQLSTATE {sqlstate}"]
    if not sqlstate.startswith("22") and diag.message_primary:
        parts.append(diag.message_primary)
    parts.extend(f"{label} {value}" for label, value in (
        ("constraint", diag.constraint_name), ("table", diag.table_name), ("column", diag.column_name)) if value)
    return "; ".join(parts)


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": {"()": CorrelationFilter}},
        "formatters": {"line": {"()": LineFormatter,
                                "format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "line", "filters": ["correlation"]}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # One "task succeeded" line per outbox event is noise; failures still show.
        # httpx logs one INFO line per request (one per APNs push); hpack logs headers at DEBUG.
        "loggers": {"celery.app.trace": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                    "hpack": {"level": "WARNING"}},
    })
