"""The audit log over the API (admin): who changed what, newest first, filtered and paged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from app.database import get_session
from app.merchants.audit import search_events
from app.web.api import bp
from app.web.api._models import Day, In, Out
from app.web.api.openapi import operation

TAG = "audit"


class AuditQuery(In):
    actor: str | None = Field(default=None, max_length=254, description="Part of the actor's name (any case).")
    action: str | None = Field(default=None, max_length=64, description="The exact action, e.g. pos-key-rotated.")
    since: Day | None = Field(default=None, description="First UTC day included.")
    until: Day | None = Field(default=None, description="Last UTC day included (before since: nothing matches).")
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)


class AuditEventOut(Out):
    """One change: when, who, what."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    ip: str | None


class AuditPageOut(Out):
    """A page of audit events, newest first."""

    items: list[AuditEventOut]
    page: int
    per_page: int
    total: int
    next: int | None


@bp.get("/audit-events")
@operation(summary="Audit events, newest first", tag=TAG, query=AuditQuery, responses={200: AuditPageOut},
           role="admin")
def list_audit_events(query: AuditQuery) -> AuditPageOut:
    found = search_events(get_session(), actor=query.actor, action=query.action, start=query.since,
                          end=query.until, offset=(query.page - 1) * query.per_page, limit=query.per_page)
    more = query.page * query.per_page < found.total
    return AuditPageOut(items=[AuditEventOut.model_validate(e) for e in found.events], page=query.page,
                        per_page=query.per_page, total=found.total, next=query.page + 1 if more else None)
