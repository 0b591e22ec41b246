"""Stores and their POS credentials."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app import vault
from app.db import utcnow
from app.errors import Conflict, FieldError, InvalidInput, NotFound, Unauthorized
from app.loyalty import programs
from app.merchants import audit
from app.models import PosCredential, Program, Store, User

KEY_ID_PREFIX = "pk_"
MAX_OVERLAP = timedelta(days=30)  # the longest an old key may stay valid after a rotation
Actor = User | str


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


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone (e.g. "Europe/Chisinau"), or None when it is one."""
    if not name or len(name) > 64 or name not in _zones():
        return "Choose an IANA time zone such as Europe/Chisinau or America/New_York."
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "Choose an IANA time zone such as Europe/Chisinau or America/New_York."
    return None


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def timezones() -> list[str]:
    """Every IANA time zone name, sorted (for pickers)."""
    return sorted(_zones())


def _check_fields(*, name: str, address: str, latitude: float | None, longitude: float | None,
                  timezone: str) -> None:
    """:raise InvalidInput: each field that a store cannot have, with why."""
    problems = []
    for field, value in (("name", name), ("address", address), ("timezone", timezone)):
        if "\x00" in value:
            problems.append(FieldError(field, "Remove the NUL character."))
    if not name.strip() or len(name) > 120:
        problems.append(FieldError("name", "Give the store a name of 1 to 120 characters."))
    if len(address) > 255:
        problems.append(FieldError("address", "Keep the address under 255 characters."))
    if latitude is not None and not (math.isfinite(latitude) and -90 <= latitude <= 90):
        problems.append(FieldError("latitude", "Latitude is between -90 and 90."))
    if longitude is not None and not (math.isfinite(longitude) and -180 <= longitude <= 180):
        problems.append(FieldError("longitude", "Longitude is between -180 and 180."))
    if (latitude is None) != (longitude is None):
        problems.append(FieldError("longitude" if longitude is None else "latitude",
                                   "Give both latitude and longitude, or neither."))
    if (why := timezone_problem(timezone)) is not None:
        problems.append(FieldError("timezone", why))
    if problems:
        raise InvalidInput("the store's details are not valid", errors=problems)


def create_store(
    session: Session, *, program: Program, name: str, latitude: float | None = None,
    longitude: float | None = None, address: str = "", timezone: str | None = None,
    actor: Actor | None = None, now: datetime | None = None,
) -> Store:
    """:raise InvalidInput: a bad name, coordinates or time zone. With ``actor``, the creation is audited."""
    timezone = timezone or program.timezone
    _check_fields(name=name, address=address, latitude=latitude, longitude=longitude, timezone=timezone)
    store = Store(program_id=program.id, name=name.strip(), latitude=latitude, longitude=longitude,
                  address=address.strip(), timezone=timezone)
    session.add(store)
    session.flush()
    programs.saved(session, program=program)  # the programme's stores show in Google Wallet
    if actor is not None:
        audit.record(session, actor=actor, action="store-created", now=now or utcnow(), target=f"store:{store.id}",
                     details={"name": store.name, "program": program.slug})
    return store


STORE_FIELDS = ("name", "address", "latitude", "longitude", "timezone")


def update_store(session: Session, *, store: Store, changes: dict[str, Any], actor: Actor, now: datetime) -> Store:
    """Change some of ``STORE_FIELDS``; audited with the old and new values of what changed.

    :raise InvalidInput: a bad value, or a field a store does not have.
    """
    unknown = set(changes) - set(STORE_FIELDS)
    if unknown:
        raise InvalidInput(f"a store has no field {sorted(unknown)[0]!r}")
    merged = {field: getattr(store, field) for field in STORE_FIELDS}
    merged.update({k: v.strip() if isinstance(v, str) else v for k, v in changes.items()})
    _check_fields(**merged)
    changed = {field: [getattr(store, field), value] for field, value in merged.items()
               if getattr(store, field) != value}
    if not changed:
        return store
    for field, (_old, new) in changed.items():
        setattr(store, field, new)
    session.flush()
    program = session.get(Program, store.program_id)
    if program is not None and {"name", "address", "latitude", "longitude"} & set(changed):
        programs.saved(session, program=program)  # the pass's locations change
    audit.record(session, actor=actor, action="store-updated", now=now, target=f"store:{store.id}",
                 details=changed)
    return store


def close_store(session: Session, *, store: Store, actor: Actor, now: datetime) -> list[str]:
    """Close the store: it stays for history (its purchases still count in reports), every POS key it has is
    revoked now (a till signing with one gets 401, as for any revoked key), no new key can be issued, and passes
    and geo campaigns no longer show it. Audited. Returns the key ids revoked.

    :raise Conflict: the store is already closed."""
    if store.closed_at is not None:
        raise Conflict(f"the store {store.name!r} is already closed", code="store-closed")
    store.closed_at = now
    revoked = []
    for credential in session.scalars(select(PosCredential).where(PosCredential.store_id == store.id, _live(now))):
        credential.revoked_at = now
        revoked.append(credential.key_id)
    session.flush()
    program = session.get(Program, store.program_id)
    if program is not None:
        programs.saved(session, program=program)  # the pass's locations change
    audit.record(session, actor=actor, action="store-closed", now=now, target=f"store:{store.id}",
                 details={"name": store.name, "revoked_keys": revoked})
    return revoked


def open_stores(stores: Any) -> list[Store]:
    """The stores of ``stores`` that are not closed (for passes' locations, geo campaigns and pickers)."""
    return [store for store in stores if store.closed_at is None]


def live_key_counts(session: Session, *, store_ids: list[int], now: datetime) -> dict[int, int]:
    """How many keys each store has that a POS may sign with now (scheduled revocations not yet due count)."""
    if not store_ids:
        return {}
    rows = session.execute(
        select(PosCredential.store_id, func.count())
        .where(PosCredential.store_id.in_(store_ids), _live(now))
        .group_by(PosCredential.store_id))
    return {store_id: count for store_id, count in rows}


def credentials(session: Session, *, store: Store) -> list[PosCredential]:
    """The store's keys, newest first (revoked ones too, for the record)."""
    return list(session.scalars(select(PosCredential).where(PosCredential.store_id == store.id)
                                .order_by(PosCredential.created_at.desc(), PosCredential.id.desc())))


def key_state(credential: PosCredential, now: datetime) -> str:
    """"live", "retiring" (a revocation is scheduled) or "revoked"."""
    if credential.revoked_at is None:
        return "live"
    return "retiring" if credential.revoked_at > now else "revoked"


def store_credential(session: Session, *, store: Store, key_id: str) -> PosCredential:
    """:raise NotFound: the store has no key ``key_id``."""
    credential = None if "\x00" in key_id else session.scalar(
        select(PosCredential).where(PosCredential.key_id == key_id, PosCredential.store_id == store.id))
    if credential is None:
        raise NotFound(f"this store has no POS key {key_id[:40]}")
    return credential


def issue_credential(session: Session, *, store: Store, secret_key: str, actor: Actor | None = None,
                     now: datetime | None = None) -> IssuedCredential:
    """A new POS key for the store. Earlier keys stay valid until revoked, so a POS can rotate.
    With ``actor``, the issue is audited (the key id, never the secret).

    :raise Conflict: the store is closed."""
    if store.closed_at is not None:
        raise Conflict(f"the store {store.name!r} is closed; a closed store gets no POS key", code="store-closed")
    secret = "sk_" + secrets.token_urlsafe(32)
    credential = PosCredential(
        store_id=store.id, key_id=KEY_ID_PREFIX + secrets.token_hex(8),
        secret_encrypted=vault.seal(secret, secret_key=secret_key),
    )
    if now is not None:
        credential.created_at = now
    session.add(credential)
    session.flush()
    if actor is not None:
        audit.record(session, actor=actor, action="pos-key-created", now=now or utcnow(), target=f"store:{store.id}",
                     details={"key_id": credential.key_id})
    return IssuedCredential(credential=credential, secret=secret)


def rotate_credential(session: Session, *, credential: PosCredential, overlap: timedelta, secret_key: str,
                      actor: Actor, now: datetime) -> IssuedCredential:
    """A new key for the same store; the old one keeps working for ``overlap`` (0 to 30 days) and is refused
    after, so the POS can switch to the new key without downtime. An earlier scheduled end is kept.

    :raise Conflict: the old key is already revoked. :raise InvalidInput: the overlap is out of range.
    """
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput("the overlap must be between 0 and 30 days",
                           errors=[FieldError("overlap_hours", "Choose an overlap between 0 hours and 30 days.")])
    if key_state(credential, now) == "revoked":
        raise Conflict(f"the POS key {credential.key_id} is already revoked; create a new key instead",
                       code="key-revoked")
    ends = now + overlap
    if credential.revoked_at is None or credential.revoked_at > ends:
        credential.revoked_at = ends
    store = session.get(Store, credential.store_id)
    assert store is not None  # foreign key
    issued = issue_credential(session, store=store, secret_key=secret_key, now=now)
    audit.record(session, actor=actor, action="pos-key-rotated", now=now, target=f"store:{store.id}",
                 details={"old_key_id": credential.key_id, "new_key_id": issued.credential.key_id,
                          "old_key_valid_until": credential.revoked_at.isoformat()})
    return issued


def revoke_credential(session: Session, *, key_id: str, actor: Actor | None = None,
                      now: datetime | None = None) -> PosCredential:
    """Revoke now (also bringing forward a scheduled revocation). With ``actor``, audited.

    :raise NotFound: no such key.
    """
    now = now or utcnow()
    credential = session.scalars(select(PosCredential).where(PosCredential.key_id == key_id)).one_or_none()
    if credential is None:
        raise NotFound(f"no POS key {key_id}")
    if credential.revoked_at is None or credential.revoked_at > now:
        credential.revoked_at = now
        session.flush()
        if actor is not None:
            audit.record(session, actor=actor, action="pos-key-revoked", now=now,
                         target=f"store:{credential.store_id}", details={"key_id": key_id})
    return credential


def _live(now: datetime) -> Any:
    return or_(PosCredential.revoked_at.is_(None), PosCredential.revoked_at > now)


def credential_for(session: Session, *, key_id: str, secret_key: str,
                   now: datetime | None = None) -> tuple[StoreRef, str]:
    """The store behind a live POS key and its HMAC secret. A key whose revocation is scheduled (a rotation's
    overlap) is live until then.

    :raise Unauthorized: unknown or revoked key, or a secret sealed under another service key.
    """
    row = session.execute(
        select(PosCredential, Store)
        .join(Store, Store.id == PosCredential.store_id)
        .where(PosCredential.key_id == key_id, _live(now or utcnow()), Store.closed_at.is_(None))
    ).one_or_none()
    if row is None:
        raise Unauthorized("unknown or revoked POS key", code="unknown-key")
    credential, store = row
    try:
        return StoreRef.of(store), vault.unseal(credential.secret_encrypted, secret_key=secret_key)
    except vault.InvalidToken:
        raise Unauthorized("this POS key can no longer be verified; issue a new one",
                           code="unknown-key") from None
