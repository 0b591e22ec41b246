"""Turning committed outbox events into work.

After a commit the dispatcher pokes ``drain_outbox``, which processes every committed, unprocessed
event in batches (``FOR UPDATE SKIP LOCKED``, so any number of workers can drain side by side, one
commit per batch). Pokes are debounced per process: under load one task drains the events of many
purchases, instead of one Celery message and one transaction per event. Delivery is at least once:
handlers must be idempotent (pushing "card changed" twice is harmless).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.database import sessions
from app.db import utcnow
from app.models import ChannelMessage, OutboxEvent
from app.tasks.automations import card_events, welcome
from app.tasks.passes import (
    create_google_object,
    push_changed_cards,
    push_purchases_to_browsers,
    sync_google_cards,
    sync_google_class,
)

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any]], None]
# Called once per batch with the payloads of all its events of that topic (several cards' pushes
# go out together); a failure redoes the batch one event at a time, like any handler's.
BatchHandler = Callable[[Session, list[dict[str, Any]]], None]

BATCH_SIZE = 200
MAX_ATTEMPTS = 10  # after that an event stays unprocessed with its last error, for an operator
DEBOUNCE_SECONDS = 0.25  # the first event of a window is drained at once; later ones wait at most this


def _log_card_changed(session: Session, payload: dict[str, Any]) -> None:
    log.debug("card.changed card=%s version=%s reasons=%s", payload.get("card_id"), payload.get("version"),
              ",".join(payload.get("reasons", [])))


def _log_enrolled(session: Session, payload: dict[str, Any]) -> None:
    log.debug("customer.enrolled customer=%s card=%s", payload.get("customer_id"), payload.get("card_id"))


HANDLERS: dict[str, list[Handler]] = {
    "card.changed": [_log_card_changed],
    "customer.enrolled": [_log_enrolled, create_google_object, welcome],
    "customer.imported": [create_google_object],  # an imported member gets no welcome message
    "program.changed": [sync_google_class],
}
BATCH_HANDLERS: dict[str, list[BatchHandler]] = {
    "card.changed": [push_changed_cards, sync_google_cards, push_purchases_to_browsers, card_events],
}


class _Debouncer:
    """At most one drain task per window per process, plus one scheduled for the window's end, so
    an event committed at any moment is drained by a task published after its commit."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.lock = threading.Lock()
        self.next_at = 0.0
        self.scheduled = False

    def delay(self) -> float | None:
        """Seconds to wait before publishing (0: now), or None when a pending publish covers it."""
        now = time.monotonic()
        with self.lock:
            if now >= self.next_at:
                self.next_at, self.scheduled = now + self.window, False
                return 0.0
            if not self.scheduled:
                self.scheduled = True
                return self.next_at - now
            return None


_debouncer = _Debouncer(DEBOUNCE_SECONDS)


def dispatch_events(event_ids: list[int]) -> None:
    """Called after a commit with the ids of the events it wrote."""
    if not event_ids:
        return
    if drain_outbox.app.conf.task_always_eager:
        drain_outbox.delay()
        return
    wait = _debouncer.delay()
    if wait is not None:
        drain_outbox.apply_async(countdown=wait or None)


def _run(session: Session, events: list[OutboxEvent]) -> None:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        by_topic.setdefault(ev.topic, []).append(ev.payload)
    for topic, payloads in by_topic.items():
        for batch_handler in BATCH_HANDLERS.get(topic, []):
            batch_handler(session, payloads)
    now = utcnow()
    for ev in events:
        for handler in HANDLERS.get(ev.topic, []):
            handler(session, ev.payload)
    if events:  # one UPDATE for the batch; the loaded events are told the same values
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_([ev.id for ev in events]))
                        .values(attempts=OutboxEvent.attempts + 1, processed_at=now, last_error=None),
                        execution_options={"synchronize_session": False})
        for ev in events:
            for name, value in (("attempts", ev.attempts + 1), ("processed_at", now), ("last_error", None)):
                set_committed_value(ev, name, value)


def _claim(session: Session, *, limit: int, only: int | None = None) -> list[OutboxEvent]:
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.processed_at.is_(None), OutboxEvent.attempts < MAX_ATTEMPTS)
        .order_by(OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if only is not None:
        stmt = stmt.where(OutboxEvent.id == only)
    return list(session.scalars(stmt))


def process_event(session: Session, event_id: int) -> bool:
    """Run one event's handlers in the caller's transaction; False if it was already processed or is
    being processed elsewhere. A handler's exception propagates (the caller rolls back)."""
    events = _claim(session, limit=1, only=event_id)
    _run(session, events)
    return bool(events)


def _record_failure(event_id: int, exc: Exception) -> None:
    log.error("outbox event %s failed: %s: %s", event_id, type(exc).__name__, exc)
    with sessions().begin() as session:
        ev = session.get(OutboxEvent, event_id)
        if ev is not None:
            ev.attempts += 1
            ev.last_error = f"{type(exc).__name__}: {exc}"[:500]


def process_batch(*, limit: int = BATCH_SIZE) -> int:
    """Claim up to ``limit`` unprocessed events (others' claims are skipped), run them oldest first and
    commit once; returns how many were claimed. If a handler fails, the batch is redone one event per
    transaction, so one bad event delays nobody else and records its own error."""
    ids: list[int] = []
    try:
        with sessions().begin() as session:
            events = _claim(session, limit=limit)
            ids = [ev.id for ev in events]
            _run(session, events)
        return len(ids)
    except Exception as exc:
        log.warning("an outbox batch of %d failed (%s: %s); retrying its events one by one", len(ids),
                    type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")
    for event_id in ids:
        try:
            with sessions().begin() as session:
                process_event(session, event_id)
        except Exception as exc:  # one bad event must not stop the others
            _record_failure(event_id, exc)
    return len(ids)


@shared_task
def drain_outbox() -> int:
    """Process committed events until a batch comes back short; failures wait for the next sweep."""
    done = 0
    while True:
        claimed = process_batch()
        done += claimed
        if claimed < BATCH_SIZE:
            return done


@shared_task
def sweep_outbox() -> int:
    """Beat, every 30 s: retry what failed and drain anything a lost poke left behind."""
    return int(drain_outbox())


CHANNEL_MESSAGE_TTL_DAYS = 30


@shared_task
def purge_channel_messages() -> int:
    """Beat, daily: the channel outbox records what a deployment without credentials would have sent;
    a month of it is plenty to look at, and it must not grow for ever."""
    cutoff = utcnow() - timedelta(days=CHANNEL_MESSAGE_TTL_DAYS)
    with sessions().begin() as session:
        result = session.execute(delete(ChannelMessage).where(ChannelMessage.created_at < cutoff))
    return result.rowcount or 0
