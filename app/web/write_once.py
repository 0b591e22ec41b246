"""A write recorded once per idempotency key, for the POS API (its ``Idempotency-Key`` header) and the till (an
attempt id per confirmation): the outcome, success or refusal, is stored with the change it made in one commit and
replayed to every retry. The key's advisory lock is held from the lookup to the commit, so a concurrent duplicate
gets 409 instead of running twice (app/idempotency.py keeps the records)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, request
from sqlalchemy.orm import Session

from app import idempotency
from app.database import get_session
from app.db import utcnow
from app.errors import AppError, Conflict

Outcome = tuple[dict[str, Any], int]


@dataclass(frozen=True)
class Caller:
    """How a caller's answers are written: its JSON response (``replayed`` marks a stored one), its problem body
    for a refusal, and the words of its two conflicts."""

    respond: Callable[[dict[str, Any], int, bool], Response]
    problem: Callable[[AppError], dict[str, Any]]
    in_flight: str
    reused: str


def run_once(*, store_id: int, key: str, payload: Any, handler: Callable[[Session], Outcome],
             caller: Caller) -> Response:
    """Run ``handler`` once for (``store_id``, ``key``) and this request; replay its stored outcome to retries.

    :raise Conflict: the key is in flight in another request, or was used for a different request."""
    session, now = get_session(), utcnow()
    request_hash = idempotency.fingerprint(request.method, request.path, payload)
    if (replay := _claim(session, store_id, key, request_hash, now, caller)) is not None:
        return replay
    try:
        body, status = handler(session)
    except AppError as exc:
        if exc.status >= 500:
            raise
        # Undo whatever the handler wrote (cheaper than a savepoint around every request), then store the refusal
        # under the key in a new transaction, unless a retry got there first.
        session.rollback()
        body, status = caller.problem(exc), exc.status
        if (replay := _claim(session, store_id, key, request_hash, now, caller)) is not None:
            return replay
    idempotency.save(session, store_id=store_id, key=key, request_hash=request_hash, status=status, body=body,
                     now=now)
    session.commit()
    return caller.respond(body, status, False)


def _claim(session: Session, store_id: int, key: str, request_hash: str, now: datetime,
           caller: Caller) -> Response | None:
    """Lock the key for this transaction; the stored response if it already has one, else None."""
    if not idempotency.try_lock(session, store_id=store_id, key=key):
        raise Conflict(caller.in_flight, code="idempotency-key-in-flight")
    record = idempotency.find(session, store_id=store_id, key=key, now=now)
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise Conflict(caller.reused, code="idempotency-key-reused")
    response = caller.respond(record.response_body, record.response_status, True)
    session.rollback()
    return response
