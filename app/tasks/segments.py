"""Scheduled segment jobs (Celery beat): the nightly RFM recompute, and the win-back automation for the
customers it moves into "At Risk"."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from sqlalchemy import select

from app.campaigns import automations
from app.database import sessions
from app.db import utcnow
from app.models import Card, Customer, Program
from app.segments import rfm

AT_RISK = "At Risk"

log = logging.getLogger(__name__)


@shared_task
def recompute_rfm() -> dict[str, Any]:
    """Recompute RFM scores and segments for every programme, each in its own transaction, in programme id
    order (a customer with cards in several programmes keeps the scores of the last one: see
    ``app.segments.rfm``). A programme that fails (e.g. invalid fixed thresholds) is logged and skipped;
    the others still run. Returns ``{"programs": n, "failed": [ids], "customers": n, "changed": n}``."""
    with sessions().begin() as session:
        program_ids = list(session.scalars(select(Program.id).order_by(Program.id)))
    now = utcnow()
    failed: list[int] = []
    customers = changed = 0
    for program_id in program_ids:
        try:
            with sessions().begin() as session:
                program = session.get(Program, program_id)
                if program is None:  # deleted since the list was read
                    continue
                at_risk_before = _at_risk(session, program_id)
                scored_before = _ever_scored(session, program_id)
                summary = rfm.recompute(session, program=program, now=now)
                if scored_before:  # the very first scoring would "move" every At Risk customer at once
                    _win_back(session, program_id, sorted(_at_risk(session, program_id) - at_risk_before), now)
        except Exception:
            log.exception("RFM recompute failed for programme %d", program_id)
            failed.append(program_id)
            continue
        customers += summary.customers
        changed += summary.changed
        log.info(
            "RFM programme %d (%s): %d customers, %d without a purchase in the window, %d changed; %s",
            program_id, summary.mode, summary.customers, summary.unscored, summary.changed,
            ", ".join(f"{name} {count}" for name, count in summary.counts.items()),
        )
    log.info("RFM recomputed for %d programmes (%d failed): %d customers, %d changed",
             len(program_ids) - len(failed), len(failed), customers, changed)
    return {"programs": len(program_ids), "failed": failed, "customers": customers, "changed": changed}


WIN_BACK_CHUNK = 5000  # ids per IN (...) list: PostgreSQL takes at most 65,535 parameters per statement


def _win_back(session: Any, program_id: int, customer_ids: list[int], now: Any) -> None:
    for start in range(0, len(customer_ids), WIN_BACK_CHUNK):
        chunk = customer_ids[start:start + WIN_BACK_CHUNK]
        for card in session.scalars(select(Card).where(Card.program_id == program_id, Card.status == "active",
                                                       Card.customer_id.in_(chunk))):
            automations.trigger(session, automation="win_back", card=card, occurrence=f"at-risk-{now.date()}",
                                now=now)


def _ever_scored(session: Any, program_id: int) -> bool:
    return session.scalar(select(Customer.id).join(Card, Card.customer_id == Customer.id).where(
        Card.program_id == program_id, Customer.rfm_segment.is_not(None)).limit(1)) is not None


def _at_risk(session: Any, program_id: int) -> set[int]:
    return set(session.scalars(select(Customer.id).join(Card, Card.customer_id == Customer.id)
                               .where(Card.program_id == program_id, Customer.rfm_segment == AT_RISK)))
