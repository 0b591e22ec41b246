"""Stores and their POS credentials."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import vault
from app.db import utcnow
from app.errors import NotFound, Unauthorized
from app.loyalty import programs
from app.models import PosCredential, Program, Store

KEY_ID_PREFIX = "pk_"


class StoreLike(Protocol):
    """What the loyalty services need of a store: an ORM ``Store`` or a cached ``StoreRef``."""

    @property
    def id(self) -> int: ...
    @property
    def program_id(self) -> int: ...
    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True)
class StoreRef:
    """An immutable snapshot of a store, safe to keep across requests and threads."""

    id: int
    program_id: int
    timezone: str

    @classmethod
    def of(cls, store: Store) -> StoreRef:
        return cls(id=store.id, program_id=store.program_id, timezone=store.timezone)


@dataclass(frozen=True)
class IssuedCredential:
    credential: PosCredential
    secret: str  # shown once, never stored in clear


def create_store(
    session: Session, *, program: Program, name: str, latitude: float | None = None,
    longitude: float | None = None, address: str = "", timezone: str | None = None,
) -> Store:
    store = Store(program_id=program.id, name=name, latitude=latitude, longitude=longitude, address=address,
                  timezone=timezone or program.timezone)
    session.add(store)
    session.flush()
    programs.saved(session, program=program)  # the programme's stores show in Google Wallet
    return store


def issue_credential(session: Session, *, store: Store, secret_key: str) -> IssuedCredential:
    """A new POS key for the store. Earlier keys stay valid until revoked, so a POS can rotate."""
    secret = "sk_" + secrets.token_urlsafe(32)
    credential = PosCredential(
        store_id=store.id, key_id=KEY_ID_PREFIX + secrets.token_hex(8),
        secret_encrypted=vault.seal(secret, secret_key=secret_key),
    )
    session.add(credential)
    session.flush()
    return IssuedCredential(credential=credential, secret=secret)


def revoke_credential(session: Session, *, key_id: str) -> None:
    credential = session.scalars(select(PosCredential).where(PosCredential.key_id == key_id)).one_or_none()
    if credential is None:
        raise NotFound(f"no POS key {key_id}")
    if credential.revoked_at is None:
        credential.revoked_at = utcnow()
        session.flush()


def credential_for(session: Session, *, key_id: str, secret_key: str) -> tuple[StoreRef, str]:
    """The store behind a live POS key and its HMAC secret.

    :raise Unauthorized: unknown or revoked key, or a secret sealed under another service key.
    """
    row = session.execute(
        select(PosCredential, Store)
        .join(Store, Store.id == PosCredential.store_id)
        .where(PosCredential.key_id == key_id, PosCredential.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        raise Unauthorized("unknown or revoked POS key", code="unknown-key")
    credential, store = row
    try:
        return StoreRef.of(store), vault.unseal(credential.secret_encrypted, secret_key=secret_key)
    except vault.InvalidToken:
        raise Unauthorized("this POS key can no longer be verified; issue a new one",
                           code="unknown-key") from None
