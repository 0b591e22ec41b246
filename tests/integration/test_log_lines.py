"""What callers send cannot forge log lines, and personal data does not reach the logs through the database.

Before, ``GET /c/%00%0A<fake line>`` wrote a complete fake line (the path was logged as it came, and again in
the SQL parameters of the error), and a duplicate phone logged the number twice: in SQLAlchemy's
``[parameters: …]`` and in PostgreSQL's ``DETAIL: Key (phone)=(…)``."""

from __future__ import annotations

import io
import logging
import re

import pytest
from flask import Flask, request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.log import LineFormatter, configure_logging, escape_controls

FORGED = "2026-12-07 21:00:00,000 INFO app.web.auth [-] admin@shop.test signed in"
ANA = {"phone": "+37369123456", "email": "ana@example.md"}
ANA_AGAIN = {"phone": "+37369123456", "email": "other@example.md"}
TOO_LONG = {"phone": "+373691234567890123456", "email": "x@example.md"}
LINE_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@pytest.fixture
def logged() -> io.StringIO:
    """The service's own logging set-up (as outside tests), writing into a buffer (tests/conftest.py puts every
    logger back afterwards)."""
    configure_logging("INFO")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    return stream


def records(output: str) -> list[str]:
    """The log's records: a line that starts with a time starts one; the others belong to a traceback."""
    found: list[str] = []
    for line in output.splitlines():
        if LINE_START.match(line):
            found.append(line)
        else:
            assert found and (line == "" or line.startswith(("Traceback", "  ", "The above", "During handling"))
                              or re.match(r"[\w.]+(Error|Exception|Warning)\b", line)), repr(line)
    return found


def test_every_handler_writes_escaped_lines(logged: io.StringIO) -> None:
    ours = [h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest")]
    assert ours and all(isinstance(h.formatter, LineFormatter) for h in ours)
    logging.getLogger("app.test").warning("a caller sent %s", "x\r\n" + FORGED + "\x1b[2J\u2028\u202e")
    (line,) = records(logged.getvalue())
    assert line.endswith("a caller sent x\\r\\n" + FORGED + "\\x1b[2J\\u2028\\u202e")


def test_a_hostile_path_and_exception_message_stay_on_their_lines(app: Flask, logged: io.StringIO) -> None:
    def fails() -> str:
        raise ValueError(f"cannot read {request.args['q']}")

    app.add_url_rule("/_probe/fails", "probe_fails", fails)
    client = app.test_client()
    for path in (f"/_probe/fails?q=%0A{FORGED}", "/c/%00%0A" + FORGED.replace(" ", "%20")):
        assert client.get(path).status_code in (400, 404, 500)
    output = logged.getvalue()
    assert FORGED in output  # it was logged, as text inside another line
    assert not any(r.endswith(FORGED) and r.startswith(FORGED[:10]) for r in records(output))
    assert "ValueError: cannot read \\n" + FORGED in output


def test_a_database_error_logs_no_personal_data(db_session: Session, logged: io.StringIO, is_postgres: bool
                                                ) -> None:
    db_session.execute(text("CREATE TEMPORARY TABLE people (phone varchar(20) UNIQUE, email varchar(40))"))
    statement = text("INSERT INTO people (phone, email) VALUES (:phone, :email)")
    db_session.execute(statement, ANA)
    with pytest.raises(DBAPIError) as duplicate, db_session.begin_nested():
        db_session.execute(statement, ANA_AGAIN)  # (the traceback shows these lines: no values in them)
    errors: list[BaseException] = [duplicate.value]
    if is_postgres:  # (SQLite does not hold a varchar to its length)
        with pytest.raises(DBAPIError) as too_long, db_session.begin_nested():
            db_session.execute(statement, TOO_LONG)
        errors.append(too_long.value)
    log = logging.getLogger("app.test")
    for error in errors:
        try:
            raise error
        except DBAPIError:
            log.exception("the write failed")
    output = logged.getvalue()
    for personal in ("37369123456", "example.md"):
        assert personal not in output
    assert "INSERT INTO people" in output
    if is_postgres:
        assert "SQLSTATE 23505; duplicate key value violates unique constraint" in output
        assert "SQLSTATE 22001" in output and "DETAIL" not in output


def test_escaping_is_readable() -> None:
    assert escape_controls("plain text, émigré, 日本") == "plain text, émigré, 日本"
    assert escape_controls("a\tb\x00c\x7fd\x85e") == "a\\tb\\x00c\\x7fd\\x85e"
