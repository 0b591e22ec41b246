"""Who is calling. POS systems: an HMAC-signed request under a store's key (CONTRACTS.md §3)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from app import signing
from app.database import get_session
from app.errors import Unauthorized
from app.merchants.stores import credential_for
from app.web import ratelimit

F = TypeVar("F", bound=Callable[..., Any])


def pos_signature_required(view: F) -> F:
    """Verify ``Tallypass-Key`` + ``Tallypass-Signature`` over the raw body; sets ``g.store``.

    :raise 401: missing, unknown or revoked key; malformed, stale or wrong signature.
    :raise 429: the key's request limit (``TALLYPASS_POS_RATE_LIMIT``) is used up.
    :raise 413: body over 64 KiB (raised by werkzeug while reading it).
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key_id = request.headers.get("Tallypass-Key", "").strip()
        header = request.headers.get("Tallypass-Signature", "")
        if not key_id or not header:
            raise Unauthorized("send Tallypass-Key and Tallypass-Signature headers", code="signature-missing")
        body = request.get_data(cache=True)
        store, secret = credential_for(get_session(), key_id=key_id, secret_key=current_app.config["SECRET_KEY"])
        try:
            signing.verify(header, secret=secret, body=body)
        except signing.SignatureError as exc:
            raise Unauthorized(str(exc), code="signature-invalid") from None
        # Counted only once the caller proved the key: nobody can use up another store's limit.
        ratelimit.check("pos", key_id)
        g.store = store
        g.actor = f"store:{store.id}"
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
