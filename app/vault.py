"""Symmetric sealing of secrets we must be able to read back (POS HMAC secrets).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from the service secret by HKDF, so one
configured secret protects the database copy. Rotating ``TALLYPASS_SECRET_KEY`` invalidates sealed
POS secrets: issue new credentials after a rotation.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["InvalidToken", "seal", "unseal"]


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tallypass/pos-secrets/v1").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(plaintext: str, *, secret_key: str) -> bytes:
    return _fernet(secret_key).encrypt(plaintext.encode())


def unseal(token: bytes, *, secret_key: str) -> str:
    """:raise InvalidToken: sealed under another key, or tampered with."""
    return _fernet(secret_key).decrypt(token).decode()
