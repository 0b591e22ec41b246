"""Who is calling. POS systems: an HMAC-signed request under a store's key (CONTRACTS.md §3)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from app import signing
from app.database import get_session
from app.errors import Unauthorized
from app.merchants.stores import StoreRef, credential_for
from app.web import ratelimit

F = TypeVar("F", bound=Callable[..., Any])

KEY_CACHE = "tallypass.pos_keys"
KEY_CACHE_SECONDS = 5.0  # how long a revoked POS key may still be accepted by a web process
KEY_CACHE_MAX = 10_000


class PosKeyCache:
    """Live POS keys and their secrets, per process, for a few seconds: the lookup and decryption
    would otherwise be one more query on every till request. Unknown keys are never cached."""

    def __init__(self, secret_key: str, ttl: float = KEY_CACHE_SECONDS) -> None:
        self.secret_key, self.ttl = secret_key, ttl
        self.entries: dict[str, tuple[float, StoreRef, str]] = {}
        self.lock = threading.Lock()

    def get(self, key_id: str) -> tuple[StoreRef, str]:
        """:raise Unauthorized: unknown or revoked key."""
        now = time.monotonic()
        hit = self.entries.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        store, secret = credential_for(get_session(), key_id=key_id, secret_key=self.secret_key)
        with self.lock:
            if len(self.entries) >= KEY_CACHE_MAX:
                self.entries.clear()
            self.entries[key_id] = (now + self.ttl, store, secret)
        return store, secret


def init_app(app: Flask) -> None:
    app.extensions[KEY_CACHE] = PosKeyCache(app.config["SECRET_KEY"])


def pos_signature_required(view: F) -> F:
    """Verify ``Tallypass-Key`` + ``Tallypass-Signature`` over the raw body; sets ``g.store``.

    :raise 401: missing, unknown or revoked key (a revocation reaches every process within
        ``KEY_CACHE_SECONDS``); malformed, stale or wrong signature.
    :raise 429: the key's request limit (``TALLYPASS_POS_RATE_LIMIT``) is used up; or this client address
        failed authentication too often (``TALLYPASS_POS_AUTH_FAILURE_LIMIT``), and this request failed too.
    :raise 413: body over 64 KiB (raised by werkzeug while reading it).
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            store, key_id = _authenticate()
        except Unauthorized:
            # Only failures count against the address: a till that signs correctly is never held up by
            # a guesser (or a misconfigured till) behind the same NAT address.
            ratelimit.count_pos_failure()
            raise
        # Counted only once the caller proved the key: nobody can use up another store's limit.
        ratelimit.check("pos", key_id)
        g.store = store
        g.actor = f"store:{store.id}"
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _authenticate() -> tuple[StoreRef, str]:
    """The store whose key signed this request, and the key. :raise Unauthorized: see above."""
    key_id = request.headers.get("Tallypass-Key", "").strip()
    header = request.headers.get("Tallypass-Signature", "")
    if not key_id or not header:
        raise Unauthorized("send Tallypass-Key and Tallypass-Signature headers", code="signature-missing")
    body = request.get_data(cache=True)
    store, secret = current_app.extensions[KEY_CACHE].get(key_id)
    try:
        signing.verify(header, secret=secret, body=body)
    except signing.SignatureError as exc:
        raise Unauthorized(str(exc), code="signature-invalid") from None
    return store, key_id
