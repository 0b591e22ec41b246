"""Signed-in dashboard sessions, kept in the database so they can be ended: by signing out (that session), and
for every session of a user whose password changes or who is disabled (``revoke_sessions``).

The browser's cookie carries only a random token (256 bits); the table stores its SHA-256, so neither a copy
of the table nor a log of it signs anybody in, and a fast hash is enough for a value that cannot be guessed
(as for API tokens). A session is refused once revoked, past its absolute end (fixed when it starts), or when
it has not been seen for longer than the idle timeout. "Seen" is written at most once a minute per session
(``SEEN_STEP``), so a busy page does not write on every request.

Plain functions on a session that flush and never commit; the request, task or command owns the transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.models import DashboardSession, User
from app.settings import Settings

SEEN_STEP = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 100  # what a cookie may hold here; our tokens have 43 characters


@dataclass(frozen=True)
class Lifetime:
    """How long a session may last: ``idle`` without a request, ``absolute`` in all."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def configured(cls, settings: Settings) -> Lifetime:
        """``TALLYPASS_DASHBOARD_IDLE_MINUTES`` and ``TALLYPASS_DASHBOARD_SESSION_HOURS``."""
        return cls(idle=timedelta(minutes=settings.dashboard_idle_minutes),
                   absolute=timedelta(hours=settings.dashboard_session_hours))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, *, user: User, now: datetime, lifetime: Lifetime) -> tuple[DashboardSession, str]:
    """A new session for ``user``: its row and the token for the cookie (returned only here)."""
    token = secrets.token_urlsafe(32)
    row = DashboardSession(token_hash=digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                           expires_at=now + lifetime.absolute)
    session.add(row)
    session.flush()
    return row, token


def find(session: Session, *, token: str, now: datetime, lifetime: Lifetime) -> DashboardSession | None:
    """The live session this token opens, with an active user; None when there is none (unknown, revoked,
    expired, idle too long, or the user is disabled). Reads only: ``mark_seen`` records the visit."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = session.execute(select(DashboardSession, User).join(User, User.id == DashboardSession.user_id)
                            .where(DashboardSession.token_hash == digest(token))).first()
    if found is None:
        return None
    row, user = found
    return row if user.is_active and is_live(row, now=now, lifetime=lifetime) else None


def is_live(row: DashboardSession, *, now: datetime, lifetime: Lifetime) -> bool:
    return row.revoked_at is None and now < row.expires_at and now - row.last_seen_at < lifetime.idle


def mark_seen(session: Session, *, row: DashboardSession, now: datetime) -> bool:
    """Record a visit, unless one was recorded within ``SEEN_STEP``; True when there is one to write (the
    UPDATE sets only ``last_seen_at``: a session revoked meanwhile stays revoked)."""
    if now - row.last_seen_at < SEEN_STEP:
        return False
    row.last_seen_at = now
    session.flush()
    return True


def end(session: Session, *, token: str, now: datetime, reason: str = "signed-out") -> bool:
    """Revoke the session this token opens (signing out); True if it was live."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    result = session.execute(
        update(DashboardSession)
        .where(DashboardSession.token_hash == digest(token), DashboardSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session="fetch"))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_sessions(session: Session, *, user_id: int, now: datetime, reason: str,
                    keep: DashboardSession | None = None) -> int:
    """End every session of the user (but ``keep``, e.g. the one changing its own password); how many.
    Call it whenever the user's password changes, they are disabled, or an admin wants them signed out."""
    conditions = [DashboardSession.user_id == user_id, DashboardSession.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(DashboardSession.id != keep.id)
    result = session.execute(
        update(DashboardSession).where(*conditions).values(revoked_at=now, revoked_reason=reason[:32])
        .execution_options(synchronize_session="fetch"))
    return int(result.rowcount)  # type: ignore[attr-defined]


def live_sessions(session: Session, *, user_id: int, now: datetime, lifetime: Lifetime) -> list[DashboardSession]:
    """The user's sessions that still open the dashboard, newest first (for a "signed in on" listing)."""
    rows = session.scalars(select(DashboardSession).where(DashboardSession.user_id == user_id,
                                                          DashboardSession.revoked_at.is_(None),
                                                          DashboardSession.expires_at > now)
                           .order_by(DashboardSession.created_at.desc(), DashboardSession.id.desc()))
    return [row for row in rows if is_live(row, now=now, lifetime=lifetime)]


def purge(session: Session, *, now: datetime, lifetime: Lifetime) -> int:
    """Delete the rows that can no longer open anything (revoked, past their end, idle too long); how many."""
    result = session.execute(delete(DashboardSession).where(or_(
        DashboardSession.revoked_at.is_not(None),
        DashboardSession.expires_at <= now,
        DashboardSession.last_seen_at <= now - lifetime.idle,
    )).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
