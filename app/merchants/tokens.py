"""Bearer tokens for the JSON API: random, shown once, stored as SHA-256 (a token has 256 bits of
entropy, so a fast hash is enough; the lookup by hash needs no separate constant-time compare)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import USER_ROLES, ApiToken

PREFIX = "tp_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, *, name: str, role: str = "marketer", now: datetime) -> tuple[ApiToken, str]:
    if role not in USER_ROLES:
        raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_digest(token), prefix=token[:10], role=role, created_at=now)
    session.add(row)
    session.flush()
    return row, token


def verify(session: Session, *, token: str, now: datetime) -> ApiToken | None:
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = now
    return row
