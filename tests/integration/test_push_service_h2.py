"""The push service stand-in over HTTP/2 with TLS (``FakePushService(http2=True)``), with httpx as the client
and pywebpush/py_vapid making the pushes, as a browser vendor's service would receive them."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from py_vapid import Vapid02
from pywebpush import WebPusher

from tests.fakes.push_service import FakePushService

SUBJECT = "mailto:ops@tallypass.example"


@pytest.fixture(scope="module")
def vapid() -> Vapid02:
    key = Vapid02()
    key.generate_keys()
    return key


@pytest.fixture
def push() -> Iterator[FakePushService]:
    with FakePushService(http2=True) as fake:
        yield fake


@pytest.fixture
def client(push: FakePushService) -> Iterator[httpx.Client]:
    assert push.ca_file is not None
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=str(push.ca_file)), timeout=5) as c:
        yield c


def web_push(push: FakePushService, vapid: Vapid02, subscription: dict[str, str], data: bytes,
             **headers: str) -> dict[str, Any]:
    """What an application server sends: the body encrypted for the browser (RFC 8291), VAPID (RFC 8292)."""
    keys = {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}
    encoded = WebPusher({"endpoint": subscription["endpoint"], "keys": keys}).encode(data, "aes128gcm")
    claims = {"aud": push.origin, "exp": int(time.time()) + 3600, "sub": SUBJECT}
    return {"content": encoded["body"], "headers": {
        **vapid.sign(claims), "TTL": "60", "Content-Encoding": "aes128gcm", "Urgency": "high", **headers,
    }}


def test_a_push_over_http2_is_decrypted_and_recorded(push: FakePushService, client: httpx.Client,
                                                     vapid: Vapid02) -> None:
    subscription = push.new_subscription()
    assert subscription["endpoint"].startswith(f"https://127.0.0.1:{push.base_url.rsplit(':', 1)[1]}/push/")

    response = client.post(subscription["endpoint"], **web_push(push, vapid, subscription, b'{"points": 12}'))

    assert (response.status_code, response.http_version) == (201, "HTTP/2")
    assert response.headers["location"].startswith(f"{push.base_url}/message/")
    assert response.headers["ttl"] == "60"
    (message,) = push.messages(subscription["endpoint"])
    assert message["plaintext"] == b'{"points": 12}' and message["urgency"] == "high"
    assert message["vapid"]["aud"] == push.origin == push.base_url
    assert message["headers"]["content-encoding"] == "aes128gcm" and ":path" not in message["headers"]
    (recorded,) = push.requests
    path = f"/push/{push.id_of(subscription['endpoint'])}"
    assert (recorded.method, recorded.path, recorded.status) == ("POST", path, 201)
    assert recorded.headers["ttl"] == "60" and not any(name.startswith(":") for name in recorded.headers)


def test_the_same_checks_and_faults(push: FakePushService, client: httpx.Client, vapid: Vapid02) -> None:
    subscription = push.new_subscription()
    unknown = push.base_url + "/push/nobody"
    missing = client.post(unknown, **web_push(push, vapid, subscription, b"x"))
    assert missing.status_code == 404 and missing.json()["errno"] == 102

    no_vapid = client.post(subscription["endpoint"], content=b"", headers={"TTL": "0"})
    assert no_vapid.status_code == 401 and no_vapid.headers["www-authenticate"] == "vapid"

    push.fail(subscription["endpoint"], 429, retry_after=7)
    limited = client.post(subscription["endpoint"], **web_push(push, vapid, subscription, b"x"))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert push.statuses() == [404, 401, 429] and push.messages(subscription["endpoint"]) == []
    assert push.connections == 1


def test_goaway_sends_the_next_push_on_a_new_connection(push: FakePushService, client: httpx.Client,
                                                         vapid: Vapid02) -> None:
    subscription = push.new_subscription()
    push.goaway_after(1)
    first = client.post(subscription["endpoint"], **web_push(push, vapid, subscription, b"1"))
    second = client.post(subscription["endpoint"], **web_push(push, vapid, subscription, b"2"))

    assert [first.status_code, second.status_code] == [201, 201]
    assert [m["plaintext"] for m in push.messages(subscription["endpoint"])] == [b"1", b"2"]
    assert push.connections == 2


def test_a_held_push_waits_for_release(push: FakePushService, client: httpx.Client, vapid: Vapid02) -> None:
    subscription = push.new_subscription()
    push.hold_after(0)
    answers: list[int] = []
    sender = threading.Thread(target=lambda: answers.append(
        client.post(subscription["endpoint"], **web_push(push, vapid, subscription, b"late")).status_code))
    sender.start()
    deadline = time.monotonic() + 5
    while not push.held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert push.held == 1 and answers == []

    push.release()
    sender.join(5)
    assert answers == [201] and push.messages(subscription["endpoint"])[0]["plaintext"] == b"late"
