"""The stand-ins' HTTP/2 server (tests/fakes/h2_server.py) against a raw h2 client: what the handler is given,
its special answers, GOAWAY, flow control of response bodies, and the counters."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from tests.fakes.h2_server import DROP_CONNECTION, RESET_STREAM, H2Answer, H2Request, H2Server, Special


class RawClient:
    """A blocking h2 client that shows every event, for what httpx would hide."""

    def __init__(self, server: H2Server, *, initial_window: int | None = None) -> None:
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=5),
                                    server_hostname="127.0.0.1")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if initial_window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
        self.events: list[h2.events.Event] = []
        self.bodies: dict[int, bytearray] = {}
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, path: str, body: bytes = b"", *, method: str = "POST", send: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", path),
                   ("x-test", "Yes")]
        self.conn.send_headers(stream_id, headers, end_stream=not body)
        size = self.conn.max_outbound_frame_size  # bodies here stay within the initial window
        for start in range(0, len(body), size):
            self.conn.send_data(stream_id, body[start:start + size], end_stream=start + size >= len(body))
        if send:
            self.flush()
        return stream_id

    def read_until(self, done: type[h2.events.Event], stream_id: int | None = None) -> bool:
        """Reads until an event of type ``done`` (for ``stream_id``); false when the server closed first."""
        while True:
            for event in self.events:
                if isinstance(event, done) and (stream_id is None or getattr(event, "stream_id", None) == stream_id):
                    return True
            data = self.sock.recv(65536)
            if not data:
                return False
            for event in self.conn.receive_data(data):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived):
                    self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.flush()

    def status(self, stream_id: int) -> int:
        for event in self.events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                return int(dict(event.headers)[":status"])
        raise AssertionError(f"no response on stream {stream_id}")

    def close(self) -> None:
        self.sock.close()


def echo(request: H2Request) -> H2Answer | Special:
    """200 with the request's body; the path picks the special answers."""
    if request.path == "/reset":
        return RESET_STREAM
    if request.path == "/drop":
        return DROP_CONNECTION
    if request.path == "/boom":
        raise RuntimeError("a bug in the stand-in")
    if request.path == "/big":
        return H2Answer(200, [("content-type", "application/octet-stream")], bytes(range(256)) * 400)
    return H2Answer(201, [("x-seen-by", str(request.connection_id))], request.body, goaway=request.path == "/goaway")


@pytest.fixture
def seen() -> list[H2Request]:
    return []


@pytest.fixture
def server(seen: list[H2Request]) -> Iterator[H2Server]:
    def handler(request: H2Request) -> H2Answer | Special:
        seen.append(request)
        return echo(request)

    with H2Server(handler, max_concurrent_streams=50) as started:
        yield started


@pytest.fixture
def client(server: H2Server) -> Iterator[RawClient]:
    raw = RawClient(server)
    yield raw
    raw.close()


def test_the_handler_gets_the_whole_request_and_its_answer_goes_back(server: H2Server, client: RawClient,
                                                                     seen: list[H2Request]) -> None:
    stream_id = client.request("/echo?x=1", b"hello " * 3000)  # more than one DATA frame
    assert client.read_until(h2.events.StreamEnded, stream_id)

    assert client.status(stream_id) == 201
    assert bytes(client.bodies[stream_id]) == b"hello " * 3000
    (request,) = seen
    assert (request.method, request.path, request.body) == ("POST", "/echo?x=1", b"hello " * 3000)
    assert request.headers == {":method": "POST", ":scheme": "https", ":authority": "127.0.0.1",
                               ":path": "/echo?x=1", "x-test": "Yes"}
    assert (request.client_subject, request.connection_id) == (None, 1)
    settings = next(e for e in client.events if isinstance(e, h2.events.RemoteSettingsChanged))
    assert settings.changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 50
    assert (server.connections, server.handshake_failures) == (1, 0)


def test_reset_and_drop(server: H2Server, client: RawClient) -> None:
    reset = client.request("/reset")
    assert client.read_until(h2.events.StreamReset, reset)
    event = next(e for e in client.events if isinstance(e, h2.events.StreamReset))
    assert event.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR

    ok = client.request("/echo", b"still here")
    assert client.read_until(h2.events.StreamEnded, ok) and client.status(ok) == 201

    dropped = client.request("/drop")
    assert not client.read_until(h2.events.StreamEnded, dropped)  # the connection closes, nothing comes
    assert server.connections == 1


def test_a_failing_handler_is_a_500_and_logged(client: RawClient, caplog: pytest.LogCaptureFixture) -> None:
    boom = client.request("/boom")
    assert client.read_until(h2.events.StreamEnded, boom)
    assert client.status(boom) == 500 and "the handler failed on POST /boom" in caplog.text
    ok = client.request("/echo", b"x")  # the connection goes on
    assert client.read_until(h2.events.StreamEnded, ok) and client.status(ok) == 201


def test_a_protocol_error_is_a_goaway_that_says_so(server: H2Server, client: RawClient) -> None:
    client.conn.config.normalize_outbound_headers = False
    client.conn.config.validate_outbound_headers = False
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream_id, [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"),
                                         (":path", "/echo"), ("X-Upper", "no")], end_stream=True)
    client.flush()
    assert client.read_until(h2.events.ConnectionTerminated)
    terminated = next(e for e in client.events if isinstance(e, h2.events.ConnectionTerminated))
    assert terminated.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_goaway_after_an_answer_names_it_the_last_stream(server: H2Server, client: RawClient,
                                                        seen: list[H2Request]) -> None:
    first = client.request("/echo", b"1", send=False)
    goaway = client.request("/goaway", b"2", send=False)
    later = client.request("/echo", b"3")  # all three in one write: the third arrives before the GOAWAY

    assert client.read_until(h2.events.ConnectionTerminated)
    terminated = next(e for e in client.events if isinstance(e, h2.events.ConnectionTerminated))
    assert (terminated.error_code, terminated.last_stream_id) == (h2.errors.ErrorCodes.NO_ERROR, goaway)
    assert client.status(first) == 201 and client.status(goaway) == 201
    assert not any(getattr(e, "stream_id", None) == later for e in client.events)  # not processed: retry it
    assert client.sock.recv(65536) == b""  # the server then closes its side

    again = RawClient(server)
    try:
        stream_id = again.request("/echo", b"3")
        assert again.read_until(h2.events.StreamEnded, stream_id) and again.status(stream_id) == 201
    finally:
        again.close()
    assert [r.path for r in seen] == ["/echo", "/goaway", "/echo"]
    assert server.connections == 2


def test_goaway_after_counts_answers(server: H2Server, client: RawClient) -> None:
    server.goaway_after(2)
    first = client.request("/echo", b"1")
    assert client.read_until(h2.events.StreamEnded, first)
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in client.events)
    second = client.request("/echo", b"2")
    assert client.read_until(h2.events.ConnectionTerminated)
    terminated = next(e for e in client.events if isinstance(e, h2.events.ConnectionTerminated))
    assert terminated.last_stream_id == second and client.status(second) == 201


def test_a_body_larger_than_the_window_waits_for_window_updates(server: H2Server) -> None:
    client = RawClient(server, initial_window=1000)
    try:
        stream_id = client.request("/big")
        assert client.read_until(h2.events.StreamEnded, stream_id)
        assert bytes(client.bodies[stream_id]) == bytes(range(256)) * 400
        frames = [e for e in client.events if isinstance(e, h2.events.DataReceived)]
        assert len(frames) > 100 and max(len(e.data) for e in frames) <= 1000
    finally:
        client.close()


def test_a_failed_handshake_is_counted_and_stop_closes_live_connections(server: H2Server, client: RawClient) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            while plain.recv(65536):  # an alert, then the close (after the failure is counted)
                pass
    ok = client.request("/echo", b"x")
    assert client.read_until(h2.events.StreamEnded, ok)
    assert (server.connections, server.handshake_failures) == (2, 1)

    server.stop()
    assert client.sock.recv(65536) == b""
