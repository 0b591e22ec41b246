"""Scheduled loyalty jobs (Celery beat): point expiry, nightly tier re-evaluation, idempotency purge."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from sqlalchemy import delete

from app.database import sessions
from app.db import utcnow
from app.loyalty import ledger
from app.models import IdempotencyRecord

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)


@shared_task
def expire_points() -> int:
    """Expire due lots in batches of cards, one transaction per batch."""
    total = 0
    while True:
        with sessions().begin() as session:
            expired = ledger.expire_due(session, now=utcnow())
        if not expired:
            break
        total += expired
    log.info("expired %d points", total)
    return total


@shared_task
def reevaluate_tiers() -> int:
    changed_total, after_id = 0, 0
    while True:
        with sessions().begin() as session:
            last_id, changed = ledger.reevaluate_tiers(session, now=utcnow(), after_id=after_id)
        changed_total += changed
        if last_id == after_id:
            break
        after_id = last_id
    log.info("tier re-evaluation moved %d cards", changed_total)
    return changed_total


@shared_task
def purge_idempotency() -> int:
    with sessions().begin() as session:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - IDEMPOTENCY_TTL)
        )
    return result.rowcount or 0
