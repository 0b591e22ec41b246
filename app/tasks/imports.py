"""Member imports as background jobs (app.loyalty.member_import): check the file, then enrol its members
in batches, one transaction each, with the job's progress in the same transaction.

``run_member_import(import_id)`` is queued by the upload (inline without a broker, as every task). It is safe
to run twice at once and to run again after a crash: each step locks the job's row, and a batch starts at the
job's ``next_line``. The beat's ``resume_member_imports`` takes up a job that has not moved for ``STALL``
(its worker died, or the broker lost the task), up to ``MAX_RUNS`` times; then it is ``failed``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.database import sessions
from app.db import utcnow
from app.loyalty import member_import
from app.merchants import audit
from app.models import MemberImport, Program, User
from app.phones import region_for

log = logging.getLogger(__name__)

STALL = timedelta(minutes=5)  # a job whose row has not changed for this long is taken up again
MAX_RUNS = 5  # times a job is taken up before it is given up as failed
RUNNING = ("queued", "checking", "importing")


@shared_task
def run_member_import(import_id: int) -> str:
    """Run (or continue) an import job; returns its state. A failure is kept on the job (``error``), not
    raised: the request that queued it inline must not fail, and the beat takes the job up again."""
    return run(sessions(), import_id, region=current_app.config["TALLYPASS"].default_phone_region)


def run(factory: sessionmaker[Session], import_id: int, *, region: str | None) -> str:
    """``run_member_import`` with the session factory and the phone region given (tests call it so)."""
    with factory.begin() as session:
        job = session.get(MemberImport, import_id, with_for_update=True)
        if job is None:
            return "gone"
        if job.state in member_import.FINAL_STATES:
            return job.state
        job.runs, job.error, job.updated_at = job.runs + 1, None, utcnow()
        job.state = "checking" if job.state == "queued" else job.state
    try:
        return _run(factory, import_id, region=region)
    except Exception as exc:  # kept on the job; the beat's sweep takes it up again after STALL
        log.exception("member import %s stopped", import_id)
        with factory.begin() as session:
            job = session.get(MemberImport, import_id, with_for_update=True)
            if job is not None and job.state not in member_import.FINAL_STATES:
                job.error = f"{type(exc).__name__}: {exc}"[:500]
            return job.state if job is not None else "gone"


def _run(factory: sessionmaker[Session], import_id: int, *, region: str | None) -> str:
    members: list[member_import.Member] | None = None
    with factory.begin() as session:
        job = session.get(MemberImport, import_id, with_for_update=True)  # held while checking: checked once
        if job is None or job.state in member_import.FINAL_STATES:
            return job.state if job is not None else "gone"
        program = session.get(Program, job.program_id)
        assert program is not None  # the job goes with its programme (ON DELETE CASCADE)
        region = region_for(program.phone_region, region)  # the programme's own region first
        if job.checked_at is None:
            members = member_import.check(session, job=job, program=program, region=region, now=utcnow())
            if job.state == "refused":
                log.info("member import %s refused: %d of %d lines have a problem", import_id, job.invalid_lines,
                         job.rows)
                return job.state
        else:
            members = member_import.pending_members(job, region=region, today=utcnow().date())
    while True:
        with factory.begin() as session:
            job = session.get(MemberImport, import_id, with_for_update=True)
            if job is None or job.state != "importing":
                return job.state if job is not None else "gone"
            program = session.get(Program, job.program_id)
            assert program is not None
            if not member_import.import_batch(session, job=job, program=program, members=members, now=utcnow()):
                member_import.finish(session, job=job, now=utcnow())
                _audit(session, job)
                log.info("member import %s done: %d of %d imported", import_id, job.imported, job.rows)
                return job.state


def _audit(session: Session, job: MemberImport) -> None:
    if not job.imported:
        return
    user = session.get(User, job.user_id) if job.user_id is not None else None
    program = session.get(Program, job.program_id)
    audit.record(session, actor=user or job.actor, action="customers.import", now=utcnow(),
                 target=f"program:{program.slug}" if program else None, ip=job.ip,
                 details={"import_id": job.id, "file": job.filename, "rows": job.rows, "imported": job.imported,
                          "skipped": job.rows - job.imported, "points": job.points})


@shared_task
def resume_member_imports() -> int:
    """Beat, every minute: take up again the imports that have not moved for ``STALL``; give up on those
    taken up ``MAX_RUNS`` times already. Returns how many were queued again."""
    now = utcnow()
    with sessions().begin() as session:
        stalled = list(session.scalars(select(MemberImport).where(
            MemberImport.state.in_(RUNNING), MemberImport.updated_at < now - STALL)
            .order_by(MemberImport.id).with_for_update(skip_locked=True)))
        again = []
        for job in stalled:
            if job.runs >= MAX_RUNS:
                member_import.fail(session, job=job, now=now,
                                   error=job.error or f"the import stopped {job.runs} times; upload the file again")
                log.error("member import %s failed after %d runs: %s", job.id, job.runs, job.error)
            else:
                job.updated_at = now
                again.append(job.id)
    for import_id in again:
        run_member_import.delay(import_id)
    return len(again)
