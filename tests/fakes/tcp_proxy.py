"""A TCP proxy in front of a real server (Redis), for outage tests: ``cut()`` closes every connection and
stops listening (clients get "connection refused"), ``stall()`` accepts connections but never answers (a
hung server: clients time out), ``restore()`` forwards again on the same port. ``connections`` counts the
connections clients opened, so a test can see how often a client tried."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.connections = 0
        self.mode = "forward"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> TcpProxy:
        self._listen()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cut()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Close every connection and stop listening."""
        self.mode = "cut"
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._drop_all()

    def stall(self) -> None:
        """Close every connection; accept new ones but never forward a byte."""
        self._drop_all()
        self.mode = "stall"
        if self._listener is None:
            self._listen()

    def restore(self) -> None:
        self.mode = "forward"
        if self._listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="tcp-proxy").start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.add(client)
            if self.mode != "forward":
                continue  # held open, never answered (stall)
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                self._open.add(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._close(source)
        self._close(sink)

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with self._lock:
            self._open.discard(sock)
