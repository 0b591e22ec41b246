"""The local protocol stand-ins' HTTP/1.1 server: real sockets, kept-alive connections (werkzeug's own
handler closes every connection), and the start/stop every fake shares (``LiveHttpFake``)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

log = logging.getLogger(__name__)


class LiveHttpFake:
    """Serves ``wsgi_app`` on 127.0.0.1 in a background thread; ``with Fake(...) as fake:`` starts and stops
    it. Counts the TCP connections it accepted (``connections``), so tests can check connection reuse."""

    LABEL = "fake"  # thread name and log prefix

    def _init_live(self) -> None:
        self.connections = 0
        self.base_url = "http://localhost"  # in process; http://127.0.0.1:<port> once started
        self._lock = threading.RLock()
        self._live: set[socket.socket] = set()
        self._server: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None

    def wsgi_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = KeepAliveServer("127.0.0.1", 0, self.wsgi_app, handler=KeepAliveHandler)
        server.fake = self
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=self.LABEL, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every kept-alive connection, and wait for their threads."""
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=10)  # serve_forever ends with server_close(), which joins the handlers
        self._server, self._thread = None, None


class KeepAliveServer(ThreadedWSGIServer):
    daemon_threads = False  # server_close() (end of serve_forever) joins the connection threads
    fake: LiveHttpFake

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.fake._lock:
            self.fake.connections += 1
            self.fake._live.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.fake._lock:
            self.fake._live.discard(request)
        super().shutdown_request(request)


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's handler with a ``run_wsgi`` that keeps HTTP/1.1 connections open: it reads exactly the
    request body (Content-Length or chunked), buffers the (small) answer, sends it with a Content-Length, and
    closes only when the client asked or something went wrong."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle kept-alive connection is closed after two minutes

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.environ = self.make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput reads to the last chunk
            stream = environ["wsgi.input"]
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.send_error(400, "Bad Content-Length")
                self.close_connection = True
                return
            stream = LimitedStream(self.rfile, length)
            environ["wsgi.input"], environ["wsgi.input_terminated"] = stream, True
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started[:] = [status, headers]
            return lambda data: None  # the fake's app never writes imperatively

        try:
            result = self.server.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            while stream.read(65536):  # whatever the app left unread, so the next request starts clean
                pass
        except HTTPException:  # ClientDisconnected while reading the body
            self.close_connection = True
            return
        except Exception:
            log.exception("%s: unhandled error", self.server.fake.LABEL)
            self.close_connection = True
            started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            body = b"internal error"
        status, headers = started
        code, _, phrase = status.partition(" ")
        self.send_response(int(code), phrase)
        names = set()
        for name, value in headers:
            if name.lower() not in ("connection", "transfer-encoding"):
                self.send_header(name, value)
                names.add(name.lower())
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Head and body in one write: two small writes would meet Nagle's algorithm and the client's delayed
        # ACK, 40 ms a request on a kept-alive connection.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would drown the tests' and the benchmark's output

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug(f"{self.server.fake.LABEL}: {message}", *args)
