"""APNs client for Apple Wallet pass-update pushes (../shared/reference/apple_wallet.md §4).

A pass update is ``POST /3/device/<push token>`` with ``apns-topic: <pass type id>`` and the body ``{}``;
the phone then fetches the new pass from our PassKit web service. Apple asks for long-lived connections
carrying many concurrent streams ("APNs treats rapid connection and disconnection as a denial-of-service
attack"), so each ``ApnsClient`` keeps ONE HTTP/2 connection (httpx, pool limited to one connection) on a
private event loop in a daemon thread, and the synchronous ``push()`` hands it whole batches. The loop,
thread and connection are made on first use and made again in a forked child (Celery prefork workers
fork after import), which must never touch its parent's sockets.

Authentication, §4: the Pass Type ID certificate and key as TLS client certificate (Apple's documented
method), or an ES256 provider token (JWT) from a .p8 key of the team owning the pass type, reused for
50 minutes because APNs answers ``TooManyProviderTokenUpdates`` to tokens refreshed more often than every
20 minutes and rejects those older than an hour.

Outcomes: 200 sent; 410, or 400 ``BadDeviceToken``: the device is gone, delete the registration; 429, 5xx
and network errors: retried with exponential back-off and jitter (or ``Retry-After``); 403 and other 4xx:
configuration an operator must fix, logged once per call.

Stream concurrency is ``min(concurrency, 100, the server's SETTINGS_MAX_CONCURRENT_STREAMS)``: httpcore
1.0 advertises and enforces at most 100 concurrent streams of its own; ``concurrency`` bounds the
requests handed to httpx at once (and thus its queue).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from app.channels.http import reset_after_fork
from app.channels.http import retry_after as _retry_after

__all__ = ["ApnsClient", "ApnsConfig", "PushOutcome", "PushResult"]

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[0-9A-Fa-f]{1,200}")  # APNs device tokens are 64 hex digits today; leave room
_TOKEN_REUSE = 50 * 60.0  # seconds a provider token is reused (APNs refuses it after 60 minutes)
_TOKEN_MIN_AGE = 20 * 60.0  # never replaced sooner: APNs answers 429 TooManyProviderTokenUpdates
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_TOPIC_REASONS = frozenset({"DeviceTokenNotForTopic", "TopicDisallowed", "BadTopic", "MissingTopic"})

T = TypeVar("T")


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
    concurrency: int = 500  # max requests in flight at once on the connection


class ApnsClient:
    """Pushes pass updates over one long-lived HTTP/2 connection; ``push()`` is synchronous and thread-safe.

    ``close()`` waits for pushes in flight, then closes the connection; a later ``push()`` opens a new
    one. ``clock`` (seconds since the epoch) exists for tests of the provider-token lifetime.
    """

    def __init__(self, config: ApnsConfig, *, clock: Callable[[], float] = time.time) -> None:
        _check_limits(config)
        self._config = config
        self._url_prefix = config.base_url.rstrip("/") + "/3/device/"
        if config.certificate is not None and config.private_key is not None:
            self._mode = "certificate"
            self._ssl_context = _ssl_context(config, client_certificate=(config.certificate, config.private_key))
            self._provider_token: _ProviderToken | None = None
        elif config.token_key is not None and config.key_id and config.team_id:
            if not isinstance(config.token_key, ec.EllipticCurvePrivateKey) or not isinstance(
                config.token_key.curve, ec.SECP256R1
            ):
                raise ValueError("APNs token auth needs the EC P-256 (ES256) key from Apple's .p8 file")
            self._mode = "token"
            self._ssl_context = _ssl_context(config, client_certificate=None)
            self._provider_token = _ProviderToken(config.token_key, config.key_id, config.team_id, clock)
        else:
            raise ValueError(
                "APNs needs either certificate and private_key (certificate auth) or token_key, key_id and "
                "team_id (token auth)"
            )
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        reset_after_fork(self)

    # ---------------------------------------------------------------------------- public API

    def push(self, tokens: Iterable[str]) -> list[PushResult]:
        """Send a pass-update push to every device token; results in input order. Blocks until every
        token has an outcome (at most about ``max_attempts`` × (``timeout`` + ``backoff_max``))."""
        tokens = list(tokens)
        if not tokens:
            return []
        with self._lock:  # submitting under the lock: close() cannot stop the loop in between
            conn = self._connection()
            if threading.current_thread() is conn.thread:
                raise RuntimeError("ApnsClient.push() cannot be called from its own event loop")
            future = conn.submit(self._push_all(conn, tokens))
        results = future.result()
        self._report(results)
        return results

    def close(self) -> None:
        """Let pushes in flight finish, then close the connection and stop the loop thread."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None and conn.pid == os.getpid():
            conn.shutdown()

    def __enter__(self) -> ApnsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- connection lifecycle

    def _connection(self) -> _Connection:
        """This process's connection; call with ``self._lock`` held."""
        if self._conn is not None and self._conn.pid != os.getpid():
            self._forget_connection()
        if self._conn is None:
            self._conn = _Connection(self._config, self._ssl_context)
        return self._conn

    def _forget_connection(self) -> None:
        """In a forked child: the connection, loop and thread belong to the parent. Keep them referenced so
        that no finaliser closes (or warns about) sockets and the event loop the parent still uses."""
        if self._conn is not None:
            _ABANDONED.append(self._conn)
            self._conn = None

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at fork time
        self._forget_connection()

    # ---------------------------------------------------------------------------- on the loop

    async def _push_all(self, conn: _Connection, tokens: list[str]) -> list[PushResult]:
        return list(await asyncio.gather(*(self._push_one(conn, token) for token in tokens)))

    async def _push_one(self, conn: _Connection, token: str) -> PushResult:
        cfg = self._config
        if not _TOKEN.fullmatch(token):
            return PushResult(token, PushOutcome.UNREGISTERED, None, "BadDeviceToken", 0)
        attempts, fresh_token_tried = 0, False
        while True:
            attempts += 1
            reply = await self._send(conn, token)
            status, reason = reply.status, reply.reason
            if status == 200:
                return PushResult(token, PushOutcome.SENT, status, reason, attempts)
            if status == 410 or (status == 400 and reason == "BadDeviceToken"):
                return PushResult(token, PushOutcome.UNREGISTERED, status, reason, attempts)
            if (
                status == 403
                and reason == "ExpiredProviderToken"
                and self._provider_token is not None
                and reply.bearer is not None
                and not fresh_token_tried
            ):
                fresh_token_tried = True
                if self._provider_token.replace(reply.bearer):
                    continue  # once, with the new token, whatever the attempts so far
            if status is not None and status not in _RETRY_STATUSES:
                return PushResult(token, PushOutcome.REJECTED, status, reason, attempts)
            if attempts >= cfg.max_attempts:
                return PushResult(token, PushOutcome.FAILED, status, reason, attempts)
            delay = self._delay(attempts, reply.retry_after)
            log.debug("APNs %s for %s…, retry %d in %.2f s", status or reason, token[:8], attempts, delay)
            await asyncio.sleep(delay)

    async def _send(self, conn: _Connection, token: str) -> _Reply:
        """One request, except while the connection is unproven (new, or after a network error): then
        requests go one at a time, and those that waited on a request that failed share its error instead
        of each opening a connection of its own. A broken setup therefore costs one handshake per round,
        not one per token, and a new token-auth connection starts with one stream as APNs requires."""
        if not conn.healthy:
            failures_seen = conn.failures
            async with conn.probe:
                if conn.failures != failures_seen:
                    return _Reply(None, conn.last_error, None, None)
                if not conn.healthy:
                    return await self._request(conn, token)
        return await self._request(conn, token)

    async def _request(self, conn: _Connection, token: str) -> _Reply:
        headers = {"apns-topic": self._config.topic}
        bearer = None
        if self._provider_token is not None:
            bearer = self._provider_token.current()
            headers["authorization"] = f"bearer {bearer}"
        try:
            async with conn.streams:
                response = await conn.http.post(self._url_prefix + token, headers=headers, content=b"{}")
        except (httpx.TransportError, OSError) as exc:  # OSError: httpcore lets TLS alerts (ssl.SSLError) through
            conn.healthy = False
            conn.failures += 1
            conn.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return _Reply(None, conn.last_error, None, bearer)
        conn.healthy = True
        retry_after = _retry_after(response.headers.get("retry-after")) if response.status_code != 200 else None
        return _Reply(response.status_code, _reason(response), retry_after, bearer)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter (retries of many tokens spread out instead of arriving together),
        or APNs's Retry-After; both capped at backoff_max, which bounds how long a push() call blocks."""
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


class _Reply(NamedTuple):
    status: int | None  # None: network or protocol error
    reason: str | None
    retry_after: float | None
    bearer: str | None  # the provider token the request carried


class _Connection:
    """One process's event loop thread and the single-connection AsyncClient living on it."""

    def __init__(self, config: ApnsConfig, ssl_context: ssl.SSLContext) -> None:
        self.pid = os.getpid()
        self.http = httpx.AsyncClient(
            http1=False,  # APNs speaks HTTP/2 only; never fall back to one request at a time
            http2=True,
            verify=ssl_context,
            timeout=httpx.Timeout(config.timeout),
            # One connection for everything; kept open while idle, as Apple asks. A connection the
            # network dropped surfaces as an error on the next request and the retry opens a new one.
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=None),
        )
        self.streams = asyncio.Semaphore(config.concurrency)
        self.probe = asyncio.Lock()
        self.healthy = False
        self.failures = 0
        self.last_error = ""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="apns-client", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def shutdown(self) -> None:
        async def drain() -> None:
            others = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*others, return_exceptions=True)
            await self.http.aclose()

        try:
            self.submit(drain()).result()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()


class _ProviderToken:
    """The ES256 JWT for token auth, used only on the loop thread."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str, clock: Callable[[], float]):
        self._key, self._key_id, self._team_id, self._clock = key, key_id, team_id, clock
        self._token = ""
        self._issued_at = 0.0

    def current(self) -> str:
        now = self._clock()
        if not self._token or not 0 <= now - self._issued_at < _TOKEN_REUSE:
            self._issue(now)
        return self._token

    def replace(self, rejected: str) -> bool:
        """APNs called ``rejected`` expired: issue a new token unless one already replaced it or the current
        one is under 20 minutes old (then our clock is wrong, and refreshing would only earn a 429).
        True when a token other than ``rejected`` is now current."""
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
    ctx = ssl.create_default_context()  # system CAs, hostname check
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.ca_file is not None:
        ctx.load_verify_locations(cafile=str(config.ca_file))
    ctx.set_alpn_protocols(["h2"])
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


def _reason(response: httpx.Response) -> str | None:
    if not response.content:
        return None
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else None


class _MaskSecrets(logging.Filter):
    """httpx logs every request URL at INFO, and hpack every header at DEBUG: ours carry a device token in
    the path and, in token mode, the provider token. Neither is ever logged in full."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the handler's to report, never a reason to fail the request
            return True
        if "/3/device/" in message or "earer " in message:
            record.msg, record.args = _mask(message), ()
        return True


def _mask(text: str) -> str:
    text = _DEVICE_PATH.sub(lambda m: f"{m.group(1)}{m.group(2)}…", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}…", text)


_DEVICE_PATH = re.compile(r"(/3/device/)([0-9A-Za-z]{0,8})[^/?#\s'\"]*")
_BEARER = re.compile(r"(bearer )[\w.-]+", re.IGNORECASE)
for _name in ("httpx", "hpack.hpack", "hpack.table"):
    logging.getLogger(_name).addFilter(_MaskSecrets())

# What forked children inherited and must neither use nor close (see ApnsClient._forget_connection).
_ABANDONED: list[_Connection] = []
