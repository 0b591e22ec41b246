"""The transactional outbox: events are rows written in the same transaction as the change they
announce, and handed to the dispatcher only after that transaction commits. Nothing is lost when
the broker or a worker is down: the rows wait until a drain (``app.tasks.outbox``) processes them."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.models import OutboxEvent

log = logging.getLogger(__name__)

_PENDING = "outbox_pending"


def emit(session: Session, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record an event; it is dispatched when (and only if) the surrounding transaction commits."""
    ev = OutboxEvent(topic=topic, payload=payload)
    session.add(ev)
    session.info.setdefault(_PENDING, []).append(ev)
    return ev


def emit_many(session: Session, topic: str, payloads: list[dict[str, Any]]) -> list[int]:
    """``emit`` for many events of one topic in one INSERT; returns their ids."""
    if not payloads:
        return []
    now = utcnow()
    table = OutboxEvent.__table__  # a Core INSERT: the ORM's bulk insert costs more per row and adds nothing here
    ids = list(session.scalars(insert(table).returning(table.c.id),
                               [{"topic": topic, "payload": p, "created_at": now, "attempts": 0} for p in payloads]))
    for event_id in ids:
        track(session, event_id)
    return ids


def track(session: Session, event_id: int) -> None:
    """Dispatch an event that was inserted with SQL (not through ``emit``) when the transaction commits.

    Unlike ``emit``, an id tracked inside a savepoint that is rolled back is still dispatched; that is
    harmless, because the drain only ever processes committed rows."""
    session.info.setdefault(_PENDING, []).append(event_id)


def install(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT was released; the events are not committed until the outer transaction is
    pending: list[OutboxEvent | int] = session.info.pop(_PENDING, [])
    # Events added inside a rolled-back savepoint lost their identity: they were never committed.
    ids = [ev if isinstance(ev, int) else ident[0] for ev in pending
           if isinstance(ev, int) or (ident := inspect(ev).identity)]
    dispatch = session.info.get("outbox_dispatch")
    if not ids or dispatch is None:
        return
    try:
        dispatch(ids)
    except Exception:  # the sweeper re-dispatches; the committed change must not turn into an error
        log.exception("outbox dispatch failed for %d event(s); the sweeper will retry", len(ids))


def _after_rollback(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING, None)
