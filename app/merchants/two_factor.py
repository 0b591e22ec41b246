"""Two-factor sign-in with time-based one-time codes (TOTP, RFC 6238: 6 digits, 30-second steps, SHA-1, the
parameters every authenticator app expects), on pyotp.

- Enrolling: ``begin`` makes a secret (sealed with ``app.vault``, since it must be read back to check codes) and
  the ``otpauth://`` URI for the app's QR code; ``confirm`` turns two-factor on once the user types a code from
  the app, and returns ten recovery codes, shown once and stored as SHA-256 digests (they are random, 80 bits).
- Signing in: ``verify`` accepts the code of the current step or of one step either side (a phone's clock may be
  off by up to 30 s), and never a step at or before the last one accepted, so a code seen over a shoulder or
  replayed from a log is refused; or a recovery code, which then is spent.
- ``disable`` (the user, who gives their password: the view checks it) and ``reset`` (an admin, for a user who
  lost their phone) turn it off and forget the secret and codes.

Plain functions on a session that flush and never commit; the caller owns the transaction."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app import vault
from app.errors import Conflict, FieldError, InvalidInput
from app.merchants import audit
from app.models import RecoveryCode, User

ISSUER = "Tallypass"
RECOVERY_CODES = 10
VALID_WINDOW = 1  # steps either side of now
# The step is written with a conditional UPDATE of its own column (never a password or the active flag, which only
# app.merchants.users writes: test_only_the_user_service_changes_passwords_or_disables_users).
_USERS = User.__table__
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to copy from paper


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret)


def secret_of(user: User, *, secret_key: str) -> str | None:
    """The user's TOTP secret; None when there is none, or it was sealed under another ``TALLYPASS_SECRET_KEY``
    (after a rotation: the user signs in with a recovery code, or an admin resets two-factor)."""
    if user.totp_secret_encrypted is None:
        return None
    try:
        return vault.unseal(user.totp_secret_encrypted, secret_key=secret_key)
    except vault.InvalidToken:
        return None


def begin(session: Session, *, user: User, secret_key: str) -> str:
    """A new secret for ``user`` (replacing an unconfirmed one); returns it. Two-factor stays off until
    ``confirm``.

    :raise Conflict: two-factor is on already (turn it off first)."""
    if user.two_factor:
        raise Conflict("two-factor sign-in is on already", code="two-factor-on")
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = vault.seal(secret, secret_key=secret_key)
    user.totp_last_step = None
    session.flush()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://totp/...`` URI that authenticator apps read from a QR code."""
    return _totp(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def pending_secret(user: User, *, secret_key: str) -> str | None:
    """The secret of an enrolment begun and not confirmed yet."""
    return None if user.two_factor else secret_of(user, secret_key=secret_key)


def confirm(session: Session, *, user: User, code: str, now: datetime, secret_key: str) -> list[str]:
    """Turn two-factor on, once ``code`` is right for the secret of ``begin``; audited. Returns the recovery
    codes (shown once).

    :raise InvalidInput: wrong code, or no enrolment begun."""
    secret = pending_secret(user, secret_key=secret_key)
    if secret is None or not _accept_totp(session, user=user, secret=secret, code=code, now=now):
        raise InvalidInput("two-factor sign-in is not on yet", errors=[FieldError(
            "code", "is not the code your app shows now: check the app's entry for Tallypass and type the 6 "
                    "digits it shows")])
    user.totp_enabled_at = now
    codes = _new_recovery_codes(session, user=user)
    audit.record(session, actor=user, action="two-factor-enabled", now=now, target=f"user:{user.id}",
                 details={"email": user.email})
    return codes


def _new_recovery_codes(session: Session, *, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
                    .execution_options(synchronize_session="fetch"))
    codes = ["-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
             for _ in range(RECOVERY_CODES)]  # 16 characters of 31: 79 bits each
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_digest(code)) for code in codes)
    session.flush()
    return codes


def _digest(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def _normal(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _accept_totp(session: Session, *, user: User, secret: str, code: str, now: datetime) -> bool:
    """True when ``code`` is the code of a step within the window, later than the last step accepted; that step
    is then recorded, in one UPDATE that also requires it to be later, so two requests with one code race to a
    single success."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return False
    totp, at = _totp(secret), int(now.timestamp())
    step = totp.timecode(now)
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        candidate = step + offset
        if secrets.compare_digest(totp.at(at + offset * totp.interval), code):
            taken = session.execute(
                update(_USERS).where(User.id == user.id,
                                   or_(User.totp_last_step.is_(None), User.totp_last_step < candidate))
                .values(totp_last_step=candidate).execution_options(synchronize_session=False))
            if not taken.rowcount:  # type: ignore[attr-defined]
                return False
            session.refresh(user)
            return True
    return False


def verify(session: Session, *, user: User, code: str, now: datetime, secret_key: str) -> str | None:
    """Check the second factor at sign-in: a code from the app, or a recovery code (then spent). Returns which
    was used (``"totp"`` or ``"recovery"``) and records the sign-in time, or None; audits a recovery code's use."""
    secret = secret_of(user, secret_key=secret_key)
    if not user.two_factor or len(code) > 64:
        return None
    if secret is not None and _accept_totp(session, user=user, secret=secret, code=code, now=now):
        user.last_login_at = now
        session.flush()
        return "totp"
    spent = session.execute(update(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                       RecoveryCode.code_hash == _digest(code),
                                                       RecoveryCode.used_at.is_(None))
                            .values(used_at=now).execution_options(synchronize_session=False))
    if not spent.rowcount:  # type: ignore[attr-defined]
        return None
    user.last_login_at = now
    session.flush()
    audit.record(session, actor=user, action="two-factor-recovery-code-used", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "codes_left": recovery_codes_left(session, user=user)})
    return "recovery"


def recovery_codes_left(session: Session, *, user: User) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                                             RecoveryCode.used_at.is_(None))).all())


def disable(session: Session, *, user: User, now: datetime, actor: User | str, action: str = "two-factor-disabled"
            ) -> None:
    """Two-factor off: the secret and recovery codes are forgotten; audited. (The user's own request must have
    checked their password; an admin's is ``reset``.)"""
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
                    .execution_options(synchronize_session="fetch"))
    session.flush()
    audit.record(session, actor=actor, action=action, now=now, target=f"user:{user.id}",
                 details={"email": user.email})


def reset(session: Session, *, user: User, now: datetime, actor: User | str) -> None:
    """An admin turns off another user's two-factor sign-in (a lost phone); audited. They sign in with their
    password alone until they enrol again."""
    disable(session, user=user, now=now, actor=actor, action="two-factor-reset")
