"""Automation triggers: outbox handlers for the events that start a customer's message, and the daily
beat job for birthdays and expiring points (app/campaigns/automations.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import automations
from app.database import sessions
from app.db import utcnow
from app.models import Card, Program

log = logging.getLogger(__name__)


def welcome(session: Session, payload: dict[str, Any]) -> None:
    """``customer.enrolled``: the welcome message."""
    card = session.get(Card, payload.get("card_id"))
    if card is not None:
        automations.trigger(session, automation="welcome", card=card, occurrence="", now=utcnow())


def card_events(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``card.changed`` batch: tier changes and expired points."""
    wanted = {(p["card_id"], p["version"], reason) for p in payloads if "card_id" in p
              for reason in p.get("reasons", []) if reason in ("tier", "expire")}
    if not wanted:
        return
    now = utcnow()
    cards = {c.id: c for c in session.scalars(select(Card).where(Card.id.in_({w[0] for w in wanted})))}
    for card_id, version, reason in sorted(wanted):
        card = cards.get(card_id)
        if card is not None:
            automations.trigger(session, automation="tier_change" if reason == "tier" else "points_expired",
                                card=card, occurrence=f"v{version}", now=now)


@shared_task
def daily_automations() -> dict[str, int]:
    """Beat, hourly (each programme's day turns at its own midnight; triggers are once per occurrence)."""
    counts = {"birthday": 0, "expiry_reminder": 0}
    with sessions().begin() as session:
        program_ids = list(session.scalars(select(Program.id)))
    for program_id in program_ids:
        with sessions().begin() as session:
            program = session.get(Program, program_id)
            now = utcnow()
            automations.ensure_templates(session, program=program, now=now)
            counts["birthday"] += automations.birthdays(session, program=program, now=now)
            counts["expiry_reminder"] += automations.expiry_reminders(session, program=program, now=now)
    log.info("automations queued: %s", counts)
    return counts
