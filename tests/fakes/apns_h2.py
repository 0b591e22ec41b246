"""A local stand-in for APNs: real HTTP/2 over TLS on 127.0.0.1, built on ``h2`` (server side).

It answers the way ../shared/reference/apple_wallet.md §4 says APNs does, so the client is tested on
the wire rather than against a mock: ``POST /3/device/<token>`` only (405 otherwise, 404 for another
path), 400 ``MissingTopic`` / ``BadDeviceToken`` / ``PayloadEmpty``, 403 for a missing, invalid or stale
provider token in token mode, 410 with a ``timestamp``, JSON ``{"reason": ...}`` error bodies and an
``apns-id`` on every answer. It advertises ``SETTINGS_MAX_CONCURRENT_STREAMS`` 1000.

The server is ``tests/fakes/h2_server.py``'s: with ``client_ca`` the TLS handshake requires a client
certificate that chains to those CA files, as certificate-based APNs does, and the verified subject is
recorded with every request; the fake's own server certificate comes from a throwaway CA made at start
(``ca_file``), so clients verify it for real. A single connection carries thousands of concurrent streams.
``connections`` counts TCP connections accepted (including those whose handshake failed, also counted in
``handshake_failures``), which is what proves that a client keeps to one connection.

``python -m tests.fakes.apns_h2 [--client-ca PEM ...]`` runs it in its own process (for the benchmark,
so the fake does not share the client's interpreter lock): it prints ``{"url", "ca_file"}`` as one JSON
line, answers each ``stats`` line on stdin with ``{"connections", "handshake_failures", "requests"}``, and
stops at end of input.
"""

from __future__ import annotations

import argparse
import http
import itertools
import json
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from hpack import NeverIndexedHeaderTuple

from tests.fakes.h2_server import DROP_CONNECTION, RESET_STREAM, H2Answer, H2Request, H2Server, Special

__all__ = ["FakeApns", "RecordedRequest"]

_PATH_PREFIX = "/3/device/"
_HEX = re.compile(r"[0-9A-Fa-f]+")
_TOKEN_MAX_AGE = 3600  # APNs refuses provider tokens whose iat is more than an hour old
_MAX_PAYLOAD = 4096
_DEFAULT_REASONS = {
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    token: str | None  # the path's last segment for /3/device/<token>, else None
    headers: dict[str, str]  # lower-case names, pseudo-headers included
    body: bytes
    client_subject: str | None  # RFC 4514 subject of the verified client certificate
    connection_id: int  # 1, 2, … in the order connections were accepted


Scripted = tuple[int, str | None, dict[str, str] | None]


class FakeApns:
    """APNs on 127.0.0.1; use as a context manager (see the module docstring)."""

    RESET_STREAM = -1  # script status: answer the stream with RST_STREAM (INTERNAL_ERROR)
    DROP_CONNECTION = -2  # script status: close the TCP connection, failing every stream on it

    def __init__(
        self,
        client_ca: Sequence[str | Path] | None = None,
        token_public_key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey | None = None,
        team_id: str | None = None,
        key_id: str | None = None,
        *,
        max_concurrent_streams: int = 1000,
    ) -> None:
        if isinstance(token_public_key, ec.EllipticCurvePrivateKey):
            token_public_key = token_public_key.public_key()
        self._token_key = token_public_key
        self._team_id = team_id
        self._key_id = key_id
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[Scripted]] = {}
        self._lock = threading.Lock()
        self._verified_jwts: dict[str, int] = {}  # token → iat, so each JWT is verified once
        # apns-ids are UUIDs: one random per fake whose last 48 bits count the answers, as unique as a uuid4
        # per answer and 6 µs cheaper
        self._id_prefix = str(uuid.uuid4()).upper()[:24]
        self._ids = itertools.count(1)
        self._server = H2Server(
            self._answer,
            client_ca=client_ca,
            max_concurrent_streams=max_concurrent_streams,
            name="fake-apns",
            server_name="api.push.apple.com (fake)",
        )

    # ---------------------------------------------------------------------------- public API

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def ca_file(self) -> Path:
        return self._server.ca_file

    @property
    def connections(self) -> int:
        return self._server.connections

    @property
    def handshake_failures(self) -> int:
        return self._server.handshake_failures

    def script(self, token: str, responses: Iterable[Sequence[object]]) -> None:
        """Answer the next requests for ``token`` with these ``(status, reason, extra_headers)``, in order;
        afterwards (and for every other token) the answer is 200. ``reason`` None means APNs's usual one."""
        padded = [(*tuple(r), None, None)[:3] for r in responses]
        with self._lock:
            self._scripts.setdefault(token, deque()).extend(padded)  # type: ignore[arg-type]

    def __enter__(self) -> FakeApns:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    # ---------------------------------------------------------------------------- APNs behaviour

    def _answer(self, request: H2Request) -> H2Answer | Special:
        method, path, headers, body = request.method, request.path, request.headers, request.body
        token = path[len(_PATH_PREFIX):] if path.startswith(_PATH_PREFIX) else None
        self.requests.append(RecordedRequest(
            method, path, token, headers, body, request.client_subject, request.connection_id
        ))
        status, reason, extra = self._decide(method, token, headers, body)
        if status == self.RESET_STREAM:
            return RESET_STREAM
        if status == self.DROP_CONNECTION:
            return DROP_CONNECTION
        # Never indexed: a fresh value each time would only churn the HPACK table.
        apns_id = f"{self._id_prefix}{next(self._ids):012X}"
        out_headers: list[tuple[str, str]] = [NeverIndexedHeaderTuple("apns-id", apns_id)]
        payload = b""
        if status != 200:
            error: dict[str, object] = {"reason": reason or _default_reason(status)}
            if status == 410:
                error["timestamp"] = int(time.time() * 1000)
            payload = json.dumps(error).encode()
            out_headers += [("content-type", "application/json"), ("content-length", str(len(payload)))]
        out_headers += [(k.lower(), v) for k, v in (extra or {}).items()]
        return H2Answer(status, out_headers, payload)

    def _decide(
        self, method: str, token: str | None, headers: dict[str, str], body: bytes
    ) -> tuple[int, str | None, dict[str, str] | None]:
        if method != "POST":
            return 405, "MethodNotAllowed", None
        if not token or "/" in token:
            return 404, "BadPath", None
        if self._token_key is not None:
            refused = self._check_provider_token(headers.get("authorization"))
            if refused:
                return 403, refused, None
        if not headers.get("apns-topic"):
            return 400, "MissingTopic", None
        if not _HEX.fullmatch(token):
            return 400, "BadDeviceToken", None
        if not body:
            return 400, "PayloadEmpty", None
        if len(body) > _MAX_PAYLOAD:
            return 413, "PayloadTooLarge", None
        with self._lock:
            queue = self._scripts.get(token)
            if queue:
                return queue.popleft()
        return 200, None, None

    def _check_provider_token(self, authorization: str | None) -> str | None:
        """None when the bearer token is acceptable, else APNs's reason for refusing it."""
        if not authorization:
            return "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "InvalidProviderToken"
        iat = self._verified_jwts.get(token)
        if iat is None:
            try:
                header = jwt.get_unverified_header(token)
                claims = jwt.decode(
                    token, self._token_key, algorithms=["ES256"], leeway=60, options={"require": ["iat", "iss"]}
                )
            except jwt.PyJWTError:
                return "InvalidProviderToken"
            if header.get("kid") != self._key_id or claims.get("iss") != self._team_id:
                return "InvalidProviderToken"
            iat = int(claims["iat"])
            self._verified_jwts[token] = iat
        if time.time() - iat > _TOKEN_MAX_AGE:
            return "ExpiredProviderToken"
        return None


def _default_reason(status: int) -> str:
    if status in _DEFAULT_REASONS:
        return _DEFAULT_REASONS[status]
    try:
        return http.HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "Unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the fake APNs server until stdin closes.")
    ap.add_argument("--client-ca", action="append", default=[], help="CA file clients must chain to (repeatable)")
    args = ap.parse_args()
    with FakeApns(client_ca=args.client_ca or None) as apns:
        print(json.dumps({"url": apns.url, "ca_file": str(apns.ca_file)}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                stats = {
                    "connections": apns.connections,
                    "handshake_failures": apns.handshake_failures,
                    "requests": len(apns.requests),
                }
                print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
