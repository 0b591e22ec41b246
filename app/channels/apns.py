"""APNs client for Apple Wallet pass-update pushes (../shared/reference/apple_wallet.md §4).

A pass update is ``POST /3/device/<push token>`` with ``apns-topic: <pass type id>`` and the body ``{}``;
the phone then fetches the new pass from our PassKit web service. Apple asks for long-lived connections
carrying many concurrent streams ("APNs treats rapid connection and disconnection as a denial-of-service
attack"), so each ``ApnsClient`` keeps ONE HTTP/2 connection (``app.channels.http2``, our small client on
the ``h2`` state machine: httpx cost seven times the CPU per push) and the synchronous ``push()`` sends whole
batches down it as concurrent streams. The connection is made on first use and made again in a forked child
(Celery prefork workers fork after import), which must never touch its parent's socket.

Authentication, §4: the Pass Type ID certificate and key as TLS client certificate (Apple's documented
method), or an ES256 provider token (JWT) from a .p8 key of the team owning the pass type, reused for
50 minutes because APNs answers ``TooManyProviderTokenUpdates`` to tokens refreshed more often than every
20 minutes and rejects those older than an hour.

Outcomes: 200 sent; 410, or 400 ``BadDeviceToken``: the device is gone, delete the registration; 429, 5xx
and network errors: retried with exponential back-off and jitter (or ``Retry-After``); 403 and other 4xx:
configuration an operator must fix, logged once per call.

Stream concurrency is ``min(concurrency, the server's SETTINGS_MAX_CONCURRENT_STREAMS)``; the default 100
keeps ``h2``'s bookkeeping cheap (it walks the open streams for every new one) and is already far more than
a round trip to Apple needs to keep the connection busy.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from app.channels.http import retry_after as _retry_after
from app.channels.http2 import Http2Connection, Request, Response, client_context

__all__ = ["ApnsClient", "ApnsConfig", "PushOutcome", "PushResult"]

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[0-9A-Fa-f]{1,200}")  # APNs device tokens are 64 hex digits today; leave room
_TOKEN_REUSE = 50 * 60.0  # seconds a provider token is reused (APNs refuses it after 60 minutes)
_TOKEN_MIN_AGE = 20 * 60.0  # never replaced sooner: APNs answers 429 TooManyProviderTokenUpdates
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_TOPIC_REASONS = frozenset({"DeviceTokenNotForTopic", "TopicDisallowed", "BadTopic", "MissingTopic"})

class PushOutcome(StrEnum):
    SENT = "sent"  # 200
    UNREGISTERED = "unregistered"  # 410, or 400 with reason BadDeviceToken: caller deletes the registration
    FAILED = "failed"  # 429 / 5xx / network error still failing after the retries
    REJECTED = "rejected"  # 403 and other 4xx: an operator must fix configuration


@dataclass(frozen=True)
class PushResult:
    token: str
    outcome: PushOutcome
    status: int | None  # last HTTP status, None on network error
    reason: str | None  # APNs JSON "reason", or the exception text
    attempts: int  # requests made for this token (0 when refused locally)


@dataclass(frozen=True)
class ApnsConfig:
    base_url: str  # e.g. "https://api.push.apple.com" (tests: "https://127.0.0.1:<port>")
    topic: str  # the pass type identifier, sent as apns-topic
    certificate: x509.Certificate | None = None  # certificate auth: Pass Type ID cert + key as TLS client cert
    private_key: PrivateKeyTypes | None = field(default=None, repr=False)
    token_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)  # token auth (ES256 .p8 key)
    key_id: str | None = None
    team_id: str | None = None
    ca_file: Path | None = None  # extra CA bundle trusted for base_url (tests, proxies); system CAs otherwise
    max_attempts: int = 5  # per token, for 429/5xx/network errors
    backoff: float = 0.5  # first retry delay (s), doubling, capped at backoff_max, with jitter; or Retry-After
    backoff_max: float = 30.0
    timeout: float = 10.0
    concurrency: int = 100  # max streams in flight at once on the connection


class ApnsClient:
    """Pushes pass updates over one long-lived HTTP/2 connection; ``push()`` is synchronous and thread-safe
    (calls from several threads take turns on the connection).

    ``close()`` waits for the request batch in flight, then closes the connection; a later ``push()`` opens a
    new one. ``clock`` (seconds since the epoch) exists for tests of the provider-token lifetime.
    """

    def __init__(self, config: ApnsConfig, *, clock: Callable[[], float] = time.time) -> None:
        _check_limits(config)
        self._config = config
        if config.certificate is not None and config.private_key is not None:
            self._mode = "certificate"
            ssl_context = _ssl_context(config, client_certificate=(config.certificate, config.private_key))
            self._provider_token: _ProviderToken | None = None
        elif config.token_key is not None and config.key_id and config.team_id:
            if not isinstance(config.token_key, ec.EllipticCurvePrivateKey) or not isinstance(
                config.token_key.curve, ec.SECP256R1
            ):
                raise ValueError("APNs token auth needs the EC P-256 (ES256) key from Apple's .p8 file")
            self._mode = "token"
            ssl_context = _ssl_context(config, client_certificate=None)
            self._provider_token = _ProviderToken(config.token_key, config.key_id, config.team_id, clock)
        else:
            raise ValueError(
                "APNs needs either certificate and private_key (certificate auth) or token_key, key_id and "
                "team_id (token auth)"
            )
        self._conn = Http2Connection(config.base_url.rstrip("/"), ssl_context, timeout=config.timeout,
                                     max_streams=config.concurrency)

    # ---------------------------------------------------------------------------- public API

    def push(self, tokens: Iterable[str]) -> list[PushResult]:
        """Send a pass-update push to every device token; results in input order. Blocks until every
        token has an outcome (at most about ``max_attempts`` × (``timeout`` + ``backoff_max``)).

        The tokens go out together; those that met a 429, a 5xx or a network error go again together after
        the longest back-off among them (or APNs's Retry-After), so a broken setup costs one connection
        attempt per round, never one per token."""
        tokens = list(tokens)
        results: list[PushResult | None] = [None] * len(tokens)
        attempts = [0] * len(tokens)
        fresh_token_tried = [False] * len(tokens)
        todo = []
        for i, token in enumerate(tokens):
            if _TOKEN.fullmatch(token):
                todo.append(i)
            else:
                results[i] = PushResult(token, PushOutcome.UNREGISTERED, None, "BadDeviceToken", 0)
        while todo:
            bearer = self._provider_token.current() if self._provider_token is not None else None
            replies = self._conn.exchange([self._request(tokens[i], bearer) for i in todo])
            again, delays = [], []
            for i, reply in zip(todo, replies, strict=True):
                attempts[i] += 1
                status, reason = reply.status, _reason(reply)
                retry_after = _retry_after(reply.headers.get("retry-after")) if status not in (None, 200) else None
                token = tokens[i]
                if status == 200:
                    results[i] = PushResult(token, PushOutcome.SENT, status, reason, attempts[i])
                elif status == 410 or (status == 400 and reason == "BadDeviceToken"):
                    results[i] = PushResult(token, PushOutcome.UNREGISTERED, status, reason, attempts[i])
                elif (status == 403 and reason == "ExpiredProviderToken" and self._provider_token is not None
                      and bearer is not None and not fresh_token_tried[i]
                      and self._provider_token.replace(bearer)):
                    fresh_token_tried[i] = True  # once, with the new token, whatever the attempts so far
                    again.append(i)
                    delays.append(0.0)
                elif status is not None and status not in _RETRY_STATUSES:
                    results[i] = PushResult(token, PushOutcome.REJECTED, status, reason, attempts[i])
                elif attempts[i] >= self._config.max_attempts:
                    results[i] = PushResult(token, PushOutcome.FAILED, status, reason, attempts[i])
                else:
                    again.append(i)
                    delays.append(self._delay(attempts[i], retry_after))
                    log.debug("APNs %s for %s…, retry %d", status or reason, token[:8], attempts[i])
            todo = again
            if todo and max(delays) > 0:
                time.sleep(max(delays))
        done = [r for r in results if r is not None]
        self._report(done)
        return done

    def close(self) -> None:
        """Let the request batch in flight finish, then close the connection."""
        self._conn.close()

    def __enter__(self) -> ApnsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- requests

    def _request(self, token: str, bearer: str | None) -> Request:
        headers = [("apns-topic", self._config.topic)]
        if bearer is not None:
            headers.append(("authorization", f"bearer {bearer}"))
        return Request("POST", "/3/device/" + token, headers, b"{}", unique_path=True)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter, or APNs's Retry-After; both capped at backoff_max, which bounds
        how long a push() call blocks."""
        cfg = self._config
        if retry_after is not None:
            return min(retry_after, cfg.backoff_max)
        ceiling = min(cfg.backoff_max, cfg.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    # ---------------------------------------------------------------------------- reporting

    def _report(self, results: list[PushResult]) -> None:
        """At most one ERROR (configuration) and one WARNING (APNs unreachable) line per push() call."""
        rejected = [r for r in results if r.outcome is PushOutcome.REJECTED]
        if rejected:
            (status, reason), _ = Counter((r.status, r.reason) for r in rejected).most_common(1)[0]
            log.error(
                "APNs refused the request: %s %s — %s (%d of %d tokens, e.g. %s…)",
                status, reason, self._hint(reason), len(rejected), len(results), rejected[0].token[:8],
            )
        failed = [r for r in results if r.outcome is PushOutcome.FAILED]
        if failed:
            last = failed[-1]
            log.warning(
                "APNs push failed for %d of %d tokens after %d attempts: %s",
                len(failed), len(results), last.attempts, " ".join(str(x) for x in (last.status, last.reason) if x),
            )

    def _hint(self, reason: str | None) -> str:
        if reason == "ExpiredProviderToken":
            return "check the system clock (the provider token's iat must be within the last hour)"
        if reason in _TOPIC_REASONS:
            return "check that TALLYPASS_APPLE_PASS_TYPE_ID is the pass type of the certificate or key"
        if self._mode == "token":
            return "check TALLYPASS_APNS_KEY_ID / TALLYPASS_APNS_AUTH_KEY / TALLYPASS_APPLE_TEAM_ID"
        return "check TALLYPASS_APPLE_PASS_CERT / APNS settings"


class _ProviderToken:
    """The ES256 JWT for token auth, shared by the threads that push."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str, clock: Callable[[], float]):
        self._key, self._key_id, self._team_id, self._clock = key, key_id, team_id, clock
        self._token = ""
        self._issued_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> str:
        with self._lock:
            now = self._clock()
            if not self._token or not 0 <= now - self._issued_at < _TOKEN_REUSE:
                self._issue(now)
            return self._token

    def replace(self, rejected: str) -> bool:
        """APNs called ``rejected`` expired: issue a new token unless one already replaced it or the current
        one is under 20 minutes old (then our clock is wrong, and refreshing would only earn a 429).
        True when a token other than ``rejected`` is now current."""
        with self._lock:
            now = self._clock()
            if rejected == self._token and now - self._issued_at >= _TOKEN_MIN_AGE:
                self._issue(now)
            return self._token != rejected

    def _issue(self, now: float) -> None:
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": int(now)}, self._key, algorithm="ES256", headers={"kid": self._key_id}
        )
        self._issued_at = now
        log.info("APNs provider token issued (key id %s)", self._key_id)


# -------------------------------------------------------------------------------- helpers


def _check_limits(config: ApnsConfig) -> None:
    if not config.base_url.startswith("https://"):
        raise ValueError(f"APNs base_url must be https://…, not {config.base_url!r}")
    if not config.topic:
        raise ValueError("APNs topic (the pass type identifier) must not be empty")
    if config.max_attempts < 1 or config.concurrency < 1:
        raise ValueError("max_attempts and concurrency must be at least 1")
    if config.backoff < 0 or config.backoff_max < 0 or config.timeout <= 0:
        raise ValueError("backoff and backoff_max must not be negative, timeout must be positive")


def _ssl_context(
    config: ApnsConfig, *, client_certificate: tuple[x509.Certificate, PrivateKeyTypes] | None
) -> ssl.SSLContext:
    ctx = client_context(config.ca_file)
    if client_certificate is not None:
        _load_client_certificate(ctx, *client_certificate)
    return ctx


def _load_client_certificate(ctx: ssl.SSLContext, certificate: x509.Certificate, key: PrivateKeyTypes) -> None:
    """``load_cert_chain`` only reads files: write a private (0600) PEM, load it and delete it at once. The
    key in it is encrypted with a one-time password, so it never rests on disk in clear either."""
    password = secrets.token_urlsafe(32).encode()
    pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    fd, path = tempfile.mkstemp(prefix="tallypass-apns-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        ctx.load_cert_chain(path, password=password)
    except ssl.SSLError as exc:
        raise ValueError(f"the APNs certificate and private key cannot be used together: {exc}") from exc
    finally:
        os.unlink(path)


def _reason(reply: Response) -> str | None:
    """APNs's JSON ``reason``, or the network error when there was no answer."""
    if reply.status is None:
        return reply.error
    if not reply.body:
        return None
    try:
        data = json.loads(reply.body)
    except ValueError:
        return None
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else None
