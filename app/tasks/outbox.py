"""Turning committed outbox events into work. Delivery is at least once: handlers must be idempotent
(pushing "card changed" twice is harmless)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import outbox
from app.database import sessions
from app.db import utcnow
from app.models import OutboxEvent

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any]], None]


def _log_card_changed(session: Session, payload: dict[str, Any]) -> None:
    # The wallet channels (APNs, Google Wallet, web push) subscribe here as they arrive.
    log.debug("card.changed card=%s version=%s reasons=%s", payload.get("card_id"), payload.get("version"),
             ",".join(payload.get("reasons", [])))


def _log_enrolled(session: Session, payload: dict[str, Any]) -> None:
    log.debug("customer.enrolled customer=%s card=%s", payload.get("customer_id"), payload.get("card_id"))


HANDLERS: dict[str, list[Handler]] = {
    "card.changed": [_log_card_changed],
    "customer.enrolled": [_log_enrolled],
}


def dispatch_events(event_ids: list[int]) -> None:
    """Called after a commit with the ids of the events it wrote."""
    for event_id in event_ids:
        deliver_event.delay(event_id)


def process_event(session: Session, event_id: int) -> bool:
    """Run an event's handlers once; False if it was already processed or is being processed."""
    ev = session.scalars(
        select(OutboxEvent).where(OutboxEvent.id == event_id).with_for_update(skip_locked=True)
    ).one_or_none()
    if ev is None or ev.processed_at is not None:
        return False
    ev.attempts += 1
    for handler in HANDLERS.get(ev.topic, []):
        handler(session, ev.payload)
    ev.processed_at = utcnow()
    ev.last_error = None
    return True


@shared_task(bind=True, max_retries=5, default_retry_delay=5)
def deliver_event(self: Any, event_id: int) -> None:
    try:
        with sessions().begin() as session:
            process_event(session, event_id)
    except Exception as exc:
        with sessions().begin() as session:
            ev = session.get(OutboxEvent, event_id)
            if ev is not None:
                ev.attempts += 1
                ev.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self.request.is_eager:  # inline mode: never fail the request that committed the change
            log.exception("outbox event %s failed; the sweeper will retry", event_id)
            return
        raise self.retry(exc=exc) from exc


@shared_task
def sweep_outbox(older_than_seconds: int = 30) -> int:
    """Re-dispatch events nobody processed (broker was down, worker crashed)."""
    with sessions()() as session:
        ids = outbox.pending_event_ids(session, older_than=timedelta(seconds=older_than_seconds), now=utcnow())
    dispatch_events(ids)
    return len(ids)
