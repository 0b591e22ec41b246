"""Bearer tokens for the JSON API: random, shown once, stored as SHA-256 (a token has 256 bits of
entropy, so a fast hash is enough; the lookup by hash needs no separate constant-time compare)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.errors import FieldError, InvalidInput, NotFound
from app.merchants import audit
from app.models import TOKEN_ROLES, ApiToken, User

PREFIX = "tp_"

LAST_USED_STEP = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, *, name: str, role: str = "marketer", now: datetime,
          actor: User | str | None = None) -> tuple[ApiToken, str]:
    """A new token (returned once, in clear) and its row. With ``actor``, the issue is audited.

    :raise InvalidInput: an empty or overlong name, or an unknown role.
    """
    name = name.strip()
    problems = []
    if not 1 <= len(name) <= 120 or "\x00" in name:
        problems.append(FieldError("name", "Name the token after what uses it, in 1 to 120 characters."))
    if role not in TOKEN_ROLES:
        problems.append(FieldError("role", f"Choose one of {', '.join(TOKEN_ROLES)}."))
    if problems:
        raise InvalidInput("the token cannot be created", errors=problems)
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_digest(token), prefix=token[:10], role=role, created_at=now)
    session.add(row)
    session.flush()
    if actor is not None:
        audit.record(session, actor=actor, action="api-token-created", now=now, target=f"api-token:{row.id}",
                     details={"name": row.name, "prefix": row.prefix, "role": row.role})
    return row, token


def all_tokens(session: Session) -> list[ApiToken]:
    """Every token, live ones first, newest first."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.revoked_at.is_not(None),
                                                          ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke(session: Session, *, token_id: int, actor: User | str, now: datetime) -> ApiToken:
    """Refuse the token from now on (idempotent); audited.

    :raise NotFound: no such token.
    """
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("there is no such API token")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
        audit.record(session, actor=actor, action="api-token-revoked", now=now, target=f"api-token:{row.id}",
                     details={"name": row.name, "prefix": row.prefix})
    return row


def verify(session: Session, *, token: str) -> ApiToken | None:
    """The live token row for ``token``, or None. Reads only: see :func:`note_use` for "last used"."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def use_to_note(row: ApiToken, *, now: datetime) -> bool:
    """Whether this use should be recorded: at most once a minute, or a busy token would write on every call."""
    return row.last_used_at is None or now - row.last_used_at >= LAST_USED_STEP


def note_use(session: Session, *, token_id: int, now: datetime) -> None:
    """Record that the token was used ("last used" in the dashboard). Bookkeeping: the caller runs it in a
    transaction of its own and goes on if it fails. A row another request is updating right now is skipped
    rather than waited for (that request records the use). The loaded ``ApiToken`` is not refreshed."""
    due = (select(ApiToken.id)
           .where(ApiToken.id == token_id,
                  or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_STEP))
           .with_for_update(skip_locked=True))
    session.execute(update(ApiToken).where(ApiToken.id.in_(due.scalar_subquery())).values(last_used_at=now)
                    .execution_options(synchronize_session=False))
