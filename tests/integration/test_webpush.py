"""Web push against the local push service (tests/fakes/push_service.py), which checks VAPID (RFC 8292) and
decrypts every message with http_ece (RFC 8291): the channel (encryption, headers, the VAPID token and its
reuse, retries and outcomes, log masking) and the domain services (subscriptions, notify_customer, the
purchase message) (../shared/reference/loyalty_platforms.md §5.1)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels import webpush as webpush_channel
from app.channels.webpush import (
    MAX_PLAINTEXT,
    REASON_BAD_KEYS,
    REASON_TOO_LARGE,
    PushOutcome,
    SubscriptionInfo,
    VapidKey,
    WebPushConfig,
    WebPusher,
    build_web_pusher,
    mask_endpoint,
)
from app.errors import Conflict, InvalidInput
from app.messaging import webpush
from app.models import ChannelMessage, WebPushSubscription
from app.settings import Settings
from tests.fakes.push_service import FakePushService

SUBJECT = "mailto:ops@tallypass.example"
FAST = {"backoff": 0.005, "backoff_max": 0.05, "max_attempts": 4, "timeout": 5.0}
LOGGER = "app.channels.webpush"
FCM = "https://fcm.googleapis.com/fcm/send/dGVzdC1lbmRwb2ludA:APA91bHPRgkF"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Seconds since the epoch that only move when told; shared by a pusher and the fake."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def vapid() -> VapidKey:
    return VapidKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["http1", "http2"])
def push(request: pytest.FixtureRequest, clock: Clock) -> Iterator[FakePushService]:
    """The push service over plain HTTP/1.1 (the pusher's httpx path), and over HTTP/2 with TLS (its own
    client, app.channels.http2): every behaviour below holds on both."""
    with FakePushService(clock=clock, http2=request.param == "http2") as fake:
        yield fake


@pytest.fixture
def make_pusher(request: pytest.FixtureRequest, vapid: VapidKey, clock: Clock) -> Iterator[Callable[..., WebPusher]]:
    made: list[WebPusher] = []
    push = request.getfixturevalue("push") if "push" in request.fixturenames else None
    trust = {"ca_file": push.ca_file} if push is not None and push.ca_file is not None else {}

    def make(key: VapidKey | None = None, subject: str = SUBJECT, **overrides: Any) -> WebPusher:
        pusher = WebPusher(WebPushConfig(vapid_key=key or vapid, subject=subject, **{**FAST, **trust, **overrides}),
                           clock=clock)
        made.append(pusher)
        return pusher

    yield make
    for pusher in made:
        pusher.close()


@pytest.fixture
def pusher(make_pusher: Callable[..., WebPusher]) -> WebPusher:
    return make_pusher()


def subscription(push: FakePushService, vapid: VapidKey | None = None) -> SubscriptionInfo:
    """A browser subscribing with our application server key (the fake then refuses any other VAPID key)."""
    return SubscriptionInfo(**push.new_subscription(
        application_server_key=vapid.application_server_key if vapid is not None else None
    ))


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def vapid_parts(authorization: str) -> dict[str, str]:
    scheme, _, rest = authorization.partition(" ")
    assert scheme == "vapid"
    return dict(part.strip().split("=", 1) for part in rest.split(","))


def warnings_of(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


# ------------------------------------------------------------------------------ VAPID key and configuration


def test_vapid_key_from_the_dev_certs_file(apple_certs: Path) -> None:
    """``dev-certs`` writes vapid-private.pem (PKCS#8); the browser gets the uncompressed public point."""
    path = apple_certs / "vapid-private.pem"
    key = VapidKey.from_file(path)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)

    raw = b64url_decode(key.application_server_key)
    assert len(raw) == 65 and raw[0] == 4 and "=" not in key.application_server_key
    assert raw == private.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
    assert repr(key) == f"VapidKey(application_server_key={key.application_server_key!r})"
    sec1 = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    assert VapidKey.from_bytes(sec1).application_server_key == key.application_server_key


def test_vapid_key_refuses_other_keys_and_unreadable_files(tmp_path: Path) -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    p384_pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "rsa.pem").write_bytes(rsa_pem)
    (tmp_path / "p384.pem").write_bytes(p384_pem)
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")

    with pytest.raises(ValueError, match="rsa.pem: the VAPID key must be an EC P-256 key"):
        VapidKey.from_file(tmp_path / "rsa.pem")
    with pytest.raises(ValueError, match="P-256"):
        VapidKey.from_file(tmp_path / "p384.pem")
    with pytest.raises(ValueError, match="not an unencrypted PEM or DER") as err:
        VapidKey.from_file(tmp_path / "junk.pem")
    assert "nope" not in str(err.value)
    with pytest.raises(ValueError, match="cannot read"):
        VapidKey.from_file(tmp_path / "missing.pem")


@pytest.mark.parametrize("subject", ["admin@example.org", "mailto:", "http://example.org", "https://", ""])
def test_the_subject_must_be_mailto_or_https(vapid: VapidKey, subject: str) -> None:
    with pytest.raises(ValueError, match="mailto:<address> or an https: URL"):
        WebPusher(WebPushConfig(vapid_key=vapid, subject=subject))


def test_build_web_pusher_from_settings(settings: Settings, apple_certs: Path, caplog: pytest.LogCaptureFixture
                                        ) -> None:
    # No key configured, and outside development no dev-certs fallback: messages go to the outbox.
    assert build_web_pusher(settings.model_copy(update={"vapid_private_key": None})) is None

    configured = settings.model_copy(update={"vapid_private_key": apple_certs / "vapid-private.pem",
                                             "vapid_subject": "https://tallypass.example/contact"})
    with build_web_pusher(configured) as built:  # type: ignore[union-attr]
        assert built.application_server_key == VapidKey.from_file(apple_certs / "vapid-private.pem"
                                                                   ).application_server_key
        assert built.config.subject == "https://tallypass.example/contact" and built.config.ttl == 86400

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        localhost = build_web_pusher(configured.model_copy(update={"vapid_subject": "mailto:admin@localhost"}))
    assert localhost is not None
    localhost.close()
    assert any("Apple's push service refuses it" in m for m in warnings_of(caplog, logging.WARNING))

    with pytest.raises(ValueError, match="TALLYPASS_VAPID_SUBJECT"):
        build_web_pusher(configured.model_copy(update={"vapid_subject": "ops@tallypass.example"}))
    with pytest.raises(ValueError, match="missing.pem: cannot read"):
        build_web_pusher(configured.model_copy(update={"vapid_private_key": apple_certs / "missing.pem"}))


def test_mask_endpoint_keeps_the_origin_and_six_characters() -> None:
    assert mask_endpoint(FCM) == f"https://fcm.googleapis.com/…{FCM[-6:]}"
    assert mask_endpoint("https://updates.push.services.mozilla.com:443/wpush/v2/gAAAAABk") == (
        "https://updates.push.services.mozilla.com/…AAAABk")
    assert mask_endpoint("https://web.push.apple.com/x") == "https://web.push.apple.com/…"
    assert mask_endpoint("not a url") == "?/…"


# ------------------------------------------------------------------------------ encryption and headers


def test_a_sent_payload_decrypts_to_exactly_the_json_sent(
    push: FakePushService, pusher: WebPusher, vapid: VapidKey
) -> None:
    sub = subscription(push, vapid)
    payload = {"title": "Баллы начислены", "body": "+5 баллов, баланс 120", "tag": "balance", "url": None}

    result = pusher.send(sub, payload)
    other = pusher.send(sub, payload, ttl=60, urgency="high", topic="balance")

    assert (result.outcome, result.status, result.attempts) == (PushOutcome.SENT, 201, 1)
    assert other.outcome is PushOutcome.SENT
    first, second = push.messages(sub.endpoint)
    assert json.loads(first["plaintext"]) == payload
    assert first["plaintext"] == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert (first["ttl"], first["urgency"], first["topic"]) == (86400, "normal", None)
    assert first["headers"]["ttl"] == "86400" and first["headers"]["urgency"] == "normal"
    assert first["headers"]["content-encoding"] == "aes128gcm"
    assert first["headers"]["content-type"] == "application/octet-stream"
    assert (second["ttl"], second["urgency"], second["topic"]) == (60, "high", "balance")
    assert json.loads(second["plaintext"]) == payload


def test_bytes_and_empty_payloads(push: FakePushService, pusher: WebPusher) -> None:
    sub = subscription(push)

    assert pusher.send(sub, b"\x00\xffraw").outcome is PushOutcome.SENT
    assert pusher.send(sub, b"").outcome is PushOutcome.SENT  # RFC 8030: a push without payload, no encoding

    raw, empty = push.messages(sub.endpoint)
    assert raw["plaintext"] == b"\x00\xffraw"
    assert empty["plaintext"] == b"" and "content-encoding" not in empty["headers"]
    assert empty["headers"]["ttl"] == "86400" and empty["headers"]["urgency"] == "normal"


def test_the_largest_payload_fits_and_a_larger_one_is_refused_locally(
    push: FakePushService, pusher: WebPusher, caplog: pytest.LogCaptureFixture
) -> None:
    sub = subscription(push)

    fits = pusher.send(sub, b"x" * MAX_PLAINTEXT)  # 86 + 3993 + 1 + 16 = 4096 bytes encrypted
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        too_large = pusher.send(sub, {"body": "x" * MAX_PLAINTEXT})

    assert fits.outcome is PushOutcome.SENT
    assert len(push.messages(sub.endpoint)[0]["plaintext"]) == MAX_PLAINTEXT
    assert (too_large.outcome, too_large.status, too_large.reason, too_large.attempts) == (
        PushOutcome.REJECTED, None, REASON_TOO_LARGE, 0)
    assert len(push.requests) == 1
    assert len(warnings_of(caplog, logging.ERROR)) == 1


def test_a_413_from_the_service_is_a_payload_too_large(push: FakePushService, pusher: WebPusher) -> None:
    sub = subscription(push)
    push.fail(sub.endpoint, 413)

    result = pusher.send(sub, {"a": 1})

    assert (result.outcome, result.status, result.reason, result.attempts) == (
        PushOutcome.REJECTED, 413, REASON_TOO_LARGE, 1)


def test_unusable_subscription_keys_are_refused_without_a_request(push: FakePushService, pusher: WebPusher) -> None:
    good = push.new_subscription()
    short_key = SubscriptionInfo(good["endpoint"], good["p256dh"][:-4], good["auth"])
    off_curve = SubscriptionInfo(good["endpoint"], base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode(),
                                 good["auth"])
    bad_auth = SubscriptionInfo(good["endpoint"], good["p256dh"], "not base64!")

    results = [pusher.send(s, {"a": 1}) for s in (short_key, off_curve, bad_auth)]

    assert [(r.outcome, r.reason, r.attempts) for r in results] == [(PushOutcome.REJECTED, REASON_BAD_KEYS, 0)] * 3
    assert push.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [({"ttl": -1}, "ttl"), ({"ttl": 1.5}, "ttl"), ({"urgency": "urgent"}, "urgency"),
     ({"topic": "x" * 33}, "topic"), ({"topic": "bad topic"}, "topic")],
)
def test_options_outside_rfc_8030_are_a_callers_bug(push: FakePushService, pusher: WebPusher,
                                                    options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pusher.send(subscription(push), {"a": 1}, **options)
    with pytest.raises(TypeError, match="dict or bytes"):
        pusher.send(subscription(push), "text")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ VAPID


def test_the_vapid_jwt_verifies_and_is_reused_for_the_same_origin(
    push: FakePushService, pusher: WebPusher, vapid: VapidKey, clock: Clock
) -> None:
    one, two = subscription(push, vapid), subscription(push, vapid)
    started = int(clock.now)

    pusher.send(one, {"n": 1})
    pusher.send(two, {"n": 2})
    clock.advance(11 * 3600 - 1)  # an hour and a second before exp: still the first token
    pusher.send(one, {"n": 3})
    clock.advance(2)  # less than an hour left: a new one
    pusher.send(one, {"n": 4})

    headers = [r.headers["authorization"] for r in push.requests]
    assert headers[0] == headers[1] == headers[2] != headers[3]
    parts = vapid_parts(headers[0])
    assert parts["k"] == vapid.application_server_key
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"]))
    claims = jwt.decode(parts["t"], public_key, algorithms=["ES256"], audience=push.origin,
                        options={"verify_exp": False})
    assert claims == {"aud": push.origin, "exp": started + 12 * 3600, "sub": SUBJECT}
    assert jwt.get_unverified_header(parts["t"]) == {"typ": "JWT", "alg": "ES256"}
    renewed = jwt.decode(vapid_parts(headers[3])["t"], public_key, algorithms=["ES256"], audience=push.origin,
                         options={"verify_exp": False})
    assert renewed["exp"] == started + 11 * 3600 + 1 + 12 * 3600
    assert [m["vapid"]["aud"] for m in push.messages(one.endpoint)] == [push.origin] * 3


def test_each_push_service_origin_gets_its_own_token(
    push: FakePushService, pusher: WebPusher, vapid: VapidKey, clock: Clock
) -> None:
    with FakePushService(clock=clock) as other:
        assert pusher.send(subscription(push, vapid), {"a": 1}).outcome is PushOutcome.SENT
        assert pusher.send(subscription(other, vapid), {"a": 1}).outcome is PushOutcome.SENT

        first, second = push.requests[0].headers["authorization"], other.requests[0].headers["authorization"]
    assert first != second
    assert jwt.decode(vapid_parts(second)["t"], options={"verify_signature": False})["aud"] == other.origin


def test_http2_connections_are_kept_for_a_bounded_number_of_push_services(
    clock: Clock, make_pusher: Callable[..., WebPusher], vapid: VapidKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoints come from browsers: a pusher must not keep a connection open to every origin it ever saw."""
    monkeypatch.setattr(webpush_channel, "H2_ORIGINS", 1)
    with FakePushService(clock=clock, http2=True) as first, FakePushService(clock=clock, http2=True) as second:
        assert first.ca_file is not None and second.ca_file is not None
        bundle = Path(str(first.ca_file) + ".both.pem")
        bundle.write_bytes(first.ca_file.read_bytes() + second.ca_file.read_bytes())
        pusher = make_pusher(ca_file=bundle)
        a, b = subscription(first, vapid), subscription(second, vapid)

        outcomes = [pusher.send(sub, {"n": n}).outcome for n, sub in enumerate([a, b, a])]

        assert outcomes == [PushOutcome.SENT] * 3
        assert (first.connections, second.connections) == (2, 1)  # the first was closed when the second came


def test_a_subscription_made_with_another_key_is_refused_with_403(
    push: FakePushService, pusher: WebPusher, caplog: pytest.LogCaptureFixture
) -> None:
    sub = subscription(push, VapidKey.generate())  # the page used another application server key

    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = pusher.send(sub, {"a": 1})

    assert (result.outcome, result.status, result.attempts) == (PushOutcome.REJECTED, 403, 1)
    assert "does not match" in (result.reason or "")
    assert len(push.requests) == 1  # a token signed for this very call is not signed again
    [error] = warnings_of(caplog, logging.ERROR)
    assert "TALLYPASS_VAPID_PRIVATE_KEY" in error and sub.endpoint not in error


def test_a_403_met_with_a_reused_token_is_repeated_once_with_a_new_one(
    push: FakePushService, pusher: WebPusher, vapid: VapidKey
) -> None:
    sub = subscription(push, vapid)
    pusher.send(sub, {"n": 1})
    push.fail(sub.endpoint, 403, times=1)

    result = pusher.send(sub, {"n": 2})

    assert (result.outcome, result.attempts) == (PushOutcome.SENT, 1)
    assert push.statuses() == [201, 403, 201]
    headers = [r.headers["authorization"] for r in push.requests]
    assert headers[0] == headers[1] != headers[2]
    push.fail(sub.endpoint, 401, times=5)
    refused = pusher.send(sub, {"n": 3})  # once only
    assert (refused.outcome, refused.status) == (PushOutcome.REJECTED, 401)
    assert push.statuses()[3:] == [401, 401]


def test_apple_refuses_a_localhost_subject(push: FakePushService, make_pusher: Callable[..., WebPusher]) -> None:
    result = make_pusher(subject="mailto:admin@localhost").send(subscription(push), {"a": 1})

    assert (result.outcome, result.status, result.reason) == (PushOutcome.REJECTED, 403, "BadJwtToken")


def test_the_fake_refuses_missing_stale_and_foreign_vapid(push: FakePushService, pusher: WebPusher,
                                                         vapid: VapidKey, clock: Clock) -> None:
    """The stand-in's own checks, so that the tests above prove something (RFC 8292 §3, §4.2)."""
    import httpx

    sub = subscription(push)
    authorization = vapid.authorization(aud=push.origin, exp=int(clock.now) + 3600, sub=SUBJECT)
    body_headers = {"TTL": "60", "Content-Encoding": "aes128gcm"}
    verify = ssl.create_default_context(cafile=str(push.ca_file)) if push.ca_file else True
    with httpx.Client(verify=verify, http2=push.ca_file is not None) as http:
        missing = http.post(sub.endpoint, headers={"TTL": "60"})
        other_aud = http.post(sub.endpoint, headers={"TTL": "60", "Authorization": vapid.authorization(
            aud="https://elsewhere.example", exp=int(clock.now) + 3600, sub=SUBJECT)})
        too_long = http.post(sub.endpoint, headers={"TTL": "60", "Authorization": vapid.authorization(
            aud=push.origin, exp=int(clock.now) + 25 * 3600, sub=SUBJECT)})
        no_ttl = http.post(sub.endpoint, headers={"Authorization": authorization})
        garbage = http.post(sub.endpoint, headers={**body_headers, "Authorization": authorization},
                            content=b"\x00" * 100)
        unknown = http.post(push.endpoint("nope"), headers={"TTL": "60", "Authorization": authorization})
        clock.advance(3601)
        expired = http.post(sub.endpoint, headers={"TTL": "60", "Authorization": authorization})

    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "vapid")
    assert other_aud.status_code == 403 and "Audience" in other_aud.json()["message"]
    assert too_long.status_code == 403 and "24 hours" in too_long.json()["message"]
    assert no_ttl.status_code == 400 and no_ttl.json()["message"] == "Missing TTL header"
    assert garbage.status_code == 400 and "does not decrypt" in garbage.json()["message"]
    assert unknown.status_code == 404
    assert expired.status_code == 403 and "expired" in expired.json()["message"]
    assert push.messages(sub.endpoint) == []


# ------------------------------------------------------------------------------ outcomes and retries


def test_404_and_410_are_gone(push: FakePushService, pusher: WebPusher, caplog: pytest.LogCaptureFixture) -> None:
    expired = subscription(push)
    push.expire(expired.endpoint)
    unknown = SubscriptionInfo(push.endpoint("never-existed"), expired.p256dh, expired.auth)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        results = [pusher.send(expired, {"a": 1}), pusher.send(unknown, {"a": 1})]

    assert [(r.outcome, r.status, r.attempts) for r in results] == [(PushOutcome.GONE, 410, 1),
                                                                    (PushOutcome.GONE, 404, 1)]
    assert not warnings_of(caplog, logging.ERROR) and not warnings_of(caplog, logging.WARNING)


def test_a_500_is_retried(push: FakePushService, pusher: WebPusher, caplog: pytest.LogCaptureFixture) -> None:
    sub = subscription(push)
    push.fail(sub.endpoint, 500, times=2)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = pusher.send(sub, {"n": 1})

    assert (result.outcome, result.status, result.attempts) == (PushOutcome.SENT, 201, 3)
    assert push.statuses() == [500, 500, 201]
    assert len(push.messages(sub.endpoint)) == 1
    assert [m.split(": ", 1)[1].split(",")[0] for m in warnings_of(caplog, logging.WARNING)] == [
        "500 Internal Server Error"] * 2


def test_a_429_with_retry_after_is_honoured(push: FakePushService, make_pusher: Callable[..., WebPusher]) -> None:
    pusher = make_pusher(backoff_max=2.0)
    sub = subscription(push)
    push.fail(sub.endpoint, 429, times=1, retry_after=1)

    started = time.monotonic()
    result = pusher.send(sub, {"n": 1})
    waited = time.monotonic() - started

    assert (result.outcome, result.attempts) == (PushOutcome.SENT, 2)
    assert push.statuses() == [429, 201]
    assert 0.95 <= waited < 1.9  # the service's second, not the 5 ms back-off


def test_a_retry_after_beyond_backoff_max_fails_at_once(push: FakePushService, pusher: WebPusher) -> None:
    sub = subscription(push)
    push.fail(sub.endpoint, 503, times=1, retry_after=120)

    result = pusher.send(sub, {"n": 1})

    assert (result.outcome, result.status, result.attempts, result.retry_after) == (
        PushOutcome.FAILED, 503, 1, 120.0)


def test_a_persistent_503_fails_after_the_attempts(push: FakePushService, pusher: WebPusher,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    sub = subscription(push)
    push.fail(sub.endpoint, 503, times=10)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = pusher.send(sub, {"n": 1})

    assert (result.outcome, result.status, result.attempts, result.retry_after) == (
        PushOutcome.FAILED, 503, 4, None)
    assert push.statuses() == [503] * 4
    assert len(warnings_of(caplog, logging.WARNING)) == 4  # three retries, then the failure


def test_an_unreachable_service_fails_after_the_attempts(pusher: WebPusher) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    sub = SubscriptionInfo(f"http://127.0.0.1:{port}/push/x", base64.urlsafe_b64encode(key).decode().rstrip("="),
                           "AAAAAAAAAAAAAAAAAAAAAA")

    result = pusher.send(sub, {"n": 1})

    assert (result.outcome, result.status, result.attempts) == (PushOutcome.FAILED, None, 4)
    assert "ConnectError" in (result.reason or "")


def test_other_4xx_are_rejected_and_logged(push: FakePushService, pusher: WebPusher,
                                          caplog: pytest.LogCaptureFixture) -> None:
    sub = subscription(push)
    push.fail(sub.endpoint, 400, message="Invalid Topic header")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        result = pusher.send(sub, {"n": 1})

    assert (result.outcome, result.status, result.reason) == (PushOutcome.REJECTED, 400, "Invalid Topic header")
    assert len(warnings_of(caplog, logging.ERROR)) == 1


def test_one_kept_alive_connection_and_one_token_for_many_threads(
    push: FakePushService, pusher: WebPusher, vapid: VapidKey
) -> None:
    subs = [subscription(push, vapid) for _ in range(8)]
    barrier = threading.Barrier(8)
    outcomes: list[PushOutcome] = []

    def worker(sub: SubscriptionInfo) -> None:
        barrier.wait()
        for n in range(3):
            outcomes.append(pusher.send(sub, {"n": n}).outcome)

    threads = [threading.Thread(target=worker, args=(s,)) for s in subs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == [PushOutcome.SENT] * 24
    assert len({r.headers["authorization"] for r in push.requests}) == 1  # signed once, under the lock
    opened = push.connections
    assert 1 <= opened <= 8  # at most one per concurrent thread
    for n in range(4):
        pusher.send(subs[0], {"n": n})
    assert push.connections == opened  # kept alive and reused


def test_sequential_pushes_share_one_connection(push: FakePushService, pusher: WebPusher) -> None:
    sub = subscription(push)
    for n in range(5):
        pusher.send(sub, {"n": n})
    assert push.connections == 1


def test_send_many_delivers_each_message_once_with_results_in_order(push: FakePushService,
                                                                     pusher: WebPusher) -> None:
    """A campaign batch: 150 browsers of one push service, one gone, one failing once."""
    subs = [subscription(push) for _ in range(150)]
    push.expire(subs[7].endpoint)
    push.fail(subs[9].endpoint, 503, times=1)

    results = pusher.send_many([(sub, {"n": n}) for n, sub in enumerate(subs)], topic="campaign3")

    assert [r.outcome for r in results] == [PushOutcome.GONE if n == 7 else PushOutcome.SENT for n in range(150)]
    assert results[9].attempts == 2 and results[0].attempts == 1
    for n, sub in enumerate(subs):
        assert [json.loads(m["plaintext"]) for m in push.messages(sub.endpoint)] == ([] if n == 7 else [{"n": n}])
    assert push.messages(subs[0].endpoint)[0]["topic"] == "campaign3"
    if push.ca_file is not None:  # HTTP/2: one connection carries the whole batch
        assert push.connections == 1
    assert pusher.send_many([]) == []


def test_send_many_survives_a_goaway_without_losing_or_repeating_a_message(
    clock: Clock, make_pusher: Callable[..., WebPusher]
) -> None:
    """RFC 9113 §6.8: the streams after GOAWAY's last stream id were not processed; they go again on a new
    connection, and those before it are answered on the old one."""
    with FakePushService(clock=clock, http2=True) as push:
        pusher = make_pusher(ca_file=push.ca_file)
        subs = [subscription(push) for _ in range(60)]
        pusher.send(subs[0], {"n": -1})  # the connection is proven: the batch then goes out many streams at once
        push.goaway_after(25)

        results = pusher.send_many([(sub, {"n": n}) for n, sub in enumerate(subs)])

    assert {r.outcome for r in results} == {PushOutcome.SENT} and {r.attempts for r in results} == {1}
    assert [len(push.messages(sub.endpoint)) for sub in subs] == [2] + [1] * 59
    assert push.connections == 2


def test_a_pending_message_is_replaced_by_a_newer_one_with_the_same_topic(
        push: FakePushService, pusher: WebPusher, clock: Clock) -> None:
    """RFC 8030 §5.4, as the stand-in models it: while the browser is offline the service keeps its messages;
    one with a Topic replaces the outstanding one with the same topic, untopical ones are never replaced, and
    a TTL of 0 is not kept at all (§5.2). Back online, the browser gets what is left and still alive."""
    sub = subscription(push)
    push.go_offline(sub.endpoint)
    assert pusher.send(sub, {"n": 1}, topic="offer").outcome is PushOutcome.SENT
    assert pusher.send(sub, {"n": 2}).outcome is PushOutcome.SENT  # no topic: kept beside the others
    assert pusher.send(sub, {"n": 3}, topic="other").outcome is PushOutcome.SENT
    assert pusher.send(sub, {"n": 4}, topic="offer").outcome is PushOutcome.SENT  # replaces n=1
    assert pusher.send(sub, {"n": 5}, ttl=0).outcome is PushOutcome.SENT  # only for a browser reachable now
    assert pusher.send(sub, {"n": 6}, ttl=60, topic="short").outcome is PushOutcome.SENT
    assert push.messages(sub.endpoint) == [] and push.replaced == 1
    assert [json.loads(m["plaintext"])["n"] for m in push.pending(sub.endpoint)] == [2, 3, 4, 6]
    clock.advance(120)  # n=6 outlives its TTL at the service
    assert push.come_online(sub.endpoint) == 3
    assert [json.loads(m["plaintext"])["n"] for m in push.messages(sub.endpoint)] == [2, 3, 4]
    assert pusher.send(sub, {"n": 7}, topic="offer").outcome is PushOutcome.SENT  # online: delivered at once
    assert len(push.messages(sub.endpoint)) == 4 and push.replaced == 1


def test_send_many_gives_each_message_its_own_topic(push: FakePushService, pusher: WebPusher) -> None:
    subs = [subscription(push) for _ in range(3)]
    results = pusher.send_many([(sub, {"n": n}) for n, sub in enumerate(subs)], topics=["a", None, "c" * 32])
    assert [r.outcome for r in results] == [PushOutcome.SENT] * 3
    assert [push.messages(s.endpoint)[0]["topic"] for s in subs] == ["a", None, "c" * 32]
    with pytest.raises(ValueError, match="topic must be"):
        pusher.send_many([(subs[0], {"n": 0})], topics=["x" * 33])
    with pytest.raises(ValueError, match="2 topics for 1 messages"):
        pusher.send_many([(subs[0], {"n": 0})], topics=["a", "b"])


def test_logs_never_hold_endpoints_keys_or_tokens(push: FakePushService, pusher: WebPusher,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    sub = subscription(push)
    gone = subscription(push)
    push.expire(gone.endpoint)
    push.fail(sub.endpoint, 503, times=1)

    with caplog.at_level(logging.DEBUG):
        pusher.send(sub, {"n": 1})
        pusher.send(gone, {"n": 1})
        pusher.send(sub, {"x": "x" * 4000})

    token = vapid_parts(push.requests[0].headers["authorization"])["t"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert mask_endpoint(sub.endpoint) in text
    if push.ca_file is None:  # httpx's own request lines, masked
        assert "HTTP Request: POST" in text
    for secret in (push.id_of(sub.endpoint), push.id_of(gone.endpoint), sub.p256dh, sub.auth, token):
        assert secret not in text
    assert "SubscriptionInfo(endpoint=" in repr(sub) and sub.auth not in repr(sub)


# ------------------------------------------------------------------------------ subscriptions (database)


def fcm_keys() -> tuple[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).decode().rstrip("="), base64.urlsafe_b64encode(b"s" * 16).decode()


@pytest.fixture
def customer(make_program: Callable[..., Any], make_card: Callable[..., Any]) -> Any:
    return make_card(make_program()).customer


def test_subscribe_stores_the_browser_subscription(db_session: Session, customer: Any) -> None:
    p256dh, auth = fcm_keys()

    row = webpush.subscribe(db_session, customer=customer, endpoint=FCM, p256dh=p256dh, auth=auth, now=NOW)

    stored = db_session.scalars(select(WebPushSubscription)).one()
    assert stored is row and row.id is not None
    assert (row.customer_id, row.endpoint, row.p256dh, row.failures) == (customer.id, FCM, p256dh, 0)
    assert row.auth == "c3Nzc3Nzc3Nzc3Nzc3Nzcw" and row.created_at == NOW and row.last_success_at is None


def test_subscribe_again_is_idempotent_and_never_moves_to_another_customer(
    db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any]
) -> None:
    program = make_program()
    alice, bob = make_card(program).customer, make_card(program).customer
    first_keys, new_keys = fcm_keys(), fcm_keys()
    first = webpush.subscribe(db_session, customer=alice, endpoint=FCM, p256dh=first_keys[0], auth=first_keys[1],
                              now=NOW)
    first.failures, first.last_success_at = 4, NOW
    db_session.flush()

    again = webpush.subscribe(db_session, customer=alice, endpoint=FCM, p256dh=new_keys[0], auth=new_keys[1],
                              now=NOW + timedelta(days=1))
    assert again.id == first.id
    assert (again.p256dh, again.failures, again.created_at, again.last_success_at) == (new_keys[0], 0, NOW, NOW)

    with pytest.raises(Conflict) as refused:  # the endpoint and keys prove nothing: whoever saw them knows them
        webpush.subscribe(db_session, customer=bob, endpoint=FCM, p256dh=new_keys[0], auth=new_keys[1],
                          now=NOW + timedelta(days=2))
    assert (refused.value.status, refused.value.code) == (409, "push-subscription-taken")
    db_session.expire_all()
    [kept] = db_session.scalars(select(WebPushSubscription)).all()
    assert (kept.customer_id, kept.p256dh, kept.created_at) == (alice.id, new_keys[0], NOW)


def test_no_code_can_move_a_subscription_to_another_customer(
    db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any]
) -> None:
    """The guard behind the rule: the model itself refuses to re-point a subscription, whatever code tries."""
    program = make_program()
    alice, bob = make_card(program).customer, make_card(program).customer
    p256dh, auth = fcm_keys()
    row = webpush.subscribe(db_session, customer=alice, endpoint=FCM, p256dh=p256dh, auth=auth, now=NOW)
    with pytest.raises(ValueError, match="never moves to another customer"):
        row.customer_id = bob.id
    row.customer_id = alice.id  # the same customer: fine
    assert db_session.get(WebPushSubscription, row.id).customer_id == alice.id


def test_subscribe_accepts_padded_and_standard_base64(db_session: Session, customer: Any) -> None:
    p256dh, _ = fcm_keys()
    padded = p256dh + "="
    standard = padded.replace("-", "+").replace("_", "/")

    row = webpush.subscribe(db_session, customer=customer, endpoint=FCM, p256dh=standard,
                            auth="c3Nzc3Nzc3Nzc3Nzc3Nzcw==", now=NOW)

    assert row.p256dh == p256dh and row.auth == "c3Nzc3Nzc3Nzc3Nzc3Nzcw"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/x",  # not https
        "https://localhost/push/x",
        "https://127.0.0.1/push/x",
        "https://10.1.2.3/push/x",
        "https://[::1]/push/x",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://push.internal/x",
        "https://intranet/x",
        "https://user:pw@fcm.googleapis.com/x",
        "https://fcm.googleapis.com:99999/x",
        "https://fcm.googleapis.com/fcm/send/" + "x" * 1000,
        "https://fcm.googleapis.com/fcm send/x",
        "fcm.googleapis.com/fcm/send/x",
        "",
    ],
)
def test_subscribe_refuses_what_is_not_a_push_service_url(db_session: Session, customer: Any, endpoint: str) -> None:
    p256dh, auth = fcm_keys()
    with pytest.raises(InvalidInput) as err:
        webpush.subscribe(db_session, customer=customer, endpoint=endpoint, p256dh=p256dh, auth=auth, now=NOW)
    assert [e.field for e in err.value.errors] == ["endpoint"]
    assert db_session.scalars(select(WebPushSubscription)).all() == []


def test_subscribe_refuses_keys_of_the_wrong_length_or_curve(db_session: Session, customer: Any) -> None:
    p256dh, auth = fcm_keys()
    raw = b64url_decode(p256dh)
    cases = {
        "p256dh": [
            base64.urlsafe_b64encode(raw[:64]).decode(),  # 64 bytes
            base64.urlsafe_b64encode(b"\x02" + raw[1:33]).decode(),  # compressed point
            base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode(),  # not on P-256
            "not base64 at all!", "",
        ],
        "auth": [base64.urlsafe_b64encode(b"s" * 15).decode(), base64.urlsafe_b64encode(b"s" * 32).decode(), "*"],
    }
    for field, values in cases.items():
        for value in values:
            keys = {"p256dh": p256dh, "auth": auth, field: value}
            with pytest.raises(InvalidInput) as err:
                webpush.subscribe(db_session, customer=customer, endpoint=FCM, now=NOW, **keys)
            assert [e.field for e in err.value.errors] == [field], value

    with pytest.raises(InvalidInput) as err:
        webpush.subscribe(db_session, customer=customer, endpoint="ftp://x", p256dh="", auth="", now=NOW)
    assert [e.field for e in err.value.errors] == ["endpoint", "p256dh", "auth"]
    assert err.value.status == 422 and err.value.problem()["errors"][0]["field"] == "endpoint"


def test_unsubscribe(db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    program = make_program()
    alice, bob = make_card(program).customer, make_card(program).customer
    p256dh, auth = fcm_keys()
    webpush.subscribe(db_session, customer=alice, endpoint=FCM, p256dh=p256dh, auth=auth, now=NOW)

    assert webpush.unsubscribe(db_session, customer=bob, endpoint=FCM) is False  # not Bob's to remove
    assert webpush.unsubscribe(db_session, customer=alice, endpoint=FCM) is True
    assert webpush.unsubscribe(db_session, customer=alice, endpoint=FCM) is False
    assert db_session.scalars(select(WebPushSubscription)).all() == []


# ------------------------------------------------------------------------------ notify_customer (database)


def stored(db_session: Session, customer: Any, push: FakePushService, vapid: VapidKey | None = None,
           **fields: Any) -> WebPushSubscription:
    """A subscription on the fake, stored as subscribe() would (which refuses the fake's http://127.0.0.1)."""
    info = push.new_subscription(
        application_server_key=vapid.application_server_key if vapid is not None else None)
    row = WebPushSubscription(customer_id=customer.id, created_at=NOW, **info, **fields)
    db_session.add(row)
    db_session.flush()
    return row


def rows(db_session: Session) -> dict[int, WebPushSubscription]:
    db_session.expire_all()
    return {r.id: r for r in db_session.scalars(select(WebPushSubscription))}


def test_notify_customer_sends_to_each_subscription(
    db_session: Session, customer: Any, push: FakePushService, pusher: WebPusher, vapid: VapidKey
) -> None:
    laptop = stored(db_session, customer, push, vapid, failures=3)
    phone = stored(db_session, customer, push, vapid)
    message = webpush.purchase_message(earned=5, balance=120, locale="ru")

    sent = webpush.notify_customer(db_session, customer_id=customer.id, payload=message, pusher=pusher, now=NOW,
                                   topic="balance")

    assert sent == 2
    for row in (laptop, phone):
        [received] = push.messages(row.endpoint)
        assert json.loads(received["plaintext"]) == message and received["topic"] == "balance"
    after = rows(db_session)
    assert [(r.failures, r.last_success_at) for r in after.values()] == [(0, NOW), (0, NOW)]
    assert db_session.scalars(select(ChannelMessage)).all() == []


def test_a_410_makes_notify_customer_delete_the_subscription(
    db_session: Session, customer: Any, push: FakePushService, pusher: WebPusher
) -> None:
    gone = stored(db_session, customer, push)
    kept = stored(db_session, customer, push)
    gone_id = gone.id
    push.expire(gone.endpoint)

    sent = webpush.notify_customer(db_session, customer_id=customer.id, payload={"a": 1}, pusher=pusher, now=NOW)

    assert sent == 1
    assert list(rows(db_session)) == [kept.id]
    assert gone_id not in rows(db_session)


def test_persistent_503_counts_failures_and_the_tenth_deletes(
    db_session: Session, customer: Any, push: FakePushService, pusher: WebPusher
) -> None:
    fresh = stored(db_session, customer, push, last_success_at=NOW - timedelta(days=1))
    nearly = stored(db_session, customer, push, failures=webpush.MAX_FAILURES - 1)
    fresh_id, nearly_id = fresh.id, nearly.id
    for row in (fresh, nearly):
        push.fail(row.endpoint, 503, times=100)

    sent = webpush.notify_customer(db_session, customer_id=customer.id, payload={"a": 1}, pusher=pusher, now=NOW)

    assert sent == 0
    assert push.statuses() == [503] * 8  # four attempts each
    after = rows(db_session)
    assert list(after) == [fresh_id] and nearly_id not in after
    assert (after[fresh_id].failures, after[fresh_id].last_success_at) == (1, NOW - timedelta(days=1))


def test_rejections_count_but_a_too_large_payload_does_not(
    db_session: Session, customer: Any, push: FakePushService, pusher: WebPusher
) -> None:
    row = stored(db_session, customer, push, failures=2)
    push.fail(row.endpoint, 400)

    webpush.notify_customer(db_session, customer_id=customer.id, payload={"a": 1}, pusher=pusher, now=NOW)
    assert rows(db_session)[row.id].failures == 3

    webpush.notify_customer(db_session, customer_id=customer.id, payload={"x": "x" * 5000}, pusher=pusher, now=NOW)
    assert rows(db_session)[row.id].failures == 3


def test_a_subscription_with_unusable_keys_is_deleted(
    db_session: Session, customer: Any, pusher: WebPusher
) -> None:
    p256dh, _ = fcm_keys()
    db_session.add(WebPushSubscription(customer_id=customer.id, endpoint=FCM, p256dh=p256dh[:40], auth="x",
                                       created_at=NOW))
    db_session.flush()

    assert webpush.notify_customer(db_session, customer_id=customer.id, payload={"a": 1}, pusher=pusher,
                                   now=NOW) == 0
    assert rows(db_session) == {}


def test_without_a_pusher_the_messages_go_to_the_channel_outbox(
    db_session: Session, customer: Any, push: FakePushService
) -> None:
    one, two = stored(db_session, customer, push), stored(db_session, customer, push)
    card_id = customer.cards[0].id
    message = webpush.purchase_message(earned=1, balance=21, locale="ro")

    sent = webpush.notify_customer(db_session, customer_id=customer.id, payload=message, pusher=None, now=NOW,
                                   ttl=3600, urgency="low", topic="balance", card_id=card_id)

    assert sent == 0 and push.requests == []
    recorded = db_session.scalars(select(ChannelMessage).order_by(ChannelMessage.id)).all()
    assert [(m.channel, m.recipient, m.card_id) for m in recorded] == [
        ("web_push", mask_endpoint(one.endpoint), card_id), ("web_push", mask_endpoint(two.endpoint), card_id)]
    assert recorded[0].payload == {"body": message, "ttl": 3600, "urgency": "low", "topic": "balance"}
    assert recorded[0].created_at == NOW
    assert push.id_of(one.endpoint) not in recorded[0].recipient


def test_a_customer_without_subscriptions_gets_nothing(db_session: Session, customer: Any) -> None:
    assert webpush.notify_customer(db_session, customer_id=customer.id, payload={"a": 1}, pusher=None, now=NOW) == 0
    assert db_session.scalars(select(ChannelMessage)).all() == []


# ------------------------------------------------------------------------------ the purchase message


@pytest.mark.parametrize(
    ("earned", "noun"),
    [(0, "баллов"), (1, "балл"), (2, "балла"), (4, "балла"), (5, "баллов"), (11, "баллов"), (12, "баллов"),
     (14, "баллов"), (21, "балл"), (22, "балла"), (25, "баллов"), (101, "балл"), (111, "баллов"),
     (112, "баллов"), (1004, "балла")],
)
def test_russian_plural_forms(earned: int, noun: str) -> None:
    message = webpush.purchase_message(earned=earned, balance=340, locale="ru")
    assert message == {"title": "Баллы начислены", "body": f"+{earned} {noun}, баланс 340", "tag": "balance",
                       "url": None}


@pytest.mark.parametrize(
    ("earned", "noun"),
    [(0, "puncte"), (1, "punct"), (2, "puncte"), (19, "puncte"), (20, "de puncte"), (99, "de puncte"),
     (100, "de puncte"), (101, "puncte"), (119, "puncte"), (120, "de puncte"), (1000, "de puncte")],
)
def test_romanian_plural_forms(earned: int, noun: str) -> None:
    message = webpush.purchase_message(earned=earned, balance=7, locale="ro")
    assert message == {"title": "Puncte adăugate", "body": f"+{earned} {noun}, sold 7", "tag": "balance",
                       "url": None}


def test_english_and_other_locales() -> None:
    assert webpush.purchase_message(earned=1, balance=1, locale="en")["body"] == "+1 point, balance 1"
    assert webpush.purchase_message(earned=6, balance=86, locale="de")["body"] == "+6 points, balance 86"
    assert webpush.purchase_message(earned=6, balance=86, locale="de")["title"] == "Points added"
    assert webpush.purchase_message(earned=3, balance=9, locale="ru_RU")["body"] == "+3 балла, баланс 9"
    assert webpush.purchase_message(earned=3, balance=9, locale="ro-MD")["body"] == "+3 puncte, sold 9"
    with pytest.raises(ValueError, match="negative"):
        webpush.purchase_message(earned=-1, balance=0, locale="en")
