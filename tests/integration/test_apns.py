"""The APNs client on the wire, against the local HTTP/2 stand-in (tests/fakes/apns_h2.py): certificate and
token auth, outcomes and retries, one connection for many pushes, close and fork
(../shared/reference/apple_wallet.md §4)."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from app.channels import dev_credentials as dc
from app.channels.apns import ApnsClient, ApnsConfig, PushOutcome
from tests.fakes.apns_h2 import FakeApns

PASS_TYPE, TEAM, KEY_ID = "pass.test.tallypass", "TEAMID1234", "KEYID12345"
FAST = {"backoff": 0.005, "backoff_max": 0.02, "max_attempts": 3, "timeout": 5.0}


def tok(i: int) -> str:
    return f"{i:064x}"


@dataclass(frozen=True)
class Creds:
    dir: Path
    root: Path
    wwdr: Path
    certificate: x509.Certificate
    private_key: PrivateKeyTypes
    token_key: ec.EllipticCurvePrivateKey


def _creds(out: Path) -> Creds:
    dc.write_dev_credentials(out, pass_type_id=PASS_TYPE, team_id=TEAM)
    token_key = dc.load_private_key(out / dc.APNS_AUTH_KEY)
    assert isinstance(token_key, ec.EllipticCurvePrivateKey)
    return Creds(
        dir=out,
        root=out / dc.ROOT_CA,
        wwdr=out / dc.WWDR_CERT,
        certificate=dc.load_certificate(out / dc.PASS_CERT),
        private_key=dc.load_private_key(out / dc.PASS_KEY),
        token_key=token_key,
    )


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Creds:
    return _creds(tmp_path_factory.mktemp("apns-certs"))


@pytest.fixture(scope="module")
def other_creds(tmp_path_factory: pytest.TempPathFactory) -> Creds:
    """A second, unrelated chain: its pass certificate is not issued by the CA the fake trusts."""
    return _creds(tmp_path_factory.mktemp("apns-other-certs"))


@pytest.fixture
def apns(creds: Creds) -> Iterator[FakeApns]:
    """APNs with certificate auth: the client certificate must chain to the dev root via the WWDR stand-in."""
    with FakeApns(client_ca=[creds.root, creds.wwdr]) as fake:
        yield fake


@pytest.fixture
def token_apns(creds: Creds) -> Iterator[FakeApns]:
    with FakeApns(token_public_key=creds.token_key.public_key(), team_id=TEAM, key_id=KEY_ID) as fake:
        yield fake


@pytest.fixture
def make_client(creds: Creds) -> Iterator[Callable[..., ApnsClient]]:
    """ApnsClient factory: certificate auth by default, ``auth="token"`` for token auth; closed afterwards."""
    clients: list[ApnsClient] = []

    def make(fake: FakeApns, *, auth: str = "certificate", clock: Callable[[], float] = time.time,
             **overrides: Any) -> ApnsClient:
        fields: dict[str, Any] = {"base_url": fake.url, "topic": PASS_TYPE, "ca_file": fake.ca_file, **FAST}
        if auth == "certificate":
            fields |= {"certificate": creds.certificate, "private_key": creds.private_key}
        else:
            fields |= {"token_key": creds.token_key, "key_id": KEY_ID, "team_id": TEAM}
        fields |= overrides
        client = ApnsClient(ApnsConfig(**fields), clock=clock)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def requests_for(fake: FakeApns, token: str) -> int:
    return sum(1 for r in fake.requests if r.token == token)


# ------------------------------------------------------------------------------ certificate auth


def test_certificate_auth_push_arrives_as_apns_expects(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    [result] = make_client(apns).push([tok(1)])

    assert (result.token, result.outcome, result.status, result.attempts) == (tok(1), PushOutcome.SENT, 200, 1)
    [req] = apns.requests
    assert (req.method, req.path, req.token, req.body) == ("POST", f"/3/device/{tok(1)}", tok(1), b"{}")
    assert req.headers["apns-topic"] == PASS_TYPE
    assert "authorization" not in req.headers
    assert req.client_subject is not None
    assert "CN=Pass Type ID: pass.test.tallypass" in req.client_subject.split(",")


def test_client_without_a_certificate_cannot_connect(
    apns: FakeApns, make_client: Callable[..., ApnsClient]
) -> None:
    client = make_client(apns, auth="token")  # valid for token auth, but presents no client certificate

    results = client.push([tok(1), tok(2)])

    assert [r.outcome for r in results] == [PushOutcome.FAILED, PushOutcome.FAILED]
    assert all(r.status is None and r.attempts == FAST["max_attempts"] and r.reason for r in results)
    assert apns.requests == []  # nothing got through the handshake
    assert apns.handshake_failures >= 1


def test_certificate_from_another_ca_is_refused(
    apns: FakeApns, other_creds: Creds, make_client: Callable[..., ApnsClient]
) -> None:
    client = make_client(apns, certificate=other_creds.certificate, private_key=other_creds.private_key)

    [result] = client.push([tok(1)])

    assert result.outcome is PushOutcome.FAILED
    assert apns.requests == []


def test_untrusted_server_fails_and_costs_one_handshake_per_round_not_per_token(
    apns: FakeApns, make_client: Callable[..., ApnsClient]
) -> None:
    """Without ca_file the fake's certificate does not verify. Requests waiting for a connection that failed
    share its error instead of each opening another (APNs treats connection storms as an attack)."""
    client = make_client(apns, ca_file=None, max_attempts=2)

    results = client.push([tok(i) for i in range(50)])

    assert {r.outcome for r in results} == {PushOutcome.FAILED}
    assert "CERTIFICATE_VERIFY_FAILED" in (results[0].reason or "")
    assert apns.connections <= 3 * 2, apns.connections  # a handful per round (jitter), never 50 per round


# ------------------------------------------------------------------------------ token auth


def _claims(creds: Creds, bearer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    token = bearer.removeprefix("bearer ")
    claims = jwt.decode(token, creds.token_key.public_key(), algorithms=["ES256"], options={"verify_iat": False})
    return jwt.get_unverified_header(token), claims


def test_token_auth_sends_a_valid_es256_jwt_and_reuses_it(
    token_apns: FakeApns, creds: Creds, make_client: Callable[..., ApnsClient]
) -> None:
    client = make_client(token_apns, auth="token")

    first = client.push([tok(1), tok(2)])
    second = client.push([tok(3)])

    assert {r.outcome for r in first + second} == {PushOutcome.SENT}
    bearers = {r.headers["authorization"] for r in token_apns.requests}
    assert len(token_apns.requests) == 3 and len(bearers) == 1
    header, claims = _claims(creds, bearers.pop())
    assert header["alg"] == "ES256" and header["kid"] == KEY_ID
    assert claims["iss"] == TEAM and abs(claims["iat"] - time.time()) < 60
    assert all(r.client_subject is None for r in token_apns.requests)


def test_provider_token_is_replaced_after_50_minutes(
    token_apns: FakeApns, creds: Creds, make_client: Callable[..., ApnsClient]
) -> None:
    offset = [-55 * 60.0]
    client = make_client(token_apns, auth="token", clock=lambda: time.time() + offset[0])

    client.push([tok(1)])  # issued "55 minutes ago" (still under APNs's hour)
    offset[0] = 0.0
    client.push([tok(2)])

    old, new = (r.headers["authorization"] for r in token_apns.requests)
    assert old != new
    assert _claims(creds, new)[1]["iat"] - _claims(creds, old)[1]["iat"] >= 55 * 60 - 2


def test_expired_provider_token_is_refreshed_once_and_retried(
    token_apns: FakeApns, make_client: Callable[..., ApnsClient]
) -> None:
    offset = [-25 * 60.0]
    client = make_client(token_apns, auth="token", clock=lambda: time.time() + offset[0])
    client.push([tok(1)])  # token issued 25 minutes "ago": old enough to be replaced, not due yet
    offset[0] = 0.0
    token_apns.script(tok(2), [(403, "ExpiredProviderToken", None)])
    token_apns.script(tok(3), [(403, "ExpiredProviderToken", None)])

    results = client.push([tok(2), tok(3)])

    assert [(r.outcome, r.attempts) for r in results] == [(PushOutcome.SENT, 2), (PushOutcome.SENT, 2)]
    bearers = [r.headers["authorization"] for r in token_apns.requests]
    assert len(set(bearers)) == 2  # one refresh for both streams, not one each
    assert bearers[-1] != bearers[0]


def test_clock_an_hour_behind_is_rejected_not_refreshed_in_a_loop(
    token_apns: FakeApns, make_client: Callable[..., ApnsClient], caplog: pytest.LogCaptureFixture
) -> None:
    """APNs (here the fake's own iat check) calls a just-issued token expired: refreshing cannot help and
    would earn TooManyProviderTokenUpdates, so the push is rejected with a hint about the clock."""
    client = make_client(token_apns, auth="token", clock=lambda: time.time() - 61 * 60)

    with caplog.at_level(logging.ERROR, logger="app.channels.apns"):
        [result] = client.push([tok(1)])

    assert (result.outcome, result.status, result.reason) == (PushOutcome.REJECTED, 403, "ExpiredProviderToken")
    assert len(token_apns.requests) == 1
    assert "system clock" in caplog.text


def test_wrong_key_id_is_rejected_once_with_an_operator_hint(
    token_apns: FakeApns, make_client: Callable[..., ApnsClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(token_apns, auth="token", key_id="WRONGKEY00")

    with caplog.at_level(logging.ERROR, logger="app.channels.apns"):
        results = client.push([tok(1), tok(2)])

    assert [(r.outcome, r.status, r.reason, r.attempts) for r in results] == [
        (PushOutcome.REJECTED, 403, "InvalidProviderToken", 1)
    ] * 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "APNs refused the request: 403 InvalidProviderToken" in errors[0].getMessage()


# ------------------------------------------------------------------------------ outcomes and retries


def test_410_is_unregistered(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    apns.script(tok(1), [(410, None, None)])

    [result] = make_client(apns).push([tok(1)])

    assert (result.outcome, result.status, result.reason, result.attempts) == (
        PushOutcome.UNREGISTERED, 410, "Unregistered", 1
    )


def test_400_bad_device_token_is_unregistered(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    apns.script(tok(1), [(400, "BadDeviceToken", None)])

    [result, local] = make_client(apns).push([tok(1), "not-a-token"])

    assert (result.outcome, result.status, result.reason) == (PushOutcome.UNREGISTERED, 400, "BadDeviceToken")
    assert (local.outcome, local.status, local.reason, local.attempts) == (
        PushOutcome.UNREGISTERED, None, "BadDeviceToken", 0
    )
    assert [r.token for r in apns.requests] == [tok(1)]  # the non-hex one was never sent


def test_500_then_200_is_retried_and_sent(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    apns.script(tok(1), [(500, None, None)])

    [result] = make_client(apns).push([tok(1)])

    assert (result.outcome, result.status, result.attempts) == (PushOutcome.SENT, 200, 2)
    assert requests_for(apns, tok(1)) == 2


def test_429_retry_after_is_honoured(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    apns.script(tok(1), [(429, "TooManyRequests", {"retry-after": "1"})])
    client = make_client(apns, backoff_max=5.0)  # the back-off alone would wait ~5 ms

    started = time.monotonic()
    [result] = client.push([tok(1)])

    assert (result.outcome, result.attempts) == (PushOutcome.SENT, 2)
    assert time.monotonic() - started >= 0.95


def test_persistent_503_fails_after_max_attempts(
    apns: FakeApns, make_client: Callable[..., ApnsClient], caplog: pytest.LogCaptureFixture
) -> None:
    apns.script(tok(1), [(503, None, None)] * 10)

    with caplog.at_level(logging.WARNING, logger="app.channels.apns"):
        [result] = make_client(apns, max_attempts=4).push([tok(1)])

    assert (result.outcome, result.status, result.reason, result.attempts) == (
        PushOutcome.FAILED, 503, "ServiceUnavailable", 4
    )
    assert requests_for(apns, tok(1)) == 4
    assert "failed for 1 of 1 tokens" in caplog.text


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "BadCertificate"), (400, "DeviceTokenNotForTopic"), (400, "TopicDisallowed")]
)
def test_403_and_other_4xx_are_rejected_without_retry(
    apns: FakeApns, make_client: Callable[..., ApnsClient], caplog: pytest.LogCaptureFixture, status: int,
    reason: str,
) -> None:
    for i in (1, 2):
        apns.script(tok(i), [(status, reason, None)])

    with caplog.at_level(logging.ERROR, logger="app.channels.apns"):
        results = make_client(apns).push([tok(1), tok(2), tok(3)])

    assert [(r.outcome, r.status, r.reason, r.attempts) for r in results] == [
        (PushOutcome.REJECTED, status, reason, 1), (PushOutcome.REJECTED, status, reason, 1),
        (PushOutcome.SENT, 200, None, 1),
    ]
    assert len(apns.requests) == 3
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"APNs refused the request: {status} {reason} — check" in error.getMessage()


@pytest.mark.parametrize("failure", [FakeApns.RESET_STREAM, FakeApns.DROP_CONNECTION])
def test_network_and_protocol_errors_are_retried(
    apns: FakeApns, make_client: Callable[..., ApnsClient], failure: int
) -> None:
    apns.script(tok(1), [(failure, None, None)])

    [result] = make_client(apns).push([tok(1)])

    assert (result.outcome, result.attempts) == (PushOutcome.SENT, 2)
    assert apns.connections == (2 if failure == FakeApns.DROP_CONNECTION else 1)


# ------------------------------------------------------------------------------ one connection, many streams


def test_a_thousand_pushes_in_one_call_share_one_connection(
    apns: FakeApns, make_client: Callable[..., ApnsClient]
) -> None:
    tokens = [tok(i) for i in range(1000)]

    results = make_client(apns).push(tokens)

    assert [r.token for r in results] == tokens
    assert {r.outcome for r in results} == {PushOutcome.SENT}
    assert len(apns.requests) == 1000
    assert apns.connections == 1 and {r.connection_id for r in apns.requests} == {1}


def test_push_calls_reuse_the_connection_also_from_many_threads(
    apns: FakeApns, make_client: Callable[..., ApnsClient]
) -> None:
    client = make_client(apns)
    client.push([tok(0)])
    client.push([tok(1)])
    outcomes: list[PushOutcome] = []

    def worker(n: int) -> None:
        outcomes.extend(r.outcome for r in client.push([tok(1000 * n + i) for i in range(25)]))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == [PushOutcome.SENT] * 200
    assert apns.connections == 1


def test_results_come_back_in_input_order(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    apns.script(tok(2), [(500, None, None), (500, None, None)])  # finishes last
    apns.script(tok(3), [(410, None, None)])
    apns.script(tok(4), [(403, "BadCertificate", None)])
    tokens = [tok(2), tok(1), "xyz", tok(3), tok(4), tok(1), tok(5)]

    results = make_client(apns).push(tokens)

    assert [r.token for r in results] == tokens
    assert [r.outcome for r in results] == [
        PushOutcome.SENT, PushOutcome.SENT, PushOutcome.UNREGISTERED, PushOutcome.UNREGISTERED,
        PushOutcome.REJECTED, PushOutcome.SENT, PushOutcome.SENT,
    ]
    assert results[0].attempts == 3


def test_push_after_close_reconnects(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    client = make_client(apns)
    assert client.push([tok(1)])[0].outcome is PushOutcome.SENT
    client.close()
    client.close()  # idempotent

    [result] = client.push([tok(2)])

    assert result.outcome is PushOutcome.SENT
    assert apns.connections == 2
    assert client.push([]) == []


def test_close_waits_for_pushes_in_flight(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    apns.script(tok(1), [(503, None, None)] * 2)
    client = make_client(apns, backoff=0.2, backoff_max=0.2)
    results: list[Any] = []
    pusher = threading.Thread(target=lambda: results.extend(client.push([tok(1)])))
    pusher.start()
    time.sleep(0.1)  # the push is now sleeping between attempts

    client.close()
    pusher.join()

    assert results[0].outcome is PushOutcome.SENT and results[0].attempts == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_forked_child_opens_its_own_connection(apns: FakeApns, make_client: Callable[..., ApnsClient]) -> None:
    """Celery prefork: the child must not use (or close) the parent's loop and connection."""
    client = make_client(apns)
    client.push([tok(1)])  # the parent's loop, thread and connection exist before the fork

    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        code = 1
        try:
            [result] = client.push([tok(2)])
            code = 0 if result.outcome is PushOutcome.SENT else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert client.push([tok(3)])[0].outcome is PushOutcome.SENT  # the parent's connection still works
    assert apns.connections == 2
    assert [r.connection_id for r in apns.requests] == [1, 2, 1]


# ------------------------------------------------------------------------------ configuration and secrets


def test_configuration_errors_are_raised_at_construction(creds: Creds, other_creds: Creds) -> None:
    base = {"base_url": "https://127.0.0.1:1", "topic": PASS_TYPE}
    with pytest.raises(ValueError, match="either certificate"):
        ApnsClient(ApnsConfig(**base))
    with pytest.raises(ValueError, match="either certificate"):
        ApnsClient(ApnsConfig(**base, certificate=creds.certificate))
    with pytest.raises(ValueError, match="either certificate"):
        ApnsClient(ApnsConfig(**base, token_key=creds.token_key, key_id=KEY_ID))
    with pytest.raises(ValueError, match="P-256"):
        ApnsClient(ApnsConfig(**base, token_key=ec.generate_private_key(ec.SECP384R1()), key_id=KEY_ID,
                              team_id=TEAM))
    with pytest.raises(ValueError, match="cannot be used together"):
        ApnsClient(ApnsConfig(**base, certificate=creds.certificate, private_key=other_creds.private_key))
    with pytest.raises(ValueError, match="https"):
        ApnsClient(ApnsConfig(**{**base, "base_url": "http://127.0.0.1:1"}, certificate=creds.certificate,
                              private_key=creds.private_key))


def test_the_temporary_key_file_is_gone_after_loading(creds: Creds) -> None:
    before = set(Path(tempfile.gettempdir()).glob("tallypass-apns-*"))
    client = ApnsClient(ApnsConfig(base_url="https://127.0.0.1:1", topic=PASS_TYPE, certificate=creds.certificate,
                                   private_key=creds.private_key))
    client.close()
    assert set(Path(tempfile.gettempdir()).glob("tallypass-apns-*")) == before


def test_device_tokens_are_never_logged_in_full(
    apns: FakeApns, make_client: Callable[..., ApnsClient], caplog: pytest.LogCaptureFixture
) -> None:
    apns.script(tok(0xABCDEF1), [(503, None, None)] * 3)
    apns.script(tok(0xABCDEF2), [(403, "BadCertificate", None)])

    with caplog.at_level(logging.DEBUG):
        make_client(apns).push([tok(0xABCDEF0), tok(0xABCDEF1), tok(0xABCDEF2)])

    assert "503 for 00000000…" in caplog.text  # the retry's debug line shows the token's start only
    for i in (0xABCDEF0, 0xABCDEF1, 0xABCDEF2):
        assert tok(i) not in caplog.text


def test_provider_tokens_are_never_logged(
    token_apns: FakeApns, make_client: Callable[..., ApnsClient], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        make_client(token_apns, auth="token").push([tok(0xABCDEF0)])

    bearer = token_apns.requests[0].headers["authorization"].removeprefix("bearer ")
    assert bearer.split(".")[1] not in caplog.text  # not even the claims part
    assert tok(0xABCDEF0) not in caplog.text


# ------------------------------------------------------------------------------ the fake itself behaves like APNs


def test_the_fake_answers_like_apns(creds: Creds) -> None:
    with FakeApns(token_public_key=creds.token_key, team_id=TEAM, key_id=KEY_ID) as fake, httpx.Client(
        http1=False, http2=True, verify=ssl.create_default_context(cafile=str(fake.ca_file)), base_url=fake.url
    ) as http:
        bearer = jwt.encode({"iss": TEAM, "iat": int(time.time())}, creds.token_key, algorithm="ES256",
                            headers={"kid": KEY_ID})
        auth = {"authorization": f"bearer {bearer}", "apns-topic": PASS_TYPE}
        fake.script(tok(9), [(410, None, None)])

        def reason(r: httpx.Response) -> tuple[int, str | None]:
            return r.status_code, r.json().get("reason") if r.content else None

        assert reason(http.get(f"/3/device/{tok(1)}", headers=auth)) == (405, "MethodNotAllowed")
        assert reason(http.post("/3/other", headers=auth, content=b"{}")) == (404, "BadPath")
        assert reason(http.post(f"/3/device/{tok(1)}", content=b"{}")) == (403, "MissingProviderToken")
        assert reason(http.post(f"/3/device/{tok(1)}", headers={**auth, "authorization": "bearer x.y.z"},
                                content=b"{}")) == (403, "InvalidProviderToken")
        assert reason(http.post(f"/3/device/{tok(1)}", headers={"authorization": auth["authorization"]},
                                content=b"{}")) == (400, "MissingTopic")
        assert reason(http.post("/3/device/nothex", headers=auth, content=b"{}")) == (400, "BadDeviceToken")
        gone = http.post(f"/3/device/{tok(9)}", headers=auth, content=b"{}")
        assert reason(gone) == (410, "Unregistered") and isinstance(gone.json()["timestamp"], int)
        ok = http.post(f"/3/device/{tok(9)}", headers=auth, content=b"{}")
        assert ok.status_code == 200 and ok.headers["apns-id"] and ok.http_version == "HTTP/2"


def test_the_fake_advertises_1000_concurrent_streams(apns: FakeApns, creds: Creds, tmp_path: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(apns.ca_file))
    ctx.set_alpn_protocols(["h2"])
    chain = tmp_path / "client.pem"
    chain.write_bytes((creds.dir / dc.PASS_CERT).read_bytes() + (creds.dir / dc.PASS_KEY).read_bytes())
    ctx.load_cert_chain(chain)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection(("127.0.0.1", int(apns.url.rsplit(":", 1)[1]))) as raw, ctx.wrap_socket(
        raw, server_hostname="127.0.0.1"
    ) as tls:
        assert tls.selected_alpn_protocol() == "h2"
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        settings = None
        while settings is None:
            for event in conn.receive_data(tls.recv(65536)):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    settings = event.changed_settings
    assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 1000
