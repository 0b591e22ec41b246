"""A small synchronous HTTP/2 client that sends many requests down one connection, on the ``h2`` state machine.

Written by hand because the campaign's speed is the client's CPU per request: one request per customer (an
APNs push or a web push), on a 2-core machine that also runs PostgreSQL. Measured with ``bench/apns.py``,
httpx (httpcore over h2) spends 1.6–2.4 ms of CPU per HTTP/2 request; driving ``h2`` directly costs about
0.25 ms. This module does only what pushing needs, and httpx stays the client for everything else:

- one TLS connection per origin, kept open between calls (Apple asks for long-lived connections and treats
  rapid reconnection as an attack), made again in a forked child (Celery prefork), which must never touch
  its parent's socket;
- ``exchange(requests)`` multiplexes a whole batch on that connection, at most ``min(max_streams, the
  server's SETTINGS_MAX_CONCURRENT_STREAMS)`` streams at once, and returns one ``Response`` per request in
  order. A new connection carries one request alone until it has answered (APNs requires it for token
  auth, and a broken setup then costs one request, not a storm);
- request bodies honour flow control; GOAWAY and REFUSED_STREAM: the streams the server did not process go
  again on a new connection (a few times per call); a dropped connection, a timeout (``timeout`` seconds
  without a byte while waiting) or a protocol error fail what was in flight (``sent`` True: it may have
  arrived) and what was not yet sent (``sent`` False); the caller decides about retrying.

Paths that are unique per request (an APNs device token) are sent never-indexed, so they do not evict the
reusable headers (topic, authorization) from the HPACK table. hpack's DEBUG records, which hold every
header, are reduced to a placeholder (``app.channels.http``).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
from hpack import NeverIndexedHeaderTuple

import app.channels.http  # noqa: F401 (keeps hpack's header logs out: see _HideHeaderBlocks)

__all__ = ["Http2Connection", "NotHttp2", "Request", "Response", "client_context"]

_RECV = 65536
_MAX_GOAWAYS = 3  # new connections one exchange() opens after graceful GOAWAYs before it gives up
_MAX_REFUSALS = 3  # times one request is sent again after REFUSED_STREAM within one exchange()


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """TLS for a push service: system CAs (``SSL_CERT_FILE`` honoured) plus ``ca_file`` if given, hostname
    check, TLS 1.2 or later. ``Http2Connection`` sets the ALPN protocols itself."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    return ctx


class NotHttp2(Exception):
    """The server did not choose HTTP/2 in the TLS handshake (ALPN); the caller should use HTTP/1.1."""


_MAX_HELD_STREAMS = 1000  # closed streams h2 may hold before they are forgotten (_ClientConnection)

@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # path and query, e.g. "/3/device/<token>"
    headers: Sequence[tuple[str, str]] = ()  # lower-case names
    body: bytes = b""
    unique_path: bool = False  # keep the path out of the HPACK table (it never repeats)


@dataclass(frozen=True, slots=True)
class Response:
    status: int | None  # None: no answer, see ``error``
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, no pseudo-headers
    body: bytes = b""
    error: str | None = None  # why there is no answer (network, TLS, protocol, timeout, stream reset)
    sent: bool = True  # False: the request never reached the server, so sending it again repeats nothing


@dataclass(slots=True)
class _Stream:
    index: int
    pending: memoryview  # body bytes not yet sent (flow control)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


class _Closed(Exception):
    """The connection ended; ``error`` is why, and whether in-flight requests could have been processed."""

    def __init__(self, error: str, *, graceful: bool = False) -> None:
        super().__init__(error)
        self.error, self.graceful = error, graceful


class Http2Connection:
    """One HTTP/2 connection to ``origin`` (``https://host[:port]``); ``exchange()`` is thread-safe (calls take
    turns) and opens the connection when needed."""

    def __init__(self, origin: str, ssl_context: ssl.SSLContext, *, timeout: float = 10.0,
                 max_streams: int = 100) -> None:
        parts = urlsplit(origin)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"HTTP/2 needs an https:// origin, not {origin!r}")
        self.host, self.port = parts.hostname, parts.port or 443
        self._authority = (parts.netloc.rsplit("@", 1)[-1]).encode("ascii")
        ssl_context.set_alpn_protocols(["h2", "http/1.1"])  # a server without h2 then picks 1.1: NotHttp2
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._max_streams = max(1, max_streams)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._sock: ssl.SSLSocket | None = None
        self._h2: h2.connection.H2Connection | None = None
        self._proven = False  # a response arrived on this connection
        self._refusals: dict[int, int] = {}  # request index → REFUSED_STREAM answers, within one exchange()
        self.connections_opened = 0

    # ---------------------------------------------------------------------------- public API

    def exchange(self, requests: Sequence[Request]) -> list[Response]:
        """Send every request and wait for every answer; one ``Response`` per request, in order.

        :raise NotHttp2: the server speaks HTTP/1.1 only (nothing was sent)."""
        results: list[Response | None] = [None] * len(requests)
        queue = deque(range(len(requests)))
        with self._lock:
            self._refusals = {}
            if self._pid != os.getpid():
                self._abandon()
            goaways = 0
            while queue:
                try:
                    self._ensure_open()
                except (OSError, h2.exceptions.ProtocolError) as exc:
                    self._fail(queue, results, _describe(exc), sent=False)
                    break
                try:
                    self._run(requests, queue, results)
                except _Closed as closed:
                    self._drop()
                    goaways += closed.graceful
                    if not closed.graceful or goaways > _MAX_GOAWAYS:
                        self._fail(queue, results, closed.error, sent=False)
                        break
        return [r if r is not None else Response(None, error="not sent", sent=False) for r in results]

    def close(self) -> None:
        """Close the connection once the exchange in progress (if any) has finished; a later call reopens."""
        with self._lock:
            if self._pid != os.getpid():
                self._abandon()
                return
            if self._h2 is not None and self._sock is not None:
                with contextlib.suppress(OSError, h2.exceptions.ProtocolError):
                    self._h2.close_connection()
                    self._sock.sendall(self._h2.data_to_send())
            self._drop()

    # ---------------------------------------------------------------------------- connection

    def _ensure_open(self) -> None:
        if self._sock is not None:
            self._read_idle_input()
        if self._sock is not None:
            return
        raw = socket.create_connection((self.host, self.port), timeout=self._timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = self._ssl_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.connections_opened += 1
        if sock.selected_alpn_protocol() != "h2":
            sock.close()
            raise NotHttp2(f"{self.host}:{self.port} does not speak HTTP/2")
        conn = _ClientConnection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        conn.encoder = _PlainEncoder()
        conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0, h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0})
        conn.initiate_connection()
        try:
            sock.sendall(conn.data_to_send())
        except BaseException:
            sock.close()
            raise
        self._sock, self._h2, self._proven = sock, conn, False

    def _read_idle_input(self) -> None:
        """Between calls the server may have sent GOAWAY, a PING or SETTINGS, or closed the connection:
        read that now, so that a dead connection is replaced before a request is lost on it."""
        sock, conn = self._sock, self._h2
        assert sock is not None and conn is not None
        try:
            while sock.pending() or select.select([sock], [], [], 0)[0]:
                sock.settimeout(0.0)
                try:
                    data = sock.recv(_RECV)
                except (ssl.SSLWantReadError, BlockingIOError):
                    return  # only part of a TLS record so far: nothing to act on yet
                finally:
                    sock.settimeout(self._timeout)  # blocking again before anything is sent
                if not data:
                    raise _Closed("closed")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        raise _Closed("GOAWAY")
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        except (_Closed, OSError, h2.exceptions.ProtocolError):
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock, self._h2 = None, None

    def _abandon(self) -> None:
        """In a forked child: the socket is the parent's. Keep it referenced so that no finaliser closes it."""
        if self._sock is not None:
            _ABANDONED.append(self._sock)
        self._sock, self._h2 = None, None
        self._pid = os.getpid()

    # ---------------------------------------------------------------------------- one connection's work

    def _run(self, requests: Sequence[Request], queue: deque[int], results: list[Response | None]) -> None:
        """Send from ``queue`` and collect answers until both are done; raise ``_Closed`` if the connection
        ends first (the streams it did not process are back in ``queue``, the others have results)."""
        sock, conn = self._sock, self._h2
        assert sock is not None and conn is not None
        sock.settimeout(self._timeout)
        streams: dict[int, _Stream] = {}
        going_away = False
        try:
            while True:
                if not going_away:
                    limit = min(self._max_streams, conn.remote_settings.max_concurrent_streams)
                    if not self._proven:
                        limit = 1
                    while queue and len(streams) < limit:
                        index = queue.popleft()
                        stream_id = conn.get_next_available_stream_id()
                        streams[stream_id] = self._start(conn, stream_id, requests[index], index)
                for stream_id, stream in streams.items():
                    if stream.pending:
                        self._send_body(conn, stream_id, stream)
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
                if not streams:
                    if going_away:
                        raise _Closed("GOAWAY", graceful=True)
                    return
                try:
                    data = sock.recv(_RECV)
                except TimeoutError:
                    raise _Closed(f"no answer within {self._timeout:g} s") from None
                if not data:
                    raise _Closed("the server closed the connection")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived | h2.events.InformationalResponseReceived):
                        stream = streams.get(event.stream_id)
                        if stream is not None and isinstance(event, h2.events.ResponseReceived):
                            stream.status, stream.headers = _read_headers(event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        if (stream := streams.get(event.stream_id)) is not None:
                            stream.body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        if (stream := streams.pop(event.stream_id, None)) is not None:
                            results[stream.index] = Response(stream.status, stream.headers, bytes(stream.body))
                            self._proven = True
                    elif isinstance(event, h2.events.StreamReset):
                        if (stream := streams.pop(event.stream_id, None)) is not None:
                            refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                            if refused and self._refusals.get(stream.index, 0) < _MAX_REFUSALS:
                                self._refusals[stream.index] = self._refusals.get(stream.index, 0) + 1
                                queue.appendleft(stream.index)  # RFC 9113 §8.7: not processed, safe to repeat
                            elif refused:
                                results[stream.index] = Response(None, error="stream refused by the server",
                                                                 sent=False)
                            else:
                                results[stream.index] = Response(
                                    None, error=f"stream reset by the server ({_code(event.error_code)})")
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        going_away = True
                        last = event.last_stream_id if event.last_stream_id is not None else 0
                        for stream_id in sorted((s for s in streams if s > last), reverse=True):
                            queue.appendleft(streams.pop(stream_id).index)  # §6.8: not processed
                        if event.error_code != h2.errors.ErrorCodes.NO_ERROR:
                            error = f"GOAWAY ({_code(event.error_code)})"
                            for stream in streams.values():
                                results[stream.index] = Response(None, error=error)
                            streams.clear()
                            raise _Closed(error, graceful=True)
        except _Closed as closed:
            for stream in streams.values():
                results[stream.index] = Response(None, error=closed.error)
            raise
        except (OSError, h2.exceptions.ProtocolError) as exc:
            error = _describe(exc)
            for stream in streams.values():
                results[stream.index] = Response(None, error=error)
            raise _Closed(error) from exc

    def _start(self, conn: h2.connection.H2Connection, stream_id: int, request: Request, index: int) -> _Stream:
        path = request.path.encode("ascii")
        headers: list[tuple[bytes, bytes]] = [
            (b":method", request.method.encode("ascii")), (b":scheme", b"https"), (b":authority", self._authority),
            NeverIndexedHeaderTuple(b":path", path) if request.unique_path else (b":path", path)]
        headers += [(k.encode("ascii"), v.encode("latin-1")) for k, v in request.headers]
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            headers.append((b"content-length", str(len(request.body)).encode("ascii")))
        conn.send_headers(stream_id, headers, end_stream=not request.body)
        stream = _Stream(index, memoryview(request.body))
        if request.body:
            self._send_body(conn, stream_id, stream)
        return stream

    @staticmethod
    def _send_body(conn: h2.connection.H2Connection, stream_id: int, stream: _Stream) -> None:
        """As much of the body as the flow-control windows allow; the rest after a WINDOW_UPDATE."""
        while stream.pending:
            room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if room <= 0:
                return
            chunk, stream.pending = stream.pending[:room], stream.pending[room:]
            conn.send_data(stream_id, chunk.tobytes(), end_stream=not stream.pending)

    @staticmethod
    def _fail(queue: deque[int], results: list[Response | None], error: str, *, sent: bool) -> None:
        while queue:
            results[queue.popleft()] = Response(None, error=error, sent=sent)


class _ClientConnection(h2.connection.H2Connection):
    """h2's connection, minus most of its per-stream cost of counting open streams."""

    @property
    def open_outbound_streams(self) -> int:
        """h2 counts the open streams (and forgets the closed ones) by walking every stream it holds, each time
        a stream opens: with 100 in flight, a hundred steps a request. Below the server's limit the number held
        is an upper bound, which is all h2's MAX_CONCURRENT_STREAMS check needs; the walk (which also forgets
        closed streams) runs once the bound reaches the limit or a thousand streams are held."""
        held = len(self.streams)
        if held < min(self.remote_settings.max_concurrent_streams, _MAX_HELD_STREAMS):
            return held
        return super().open_outbound_streams


class _PlainEncoder(hpack.Encoder):
    """Header literals without Huffman coding, which HPACK leaves to the encoder (RFC 7541 §5.2). In pure
    Python it was about a seventh of the client's CPU per push (bench/apns.py: 76–81 µs, 65–68 without), to
    save some 20 bytes of a request's headers."""

    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        return super().encode(headers, huffman=False)


def _read_headers(raw: list[tuple[bytes, bytes]]) -> tuple[int | None, dict[str, str]]:
    status, headers = None, {}
    for name, value in raw:
        if name == b":status":
            status = int(value)
        elif not name.startswith(b":"):
            headers[name.decode("latin-1")] = value.decode("latin-1")
    return status, headers


def _code(code: object) -> str:
    return getattr(code, "name", None) or str(code)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Sockets forked children inherited and must neither use nor close.
_ABANDONED: list[ssl.SSLSocket] = []
