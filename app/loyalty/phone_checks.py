"""One-time codes that prove someone holds a phone: signing up with a number that already has a
customer shows that customer's card only after the code sent to it by SMS comes back."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import RateLimited
from app.models import PhoneCheck, Program

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 3  # per phone: nobody can make us text a number over and over


def _hash(secret_key: str, phone: str, code: str) -> str:
    return hmac.new(secret_key.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def start(session: Session, *, program: Program, phone: str, secret_key: str, now: datetime) -> tuple[PhoneCheck, str]:
    """A new six-digit code for ``phone`` (the caller texts it). :raise RateLimited: too many lately."""
    recent = session.scalar(select(func.count()).select_from(PhoneCheck).where(
        PhoneCheck.phone == phone, PhoneCheck.created_at > now - timedelta(hours=1)))
    if (recent or 0) >= MAX_CODES_PER_HOUR:
        raise RateLimited("too many codes were sent to this number; try again in an hour",
                          extra={"retry_after": 3600})
    code = f"{secrets.randbelow(10**6):06d}"
    check = PhoneCheck(phone=phone, program_id=program.id, code_hash=_hash(secret_key, phone, code),
                       created_at=now, expires_at=now + CODE_TTL)
    session.add(check)
    session.flush()
    return check, code


def verify(session: Session, *, check_id: int, code: str, secret_key: str, now: datetime) -> PhoneCheck | None:
    """The check if ``code`` is right, unused, in time and within the attempts; None otherwise (the
    attempt counts either way)."""
    check = session.scalar(select(PhoneCheck).where(PhoneCheck.id == check_id).with_for_update())
    if check is None or check.used_at is not None or check.expires_at < now or check.attempts >= MAX_ATTEMPTS:
        return None
    check.attempts += 1
    if not hmac.compare_digest(check.code_hash, _hash(secret_key, check.phone, code.strip())):
        return None
    check.used_at = now
    return check
