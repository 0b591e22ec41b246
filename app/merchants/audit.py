"""The audit log: who changed what. Services that change something a marketer would want to trace call
``record`` in the same transaction as the change, so the log never claims a change that was rolled back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User


def record(session: Session, *, actor: User | str, action: str, now: datetime, target: str | None = None,
           details: dict[str, Any] | None = None, ip: str | None = None) -> AuditEvent:
    """``actor``: the dashboard user, or a name ("cli", "api-token:<name>") for other callers."""
    event = AuditEvent(at=now, actor=actor.email if isinstance(actor, User) else actor[:254],
                       user_id=actor.id if isinstance(actor, User) else None, action=action, target=target,
                       details=details or {}, ip=ip)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    total: int


def search_events(session: Session, *, actor: str | None = None, action: str | None = None,
                  start: date | None = None, end: date | None = None, offset: int = 0,
                  limit: int = 50) -> EventPage:
    """Audit events, newest first: ``actor`` matches part of the actor's name (any case), ``action`` exactly,
    ``start``/``end`` are UTC days, both included."""
    conditions = []
    actor, action = (actor or "").replace("\x00", ""), (action or "").replace("\x00", "")
    if actor:
        escaped = actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(AuditEvent.actor.ilike(f"%{escaped}%", escape="\\"))
    if action:
        conditions.append(AuditEvent.action == action)
    if start is not None:
        conditions.append(AuditEvent.at >= datetime.combine(start, time.min, UTC))
    if end is not None and end < date.max:
        conditions.append(AuditEvent.at < datetime.combine(end + timedelta(days=1), time.min, UTC))
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    events = list(session.scalars(select(AuditEvent).where(*conditions)
                                  .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).offset(offset).limit(limit)))
    return EventPage(events=events, total=total)


def known_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
