"""The POS request signature (CONTRACTS.md §3), Stripe's scheme:
``Tallypass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + raw body)>``.
Several ``v1`` values may be sent while a POS rotates secrets."""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300
MAX_SIGNATURES = 5


class SignatureError(ValueError):
    """Why a signature was refused (safe to show the caller)."""


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def _digest(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            if not (value.isascii() and value.isdigit()) or len(value) > 12:
                raise SignatureError("the signature timestamp t is not a unix time in seconds")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise SignatureError("Tallypass-Signature must look like t=<unix seconds>,v1=<hex>")
    return timestamp, signatures[:MAX_SIGNATURES]


def verify(header: str, *, secret: str, body: bytes, now: float | None = None) -> None:
    """:raise SignatureError: malformed, stale (more than 300 s off) or not matching."""
    t, candidates = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - t) > TOLERANCE_SECONDS:
        raise SignatureError(f"the signature timestamp is more than {TOLERANCE_SECONDS} s from the server's clock")
    expected = _digest(secret, t, body).encode()
    # Compare every candidate (no early exit), each in constant time.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise SignatureError("the signature does not match the request body")
