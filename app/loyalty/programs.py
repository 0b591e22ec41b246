"""Announcing programme changes: whatever shows a programme outside (Google Wallet's loyalty class)
follows through the outbox."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import outbox
from app.models import Program

PROGRAM_CHANGED = "program.changed"


def saved(session: Session, *, program: Program) -> None:
    """Call after creating or changing a programme or its stores, in the same transaction."""
    session.flush()
    outbox.emit(session, PROGRAM_CHANGED, {"program_id": program.id})
