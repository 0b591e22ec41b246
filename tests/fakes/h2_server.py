"""The protocol stand-ins' HTTP/2 server: real HTTP/2 over TLS on 127.0.0.1, built on ``h2`` (server side).

One thread accepts, one thread per connection runs the h2 state machine on a blocking TLS socket, so a
single connection carries thousands of concurrent streams, answered as they complete. The stand-in's
``handler`` is called on that thread with each complete request (an ``H2Request``) and returns an
``H2Answer``, or ``RESET_STREAM`` (RST_STREAM INTERNAL_ERROR), ``REFUSE_STREAM`` (RST_STREAM
REFUSED_STREAM: "not processed", RFC 9113 §8.7) or ``DROP_CONNECTION`` (close the TCP
connection, failing every stream on it). A handler that blocks holds its whole connection, as a stalled
server would; one that raises is logged and answered 500. A client that breaks the protocol gets h2's
GOAWAY with the error code, and the connection closes.

The server certificate comes from a throwaway CA made at start (``ca_file``), so clients verify it for
real; with ``client_ca`` the handshake requires a client certificate chaining to those CA files, and the
verified subject comes with every request. ``connections`` counts TCP connections accepted (including those
whose handshake failed, also counted in ``handshake_failures``): what proves a client keeps to one.

Inbound headers are validated (the stand-ins check that clients speak correct HTTP/2); outbound ones are
not, nor normalised: the handlers' answers are lower-case already, and it saves CPU on every request.
Response bodies honour flow control: what the peer's window does not take waits for its WINDOW_UPDATE.

A GOAWAY (NO_ERROR) follows an answer with ``goaway=True``, or the n-th answer after ``goaway_after(n)``: its
last stream is the answered one, so a client retries later streams elsewhere. The connection still answers
the earlier streams, then sends its FIN and closes once the client has closed (or after two seconds).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import ipaddress
import logging
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hyperframe.frame import GoAwayFrame

__all__ = [
    "DROP_CONNECTION", "REFUSE_STREAM", "RESET_STREAM", "H2Answer", "H2Request", "H2Server", "Handler", "Special",
    "server_credentials",
]

log = logging.getLogger(__name__)

_LINGER = 2.0  # seconds a connection that sent GOAWAY waits for the client to close it
_MAX_HELD_STREAMS = 1024  # see _ServerConnection.open_inbound_streams


class H2Request(NamedTuple):
    method: str
    path: str  # as sent, query included
    headers: dict[str, str]  # lower-case names, pseudo-headers included
    body: bytes
    client_subject: str | None  # RFC 4514 subject of the verified client certificate
    connection_id: int  # 1, 2, … in the order connections were accepted


class H2Answer(NamedTuple):
    """What a handler answers; a plain ``(status, headers, body)`` tuple is taken too."""

    status: int
    headers: Sequence[tuple[str, str]] = ()  # lower-case names, sent as given
    body: bytes = b""
    goaway: bool = False  # send GOAWAY (NO_ERROR, last stream = this one) once this answer is sent


class Special(enum.Enum):
    RESET_STREAM = "reset"
    REFUSE_STREAM = "refuse"
    DROP_CONNECTION = "drop"


RESET_STREAM = Special.RESET_STREAM
REFUSE_STREAM = Special.REFUSE_STREAM
DROP_CONNECTION = Special.DROP_CONNECTION
Handler = Callable[[H2Request], H2Answer | Special]


class _Drop(Exception):
    """Close this connection now (``DROP_CONNECTION``)."""


class H2Server:
    """An HTTP/2-over-TLS server on 127.0.0.1 for a stand-in; ``with H2Server(handler) as server:``."""

    def __init__(
        self,
        handler: Handler,
        *,
        client_ca: Sequence[str | Path] | None = None,
        max_concurrent_streams: int = 1000,
        name: str = "fake-h2",
        server_name: str = "localhost (fake)",
    ) -> None:
        self.handler = handler
        self.connections = 0
        self.handshake_failures = 0
        self.url = ""
        self.ca_file = Path()
        self._client_ca = [Path(p) for p in client_ca] if client_ca else None
        self._max_streams = max_concurrent_streams
        self._name = name
        self._server_name = server_name
        self._goaway_countdown: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._live: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._listener: socket.socket | None = None
        self._ctx: ssl.SSLContext | None = None

    # ---------------------------------------------------------------------------- public API

    @property
    def port(self) -> int:
        assert self._listener is not None, "not started"
        return self._listener.getsockname()[1]

    def goaway_after(self, count: int) -> None:
        """Send GOAWAY on the connection that answers the ``count``-th request from now (1 = the next)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._goaway_countdown = count

    def __enter__(self) -> H2Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{self._name}-")
        self.ca_file, server_pem = server_credentials(Path(self._tmp.name), self._name, self._server_name)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(server_pem)
        ctx.set_alpn_protocols(["h2"])
        if self._client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            for ca in self._client_ca:
                ctx.load_verify_locations(cafile=str(ca))
        self._ctx = ctx
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"https://127.0.0.1:{self.port}"
        self._spawn(self._accept_loop, f"{self._name}-accept")

    def stop(self) -> None:
        """Stop accepting, close every live connection, and wait for their threads."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
            self._listener.close()
        with self._lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ---------------------------------------------------------------------------- connections

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]  # long runs open many connections
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        self._listener.settimeout(0.5)  # fallback wake-up where shutdown() does not interrupt accept()
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                conn_id = self.connections
                self._live.add(sock)
            self._spawn(self._serve, f"{self._name}-conn-{conn_id}", sock, conn_id)

    def _serve(self, raw: socket.socket, conn_id: int) -> None:
        tls: ssl.SSLSocket | None = None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(10)
            try:
                assert self._ctx is not None
                tls = self._ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                with self._lock:
                    self.handshake_failures += 1
                return
            with self._lock:
                self._live.discard(raw)
                self._live.add(tls)
            tls.settimeout(None)
            _Session(self, tls, conn_id, _peer_subject(tls)).run()
        except (_Drop, OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            with self._lock:
                self._live.discard(raw)
                if tls is not None:
                    self._live.discard(tls)
            for sock in (tls, raw):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _goaway_due(self) -> bool:
        """Counts one answer down towards ``goaway_after``; true for the one that should be followed by GOAWAY."""
        with self._lock:
            if self._goaway_countdown is None:
                return False
            self._goaway_countdown -= 1
            if self._goaway_countdown > 0:
                return False
            self._goaway_countdown = None
            return True


class _PlainEncoder(hpack.Encoder):
    """Literals without Huffman coding, which HPACK leaves to the encoder (RFC 7541 §5.2): in pure Python it
    costs more CPU than anything else in an answer, and loopback has bandwidth to spare."""

    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        return super().encode(headers, huffman=False)


class _ServerConnection(h2.connection.H2Connection):
    """h2's connection, minus its per-stream cost of counting open streams."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        self.encoder = _PlainEncoder()

    @property
    def open_inbound_streams(self) -> int:
        """h2 counts open streams (and forgets closed ones) by walking every stream it holds, for each new
        stream: 500 steps a request with 500 in flight. Below the limit the number held is an upper bound,
        which is all the MAX_CONCURRENT_STREAMS check needs; the walk is left for when that bound is reached
        (or a thousand streams are held), so it runs once per several hundred streams."""
        held = len(self.streams)
        if held < min(self.local_settings.max_concurrent_streams, _MAX_HELD_STREAMS):
            return held
        return super().open_inbound_streams


class _Session:
    """One connection's h2 state machine, its partly received requests and its partly sent bodies."""

    def __init__(self, server: H2Server, tls: ssl.SSLSocket, conn_id: int, subject: str | None) -> None:
        self.server, self.tls, self.conn_id, self.subject = server, tls, conn_id, subject
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding="utf-8",
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = _ServerConnection(config)
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: server._max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self.requests: dict[int, tuple[dict[str, str], bytearray]] = {}  # stream id → headers, body so far
        self.unsent: dict[int, memoryview] = {}  # stream id → response body waiting for flow control
        self.last_stream: int | None = None  # once GOAWAY is decided: later streams are not processed
        self.goaway_sent = False  # it is sent once the last stream's answer is

    def run(self) -> None:
        conn, tls = self.conn, self.tls
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        while True:
            data = tls.recv(65536)
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                tls.sendall(conn.data_to_send())  # h2's GOAWAY with the error code tells the client why
                raise
            if self._handle(events):
                tls.sendall(conn.data_to_send())
                return
            if self.last_stream is not None and not self.goaway_sent and self.last_stream not in self.unsent:
                self._send_goaway()
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
            if self.goaway_sent and not self.unsent and not self.requests:
                self._linger()
                return

    def _handle(self, events: list[h2.events.Event]) -> bool:
        """Acts on one read's events; true when the client ended the connection."""
        conn, requests = self.conn, self.requests
        for event in events:
            kind = type(event)
            if kind is h2.events.DataReceived:
                entry = requests.get(event.stream_id)
                if entry is not None:
                    entry[1].extend(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif kind is h2.events.RequestReceived:
                if self.last_stream is None or event.stream_id <= self.last_stream:
                    requests[event.stream_id] = (dict(event.headers), bytearray())  # type: ignore[arg-type]
            elif kind is h2.events.StreamEnded:
                entry = requests.pop(event.stream_id, None)
                if entry is not None:
                    self._answer(event.stream_id, entry[0], bytes(entry[1]))
            elif kind is h2.events.StreamReset:
                requests.pop(event.stream_id, None)
                self.unsent.pop(event.stream_id, None)
            elif kind is h2.events.WindowUpdated or kind is h2.events.RemoteSettingsChanged:
                for stream_id in list(self.unsent):
                    self._send_body(stream_id)
            elif kind is h2.events.ConnectionTerminated:
                return True
        return False

    def _answer(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        request = H2Request(
            headers.get(":method", ""), headers.get(":path", ""), headers, body, self.subject, self.conn_id
        )
        try:
            answer = self.server.handler(request)
        except Exception:
            log.exception("%s: the handler failed on %s %s", self.server._name, request.method, request.path)
            answer = H2Answer(500, [("content-type", "text/plain")], b"internal error")
        if answer is RESET_STREAM:
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif answer is REFUSE_STREAM:
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif answer is DROP_CONNECTION:
            raise _Drop
        else:
            if not isinstance(answer, H2Answer):
                answer = H2Answer(*answer)  # a plain (status, headers, body) will do
            self.conn.send_headers(stream_id, [(":status", str(answer.status)), *answer.headers],
                                   end_stream=not answer.body)
            if answer.body:
                self.unsent[stream_id] = memoryview(answer.body)
                self._send_body(stream_id)
        goaway = isinstance(answer, H2Answer) and answer.goaway
        if self.server._goaway_countdown is not None and self.server._goaway_due():
            goaway = True
        if goaway and self.last_stream is None:
            self.last_stream = stream_id
            for later in [s for s in self.requests if s > stream_id]:
                del self.requests[later]  # not processed: the client retries them on another connection

    def _send_body(self, stream_id: int) -> None:
        """Sends as much of the stream's waiting body as the flow-control windows allow."""
        conn, rest = self.conn, self.unsent[stream_id]
        try:
            window = conn.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            del self.unsent[stream_id]
            return
        frame = conn.max_outbound_frame_size
        while rest and window > 0:
            size = min(window, frame, len(rest))
            conn.send_data(stream_id, rest[:size].tobytes(), end_stream=size == len(rest))
            rest, window = rest[size:], window - size
        if rest:
            self.unsent[stream_id] = rest
        else:
            del self.unsent[stream_id]

    def _send_goaway(self) -> None:
        """GOAWAY written beside h2 rather than through ``close_connection()``, which would forbid answering
        the streams up to the last one (h2 refuses to send anything once it has sent GOAWAY)."""
        assert self.last_stream is not None
        self.goaway_sent = True
        frame = GoAwayFrame(0, last_stream_id=self.last_stream, error_code=h2.errors.ErrorCodes.NO_ERROR)
        self.tls.sendall(self.conn.data_to_send() + frame.serialize())

    def _linger(self) -> None:
        """After GOAWAY and the last answers: FIN, then wait (briefly) for the client to close its side."""
        socket.socket.shutdown(self.tls, socket.SHUT_WR)
        self.tls.settimeout(_LINGER)
        with contextlib.suppress(OSError):
            while self.tls.recv(65536):
                pass


def _peer_subject(tls: ssl.SSLSocket) -> str | None:
    der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None


def server_credentials(directory: Path, name: str, server_name: str) -> tuple[Path, Path]:
    """A throwaway CA (``ca.pem``) and a server certificate for 127.0.0.1/localhost (``server.pem``,
    certificate then key). EC P-256 keeps start-up fast."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, server_pem = directory / "ca.pem", directory / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_pem.chmod(0o600)
    return ca_file, server_pem
