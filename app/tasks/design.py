"""Re-sending a programme's passes after its design or settings changed, as a job with progress.

The Google class is re-synced first (in outbox mode that writes the channel outbox), then every card is
bumped in batches with ``ledger.touch_many``: each gets a new version and a ``card.changed`` event, which
the existing pipeline turns into APNs pushes (phones then fetch the new pass) and Google PATCHes. Each
batch commits with the job's progress, so ``done`` of ``total`` is what the dashboard shows meanwhile.
"""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy import case, func, select, update

from app.database import sessions
from app.db import utcnow
from app.loyalty import ledger
from app.models import Card, Job, Program
from app.tasks.passes import sync_google_class

log = logging.getLogger(__name__)

BATCH = 200
REASON = "design"


@shared_task
def resync_design(job_id: int) -> int:
    """Run the queued job ``job_id``; returns how many cards it bumped. A failure is logged and kept on the
    job (state "failed", ``error``) rather than raised: the dashboard shows it, and running the job again is
    a new save away."""
    factory = sessions()
    with factory.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.state != "queued" or job.program_id is None:
            return 0
        program_id = job.program_id
        job.state = "running"
        job.total = session.scalar(select(func.count()).select_from(Card).where(Card.program_id == program_id)) or 0
        job.done = 0
    try:
        with factory.begin() as session:
            program = session.get(Program, program_id)
            if program is not None:
                sync_google_class(session, {"program_id": program_id})
        done, last_id = 0, 0
        while True:
            with factory.begin() as session:
                cards = list(session.scalars(select(Card).where(Card.program_id == program_id, Card.id > last_id)
                                             .order_by(Card.id).limit(BATCH)))
                if not cards:
                    break
                ledger.touch_many(session, [(card, {}) for card in cards], now=utcnow(), reasons=[REASON])
                last_id, done = cards[-1].id, done + len(cards)
                session.execute(update(Job).where(Job.id == job_id)
                                .values(done=done, total=case((Job.total < done, done), else_=Job.total)))
    except Exception as exc:  # the job says so; the cards bumped so far keep their new version
        log.exception("design re-sync job %s failed", job_id)
        with factory.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(
                state="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=utcnow()))
        return 0
    with factory.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(state="done", total=done, finished_at=utcnow()))
    log.info("design re-sync job %s: %d card(s) re-sent", job_id, done)
    return done
