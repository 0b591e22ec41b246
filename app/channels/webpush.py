"""Web push: RFC 8030 delivery, RFC 8291 ``aes128gcm`` message encryption and RFC 8292 VAPID
(../shared/reference/loyalty_platforms.md §5.1).

A message is ``POST <subscription endpoint>`` with the encrypted body, ``Content-Encoding: aes128gcm``,
``TTL`` (always: without it a push service may drop the message while the browser is offline), ``Urgency``,
an optional ``Topic`` (a newer message with the same topic replaces one not yet delivered) and
``Authorization: vapid t=<JWT>, k=<our public key>``.

pywebpush does the cryptography, and only that: ``pywebpush.WebPusher(...).encode()`` encrypts the payload
for the subscription's ``p256dh`` key and ``auth`` secret (RFC 8291), and ``py_vapid.Vapid02.sign()`` makes
the VAPID header (an ES256 JWT ``{aud: the endpoint's origin, exp, sub}``). The HTTP is ours. An https push
service is asked for HTTP/2 first (FCM, Mozilla and Apple speak it): one connection per service through
``app.channels.http2``, the small client on ``h2`` that also carries APNs pushes, and a batch goes out as
concurrent streams. A service that answers ALPN with HTTP/1.1 only, and plain-http endpoints (local test
services), get one shared ``httpx.Client`` with kept-alive connections, a batch on ``HTTP1_THREADS``
threads. A forked child (Celery prefork) makes its own connections and never touches its parent's.

One VAPID header per push-service origin is signed with ``exp`` 12 hours ahead (RFC 8292 allows at most
24 h; 12 leaves room for a clock that runs fast) and reused until an hour before it expires.

Outcomes: 2xx (201, or 202 for a receipt) ``sent``; 404/410 ``gone``: the subscription expired or the user
unsubscribed, the caller deletes it; 429, 5xx and network errors are retried ``max_attempts`` times with
exponential back-off and jitter, or after ``Retry-After`` (when that is longer than ``backoff_max`` the push
stops at once: a sooner retry would be refused again), then ``failed``; other 4xx are ``rejected``, logged
at ERROR: 400 is a bug in the request, 401/403 a VAPID problem (a subscription is bound to the VAPID key it
was made with; Apple also refuses a ``sub`` of ``mailto:…@localhost``), 413 a payload too large. A 401/403
met with a reused VAPID header is repeated once with a freshly signed one. Payloads whose encrypted body
exceeds 4096 bytes (3993 bytes of plaintext, RFC 8291 §4) are refused without a request.

A network error after the request was sent is retried like the others, so a message can arrive twice;
give notifications a ``tag`` (the browser then replaces instead of stacking them).

Logs never hold the VAPID key, the subscription keys or a whole endpoint (a capability URL): endpoints
appear as ``origin/…<last 6 characters>``, also in httpx's request lines while a push is being sent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple
from urllib.parse import SplitResult, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException

from app.channels.dev_credentials import VAPID_PRIVATE_KEY
from app.channels.http import reset_after_fork
from app.channels.http import retry_after as _retry_after
from app.channels.http2 import Http2Connection, NotHttp2, Request, client_context

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = [
    "MAX_BODY",
    "MAX_PLAINTEXT",
    "REASON_BAD_ENDPOINT",
    "REASON_BAD_KEYS",
    "REASON_TOO_LARGE",
    "URGENCIES",
    "PushOutcome",
    "PushResult",
    "SubscriptionInfo",
    "Urgency",
    "VapidKey",
    "WebPushConfig",
    "WebPusher",
    "build_web_pusher",
    "mask_endpoint",
]

log = logging.getLogger(__name__)

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES: frozenset[str] = frozenset({"very-low", "low", "normal", "high"})  # RFC 8030 §5.3
MAX_BODY = 4096  # RFC 8030 §7.2: push services must accept encrypted bodies up to 4096 bytes
MAX_PLAINTEXT = 3993  # 4096 - 86 (aes128gcm header with the 65-byte key) - 16 (tag) - 1 (delimiter)
MAX_TTL = 2_419_200  # 28 days: FCM's ceiling; services keep a message at most this long anyway
REASON_TOO_LARGE = "payload too large"
REASON_BAD_KEYS = "invalid subscription keys"
REASON_BAD_ENDPOINT = "invalid endpoint"

_CONTENT_ENCODING = "aes128gcm"
_VAPID_LIFETIME = 12 * 3600  # exp - now of a VAPID JWT; RFC 8292 §2: at most 24 h
_VAPID_MARGIN = 3600  # a cached header is replaced this long before its exp
_VAPID_CACHE_SIZE = 256  # origins; push services are a handful, the bound only guards against odd endpoints
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4: at most 32 base64url characters
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_GONE_STATUSES = frozenset({404, 410})
_DEFAULT_PORTS = {"https": 443, "http": 80}
H2_STREAMS = 100  # concurrent streams per HTTP/2 connection to a push service
H2_ORIGINS = 32  # HTTP/2 connections kept open (push services are a handful: FCM, Mozilla, Apple, Microsoft)
HTTP1_THREADS = 16  # requests at once to a push service that speaks HTTP/1.1 only


class PushOutcome(StrEnum):
    SENT = "sent"  # 2xx (201 Created, 202 Accepted)
    GONE = "gone"  # 404 / 410: the subscription no longer exists; the caller deletes it
    FAILED = "failed"  # 429 / 5xx / network error still failing after the retries
    REJECTED = "rejected"  # other 4xx, or refused locally: a bug, a payload too large or a VAPID problem


@dataclass(frozen=True)
class PushResult:
    outcome: PushOutcome
    status: int | None  # last HTTP status; None when refused locally or on a network error
    reason: str | None  # the push service's reason, REASON_* when refused locally, or the network error
    attempts: int  # requests made (0 when refused locally)
    retry_after: float | None = None  # seconds the service asked to wait, when longer than backoff_max


@dataclass(frozen=True)
class SubscriptionInfo:
    """What the browser's ``PushSubscription.toJSON()`` holds: the endpoint and its two keys (base64url)."""

    endpoint: str
    p256dh: str = field(repr=False)  # the browser's ECDH public key (65-byte uncompressed P-256 point)
    auth: str = field(repr=False)  # the 16-byte authentication secret

    def __repr__(self) -> str:
        return f"SubscriptionInfo(endpoint={mask_endpoint(self.endpoint)!r})"


# -------------------------------------------------------------------------------- VAPID key


class VapidKey:
    """The application server's EC P-256 key. ``application_server_key`` is what the page passes to
    ``pushManager.subscribe({applicationServerKey})``: the public point, uncompressed, base64url without
    padding. The private key never appears in ``repr`` or in an exception."""

    __slots__ = ("_private_key", "_signer", "application_server_key")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError("a VAPID key must be an EC P-256 (prime256v1) private key")
        self._private_key = private_key
        # Our own checks of "sub" (WebPushConfig) replace py_vapid's, which refuses https: subjects with a path.
        self._signer = Vapid02(private_key, conf={"no-strict": True})
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.application_server_key = _b64url(point)

    @classmethod
    def from_file(cls, path: str | Path) -> VapidKey:
        """A PEM (PKCS#8 ``PRIVATE KEY`` as ``dev-certs`` writes, or SEC1 ``EC PRIVATE KEY``) or DER file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the VAPID private key: {exc.strerror}") from None
        try:
            return cls.from_bytes(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> VapidKey:
        try:
            if b"-----BEGIN" in data:
                key = serialization.load_pem_private_key(data, password=None)
            else:
                key = serialization.load_der_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ValueError("not an unencrypted PEM or DER private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"the VAPID key must be an EC P-256 key, not {type(key).__name__}")
        return cls(key)

    @classmethod
    def generate(cls) -> VapidKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def authorization(self, *, aud: str, exp: int, sub: str) -> str:
        """``vapid t=<ES256 JWT>,k=<application_server_key>`` (RFC 8292 §3), signed by py_vapid.

        :raise ValueError: ``aud`` is not an origin py_vapid accepts."""
        try:
            return self._signer.sign({"aud": aud, "exp": exp, "sub": sub})["Authorization"]
        except VapidException as exc:
            raise ValueError(f"cannot sign a VAPID token for {aud!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"VapidKey(application_server_key={self.application_server_key!r})"


# -------------------------------------------------------------------------------- the pusher


@dataclass(frozen=True)
class WebPushConfig:
    vapid_key: VapidKey
    subject: str  # the JWT's "sub": "mailto:ops@example.org" or "https://example.org/contact" (TALLYPASS_VAPID_SUBJECT)
    ttl: int = 86400  # default TTL header (seconds a push service keeps an undelivered message)
    timeout: float = 10.0
    max_attempts: int = 4  # for 429 / 5xx / network errors
    backoff: float = 0.5  # first retry delay (s), doubling, capped at backoff_max, with jitter; or Retry-After
    backoff_max: float = 8.0
    ca_file: Path | None = None  # extra CA bundle for the push services' TLS (tests); system CAs otherwise


class _Answer(NamedTuple):
    """One attempt's answer, over either HTTP version."""

    status: int | None  # None: no answer (network or protocol error)
    headers: Mapping[str, str] = {}  # lower-case names
    body: bytes = b""
    error: str = ""  # why there is no answer


@dataclass(eq=False)
class _Message:
    """One message on its way: encrypted once, sent as many times as the retries need."""

    index: int
    endpoint: str
    masked: str
    parts: SplitResult
    origin: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    vapid: _VapidHeader | None = None  # the header this attempt carried
    fresh: bool = False  # signed for this attempt (a 401/403 then is not a stale token)
    resigned: bool = False
    refusal: str = ""  # why no VAPID header could be signed


class _VapidHeader(NamedTuple):
    value: str
    exp: int


class WebPusher:
    """Sends web push messages; ``send()`` is synchronous and thread-safe. ``http`` lets tests pass their own
    ``httpx.Client`` (then not closed here); ``clock`` (seconds since the epoch) exists for tests of the VAPID
    token's lifetime."""

    def __init__(
        self,
        config: WebPushConfig,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_config(config)
        self._config = config
        self._clock = clock
        self._owns_http = http is None
        self._http = http if http is not None else _new_http(config)
        self._vapid: dict[str, _VapidHeader] = {}
        self._vapid_lock = threading.Lock()
        self._h2: dict[str, Http2Connection] = {}  # origin → connection (each handles a fork itself)
        self._h2_lock = threading.Lock()
        self._http1_origins: set[str] = set()  # https origins that refused HTTP/2 in ALPN
        reset_after_fork(self)

    @property
    def config(self) -> WebPushConfig:
        return self._config

    @property
    def application_server_key(self) -> str:
        """For the page's ``pushManager.subscribe({applicationServerKey})``."""
        return self._config.vapid_key.application_server_key

    # ---------------------------------------------------------------------------- public API

    def send(
        self,
        subscription: SubscriptionInfo,
        payload: dict | bytes,
        *,
        ttl: int | None = None,
        urgency: Urgency = "normal",
        topic: str | None = None,
    ) -> PushResult:
        """Encrypt ``payload`` (a dict is sent as compact UTF-8 JSON) for ``subscription`` and deliver it.
        Blocks through the retries: at most about ``max_attempts`` × (``timeout`` + ``backoff_max``).

        :raise ValueError: ``ttl``, ``urgency`` or ``topic`` is not allowed by RFC 8030 (a caller's bug).
        """
        return self.send_many([(subscription, payload)], ttl=ttl, urgency=urgency, topic=topic)[0]

    def send_many(
        self,
        messages: Sequence[tuple[SubscriptionInfo, dict | bytes]],
        *,
        ttl: int | None = None,
        urgency: Urgency = "normal",
        topic: str | None = None,
        topics: Sequence[str | None] | None = None,
    ) -> list[PushResult]:
        """``send`` for many messages at once; one result per message, in order. The messages for one push
        service go out together: as concurrent streams on one HTTP/2 connection where the service speaks it
        (FCM, Mozilla and Apple do), else on ``HTTP1_THREADS`` kept-alive HTTP/1.1 connections. Those that
        met a 429, a 5xx or a network error go again together after the longest back-off among them.
        ``topics``, one per message, gives each its own ``Topic`` instead of ``topic`` for all."""
        cfg = self._config
        ttl = cfg.ttl if ttl is None else ttl
        if topics is not None and len(topics) != len(messages):
            raise ValueError(f"{len(topics)} topics for {len(messages)} messages")
        each = list(topics) if topics is not None else [topic] * len(messages)
        for one in {*each, topic}:
            _check_options(ttl, urgency, one)
        results: list[PushResult | None] = [None] * len(messages)
        pending: list[_Message] = []
        for index, (subscription, payload) in enumerate(messages):
            prepared = self._prepare(index, subscription, payload, ttl, urgency, each[index])
            if isinstance(prepared, PushResult):
                results[index] = prepared
            else:
                pending.append(prepared)
        while pending:
            again, delays = [], []
            for message, answer in self._transmit(pending):
                verdict = self._judge(message, answer)
                if isinstance(verdict, PushResult):
                    results[message.index] = verdict
                else:
                    again.append(message)
                    delays.append(verdict)
            pending = again
            if pending and max(delays) > 0:
                time.sleep(max(delays))
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Close the HTTP/2 connections, and the HTTP/1.1 ones of an ``httpx.Client`` this pusher made."""
        with self._h2_lock:
            connections, self._h2 = list(self._h2.values()), {}
        for conn in connections:
            conn.close()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WebPusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- internals

    def _prepare(self, index: int, subscription: SubscriptionInfo, payload: dict | bytes, ttl: int,
                 urgency: str, topic: str | None) -> _Message | PushResult:
        data = _serialise(payload)
        masked = mask_endpoint(subscription.endpoint)
        parts = _split(subscription.endpoint)
        if parts is None:
            return self._refused(masked, REASON_BAD_ENDPOINT)
        try:
            body = _encrypt(subscription, data) if data else b""
        except ValueError:
            return self._refused(masked, REASON_BAD_KEYS)
        if len(body) > MAX_BODY:
            return self._refused(masked, REASON_TOO_LARGE, f"{len(data)} bytes of payload, at most {MAX_PLAINTEXT}")
        headers = {"ttl": str(ttl), "urgency": urgency}
        if topic is not None:
            headers["topic"] = topic
        if body:
            headers["content-encoding"] = _CONTENT_ENCODING
            headers["content-type"] = "application/octet-stream"
        return _Message(index, subscription.endpoint, masked, parts, _origin(parts), body, headers)

    def _transmit(self, messages: list[_Message]) -> Iterator[tuple[_Message, _Answer]]:
        """One attempt for each message, grouped by push service; each with the VAPID header it carried."""
        by_origin: dict[str, list[_Message]] = {}
        for message in messages:
            by_origin.setdefault(message.origin, []).append(message)
        for origin, group in by_origin.items():
            try:
                vapid, fresh = self._vapid_header(origin)
            except ValueError as exc:
                for message in group:
                    message.vapid, message.refusal = None, str(exc)
                    yield message, _Answer(None, error=REASON_BAD_ENDPOINT)
                continue
            for message in group:
                message.vapid, message.fresh = vapid, fresh
            answers = None
            if group[0].parts.scheme == "https" and origin not in self._http1_origins:
                answers = self._over_http2(origin, group, vapid.value)
            if answers is None:
                answers = self._over_http1(group, vapid.value)
            yield from zip(group, answers, strict=True)

    def _over_http2(self, origin: str, group: list[_Message], authorization: str) -> list[_Answer] | None:
        """The group as concurrent streams on the origin's HTTP/2 connection; None if it speaks HTTP/1.1 only."""
        stale = None
        with self._h2_lock:
            conn = self._h2.get(origin)
            if conn is None:
                if len(self._h2) >= H2_ORIGINS:  # odd endpoints must not hold connections open without end
                    stale = self._h2.pop(next(iter(self._h2)))
                conn = self._h2[origin] = Http2Connection(origin, client_context(self._config.ca_file),
                                                          timeout=self._config.timeout, max_streams=H2_STREAMS)
        if stale is not None:
            stale.close()  # waits for a batch another thread may still be sending on it
        requests = []
        for m in group:
            path = m.parts.path or "/"
            if m.parts.query:
                path += "?" + m.parts.query
            requests.append(Request("POST", path, [*m.headers.items(), ("authorization", authorization)], m.body,
                                    unique_path=True))
        try:
            responses = conn.exchange(requests)
        except NotHttp2:
            log.info("web push: %s speaks HTTP/1.1 only", origin)
            with self._h2_lock:
                self._http1_origins.add(origin)
                self._h2.pop(origin, None)
            return None
        return [_Answer(r.status, r.headers, r.body, r.error or "") for r in responses]

    def _over_http1(self, group: list[_Message], authorization: str) -> list[_Answer]:
        def post(m: _Message) -> _Answer:
            return self._post(m.endpoint, m.body, {**m.headers, "authorization": authorization})

        if len(group) == 1:
            return [post(group[0])]
        with ThreadPoolExecutor(max_workers=min(HTTP1_THREADS, len(group)), thread_name_prefix="webpush") as pool:
            return list(pool.map(post, group))

    def _post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> _Answer:
        _SENDING.active = True  # httpx's request line carries the endpoint: _MaskEndpoints shortens it
        try:
            response = self._http.post(endpoint, content=body, headers=headers)
        except (httpx.TransportError, OSError) as exc:  # OSError: a TLS alert httpcore did not map
            return _Answer(None, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            _SENDING.active = False
        return _Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)

    def _judge(self, message: _Message, answer: _Answer) -> PushResult | float:
        """The outcome of one attempt, or the delay before the next."""
        cfg, masked = self._config, message.masked
        if message.vapid is None:
            return self._refused(masked, REASON_BAD_ENDPOINT, message.refusal)
        message.attempts += 1
        status = answer.status
        if status is not None and 200 <= status < 300:
            log.debug("web push to %s: %d after %d attempt(s)", masked, status, message.attempts)
            return PushResult(PushOutcome.SENT, status, None, message.attempts)
        reason = _reason(answer) if status is not None else answer.error
        if status in _GONE_STATUSES:
            log.info("web push subscription %s is gone (%d)", masked, status)
            return PushResult(PushOutcome.GONE, status, reason, message.attempts)
        if status in (401, 403) and not message.fresh and not message.resigned:
            message.resigned = True
            message.attempts -= 1  # the repeat with a new token is not one of the back-off attempts
            self._forget_vapid(message.origin, message.vapid)
            log.info("web push to %s: %d with a reused VAPID token, repeating once with a new one", masked, status)
            return 0.0
        if status is not None and status not in _RETRY_STATUSES:
            if status == 413:
                reason = REASON_TOO_LARGE
            log.error("web push to %s refused: %d %s — %s", masked, status, reason or "", _hint(status))
            return PushResult(PushOutcome.REJECTED, status, reason, message.attempts)
        retry_after = _retry_after(answer.headers.get("retry-after")) if status is not None else None
        detail = f"{status} {reason or ''}".rstrip() if status is not None else reason
        if message.attempts >= cfg.max_attempts or (retry_after is not None and retry_after > cfg.backoff_max):
            tail = f"; the service asked to retry after {retry_after:.0f} s" if retry_after is not None else ""
            log.warning("web push to %s failed after %d attempt(s): %s%s", masked, message.attempts, detail, tail)
            long_wait = retry_after if retry_after is not None and retry_after > cfg.backoff_max else None
            return PushResult(PushOutcome.FAILED, status, reason, message.attempts, long_wait)
        delay = self._delay(message.attempts, retry_after)
        log.warning("web push to %s: %s, retry %d of %d in %.2f s", masked, detail, message.attempts,
                    cfg.max_attempts - 1, delay)
        return delay

    def _vapid_header(self, origin: str) -> tuple[_VapidHeader, bool]:
        """The VAPID header for ``origin``, signed anew when there is none or it expires within the hour.
        Returns (header, whether it was signed for this call)."""
        now = int(self._clock())
        with self._vapid_lock:
            cached = self._vapid.get(origin)
            if cached is not None and now < cached.exp - _VAPID_MARGIN:
                return cached, False
            exp = now + _VAPID_LIFETIME
            header = _VapidHeader(
                self._config.vapid_key.authorization(aud=origin, exp=exp, sub=self._config.subject), exp
            )
            if len(self._vapid) >= _VAPID_CACHE_SIZE:
                for stale in [o for o, h in self._vapid.items() if now >= h.exp - _VAPID_MARGIN]:
                    del self._vapid[stale]
                while len(self._vapid) >= _VAPID_CACHE_SIZE:
                    del self._vapid[next(iter(self._vapid))]
            self._vapid[origin] = header
            return header, True

    def _forget_vapid(self, origin: str, rejected: _VapidHeader) -> None:
        """Drop ``rejected`` unless another thread already replaced it."""
        with self._vapid_lock:
            if self._vapid.get(origin) == rejected:
                del self._vapid[origin]

    def _refused(self, masked: str, reason: str, detail: str = "") -> PushResult:
        log.error("web push to %s refused before sending: %s%s", masked, reason, f" ({detail})" if detail else "")
        return PushResult(PushOutcome.REJECTED, None, reason, 0)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter, or the service's Retry-After (already at most backoff_max)."""
        cfg = self._config
        if retry_after is not None:
            return retry_after
        ceiling = min(cfg.backoff_max, cfg.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _after_fork_in_child(self) -> None:
        """Celery prefork: the child must not use (nor close) the parent's connections."""
        self._vapid_lock = threading.Lock()  # another thread may have held it at fork time
        self._h2_lock = threading.Lock()
        if self._owns_http:
            _ABANDONED.append(self._http)
            self._http = _new_http(self._config)


def build_web_pusher(settings: Settings) -> WebPusher | None:
    """The deployment's pusher, or None without a VAPID key file (then messages go to the channel outbox).

    :raise ValueError: the key file or the subject is configured but unusable; the message says which."""
    path = settings.credential_file(settings.vapid_private_key, VAPID_PRIVATE_KEY)
    if path is None:
        return None
    key = VapidKey.from_file(path)
    subject = settings.vapid_subject
    try:
        config = WebPushConfig(vapid_key=key, subject=subject)
        _check_config(config)
    except ValueError as exc:
        raise ValueError(f"TALLYPASS_VAPID_SUBJECT: {exc}") from None
    if subject.lower().startswith("mailto:") and subject.lower().rstrip(">").endswith(("@localhost", ".local")):
        log.warning("TALLYPASS_VAPID_SUBJECT is %s: Apple's push service refuses it (403 BadJwtToken); set a "
                    "real mailto: address or https: URL", subject)
    return WebPusher(config)


# -------------------------------------------------------------------------------- helpers


def mask_endpoint(endpoint: str) -> str:
    """``https://fcm.googleapis.com/…Xy12z9``: the origin and the last 6 characters, for logs and the outbox."""
    parts = _split(endpoint, any_scheme=True)
    origin = _origin(parts) if parts is not None else "?"
    return f"{origin}/…{endpoint[-6:]}" if len(endpoint) > len(origin) + 12 else f"{origin}/…"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _split(endpoint: str, *, any_scheme: bool = False) -> SplitResult | None:
    if not isinstance(endpoint, str):
        return None
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None
    if (not any_scheme and parts.scheme not in ("https", "http")) or not parts.hostname:
        return None
    return parts


def _origin(parts: SplitResult) -> str:
    """RFC 6454 serialisation: scheme://host[:port], the port only when not the scheme's default."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def _serialise(payload: dict | bytes) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, dict):
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raise TypeError(f"a web push payload is a dict or bytes, not {type(payload).__name__}")


def _encrypt(subscription: SubscriptionInfo, data: bytes) -> bytes:
    """The aes128gcm body (RFC 8291) made by pywebpush. :raise ValueError: unusable subscription keys."""
    # pywebpush imports aiohttp and requests (a tenth of a second): loaded with the first push, not the module.
    from pywebpush import WebPusher as Encryptor
    from pywebpush import WebPushException

    try:
        p256dh = _b64decode(subscription.p256dh)
        auth = _b64decode(subscription.auth)
        if len(p256dh) != 65 or p256dh[0] != 4 or len(auth) != 16:
            raise ValueError("wrong key length")
        info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
        return bytes(Encryptor(info).encode(data, content_encoding=_CONTENT_ENCODING)["body"])
    except (WebPushException, ValueError, TypeError, binascii.Error):
        raise ValueError(REASON_BAD_KEYS) from None


def _b64decode(value: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", value):
        raise ValueError("not base64url")
    value = value.rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _check_options(ttl: int, urgency: str, topic: str | None) -> None:
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl must be whole seconds from 0 to {MAX_TTL}, not {ttl!r}")
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {sorted(URGENCIES)}, not {urgency!r}")
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise ValueError(f"topic must be 1 to 32 base64url characters (RFC 8030 §5.4), not {topic!r}")


def _check_config(config: WebPushConfig) -> None:
    if not isinstance(config.vapid_key, VapidKey):
        raise ValueError("WebPushConfig.vapid_key must be a VapidKey (VapidKey.from_file)")
    subject = config.subject
    if subject.startswith("mailto:"):
        if not re.fullmatch(r"mailto:[^@\s]+@[^@\s]+", subject):
            raise ValueError(f"the VAPID subject {subject!r} must be mailto:<address> or an https: URL")
    else:
        parts = urlsplit(subject)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the VAPID subject {subject!r} must be mailto:<address> or an https: URL (RFC 8292 §2.1)")
    _check_options(config.ttl, "normal", None)
    if config.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if config.backoff < 0 or config.backoff_max < 0 or config.timeout <= 0:
        raise ValueError("backoff and backoff_max must not be negative, timeout must be positive")


def _new_http(config: WebPushConfig) -> httpx.Client:
    # HTTP/2 to FCM, Mozilla and Apple multiplexes every thread's pushes on one connection per service.
    return httpx.Client(
        http2=True,
        timeout=httpx.Timeout(config.timeout),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32, keepalive_expiry=60.0),
    )


def _reason(answer: _Answer) -> str | None:
    """The reason in a push service's JSON error (Apple ``reason``, Mozilla ``message``/``error``), else the
    status phrase. Other bodies are not read: they could echo the request."""
    text = None
    if answer.body and "json" in answer.headers.get("content-type", ""):
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            text = next((data[k] for k in ("reason", "message", "error") if isinstance(data.get(k), str)), None)
    if not text and answer.status is not None:
        with contextlib.suppress(ValueError):
            text = HTTPStatus(answer.status).phrase
    return text[:200] if text else None


def _hint(status: int) -> str:
    if status in (401, 403):
        return ("check TALLYPASS_VAPID_PRIVATE_KEY (a subscription works only with the key it was made with) and "
                "TALLYPASS_VAPID_SUBJECT (a real mailto: address or https: URL), and the system clock")
    if status == 413:
        return f"the message must stay under {MAX_PLAINTEXT} bytes"
    return "the push service found the request malformed"


# -------------------------------------------------------------------------------- log masking

_SENDING = threading.local()  # True on a thread while it waits for a push request
_URL = re.compile(r"https?://[^\s'\"<>]+")


class _MaskEndpoints(logging.Filter):
    """httpx logs every request URL at INFO, here a subscription's endpoint: records made while a push is in
    flight on this thread show it masked. (hpack's header logs are hidden for every client by
    ``app.channels.http``.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_SENDING, "active", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the handler's to report, never a reason to fail the push
            return True
        record.msg, record.args = _URL.sub(lambda m: mask_endpoint(m.group(0)), message), ()
        return True


logging.getLogger("httpx").addFilter(_MaskEndpoints())

# What forked children inherited and must neither use nor close.
_ABANDONED: list[httpx.Client] = []
