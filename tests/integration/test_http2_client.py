"""The small HTTP/2 client (app/channels/http2.py) on the wire: many streams on one connection within the
server's limit, request bodies larger than the flow-control window, and what the caller gets when the
server is missing, silent, or speaks HTTP/1.1 only."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.channels.http2 import Http2Connection, NotHttp2, Request
from tests.fakes.apns_h2 import FakeApns
from tests.fakes.h2_server import REFUSE_STREAM, H2Answer, H2Request, H2Server, Special, server_credentials

TOPIC = "pass.test.tallypass"


def push(i: int, body: bytes = b"{}") -> Request:
    return Request("POST", f"/3/device/{i:064x}", [("apns-topic", TOPIC)], body, unique_path=True)


def client_for(fake: FakeApns, **kwargs: float) -> Http2Connection:
    return Http2Connection(fake.url, ssl.create_default_context(cafile=str(fake.ca_file)), **kwargs)


def test_a_batch_shares_one_connection_within_the_servers_stream_limit() -> None:
    """The fake advertises 3 concurrent streams and drops a connection that opens more (h2 enforces it)."""
    with FakeApns(max_concurrent_streams=3) as fake:
        client = client_for(fake)
        responses = client.exchange([push(i) for i in range(60)])
        again = client.exchange([push(i) for i in range(60, 70)])
        client.close()

    assert [r.status for r in responses + again] == [200] * 70
    assert sorted(r.token for r in fake.requests) == [f"{i:064x}" for i in range(70)]
    assert fake.connections == 1 and client.connections_opened == 1
    assert all(r.headers["apns-id"] for r in responses)


def test_a_long_lived_connection_forgets_its_finished_streams() -> None:
    """The client skips most of h2's walk over its streams; the walk still runs often enough that a connection
    kept for thousands of pushes holds a bounded number of finished streams."""
    with FakeApns() as fake:
        client = client_for(fake)
        answers = [r for n in range(25) for r in client.exchange([push(n * 100 + i) for i in range(100)])]
        held = len(client._h2.streams) if client._h2 is not None else -1
        client.close()

    assert [r.status for r in answers] == [200] * 2500 and client.connections_opened == 1
    assert 0 <= held <= 1000


def test_answers_come_back_in_request_order_with_their_bodies() -> None:
    with FakeApns() as fake:
        fake.script(f"{3:064x}", [(410, None, None)])
        fake.script(f"{5:064x}", [(429, None, {"retry-after": "7"})])
        client = client_for(fake)
        responses = client.exchange([push(i) for i in range(8)])
        client.close()

    assert [r.status for r in responses] == [200, 200, 200, 410, 200, 429, 200, 200]
    assert b'"Unregistered"' in responses[3].body and responses[3].headers["content-type"] == "application/json"
    assert responses[5].headers["retry-after"] == "7"


def test_a_body_larger_than_the_flow_control_window_is_sent_whole() -> None:
    """65,535 bytes is the initial window: the rest must wait for the server's WINDOW_UPDATEs."""
    with FakeApns() as fake:
        client = client_for(fake)
        [big, small] = client.exchange([push(1, b"x" * 200_000), push(2)])
        client.close()

    assert (big.status, small.status) == (413, 200)  # APNs's answer to a payload over 4 KB, after reading it all
    assert {r.token: len(r.body) for r in fake.requests} == {f"{1:064x}": 200_000, f"{2:064x}": 2}


def test_refused_streams_are_sent_again_a_few_times_then_fail_as_not_sent() -> None:
    """RFC 9113 §8.7: REFUSED_STREAM means the request was not processed, so sending it again is safe."""
    refusals: dict[str, int] = {"/once": 1, "/always": 10**6}
    seen: list[str] = []

    def handler(request: H2Request) -> H2Answer | Special:
        seen.append(request.path)
        if refusals.get(request.path, 0) > 0:
            refusals[request.path] -= 1
            return REFUSE_STREAM
        return H2Answer(204)

    with H2Server(handler) as server:
        client = Http2Connection(server.url, ssl.create_default_context(cafile=str(server.ca_file)))
        once, always, fine = client.exchange([Request("GET", "/once"), Request("GET", "/always"),
                                              Request("GET", "/fine")])
        client.close()

    assert (once.status, fine.status) == (204, 204)
    assert (always.status, always.sent, always.error) == (None, False, "stream refused by the server")
    assert seen.count("/once") == 2 and seen.count("/always") == 4  # the first try and three more
    assert server.connections == 1


def test_a_connection_the_server_ends_between_calls_is_replaced_without_losing_a_request() -> None:
    with H2Server(lambda request: H2Answer(204)) as server:
        client = Http2Connection(server.url, ssl.create_default_context(cafile=str(server.ca_file)))
        first = client.exchange([Request("GET", "/a")])
        server.goaway_after(1)  # GOAWAY right after the next answer: the connection then closes
        second = client.exchange([Request("GET", "/b")])
        later = client.exchange([Request("GET", f"/c{i}") for i in range(5)])
        client.close()

    assert [r.status for r in first + second + later] == [204] * 7
    assert server.connections == 2 and client.connections_opened == 2


def test_a_refused_connection_fails_every_request_as_not_sent() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    client = Http2Connection(f"https://127.0.0.1:{port}", ssl.create_default_context(), timeout=2)

    responses = client.exchange([push(i) for i in range(5)])

    assert {(r.status, r.sent) for r in responses} == {(None, False)}
    assert "Connection refused" in (responses[0].error or "")


# ------------------------------------------------------------------------------ servers that misbehave


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The stand-ins' own throwaway CA: (server certificate with its key, CA file)."""
    ca_file, server_pem = server_credentials(tmp_path_factory.mktemp("h2-server"), "silent", "127.0.0.1")
    return server_pem, ca_file


@pytest.fixture
def tls_server(server_cert: tuple[Path, Path]) -> Iterator[Callable[[list[str]], int]]:
    """``start(alpn)``: a TLS server offering these ALPN protocols, which reads whatever comes and never
    answers; returns its port."""
    servers: list[tuple[socket.socket, threading.Thread]] = []
    held: list[ssl.SSLSocket] = []

    def start(alpn: list[str]) -> int:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(server_cert[0])
        ctx.set_alpn_protocols(alpn)
        listener = socket.create_server(("127.0.0.1", 0))

        def serve() -> None:
            while True:
                try:
                    raw, _ = listener.accept()
                except OSError:
                    return
                try:
                    tls = ctx.wrap_socket(raw, server_side=True)
                except (OSError, ssl.SSLError):
                    raw.close()
                    continue
                held.append(tls)

                def drain(sock: ssl.SSLSocket = tls) -> None:
                    try:
                        while sock.recv(65536):
                            pass
                    except OSError:
                        pass

                threading.Thread(target=drain, daemon=True).start()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((listener, thread))
        return int(listener.getsockname()[1])

    yield start
    for listener, thread in servers:
        listener.close()
        thread.join(timeout=5)
    for sock in held:
        sock.close()


def test_a_server_without_http2_raises_not_http2(tls_server: Callable[[list[str]], int],
                                                 server_cert: tuple[Path, Path]) -> None:
    port = tls_server(["http/1.1"])
    client = Http2Connection(f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(server_cert[1])))

    with pytest.raises(NotHttp2):
        client.exchange([push(1)])


def test_a_silent_server_times_out_and_the_request_may_have_been_sent(
    tls_server: Callable[[list[str]], int], server_cert: tuple[Path, Path]
) -> None:
    port = tls_server(["h2"])
    client = Http2Connection(f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(server_cert[1])),
                             timeout=0.3)

    first, second = client.exchange([push(1), push(2)])

    assert (first.status, first.sent) == (None, True)  # it went out: whether it arrived is unknown
    assert "no answer within 0.3 s" in (first.error or "")
    assert (second.status, second.sent) == (None, False)  # a new connection sends one request alone first
