"""The audit log: who changed what. Services that change something a marketer would want to trace call
``record`` in the same transaction as the change, so the log never claims a change that was rolled back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
