"""A local stand-in for a web push service (RFC 8030), holding its subscriptions in memory.

It plays the browser's side too: ``new_subscription()`` makes what ``pushManager.subscribe()`` would (an
endpoint on this service, a fresh ECDH P-256 key pair whose public half is ``p256dh``, a 16-byte ``auth``
secret) and keeps the private key, so that it can decrypt what it receives. The application server is thus
tested against behaviour, not a mock:

- ``POST /push/<id>``, checked in this order: a scripted fault (``fail()``), an unknown id (404), an expired
  subscription (``expire()``: 410, as Mozilla and web.dev describe an unsubscribed endpoint); then VAPID
  (RFC 8292): ``Authorization: vapid t=<JWT>, k=<public key>``. A missing or unreadable header is 401 with
  ``WWW-Authenticate: vapid``; a JWT that does not verify with ``k`` (ES256), whose ``aud`` is not this
  service's origin, whose ``exp`` is past or more than 24 h ahead, or whose ``sub`` is neither ``mailto:``
  nor ``https:`` is 403 (§4.2 "MAY reject … with a 403"), as is a ``k`` other than the
  ``application_server_key`` a subscription was made with (§4.2 "MUST"). Like Apple's service, a ``sub`` of
  ``mailto:…@localhost`` is 403 ``BadJwtToken``.
- Then RFC 8030: ``TTL`` required (a whole number of seconds, else 400), ``Urgency`` one of the four values
  and ``Topic`` at most 32 base64url characters when present (else 400), a body of at most 4096 bytes
  (§7.2; else 413), ``Content-Encoding: aes128gcm`` on a non-empty body (else 400). The body is decrypted
  with http_ece (RFC 8291) with the subscription's private key and auth secret (a body that does not
  decrypt is 400), and answered 201 with a ``Location`` and the ``TTL`` kept (at most 28 days, as FCM).
- Delivery to the browser (RFC 8030 §5.2, §5.4): while the browser is online (the default) a message goes
  straight to ``received[id]``, what the browser got. ``go_offline()`` makes the service keep messages for
  it instead (``pending()``): one with ``TTL: 0`` is dropped (§5.2: only for a browser reachable at once),
  and one with a ``Topic`` replaces any message still pending for that subscription with the same topic
  (§5.4: "A push message with a topic replaces any outstanding push message with an identical topic";
  messages without a topic are never replaced; ``replaced`` counts). ``come_online()`` hands the pending
  messages whose TTL has not run out to the browser, oldest first.

Errors are JSON in Mozilla autopush's shape ``{"code", "errno", "error", "message"}`` (Apple's ``reason``
for the localhost subject). ``requests`` records every request with its status; ``clock`` moves time for
the ``exp`` checks.

Over real HTTP/1.1 on 127.0.0.1 with keep-alive, ``with FakePushService() as push:``, on the threaded
server of ``tests/fakes/live_http.py`` (its handler reads exactly the request body and keeps the
connection open); ``connections`` counts TCP connections accepted. Or in process through
``httpx.WSGITransport(app=push.wsgi_app)`` on ``http://localhost``.

Or, as FCM and Mozilla's service are reached, over HTTP/2 with TLS (ALPN ``h2``):
``FakePushService(http2=True)`` serves the same checks on ``tests/fakes/h2_server.py``'s server at
``https://127.0.0.1:<port>`` (``base_url``, the endpoints' origin and VAPID's ``aud``), whose certificate
clients trust through ``ca_file``; ``goaway_after(n)`` sends GOAWAY after the n-th answer from then on.
Requests skip WSGI there (werkzeug would cost more CPU than the h2 layer itself); recorded headers are the
same, pseudo-headers left out. A held request (``hold_after``) holds its whole connection.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hpack import NeverIndexedHeaderTuple
from werkzeug.wrappers import Request, Response

from tests.fakes.h2_server import H2Answer, H2Request, H2Server
from tests.fakes.live_http import LiveHttpFake

__all__ = ["FakePushService", "RecordedPush"]

log = logging.getLogger(__name__)

PUSH_PREFIX = "/push/"
MAX_BODY = 4096
MAX_TTL = 28 * 24 * 3600
VAPID_MAX_LIFETIME = 24 * 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})

_PATH = re.compile(r"/push/([A-Za-z0-9_-]+)")
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_TTL = re.compile(r"[0-9]{1,10}")
_ERRNO = {400: 110, 401: 109, 403: 109, 404: 102, 410: 106, 413: 104, 429: 999, 500: 999, 502: 999, 503: 201}


class RecordedPush(NamedTuple):
    method: str
    path: str
    status: int
    headers: dict[str, str]  # lower-case names


@dataclass
class _Subscription:
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth: bytes = field(repr=False)
    application_server_key: bytes | None  # the VAPID key the subscription is bound to, when one was given
    expired: bool = False
    online: bool = True  # the browser is reachable: messages are delivered at once
    pending: list[dict[str, Any]] = field(default_factory=list)  # kept for an offline browser, oldest first


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: str | None
    message: str | None


class _Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # spelt as HTTP/1.1 answers carry them; lower-cased for HTTP/2
    body: bytes


class _Refusal(Exception):
    def __init__(self, status: int, message: str, *, apple_reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.apple_reason = status, message, apple_reason


class FakePushService(LiveHttpFake):
    """A push service and the browsers subscribed to it (see the module docstring)."""

    LABEL = "fake push service"

    def __init__(self, *, clock: Callable[[], float] = time.time, http2: bool = False) -> None:
        self.clock = clock
        self.http2 = http2
        self.ca_file: Path | None = None  # with http2, the CA that issued the server's certificate
        self._h2: H2Server | None = None
        self.subscriptions: dict[str, _Subscription] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.replaced = 0  # pending messages replaced by a newer one with the same topic (RFC 8030 §5.4)
        self.requests: list[RecordedPush] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._hold_after: int | None = None
        self._gate = threading.Event()
        self.held = 0  # requests waiting at the gate
        # (token, key) → (JWT header, claims) of a signature already verified: a sender reuses its VAPID
        # token for hours, and a busy push service need not verify the same ECDSA signature on every
        # message. The claims (exp, sub) are still checked on every request.
        self._verified: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        self._init_live()

    # ---------------------------------------------------------------------------- public API

    @property
    def connections(self) -> int:
        """TCP connections accepted (with HTTP/2, those whose TLS handshake failed too)."""
        return self._h2.connections if self._h2 is not None else self._http1_connections

    @connections.setter
    def connections(self, value: int) -> None:
        self._http1_connections = value

    def start(self) -> None:
        if not self.http2:
            super().start()
            return
        self._h2 = H2Server(self._h2_answer, name="fake-push-h2", server_name="push service (fake)")
        self._h2.start()
        self.base_url, self.ca_file = self._h2.url, self._h2.ca_file

    def stop(self) -> None:
        if self._h2 is None:
            super().stop()
        else:
            self._h2.stop()

    def goaway_after(self, count: int) -> None:
        """HTTP/2 only: send GOAWAY on the connection that answers the ``count``-th request from now."""
        if self._h2 is None:
            raise RuntimeError("GOAWAY needs FakePushService(http2=True), started")
        self._h2.goaway_after(count)

    @property
    def origin(self) -> str:
        """The VAPID ``aud`` this service expects."""
        return self.base_url

    def new_subscription(self, *, application_server_key: str | None = None) -> dict[str, str]:
        """A browser subscribing: ``{"endpoint", "p256dh", "auth"}`` as ``PushSubscription.toJSON()`` gives them
        (keys flattened, base64url without padding). With ``application_server_key`` the subscription only
        accepts pushes signed by that VAPID key (403 otherwise)."""
        sub_id = secrets.token_urlsafe(24)
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        bound = _b64decode(application_server_key) if application_server_key is not None else None
        with self._lock:
            self.subscriptions[sub_id] = _Subscription(private_key, auth, bound)
            self.received[sub_id] = []
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint(sub_id), "p256dh": _b64url(point), "auth": _b64url(auth)}

    def endpoint(self, sub_id: str) -> str:
        return f"{self.base_url}{PUSH_PREFIX}{sub_id}"

    @staticmethod
    def id_of(endpoint_or_id: str) -> str:
        return endpoint_or_id.rsplit("/", 1)[-1]

    def expire(self, endpoint_or_id: str) -> None:
        """The user unsubscribed (or the subscription expired): 410 from now on."""
        with self._lock:
            self.subscriptions[self.id_of(endpoint_or_id)].expired = True

    def go_offline(self, endpoint_or_id: str) -> None:
        """The browser cannot be reached (a phone switched off): messages wait at the service."""
        with self._lock:
            self.subscriptions[self.id_of(endpoint_or_id)].online = False

    def come_online(self, endpoint_or_id: str) -> int:
        """The browser is back: the pending messages still within their TTL reach it, oldest first (the
        others are dropped). Returns how many it got."""
        sub_id = self.id_of(endpoint_or_id)
        with self._lock:
            subscription = self.subscriptions[sub_id]
            now = self.clock()
            due = [m for m in subscription.pending if m["accepted_at"] + m["ttl"] > now]
            subscription.pending, subscription.online = [], True
            self.received[sub_id].extend(due)
            return len(due)

    def pending(self, endpoint_or_id: str) -> list[dict[str, Any]]:
        """What the service keeps for an offline browser, oldest first."""
        with self._lock:
            return list(self.subscriptions[self.id_of(endpoint_or_id)].pending)

    def fail(
        self,
        endpoint_or_id: str,
        status: int,
        times: int = 1,
        *,
        retry_after: str | float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` pushes to this subscription with ``status`` (and ``Retry-After``), before any
        other check."""
        with self._lock:
            self._faults.setdefault(self.id_of(endpoint_or_id), []).append(
                _Fault(status, times, None if retry_after is None else str(retry_after), message)
            )

    def hold_after(self, count: int) -> None:
        """Once ``count`` messages have arrived in all, hold every further request until ``release()``:
        a sender is then caught halfway through a batch (``held`` says how many wait)."""
        with self._lock:
            self._hold_after = count
            self._gate.clear()

    def release(self) -> None:
        with self._lock:
            self._hold_after = None
        self._gate.set()

    def messages(self, endpoint_or_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received[self.id_of(endpoint_or_id)])

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    def wsgi_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.get_data()  # read whatever happens, so the kept-alive connection stays in step
        answer = self._respond(request.method, request.path, headers, body)
        response = Response(answer.body, status=answer.status, headers=answer.headers)
        return response(environ, start_response)

    # ---------------------------------------------------------------------------- one request

    def _h2_answer(self, request: H2Request) -> H2Answer:
        path = request.path.partition("?")[0]
        if "%" in path:
            path = unquote(path)
        headers = {name: value for name, value in request.headers.items() if name[0] != ":"}
        answer = self._respond(request.method, path, headers, request.body)
        # A Location is new every time: never indexed, it would only churn the HPACK table.
        out = [NeverIndexedHeaderTuple("location", value) if name == "Location" else (name.lower(), value)
               for name, value in answer.headers]
        if answer.body:
            out.append(("content-length", str(len(answer.body))))
        return H2Answer(answer.status, out, answer.body)

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        """Answers one request (headers with lower-case names) and records it."""
        answer = self._decide(method, path, headers, body)
        with self._lock:
            self.requests.append(RecordedPush(method, path, answer.status, headers))
        return answer

    def _decide(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        match = _PATH.fullmatch(path)
        if match is None:
            return _error(404, f"Not found: {path}")
        if method != "POST":
            return _error(405, "Method not allowed", ("Allow", "POST"))
        sub_id = match.group(1)
        with self._lock:
            holding = self._hold_after is not None and sum(map(len, self.received.values())) >= self._hold_after
            if holding:
                self.held += 1
        if holding:
            self._gate.wait(60)
        with self._lock:
            fault = self._take_fault(sub_id)
            subscription = self.subscriptions.get(sub_id)
        if fault is not None:
            extra = () if fault.retry_after is None else (("Retry-After", fault.retry_after),)
            return _error(fault.status, fault.message or HTTPStatus(fault.status).phrase, *extra)
        if subscription is None:
            return _error(404, "Subscription not found")
        if subscription.expired:
            return _error(410, "Push subscription is no longer available")
        try:
            claims = self._check_vapid(headers.get("authorization"), subscription)
            ttl, urgency, topic = _check_headers(headers)
            plaintext = _decrypt(headers, body, subscription)
        except _Refusal as refusal:
            if refusal.apple_reason is not None:
                return _json(refusal.status, {"reason": refusal.apple_reason})
            extra = (("WWW-Authenticate", "vapid"),) if refusal.status == 401 else ()
            return _error(refusal.status, refusal.message, *extra)
        message_id = uuid.uuid4().hex
        message = {"plaintext": plaintext, "ttl": ttl, "urgency": urgency, "topic": topic, "vapid": claims,
                   "headers": dict(headers), "id": message_id, "accepted_at": self.clock()}
        with self._lock:
            if subscription.online:
                self.received[sub_id].append(message)
            elif ttl > 0:  # §5.2: a TTL of 0 is for a browser reachable now; an offline one never gets it
                if topic is not None:  # §5.4: it replaces any outstanding message with an identical topic
                    kept = [m for m in subscription.pending if m["topic"] != topic]
                    self.replaced += len(subscription.pending) - len(kept)
                    subscription.pending = kept
                subscription.pending.append(message)
        location = f"{self.base_url}/message/{message_id}"
        return _Answer(201, [("Location", location), ("TTL", str(min(ttl, MAX_TTL)))], b"")

    def _take_fault(self, sub_id: str) -> _Fault | None:
        faults = self._faults.get(sub_id) or []
        if not faults:
            return None
        fault = faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.pop(0)
        return fault

    def _check_vapid(self, header: str | None, subscription: _Subscription) -> dict[str, Any]:
        """RFC 8292 §3: ``vapid t=<JWT>, k=<base64url public key>``; returns the verified claims."""
        if not header:
            raise _Refusal(401, "Missing Authorization header: this service requires VAPID")
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "vapid":
            raise _Refusal(401, f"Unsupported authorization scheme {scheme!r}: expected vapid")
        params: dict[str, str] = {}
        for part in rest.split(","):
            name, sep, value = part.strip().partition("=")
            if sep:
                params[name.strip().lower()] = value.strip().strip('"')
        if "t" not in params or "k" not in params:
            raise _Refusal(401, "The vapid authorization needs both t and k")
        verified = self._verified.get((params["t"], params["k"]))  # found: k was a valid key then, no need to parse it
        try:
            raw_key = _b64decode(params["k"])
            if verified is None:
                public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
        except ValueError:
            raise _Refusal(401, "k is not a base64url P-256 public key") from None
        if subscription.application_server_key is not None and raw_key != subscription.application_server_key:
            raise _Refusal(403, "The VAPID key does not match the one the subscription was made with")
        if verified is None:
            try:
                verified = (jwt.get_unverified_header(params["t"]), jwt.decode(
                    params["t"], public_key, algorithms=["ES256"], audience=self.origin,
                    options={"verify_exp": False, "require": ["aud", "exp", "sub"]},
                ))
            except jwt.InvalidTokenError as exc:
                raise _Refusal(403, f"Invalid VAPID token: {exc}") from None
            if len(self._verified) >= 64:
                self._verified.clear()
            self._verified[(params["t"], params["k"])] = verified
        header_fields, claims = verified
        if header_fields.get("typ", "JWT").upper() != "JWT":
            raise _Refusal(403, "The VAPID token's typ must be JWT")
        exp, now = claims["exp"], self.clock()
        if not isinstance(exp, int) or exp <= now:
            raise _Refusal(403, "The VAPID token has expired")
        if exp > now + VAPID_MAX_LIFETIME:
            raise _Refusal(403, "The VAPID token's exp is more than 24 hours ahead")
        sub = claims["sub"]
        if not isinstance(sub, str) or not (re.fullmatch(r"mailto:[^@\s]+@[^@\s]+", sub) or sub.startswith("https:")):
            raise _Refusal(403, "The VAPID sub must be a mailto: or https: URI")
        if sub.lower().endswith("@localhost"):
            raise _Refusal(403, "BadJwtToken", apple_reason="BadJwtToken")
        return claims


def _check_headers(headers: Mapping[str, str]) -> tuple[int, str, str | None]:
    ttl_header = headers.get("ttl")
    if ttl_header is None:
        raise _Refusal(400, "Missing TTL header")
    if not _TTL.fullmatch(ttl_header.strip()):
        raise _Refusal(400, f"Invalid TTL header {ttl_header!r}")
    urgency = headers.get("urgency", "normal")
    if urgency not in URGENCIES:
        raise _Refusal(400, f"Invalid Urgency header {urgency!r}")
    topic = headers.get("topic")
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise _Refusal(400, f"Invalid Topic header {topic!r}")
    return int(ttl_header), urgency, topic


def _decrypt(headers: Mapping[str, str], body: bytes, subscription: _Subscription) -> bytes:
    if len(body) > MAX_BODY:
        raise _Refusal(413, f"Message body too large ({len(body)} bytes, at most {MAX_BODY})")
    if not body:
        return b""
    encoding = headers.get("content-encoding", "")
    if encoding.lower() != "aes128gcm":
        raise _Refusal(400, f"Unsupported Content-Encoding {encoding!r}: expected aes128gcm")
    try:
        return bytes(http_ece.decrypt(
            body, private_key=subscription.private_key, auth_secret=subscription.auth, version="aes128gcm"
        ))
    except (http_ece.ECEException, ValueError, TypeError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise _Refusal(400, f"The body does not decrypt: {message}") from None


def _error(status: int, message: str, *extra_headers: tuple[str, str]) -> _Answer:
    return _json(status, {"code": status, "errno": _ERRNO.get(status, 999), "error": HTTPStatus(status).phrase,
                          "message": message}, *extra_headers)


def _json(status: int, data: dict[str, Any], *extra_headers: tuple[str, str]) -> _Answer:
    return _Answer(status, [("Content-Type", "application/json"), *extra_headers], json.dumps(data).encode())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(value: str) -> bytes:
    value = value.strip().rstrip("=")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
