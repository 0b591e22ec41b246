"""Idempotency-Key storage (Stripe's semantics, CONTRACTS.md §3).

The first response to a key is stored in the same transaction as the change it reports and replayed
for 24 h to a retry with the same key and body; a different body gets 409. A transaction-scoped
advisory lock on the key makes a concurrent duplicate fail fast with 409 instead of waiting.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.orm import Session

from app.models import IdempotencyRecord

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def fingerprint(method: str, path: str, payload: Any) -> str:
    """Hash of what the request asks for; key order and whitespace in the JSON do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


# The POS API runs these on every request: plain Core statements on the session's connection, which
# cost a third of the CPU of ORM queries and flushes (bench/pos.py).
_TABLE = IdempotencyRecord.__table__
_FIND = select(_TABLE.c.id, _TABLE.c.request_hash, _TABLE.c.response_status, _TABLE.c.response_body,
               _TABLE.c.created_at).where(_TABLE.c.store_id == bindparam("store_id"), _TABLE.c.key == bindparam("key"))
_LOCK = text("SELECT pg_try_advisory_xact_lock(:id)")


class Stored(NamedTuple):
    id: int
    request_hash: str
    response_status: int
    response_body: dict[str, Any]
    created_at: datetime


def try_lock(session: Session, *, store_id: int, key: str) -> bool:
    """Take the key for this transaction; False while another transaction holds it (in flight).
    SQLite serialises writers anyway, so there it always succeeds."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(_LOCK, {"id": lock_id(store_id, key)}).scalar())


def lock_id(store_id: int, key: str) -> int:
    """A 64-bit advisory-lock id for the key (a collision only costs a spurious 409 in flight)."""
    digest = hashlib.blake2b(f"{store_id}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def find(session: Session, *, store_id: int, key: str, now: datetime) -> Stored | None:
    """The stored response for the key, if younger than 24 h (an older one is dropped: a new request)."""
    conn = session.connection()
    row = conn.execute(_FIND, {"store_id": store_id, "key": key}).one_or_none()
    if row is None:
        return None
    record = Stored(**row._mapping)
    if record.created_at < now - TTL:
        conn.execute(delete(_TABLE).where(_TABLE.c.id == record.id))
        return None
    return record


def save(
    session: Session, *, store_id: int, key: str, request_hash: str, status: int, body: dict[str, Any],
    now: datetime,
) -> None:
    session.connection().execute(insert(_TABLE), {
        "store_id": store_id, "key": key, "request_hash": request_hash, "response_status": status,
        "response_body": body, "created_at": now,
    })
