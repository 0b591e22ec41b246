"""Stores with their POS credentials, and the marketers who use the dashboard with their signed-in sessions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, Column, Float, ForeignKey, LargeBinary, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.program import Program

# What an API token may be: the dashboard's ladder (a viewer reads; a marketer also changes programmes and sends
# campaigns; an admin also manages users, POS keys and tokens).
TOKEN_ROLES = ("admin", "marketer", "viewer")
# What a dashboard account may be: the ladder above, or a cashier, who uses the till (/till/) of the stores the
# account is bound to and nothing else.
USER_ROLES = (*TOKEN_ROLES, "cashier")

# The password hash of an invited user who has not chosen a password yet: no password verifies against it.
PENDING_PASSWORD = ""  # noqa: S105 (a marker, not a password)

# The stores a cashier works at (other roles have none: they see every store).
user_store = Table(
    "user_store", Base.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("store_id", ForeignKey("store.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Store(Base):
    __tablename__ = "store"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(255), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A closed store stays for history (its purchases still count in reports); its POS keys are revoked and it is
    # offered for nothing new (keys, geo). See app.merchants.stores.close_store.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    program: Mapped[Program] = relationship(back_populates="stores")
    credentials: Mapped[list[PosCredential]] = relationship(back_populates="store")


class PosCredential(Base):
    """A POS key. The HMAC secret must be recoverable to verify signatures, so it is stored
    encrypted (Fernet, key derived from the service secret), never hashed and never logged.
    A store may hold several live credentials while a POS rotates from one to the next."""

    __tablename__ = "pos_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    store: Mapped[Store] = relationship(back_populates="credentials")


class User(Base):
    """Someone who signs in: a viewer, marketer or administrator of the dashboard, or a cashier at the till."""

    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint("role IN ('admin', 'marketer', 'viewer', 'cashier')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor sign-in (TOTP, RFC 6238): the shared secret sealed with ``app.vault`` (set while enrolling, before
    # ``totp_enabled_at``), and the last time step accepted, so no code is accepted twice.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    stores: Mapped[list[Store]] = relationship(secondary=user_store, order_by="Store.id")

    @property
    def invitation_pending(self) -> bool:
        """Invited, and no password chosen yet (``PENDING_PASSWORD``): nobody can sign in as this user."""
        return self.password_hash == PENDING_PASSWORD

    @property
    def two_factor(self) -> bool:
        return self.totp_enabled_at is not None


class DashboardSession(Base):
    """A browser signed in to the dashboard. Its cookie carries a random token; only the token's SHA-256 is
    stored, so a copy of this table signs nobody in. Refused once revoked (sign-out; every session of a user whose
    password changes or who is disabled), past ``expires_at`` (the absolute lifetime, fixed at sign-in), or idle
    for longer than the idle timeout since ``last_seen_at`` (written at most once a minute)."""

    __tablename__ = "dashboard_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it ended: "signed-out", "signed-in-again", "password-changed", "user-disabled", or what a caller says.
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for the JSON API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in lists, to tell tokens apart
    role: Mapped[str] = mapped_column(String(16), default="marketer")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
