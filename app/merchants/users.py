"""Dashboard users. Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106).

Changing a password or disabling a user ends that user's dashboard sessions (``dashboard_sessions``): whoever
held a session, or a copy of its cookie, must sign in again. A role change needs no such step, since every request
reads the user's role afresh."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from app.errors import Conflict, FieldError, InvalidInput
from app.merchants import audit
from app.merchants.dashboard_sessions import revoke_sessions
from app.models import PENDING_PASSWORD, USER_ROLES, DashboardSession, Store, User

# A viewer reads; a marketer also changes programmes and sends campaigns; an admin also manages users, POS keys
# and API tokens. The same ladder serves dashboard sessions and API tokens. A cashier is below every rung: the
# dashboard refuses it everything, and only the till lets it in (for its own stores).
ROLE_RANK = {"cashier": 0, "viewer": 1, "marketer": 2, "admin": 3}
assert set(ROLE_RANK) == set(USER_ROLES)

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


def create_user(session: Session, *, email: str, password: str, role: str,
                store_ids: Sequence[int] = ()) -> User:
    """A new account. A cashier is bound to the stores ``store_ids`` (at least one, none of them closed); the
    other roles take no stores.

    :raise InvalidInput: bad e-mail, role, stores or a short password. :raise Conflict: e-mail taken."""
    email = email.strip().lower()
    problems = []
    if "@" not in email or len(email) > 254:
        problems.append(FieldError("email", "is not an e-mail address"))
    if role not in USER_ROLES:
        problems.append(FieldError("role", f"must be one of {', '.join(USER_ROLES)}"))
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(_short_password())
    stores, store_problem = _stores_for(session, role=role, store_ids=store_ids)
    if store_problem:
        problems.append(store_problem)
    if problems:
        raise InvalidInput("the user cannot be created", errors=problems)
    if session.scalars(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict(f"a user with e-mail {email} already exists", code="user-exists")
    user = User(email=email, password_hash=_hasher.hash(password), role=role, stores=stores)
    session.add(user)
    session.flush()
    return user


def create_invited_user(session: Session, *, email: str, role: str, store_ids: Sequence[int] = ()) -> User:
    """A new account that has no password yet (``User.invitation_pending``): nobody can sign in as it until its
    owner chooses a password through an invitation link (``app.merchants.invitations``).

    :raise InvalidInput: bad e-mail, role or stores. :raise Conflict: e-mail taken."""
    user = create_user(session, email=email, password="-" * MIN_PASSWORD_LENGTH, role=role, store_ids=store_ids)
    user.password_hash = PENDING_PASSWORD
    session.flush()
    return user


def _stores_for(session: Session, *, role: str, store_ids: Sequence[int]) -> tuple[list[Store], FieldError | None]:
    """The stores an account of ``role`` is bound to, or what is wrong with ``store_ids``."""
    wanted = sorted(set(store_ids))
    if role != "cashier":
        return [], FieldError("stores", "only a cashier is bound to stores") if wanted else None
    if not wanted:
        return [], FieldError("stores", "a cashier works at one store at least: name it")
    stores = list(session.scalars(select(Store).where(Store.id.in_(wanted)).order_by(Store.id)))
    unknown = sorted(set(wanted) - {store.id for store in stores})
    if unknown:
        return [], FieldError("stores", f"no store has the id {', '.join(map(str, unknown))}")
    closed = [store.name for store in stores if store.closed_at is not None]
    if closed:
        return [], FieldError("stores", f"{', '.join(closed)} is closed: a cashier works at open stores")
    return stores, None


def _short_password() -> FieldError:
    return FieldError("password", f"must have at least {MIN_PASSWORD_LENGTH} characters")


def set_password(session: Session, *, user: User, password: str, now: datetime, actor: User | str,
                 keep: DashboardSession | None = None) -> int:
    """Give ``user`` a new password and end their dashboard sessions (all but ``keep``: the session of a user
    changing their own password stays signed in); audited. Returns how many sessions ended.

    :raise InvalidInput: the password is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("the password cannot be set", errors=[_short_password()])
    user.password_hash = _hasher.hash(password)
    session.flush()
    ended = revoke_sessions(session, user_id=user.id, now=now, reason="password-changed", keep=keep)
    audit.record(session, actor=actor, action="user-password-changed", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "sessions_ended": ended})
    return ended


def disable_user(session: Session, *, user: User, now: datetime, actor: User | str) -> int:
    """The user can no longer sign in, and every session they hold ends now; audited. Returns how many ended.
    (Idempotent: disabling a disabled user still ends any session left.)

    :raise Conflict: ``user`` is the last active admin."""
    _keep_an_admin(session, user=user, change="disabling them")
    user.is_active = False
    session.flush()
    ended = revoke_sessions(session, user_id=user.id, now=now, reason="user-disabled")
    audit.record(session, actor=actor, action="user-disabled", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "sessions_ended": ended})
    return ended


def find_user(session: Session, *, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def all_users(session: Session) -> list[User]:
    """Every account, admins first, then by e-mail (with their stores loaded)."""
    order = case({role: rank for rank, role in enumerate(("admin", "marketer", "viewer", "cashier"))},
                 value=User.role)
    return list(session.scalars(select(User).options(selectinload(User.stores)).order_by(order, User.email)))


def _other_active_admins(session: Session, *, user: User) -> int:
    """How many admins besides ``user`` can sign in. Their rows are locked (PostgreSQL) until the transaction
    ends, so two admins demoting each other at the same moment cannot both succeed."""
    ids = session.scalars(select(User.id).where(User.role == "admin", User.is_active.is_(True),
                                                User.password_hash != PENDING_PASSWORD)
                          .order_by(User.id).with_for_update()).all()
    return len([i for i in ids if i != user.id])


def _keep_an_admin(session: Session, *, user: User, change: str) -> None:
    """:raise Conflict: ``user`` is the last active admin, and ``change`` would leave nobody to manage users."""
    if user.role == "admin" and user.is_active and _other_active_admins(session, user=user) == 0:
        raise Conflict(f"{user.email} is the last active admin: {change} would leave nobody who can manage "
                       "users. Make another user an admin first.", code="last-admin")


def change_role(session: Session, *, user: User, role: str, store_ids: Sequence[int] = (), now: datetime,
                actor: User | str) -> User:
    """Give ``user`` another role (and a cashier its stores); audited. Takes effect on their next request.

    :raise InvalidInput: unknown role or bad stores. :raise Conflict: the last active admin would be demoted."""
    if role not in USER_ROLES:
        raise InvalidInput("the role cannot be changed",
                           errors=[FieldError("role", f"must be one of {', '.join(USER_ROLES)}")])
    stores, problem = _stores_for(session, role=role, store_ids=store_ids)
    if problem:
        raise InvalidInput("the role cannot be changed", errors=[problem])
    if role != "admin":
        _keep_an_admin(session, user=user, change="taking the admin role away")
    before = (user.role, [store.id for store in user.stores])
    user.role, user.stores = role, stores
    session.flush()
    audit.record(session, actor=actor, action="user-role-changed", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "role": role, "stores": [store.id for store in stores],
                          "before": {"role": before[0], "stores": before[1]}})
    return user


def enable_user(session: Session, *, user: User, now: datetime, actor: User | str) -> User:
    """A disabled user may sign in again (with their password as it was); audited."""
    user.is_active = True
    session.flush()
    audit.record(session, actor=actor, action="user-enabled", now=now, target=f"user:{user.id}",
                 details={"email": user.email})
    return user


def remove_user(session: Session, *, user: User, now: datetime, actor: User | str) -> None:
    """Delete the account, its sessions, links and codes (the audit log keeps its e-mail address); audited.

    :raise Conflict: removing oneself, or the last active admin."""
    if isinstance(actor, User) and actor.id == user.id:
        raise Conflict("you cannot remove your own account; another admin can", code="remove-self")
    _keep_an_admin(session, user=user, change="removing them")
    audit.record(session, actor=actor, action="user-removed", now=now, target=f"user:{user.id}",
                 details={"email": user.email, "role": user.role})
    session.delete(user)
    session.flush()


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verified against when the e-mail is unknown, so a login takes as long whether or not the account exists.
_UNKNOWN = _hasher.hash("no account has this password")


def authenticate(session: Session, *, email: str, password: str, now: datetime) -> User | None:
    """The active user with this e-mail and password, or None (which of the two was wrong is not said).
    Records the login time (for a user with two-factor sign-in, ``two_factor.verify`` does, once the code is
    right), and re-hashes a password stored with older argon2 parameters. An invited user who has not chosen a
    password yet is answered like an unknown one, in the same time."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or user.invitation_pending:
        check_password(User(password_hash=_UNKNOWN), password)
        return None
    if not check_password(user, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    if not user.two_factor:
        user.last_login_at = now
    session.flush()
    return user
