"""Announcing programme changes: whatever shows a programme outside (Google Wallet's loyalty class)
follows through the outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import outbox
from app.models import Program
from app.phones import region_for

PROGRAM_CHANGED = "program.changed"


def saved(session: Session, *, program: Program) -> None:
    """Call after creating or changing a programme or its stores, in the same transaction."""
    session.flush()
    outbox.emit(session, PROGRAM_CHANGED, {"program_id": program.id})


def phone_region(session: Session, *, program_id: int, default: str | None) -> str | None:
    """The region local phone numbers are read in for this programme: its own, else ``default`` (the process-wide
    TALLYPASS_DEFAULT_PHONE_REGION)."""
    own = session.scalar(select(Program.phone_region).where(Program.id == program_id))
    return region_for(own, default)
