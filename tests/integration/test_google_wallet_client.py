"""The Google Wallet client against the local stand-in of the REST API and the token endpoint
(tests/fakes/google_wallet_api.py): the JWT-bearer grant and the token's lifetime, REST round trips, the
409/404 flows, retries and errors, save links, one kept-alive connection, fork
(../shared/reference/google_wallet.md §2–§4, §6)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.channels.google_wallet import (
    MAX_SAVE_JWT,
    SAVE_URL_PREFIX,
    SCOPE,
    GoogleConfigError,
    GoogleConflict,
    GoogleInvalid,
    GoogleNotFound,
    GoogleQuotaExceeded,
    GoogleUnavailable,
    GoogleWalletClient,
    GoogleWalletConfig,
    GoogleWalletError,
    ServiceAccount,
    save_jwt,
    save_url,
)
from tests.fakes.google_wallet_api import FakeGoogleWallet

ISSUER = "3388000000012345678"
EMAIL = "tallypass-test@tallypass-test.iam.gserviceaccount.com"
KEY_ID = "0123456789abcdef0123456789abcdef01234567"
FAST = {"backoff": 0.005, "backoff_max": 0.02, "max_attempts": 4, "timeout": 5.0}
CLASS_ID, OBJECT_ID = f"{ISSUER}.bean_rewards", f"{ISSUER}.member-0001"
LOGGER = "app.channels.google_wallet"
OBJECTS_PATH = "/walletobjects/v1/loyaltyObject"


def a_class(**fields: Any) -> dict[str, Any]:
    return {
        "id": CLASS_ID, "issuerName": "Bean Co", "programName": "Bean Rewards", "reviewStatus": "UNDER_REVIEW",
        "programLogo": {"sourceUri": {"uri": "https://cdn.example.com/logo.png"},
                        "contentDescription": {"defaultValue": {"language": "en-US", "value": "Logo"}}},
        "hexBackgroundColor": "#4285f4", **fields,
    }


def an_object(object_id: str = OBJECT_ID, points: int = 800, **fields: Any) -> dict[str, Any]:
    return {
        "id": object_id, "classId": CLASS_ID, "state": "ACTIVE", "accountId": "0001", "accountName": "Jane Doe",
        "loyaltyPoints": {"label": "Points", "balance": {"int": points}},
        "barcode": {"type": "QR_CODE", "value": "0001", "alternateText": "0001"}, **fields,
    }


def points(n: int, label: str = "Points") -> dict[str, Any]:
    return {"loyaltyPoints": {"label": label, "balance": {"int": n}}}


class Clock:
    """Seconds since the epoch that only move when told; shared by a client and the fake."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def account(key: rsa.RSAPrivateKey) -> ServiceAccount:
    return ServiceAccount(client_email=EMAIL, private_key=key, private_key_id=KEY_ID, project_id="tallypass-test")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def google(key: rsa.RSAPrivateKey, clock: Clock) -> FakeGoogleWallet:
    """In process: the client reaches it through httpx.WSGITransport."""
    return FakeGoogleWallet(key.public_key(), EMAIL, ISSUER, key_id=KEY_ID, clock=clock)


@pytest.fixture
def http_google(key: rsa.RSAPrivateKey) -> Iterator[FakeGoogleWallet]:
    """Over real HTTP/1.1 on 127.0.0.1, with keep-alive."""
    with FakeGoogleWallet(key, EMAIL, ISSUER, key_id=KEY_ID) as fake:
        yield fake


@pytest.fixture
def make_client(account: ServiceAccount, clock: Clock) -> Iterator[Callable[..., GoogleWalletClient]]:
    """GoogleWalletClient factory: in process for a fake that was not started, over HTTP for one that was."""
    made: list[tuple[GoogleWalletClient, httpx.Client | None]] = []

    def make(fake: FakeGoogleWallet, *, real_clock: bool = False, http: httpx.Client | None = None,
             **overrides: Any) -> GoogleWalletClient:
        fields: dict[str, Any] = {"api_url": fake.api_url, "token_url": fake.token_url, "account": account, **FAST}
        fields |= overrides
        if http is None and fake.connections == 0 and fake.base_url == "http://localhost":
            http = httpx.Client(transport=httpx.WSGITransport(app=fake.wsgi_app))
        client = GoogleWalletClient(GoogleWalletConfig(**fields), http=http, clock=time.time if real_clock else clock)
        made.append((client, http))
        return client

    yield make
    for client, http in made:
        client.close()
        if http is not None:
            http.close()


@pytest.fixture
def ready(google: FakeGoogleWallet) -> FakeGoogleWallet:
    """The fake with the approved class and one object already in it."""
    google.classes[CLASS_ID] = {**a_class(), "reviewStatus": "APPROVED"}
    google.objects[OBJECT_ID] = an_object()
    return google


def api_requests(fake: FakeGoogleWallet, method: str | None = None) -> list[Any]:
    return [r for r in fake.requests if r.path != "/token" and (method is None or r.method == method)]


def token_requests(fake: FakeGoogleWallet) -> list[Any]:
    return [r for r in fake.requests if r.path == "/token"]


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
            and ", retry " in r.getMessage()]


# ------------------------------------------------------------------------------ service account and save links


def _key_file(tmp_path: Path, **changes: Any) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "tallypass-test", "private_key_id": KEY_ID,
            "private_key": pem, "client_email": EMAIL, "client_id": "123456789012345678901",
            "token_uri": "https://oauth2.googleapis.com/token", **changes}
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    return path


def test_service_account_from_googles_key_file(tmp_path: Path) -> None:
    sa = ServiceAccount.from_file(_key_file(tmp_path))

    assert (sa.client_email, sa.private_key_id, sa.project_id) == (EMAIL, KEY_ID, "tallypass-test")
    assert isinstance(sa.private_key, rsa.RSAPrivateKey)
    assert "private_key=" not in repr(sa) and "BEGIN" not in repr(sa)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"private_key_id": None}, "lacks private_key_id"),
        ({"client_email": "", "private_key": None}, "lacks client_email, private_key"),
        ({"type": "authorized_user"}, "type 'authorized_user'"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"}, "not an unencrypted PEM"),
    ],
)
def test_service_account_refuses_incomplete_key_files(tmp_path: Path, changes: dict, message: str) -> None:
    path = _key_file(tmp_path, **changes)
    with pytest.raises(ValueError, match=message) as err:
        ServiceAccount.from_file(path)
    assert str(path) in str(err.value)


def test_service_account_refuses_a_non_rsa_key_and_non_json(tmp_path: Path) -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="not an RSA key"):
        ServiceAccount.from_info({"client_email": EMAIL, "private_key": ec_pem, "private_key_id": KEY_ID})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        ServiceAccount.from_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read"):
        ServiceAccount.from_file(tmp_path / "missing.json")


def test_save_jwt_is_an_rs256_savetowallet_token_without_exp(account: ServiceAccount, key: rsa.RSAPrivateKey) -> None:
    payload = {"loyaltyObjects": [{"id": OBJECT_ID}]}

    token = save_jwt(account, payload, origins=["https://shop.example", "http://shop.example"], now=1_700_000_000)
    url = save_url(token)

    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="google")
    assert claims == {
        "iss": EMAIL, "aud": "google", "typ": "savetowallet", "iat": 1_700_000_000,
        "origins": ["https://shop.example", "http://shop.example"], "payload": payload,
    }
    assert "exp" not in claims
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    assert url == SAVE_URL_PREFIX + token and url.startswith("https://pay.google.com/gp/v/save/")
    assert len(token) < MAX_SAVE_JWT  # a skinny JWT: only the object's id (reference §2 measured ~650)


def test_save_jwt_iat_is_now_by_default_and_origins_need_a_scheme(account: ServiceAccount,
                                                                   key: rsa.RSAPrivateKey) -> None:
    token = save_jwt(account, {"loyaltyObjects": [{"id": OBJECT_ID}]}, origins=[])
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="google")
    assert abs(claims["iat"] - time.time()) < 5 and claims["origins"] == []

    with pytest.raises(ValueError, match="scheme://host"):
        save_jwt(account, {"loyaltyObjects": [{"id": OBJECT_ID}]}, origins=["www.example.com"])
    with pytest.raises(ValueError, match="non-empty dict"):
        save_jwt(account, {}, origins=[])


def test_a_fat_save_jwt_can_exceed_the_link_limit(account: ServiceAccount) -> None:
    """Class and object embedded, with text modules: over 1800 characters, so callers go skinny (§2)."""
    modules = [{"id": f"m{i}", "header": "Terms", "body": "Points expire after 12 months. " * 3} for i in range(5)]
    fat = {"loyaltyClasses": [a_class()], "loyaltyObjects": [an_object(textModulesData=modules)]}

    assert len(save_jwt(account, fat, origins=[])) > MAX_SAVE_JWT


# ------------------------------------------------------------------------------ access token


def test_token_request_is_a_jwt_bearer_grant_reused_until_a_minute_before_expiry(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    client = make_client(ready)
    started = int(clock.now)

    for _ in range(3):
        client.get("loyaltyObject", OBJECT_ID)
    clock.advance(3600 - 61)
    client.get("loyaltyObject", OBJECT_ID)  # 61 s left: still the first token
    first = token_requests(ready)
    clock.advance(2)
    client.get("loyaltyObject", OBJECT_ID)  # 59 s left: refreshed

    assert len(first) == 1
    [one, two] = token_requests(ready)
    assert one.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assertion = one.body["assertion"]
    claims = jwt.decode(assertion, key.public_key(), algorithms=["RS256"], audience=ready.token_url,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims == {"iss": EMAIL, "scope": SCOPE, "aud": ready.token_url, "iat": started, "exp": started + 3600}
    assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    assert jwt.decode(two.body["assertion"], key.public_key(), algorithms=["RS256"], audience=ready.token_url,
                      options={"verify_exp": False, "verify_iat": False})["iat"] == started + 3541
    bearers = [r.headers["authorization"] for r in api_requests(ready)]
    assert len(set(bearers[:4])) == 1 and bearers[4] != bearers[0]
    assert bearers[4] == f"Bearer {client.access_token()}"


def test_short_token_lifetime_from_the_endpoint_is_respected(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], clock: Clock
) -> None:
    ready.token_expires_in = 100  # the endpoint's expires_in, not a fixed hour, decides
    client = make_client(ready)

    client.get("loyaltyObject", OBJECT_ID)
    clock.advance(39)
    client.get("loyaltyObject", OBJECT_ID)
    clock.advance(2)
    client.get("loyaltyObject", OBJECT_ID)

    assert len(token_requests(ready)) == 2


def test_a_401_refreshes_the_token_once_and_repeats_the_request(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(ready)
    client.get("loyaltyObject", OBJECT_ID)
    ready.revoke_tokens()

    patched = client.patch("loyaltyObject", OBJECT_ID, points(5))

    assert patched["loyaltyPoints"]["balance"] == {"int": 5}
    assert len(token_requests(ready)) == 2
    patches = api_requests(ready, "PATCH")
    assert len(patches) == 2 and patches[0].headers["authorization"] != patches[1].headers["authorization"]


def test_many_threads_meeting_a_401_share_one_refresh(
    http_google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    http_google.classes[CLASS_ID] = {**a_class(), "reviewStatus": "APPROVED"}
    http_google.objects[OBJECT_ID] = an_object()
    client = make_client(http_google, real_clock=True)
    client.get("loyaltyObject", OBJECT_ID)
    http_google.revoke_tokens()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            client.get("loyaltyObject", OBJECT_ID)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(token_requests(http_google)) == 2


def test_first_use_from_many_threads_fetches_one_token(
    http_google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(http_google, real_clock=True)
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait()
        tokens.append(client.access_token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert len(token_requests(http_google)) == 1


def test_a_second_401_is_a_configuration_error(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    ready.fail("GET", OBJECTS_PATH, 401, times=5)

    with caplog.at_level(logging.ERROR, logger=LOGGER), pytest.raises(GoogleConfigError) as err:
        make_client(ready).get("loyaltyObject", OBJECT_ID)

    assert (err.value.status, err.value.reason, err.value.method) == (401, "authError", "GET")
    assert len(api_requests(ready)) == 2 and len(token_requests(ready)) == 2
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_token_endpoint_refusing_the_assertion_is_a_configuration_error(
    google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    google.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()  # key deleted

    with caplog.at_level(logging.ERROR, logger=LOGGER), pytest.raises(GoogleConfigError) as err:
        make_client(google).get("loyaltyObject", OBJECT_ID)

    assert (err.value.status, err.value.reason, err.value.path) == (400, "invalid_grant", "/token")
    assert "Invalid JWT Signature" in str(err.value) and "TALLYPASS_GOOGLE_SERVICE_ACCOUNT" in str(err.value)
    assert len(token_requests(google)) == 1 and api_requests(google) == []
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.ERROR]


def test_a_clock_far_ahead_makes_the_assertion_refused(
    google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], clock: Clock
) -> None:
    client = make_client(google)
    google.clock = lambda: clock.now - 2 * 3600  # Google's clock; ours is two hours ahead

    with pytest.raises(GoogleConfigError, match="short-lived token") as err:
        client.access_token()
    assert "system clock" in str(err.value)


def test_token_endpoint_outage_is_retried(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    ready.fail("POST", "/token", 503, times=2)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert make_client(ready).get("loyaltyObject", OBJECT_ID)["id"] == OBJECT_ID

    assert len(token_requests(ready)) == 3
    assert len(retry_warnings(caplog)) == 2 and "POST /token: 503" in retry_warnings(caplog)[0]


# ------------------------------------------------------------------------------ REST round trips


def test_insert_get_patch_update_and_add_message_round_trip(
    google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(google)

    created_class = client.insert("loyaltyClass", a_class())
    created = client.insert("loyaltyObject", an_object())
    fetched = client.get("loyaltyObject", OBJECT_ID)
    patched = client.patch("loyaltyObject", OBJECT_ID, {"loyaltyPoints": {"balance": {"int": 805}}})
    replaced = client.update("loyaltyObject", OBJECT_ID, {"classId": CLASS_ID, "state": "ACTIVE", **points(9)})
    with_message = client.add_message("loyaltyObject", OBJECT_ID, {"header": "Welcome", "body": "10 points to go",
                                                                   "id": "m1", "messageType": "TEXT"})

    assert created_class["reviewStatus"] == "APPROVED"  # UNDER_REVIEW is approved at once (§1)
    assert created == fetched == an_object()
    assert patched["loyaltyPoints"] == {"balance": {"int": 805}}  # the top-level field replaced: label gone (§3)
    assert patched["accountName"] == "Jane Doe"
    assert replaced == {"id": OBJECT_ID, "classId": CLASS_ID, "state": "ACTIVE", **points(9)}  # PUT: the rest gone
    assert with_message["messages"] == [{"header": "Welcome", "body": "10 points to go", "id": "m1",
                                         "messageType": "TEXT"}]
    assert google.objects[OBJECT_ID] == with_message
    assert [(r.method, r.path) for r in api_requests(google)] == [
        ("POST", "/walletobjects/v1/loyaltyClass"),
        ("POST", OBJECTS_PATH),
        ("GET", f"{OBJECTS_PATH}/{OBJECT_ID}"),
        ("PATCH", f"{OBJECTS_PATH}/{OBJECT_ID}"),
        ("PUT", f"{OBJECTS_PATH}/{OBJECT_ID}"),
        ("POST", f"{OBJECTS_PATH}/{OBJECT_ID}/addMessage"),
    ]
    assert api_requests(google)[-1].body == {"message": {"header": "Welcome", "body": "10 points to go", "id": "m1",
                                                          "messageType": "TEXT"}}
    assert all(r.headers["content-type"] == "application/json" for r in api_requests(google) if r.method != "GET")


def test_class_patch_and_update(ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]) -> None:
    client = make_client(ready)

    patched = client.patch("loyaltyClass", CLASS_ID, {"programName": "Bean Club"})
    replaced = client.update("loyaltyClass", CLASS_ID, a_class(hexBackgroundColor="#fff"))

    assert (patched["programName"], patched["reviewStatus"]) == ("Bean Club", "APPROVED")
    assert (replaced["programName"], replaced["hexBackgroundColor"]) == ("Bean Rewards", "#fff")
    with pytest.raises(ValueError, match="whose id is"):
        client.update("loyaltyClass", CLASS_ID, a_class(id=f"{ISSUER}.other"))


def test_resource_ids_are_escaped_in_the_path(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    raw_paths: list[bytes] = []
    http = httpx.Client(transport=httpx.WSGITransport(app=ready.wsgi_app),
                        event_hooks={"request": [lambda request: raw_paths.append(request.url.raw_path)]})
    client = make_client(ready, http=http)

    with pytest.raises(GoogleNotFound):
        client.get("loyaltyObject", f"{ISSUER}.a/b c?d")
    client.get("loyaltyObject", OBJECT_ID)

    assert raw_paths[-2] == f"{OBJECTS_PATH}/{ISSUER}.a%2Fb%20c%3Fd".encode()
    assert raw_paths[-1] == f"{OBJECTS_PATH}/{OBJECT_ID}".encode()
    with pytest.raises(ValueError, match="kind"):
        client.get("offerObject", OBJECT_ID)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resource id"):
        client.get("loyaltyObject", "..")


def test_insert_or_patch_on_an_existing_id_patches(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(ready)

    resource, created = client.insert_or_patch("loyaltyObject", an_object(points=42, accountName="J. Doe"))

    assert created is False
    assert resource["loyaltyPoints"]["balance"] == {"int": 42} and resource["accountName"] == "J. Doe"
    post, patch = api_requests(ready)
    assert (post.method, patch.method, patch.path) == ("POST", "PATCH", f"{OBJECTS_PATH}/{OBJECT_ID}")
    assert patch.body == {k: v for k, v in an_object(points=42, accountName="J. Doe").items() if k != "id"}


def test_insert_or_patch_on_a_new_id_inserts(ready: FakeGoogleWallet,
                                             make_client: Callable[..., GoogleWalletClient]) -> None:
    resource, created = make_client(ready).insert_or_patch("loyaltyObject", an_object(f"{ISSUER}.member-0002"))

    assert created is True and resource["id"] == f"{ISSUER}.member-0002"
    assert [r.method for r in api_requests(ready)] == ["POST"]


def test_patch_or_insert_on_a_missing_id_inserts(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(ready)
    new_id = f"{ISSUER}.member-0002"

    resource, created = client.patch_or_insert("loyaltyObject", new_id, points(7), full=an_object(new_id, 7))
    again, created_again = client.patch_or_insert("loyaltyObject", new_id, points(8), full=an_object(new_id, 8))

    assert created is True and resource == an_object(new_id, 7)
    assert created_again is False and again["loyaltyPoints"]["balance"] == {"int": 8}
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in api_requests(ready)] == [
        ("PATCH", new_id), ("POST", "loyaltyObject"), ("PATCH", new_id),
    ]


def test_patch_or_insert_refuses_a_full_resource_that_lacks_the_body(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(ready)
    with pytest.raises(ValueError, match="lacks body's loyaltyPoints"):
        client.patch_or_insert("loyaltyObject", OBJECT_ID, points(7), full=an_object(points=6))
    with pytest.raises(ValueError, match="full\\['id'\\]"):
        client.patch_or_insert("loyaltyObject", OBJECT_ID, points(7), full=an_object(f"{ISSUER}.x", 7))
    assert ready.requests == []  # refused before any request


# ------------------------------------------------------------------------------ retries


def test_429_and_503_are_retried_with_back_off(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    ready.fail("PATCH", OBJECTS_PATH, 429)
    ready.fail("PATCH", OBJECTS_PATH, 503)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        patched = make_client(ready).patch("loyaltyObject", OBJECT_ID, points(3))

    assert patched["loyaltyPoints"]["balance"] == {"int": 3}
    assert len(api_requests(ready, "PATCH")) == 3
    warnings = retry_warnings(caplog)
    assert len(warnings) == 2
    assert f"PATCH /loyaltyObject/{OBJECT_ID}: 429 rateLimitExceeded, retry 1 of 3" in warnings[0]
    assert f"PATCH /loyaltyObject/{OBJECT_ID}: 503 backendError, retry 2 of 3" in warnings[1]


def test_retry_after_is_honoured(ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]) -> None:
    ready.fail("GET", OBJECTS_PATH, 429, retry_after=1)
    client = make_client(ready, backoff_max=2.0)  # the back-off alone would wait ~5 ms

    started = time.monotonic()
    client.get("loyaltyObject", OBJECT_ID)

    assert time.monotonic() - started >= 0.95
    assert len(api_requests(ready)) == 2


def test_a_retry_after_beyond_backoff_max_gives_up_at_once(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    ready.fail("GET", OBJECTS_PATH, 503, retry_after=120)

    with pytest.raises(GoogleUnavailable) as err:
        make_client(ready).get("loyaltyObject", OBJECT_ID)

    assert (err.value.status, err.value.retry_after) == (503, 120.0)
    assert len(api_requests(ready)) == 1


def test_persistent_503_is_unavailable_after_max_attempts(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    ready.fail("PATCH", OBJECTS_PATH, 503, times=10)

    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(GoogleUnavailable) as err:
        make_client(ready).patch("loyaltyObject", OBJECT_ID, points(3))

    e = err.value
    assert (e.status, e.reason, e.method, e.path) == (503, "backendError", "PATCH", f"/loyaltyObject/{OBJECT_ID}")
    assert len(api_requests(ready)) == 4
    assert len(retry_warnings(caplog)) == 3
    assert "failed after 4 attempts: 503" in str(e)
    assert ready.objects[OBJECT_ID] == an_object()


def test_network_errors_are_retried_then_unavailable(
    google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/walletobjects/v1"  # nothing listens once closed
    # the token endpoint in process, the API on a port where nothing listens
    http = httpx.Client(mounts={"http://localhost": httpx.WSGITransport(app=google.wsgi_app)})
    client = make_client(google, http=http, api_url=dead)

    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(GoogleUnavailable) as err:
        client.get("loyaltyObject", OBJECT_ID)

    assert err.value.status is None and "ConnectError" in str(err.value)
    assert len(retry_warnings(caplog)) == 3


def test_add_message_is_not_repeated_when_google_may_have_acted(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    """A repeated TEXT_AND_NOTIFY would notify twice (3 a day): only 429/503 and unsent requests are retried."""
    client = make_client(ready)
    message = {"header": "Reward", "body": "A free coffee", "messageType": "TEXT"}
    add_path = f"{OBJECTS_PATH}/{OBJECT_ID}/addMessage"

    ready.fail("POST", add_path, 500)
    with pytest.raises(GoogleUnavailable, match="not repeated"):
        client.add_message("loyaltyObject", OBJECT_ID, message)
    ready.fail("POST", add_path, 503)
    resource = client.add_message("loyaltyObject", OBJECT_ID, message)

    assert len(resource["messages"]) == 1
    assert len(api_requests(ready)) == 3


# ------------------------------------------------------------------------------ errors that are not retried


def test_403_is_a_configuration_error_naming_the_console(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    """The service account is not a user of that issuer (reference §3, rest-samples#1/#52/#99)."""
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(GoogleConfigError) as err:
        make_client(ready).insert("loyaltyClass", a_class(id="3388000000099999999.other"))

    e = err.value
    assert (e.status, e.reason, e.method, e.path) == (403, "PermissionDeniedException", "POST", "/loyaltyClass")
    assert "invite the service account" in str(e) and "Pay & Wallet Console" in str(e) and EMAIL in str(e)
    assert len(api_requests(ready)) == 1
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.ERROR]


def test_notification_quota_refusal_is_not_retried(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], clock: Clock
) -> None:
    client = make_client(ready)
    notify = {"notifyPreference": "NOTIFY_ON_UPDATE"}
    client.patch("loyaltyObject", OBJECT_ID, {**points(1), **notify})
    client.add_message("loyaltyObject", OBJECT_ID, {"header": "h", "body": "b", "messageType": "TEXT_AND_NOTIFY"})
    client.update("loyaltyObject", OBJECT_ID, {**an_object(points=2), **notify})
    before = len(api_requests(ready))

    with pytest.raises(GoogleQuotaExceeded) as err:
        client.patch("loyaltyObject", OBJECT_ID, {**points(3), **notify})

    assert (err.value.status, err.value.reason) == (429, "QuotaExceededException")
    assert len(api_requests(ready)) == before + 1  # not retried
    assert ready.objects[OBJECT_ID]["loyaltyPoints"]["balance"] == {"int": 2}  # nothing stored
    assert "notifyPreference" not in ready.objects[OBJECT_ID]
    assert client.patch("loyaltyObject", OBJECT_ID, points(3))["loyaltyPoints"]["balance"] == {"int": 3}  # silent
    clock.advance(24 * 3600)
    client.patch("loyaltyObject", OBJECT_ID, {**points(4), **notify})
    assert len(ready.notifications[OBJECT_ID]) == 4


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"loyaltyPoints": {"balance": {"int": 1, "string": "1"}}}, "BadRequestException"),
        ({"state": "ON"}, "invalid"),  # not a State ("active" is: a legacy alias the document lists)
        ({"barcode": {"type": "QR", "value": "1"}}, "invalid"),
        ({"rewardsTier": "Gold"}, "invalid"),  # a LoyaltyClass field, not a LoyaltyObject one
        ({"merchantLocations": [{"latitude": 47.0, "longitude": 28.8}] * 11}, "BadRequestException"),
    ],
)
def test_400_is_invalid_and_not_retried(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], bad: dict, reason: str
) -> None:
    with pytest.raises(GoogleInvalid) as err:
        make_client(ready).insert("loyaltyObject", an_object(f"{ISSUER}.member-0002", **bad))

    assert (err.value.status, err.value.reason) == (400, reason)
    assert len(api_requests(ready)) == 1 and f"{ISSUER}.member-0002" not in ready.objects


def test_404_and_409(ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]) -> None:
    client = make_client(ready)

    with pytest.raises(GoogleNotFound) as missing:
        client.get("loyaltyObject", f"{ISSUER}.nobody")
    with pytest.raises(GoogleConflict) as exists:
        client.insert("loyaltyObject", an_object())
    with pytest.raises(GoogleNotFound) as no_class:
        client.insert("loyaltyObject", an_object(f"{ISSUER}.m2", classId=f"{ISSUER}.no_class"))

    assert (missing.value.status, missing.value.reason) == (404, "NotFoundException")
    assert (exists.value.status, exists.value.reason) == (409, "AlreadyExistsException")
    assert no_class.value.reason == "IssuerClassNotFoundException"
    assert all(isinstance(e.value, GoogleWalletError) for e in (missing, exists, no_class))
    assert len(api_requests(ready)) == 3


def test_access_tokens_and_assertions_are_never_logged_nor_in_errors(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(ready)
    ready.fail("GET", OBJECTS_PATH, 503, times=10)
    ready.fail("POST", "/token", 503)
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for call in (lambda: client.get("loyaltyObject", OBJECT_ID),
                     lambda: client.insert("loyaltyClass", a_class(id="3388000000099999999.x"))):
            try:
                call()
            except GoogleWalletError as exc:
                errors.append(str(exc) + repr(exc.__dict__))
        ready.revoke_tokens()
        client.patch("loyaltyObject", OBJECT_ID, points(1))
        logging.getLogger("hpack.hpack").debug("Decoded %s", [(b"authorization", b"Bearer ya29.secret-value")])

    secrets = [r.body["assertion"] for r in token_requests(ready)]
    secrets += [r.headers["authorization"].removeprefix("Bearer ") for r in api_requests(ready)]
    assert len(errors) == 2 and secrets
    for secret in secrets:
        assert secret not in caplog.text and all(secret not in e for e in errors)
        assert secret.split(".")[1][:20] not in caplog.text
    assert "ya29.secret-value" not in caplog.text and "(HTTP/2 header block, not logged)" in caplog.text


def test_hpack_header_logs_are_hidden_whatever_they_hold() -> None:
    """hpack logs every header at DEBUG (bearer tokens, device tokens, push endpoints): every client's
    records from it say only that a header block was there."""
    import app.channels.http  # noqa: F401 (installs the filter)

    record = logging.LogRecord("hpack.hpack", logging.DEBUG, __file__, 1, "Decoded %s", (
        [(b"authorization", b"Bearer ya29.secret-value"), (b":path", b"/walletobjects/v1/loyaltyObject/1.x")],), None)

    assert all(f.filter(record) for f in logging.getLogger("hpack.hpack").filters)
    assert record.getMessage() == "(HTTP/2 header block, not logged)"


# ------------------------------------------------------------------------------ one connection, many requests


def test_fifty_sequential_requests_share_one_connection(
    http_google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(http_google, real_clock=True)
    client.insert("loyaltyClass", a_class())
    client.insert("loyaltyObject", an_object())

    for i in range(48):
        client.patch("loyaltyObject", OBJECT_ID, points(i))

    assert len(api_requests(http_google)) == 50
    assert http_google.connections == 1  # the token request too
    assert http_google.objects[OBJECT_ID]["loyaltyPoints"]["balance"] == {"int": 47}


def test_threads_share_the_client_and_reuse_connections(
    http_google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    client = make_client(http_google, real_clock=True)
    client.insert("loyaltyClass", a_class())
    ids = [f"{ISSUER}.m{n}" for n in range(4)]
    for object_id in ids:
        client.insert("loyaltyObject", an_object(object_id))
    errors: list[BaseException] = []

    def worker(object_id: str) -> None:
        try:
            for i in range(25):
                client.patch("loyaltyObject", object_id, points(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(object_id,)) for object_id in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert all(http_google.objects[i]["loyaltyPoints"]["balance"] == {"int": 24} for i in ids)
    assert http_google.connections <= 4  # HTTP/1.1 to the fake: at most one per concurrent thread


def test_close_closes_only_the_clients_own_connections(
    http_google: FakeGoogleWallet, account: ServiceAccount
) -> None:
    config = GoogleWalletConfig(http_google.api_url, http_google.token_url, account, **FAST)
    own = GoogleWalletClient(config)
    own.access_token()
    own.close()
    assert own._http.is_closed

    with httpx.Client() as http:
        lent = GoogleWalletClient(config, http=http)
        lent.close()
        assert not http.is_closed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_forked_child_opens_its_own_connection(
    http_google: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    """Celery prefork: the child must not share (or close) the parent's kept-alive connection."""
    client = make_client(http_google, real_clock=True)
    client.insert("loyaltyClass", a_class())
    client.insert("loyaltyObject", an_object())

    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        code = 1
        try:
            client.patch("loyaltyObject", OBJECT_ID, points(1))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    client.patch("loyaltyObject", OBJECT_ID, points(2))  # the parent's connection still works
    assert http_google.connections == 2
    assert http_google.objects[OBJECT_ID]["loyaltyPoints"]["balance"] == {"int": 2}


def test_configuration_is_checked_at_construction(account: ServiceAccount) -> None:
    good = {"api_url": "https://walletobjects.googleapis.com/walletobjects/v1",
            "token_url": "https://oauth2.googleapis.com/token", "account": account}
    with pytest.raises(ValueError, match="api_url"):
        GoogleWalletClient(GoogleWalletConfig(**{**good, "api_url": "walletobjects.googleapis.com"}))
    with pytest.raises(ValueError, match="max_attempts"):
        GoogleWalletClient(GoogleWalletConfig(**good, max_attempts=0))
    with pytest.raises(ValueError, match="ServiceAccount"):
        GoogleWalletClient(GoogleWalletConfig(**{**good, "account": {"client_email": EMAIL}}))  # type: ignore[arg-type]
    GoogleWalletClient(GoogleWalletConfig(**good)).close()


# ------------------------------------------------------------------------------ the fake itself behaves like Google


def test_the_fake_answers_like_google(ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient],
                                      clock: Clock) -> None:
    token = make_client(ready).access_token()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(transport=httpx.WSGITransport(app=ready.wsgi_app), base_url=ready.api_url) as http:

        def error(r: httpx.Response) -> tuple[int, str, str]:
            e = r.json()["error"]
            assert e["code"] == r.status_code and e["errors"][0]["message"] == e["message"]
            return r.status_code, e["status"], e["errors"][0]["reason"]

        assert error(http.get("/loyaltyObject/x", headers={})) == (401, "UNAUTHENTICATED", "authError")
        assert error(http.get("/nothing", headers=auth)) == (404, "NOT_FOUND", "NotFoundException")
        assert error(http.delete(f"/loyaltyObject/{OBJECT_ID}", headers=auth))[0] == 405
        assert error(http.post("/loyaltyClass", headers=auth, content=b"{nope"))[0] == 400
        for bad in ({"programLogo": {"sourceUri": {"uri": "logo.png"}}}, {"hexBackgroundColor": "blue"},
                    {"reviewStatus": "APPROVED"}, {"issuerName": ""}, {"id": f"{ISSUER}.bad id"}):
            assert error(http.post("/loyaltyClass", headers=auth, json={**a_class(id=f"{ISSUER}.c2"), **bad}))[0] == 400
        draft = http.post("/loyaltyClass", headers=auth, json=a_class(id=f"{ISSUER}.draft", reviewStatus="DRAFT"))
        assert draft.json()["reviewStatus"] == "DRAFT"
        assert error(http.post("/loyaltyObject", headers=auth,
                               json=an_object(f"{ISSUER}.m9", classId=f"{ISSUER}.draft")))[0] == 404
        listed = http.get("/loyaltyObject", headers=auth, params={"classId": CLASS_ID}).json()
        assert [r["id"] for r in listed["resources"]] == [OBJECT_ID]
        for i in range(10):
            http.post(f"/loyaltyObject/{OBJECT_ID}/addMessage", headers=auth,
                      json={"message": {"header": "h", "body": str(i)}}).raise_for_status()
        eleventh = http.post(f"/loyaltyObject/{OBJECT_ID}/addMessage", headers=auth,
                             json={"message": {"header": "h", "body": "11"}})
        assert error(eleventh)[0] == 400
        clock.advance(3600)
        assert error(http.get(f"/loyaltyObject/{OBJECT_ID}", headers=auth))[0] == 401  # the token expired
    with httpx.Client(transport=httpx.WSGITransport(app=ready.wsgi_app)) as http:
        bad_grant = http.post(ready.token_url, data={"grant_type": "client_credentials"})
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "unsupported_grant_type")


def test_a_refusal_carries_the_body_and_googles_own_message(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    """Any 4xx that is not about credentials, existence or load refuses the body as it is (here a 422): the error
    keeps what was sent and Google's message, so the service can record the refusal and not send it again."""
    ready.fail("PATCH", OBJECTS_PATH, 422, reason="invalid", message="The balance is not a number")

    with pytest.raises(GoogleInvalid) as err:
        make_client(ready).patch("loyaltyObject", OBJECT_ID, points(3))

    e = err.value
    assert (e.status, e.reason, e.detail, e.body) == (422, "invalid", "The balance is not a number", points(3))
    assert (e.method, e.path) == ("PATCH", f"/loyaltyObject/{OBJECT_ID}")
    assert len(api_requests(ready)) == 1  # not retried


def test_the_fake_refuses_what_the_discovery_document_does_not_have(
    ready: FakeGoogleWallet, make_client: Callable[..., GoogleWalletClient]
) -> None:
    """Google's resources as its walletobjects v1 discovery document defines them, at any depth, with Google's
    error shape; and what the document allows (legacy enum aliases, int64 as strings or numbers) is taken."""
    auth = {"Authorization": f"Bearer {make_client(ready).access_token()}"}
    with httpx.Client(transport=httpx.WSGITransport(app=ready.wsgi_app), base_url=ready.api_url) as http:

        def refused(response: httpx.Response) -> tuple[str, str]:
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert (error["code"], error["status"], error["errors"][0]["reason"]) == (400, "INVALID_ARGUMENT",
                                                                                      "invalid")
            [violation] = error["details"][0]["fieldViolations"]
            assert violation["description"] == error["message"]
            return violation["field"], error["message"]

        tiered = an_object(f"{ISSUER}.m2", rewardsTier="Gold")
        assert refused(http.post("/loyaltyObject", headers=auth, json=tiered)) == (
            "resource.rewardsTier",
            "Invalid JSON payload received. Unknown name \"rewardsTier\" at 'resource': Cannot find field.")
        assert refused(http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth, json={"rewardsTier": "Gold"}))[0] \
            == "resource.rewardsTier"
        nested = {"messages": [{"header": "h", "body": "b", "displayInterval": {"start": {"date": "x",
                                                                                        "zone": "UTC"}}}]}
        assert refused(http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth, json=nested))[1] == (
            "Invalid JSON payload received. Unknown name \"zone\" at 'resource.messages[0].display_interval.start': "
            "Cannot find field.")
        assert refused(http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth, json={"loyaltyPoints": "12"}))[0] \
            == "resource.loyalty_points"  # a string is not a LoyaltyPoints
        assert refused(http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth,
                                  json={"loyaltyPoints": {"balance": {"int": "12a"}}}))[1] == \
            "Invalid value at 'resource.loyalty_points.balance.int' (TYPE_INT32), \"12a\""
        assert refused(http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth, json={"state": "ON"}))[1] == \
            "Invalid value at 'resource.state' (TYPE_ENUM), \"ON\""
        assert refused(http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth, json={"hasUsers": "yes"}))[0] == \
            "resource.has_users"
        assert refused(http.post(f"/loyaltyObject/{OBJECT_ID}/addMessage", headers=auth,
                                 json={"message": {"header": "h", "body": "b", "messageType": "SHOUT"}}))[0] == \
            "message.message_type"
        assert refused(http.patch("/loyaltyClass/" + CLASS_ID, headers=auth, json={"loyaltyPoints": points(1)}))[0] \
            == "resource.loyaltyPoints"

        allowed = {"state": "active", "barcode": {"type": "qrCode", "value": "0001"},  # aliases the document lists
                   "secondaryLoyaltyPoints": {"label": "Cash", "balance": {"money": {"currencyCode": "EUR",
                                                                                     "micros": 2500000}}},
                   "loyalty_points": {"label": "Points", "balance": {"int": "805"}}}  # proto name, int32 as text
        response = http.patch(f"/loyaltyObject/{OBJECT_ID}", headers=auth, json=allowed)
        assert response.status_code == 200, response.text
        answered = response.json()  # in proto3 JSON's output form, as Google answers
        assert answered["loyaltyPoints"] == {"label": "Points", "balance": {"int": 805}}
        assert answered["secondaryLoyaltyPoints"]["balance"]["money"]["micros"] == "2500000"
        assert (answered["state"], answered["barcode"]["type"]) == ("ACTIVE", "QR_CODE")
    assert len(ready.objects) == 1  # nothing refused was stored
