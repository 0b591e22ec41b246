"""One-time links into the dashboard: an admin invites someone (an account without a password, and a link to
choose one), or issues a password-reset link for an existing user. There is no e-mail channel for these yet, so
the admin is shown the link once and passes it on.

A link carries a random token (256 bits); only its SHA-256 is stored, as for sessions and API tokens. It is valid
for ``LINK_HOURS``, works once, and a newer link for the same user and purpose replaces any unused older one.
Choosing the password through a link ends every other session of the user (``users.set_password``).

Plain functions on a session that flush and never commit; the request or command owns the transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.errors import AppError, Conflict, FieldError, InvalidInput, NotFound
from app.merchants import audit
from app.merchants.users import MIN_PASSWORD_LENGTH, create_invited_user, set_password
from app.models import DashboardSession, User, UserLink

LINK_HOURS = 72
MAX_TOKEN_LENGTH = 100  # ours have 43 characters; anything longer is not worth hashing


@dataclass(frozen=True)
class IssuedLink:
    link: UserLink
    token: str  # for the URL; shown once, never stored


class LinkUnusable(AppError):
    """The link was used already, or has expired: say which, so the holder knows to ask for a new one."""

    status, code, title = 410, "link-unusable", "Link no longer valid"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(session: Session, *, email: str, role: str, store_ids: Sequence[int] = (), now: datetime,
           actor: User | str) -> IssuedLink:
    """A new account for ``email`` with ``role`` (a cashier with its stores) and no password yet, and the link that
    lets its owner choose one; audited.

    :raise InvalidInput: bad e-mail, role or stores. :raise Conflict: the e-mail has an account already."""
    user = create_invited_user(session, email=email, role=role, store_ids=store_ids)
    issued = _issue(session, user=user, purpose="invite", now=now)
    audit.record(session, actor=actor, action="user-invited", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "role": role, "stores": [store.id for store in user.stores],
                          "expires_at": issued.link.expires_at.isoformat()})
    return issued


def reissue_invitation(session: Session, *, user: User, now: datetime, actor: User | str) -> IssuedLink:
    """A fresh invitation link for a user who has not used theirs (the old one stops working); audited.

    :raise Conflict: the user has chosen a password already (issue a reset link instead)."""
    if not user.invitation_pending:
        raise Conflict(f"{user.email} has accepted the invitation already; issue a password-reset link instead",
                       code="invitation-accepted")
    issued = _issue(session, user=user, purpose="invite", now=now)
    audit.record(session, actor=actor, action="user-invitation-renewed", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "expires_at": issued.link.expires_at.isoformat()})
    return issued


def issue_reset(session: Session, *, user: User, now: datetime, actor: User | str) -> IssuedLink:
    """A one-time link that lets ``user`` choose a new password; audited. Their password keeps working until the
    link is used.

    :raise Conflict: the user is disabled, or has not accepted the invitation (renew that instead)."""
    if not user.is_active:
        raise Conflict(f"{user.email} is disabled: enable the account before resetting its password",
                       code="user-disabled")
    if user.invitation_pending:
        raise Conflict(f"{user.email} has not accepted the invitation yet: renew the invitation instead",
                       code="invitation-pending")
    issued = _issue(session, user=user, purpose="reset", now=now)
    audit.record(session, actor=actor, action="user-password-reset-issued", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "expires_at": issued.link.expires_at.isoformat()})
    return issued


def _issue(session: Session, *, user: User, purpose: str, now: datetime) -> IssuedLink:
    session.execute(delete(UserLink).where(UserLink.user_id == user.id, UserLink.purpose == purpose,
                                           UserLink.used_at.is_(None))
                    .execution_options(synchronize_session="fetch"))  # SQLite may reuse the ids
    token = secrets.token_urlsafe(32)
    link = UserLink(user_id=user.id, purpose=purpose, token_hash=digest(token), created_at=now,
                    expires_at=now + timedelta(hours=LINK_HOURS))
    session.add(link)
    session.flush()
    return IssuedLink(link=link, token=token)


def open_link(session: Session, *, token: str, now: datetime) -> UserLink:
    """The live link this token opens.

    :raise NotFound: no such link (never issued, or replaced by a newer one). :raise LinkUnusable: used already,
    expired, or its user is disabled."""
    link = None
    if token and len(token) <= MAX_TOKEN_LENGTH:
        link = session.scalar(select(UserLink).where(UserLink.token_hash == digest(token)))
    if link is None:
        raise NotFound("this link is not valid: it may have been replaced by a newer one. Ask an admin for a new "
                       "link.", code="link-unknown")
    if link.used_at is not None:
        raise LinkUnusable("this link has been used already. Sign in with the password you chose, or ask an "
                           "admin for a new link.", extra={"reason": "used"})
    if now >= link.expires_at:
        raise LinkUnusable(f"this link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC. Ask an admin for a new "
                           "link.", extra={"reason": "expired"})
    if not link.user.is_active:
        raise LinkUnusable("this account is disabled. Ask an admin.", extra={"reason": "disabled"})
    return link


def use_link(session: Session, *, token: str, password: str, confirm: str, now: datetime,
             keep: DashboardSession | None = None) -> User:
    """Set the password of the link's user and spend the link (once, even when two tries race); every session of
    the user ends but ``keep``; audited.

    :raise InvalidInput: the two passwords differ or are too short. :raise NotFound, LinkUnusable: see
    ``open_link``."""
    link = open_link(session, token=token, now=now)
    if password != confirm:
        raise InvalidInput("the password cannot be set",
                           errors=[FieldError("confirm", "does not match the password typed above")])
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("the password cannot be set", errors=[
            FieldError("password", f"must have at least {MIN_PASSWORD_LENGTH} characters")])
    spent = session.execute(update(UserLink).where(UserLink.id == link.id, UserLink.used_at.is_(None))
                            .values(used_at=now).execution_options(synchronize_session=False))
    if not spent.rowcount:  # type: ignore[attr-defined]
        raise LinkUnusable("this link has been used already.", extra={"reason": "used"})
    session.refresh(link)
    user = link.user
    set_password(session, user=user, password=password, now=now, actor=user, keep=keep)
    action = "user-invitation-accepted" if link.purpose == "invite" else "user-password-reset-used"
    audit.record(session, actor=user, action=action, now=now, target=f"user:{user.id}",
                 details={"email": user.email})
    return user


def pending_links(session: Session, *, now: datetime) -> dict[int, UserLink]:
    """The newest live invitation of each user who has one (for the Users page's "invited until" column)."""
    rows = session.scalars(select(UserLink).where(UserLink.purpose == "invite", UserLink.used_at.is_(None),
                                                  UserLink.expires_at > now).order_by(UserLink.created_at))
    return {row.user_id: row for row in rows}
