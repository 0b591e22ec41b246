"""A TCP link between the app and the real PostgreSQL that a test can cut and restore, to stage a database
outage without touching the shared server.

``with TcpLink(("127.0.0.1", 5432)) as link:`` listens on a free port of 127.0.0.1 and forwards every
connection it accepts to the target. ``link.cut()`` resets every live connection (an RST each way, as a
crashed or restarting server, or a failover, leaves them) and, until ``link.restore()``, answers each new
connection with an immediate reset, so a client sees the database go away mid-query and cannot reconnect.
Nothing here knows PostgreSQL's protocol: the bytes pass through unchanged.

Written by hand because no maintained Python library does this in-process (toxiproxy is a Go server);
one thread and a selector keep it small and make ``cut()`` take effect before it returns.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN (SO_LINGER on, zero timeout)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpLink:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = True
        self.accepted = 0  # connections accepted while up
        self.refused = 0  # connections reset at once while cut
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._pending: list[tuple[Callable[[], None], threading.Event]] = []
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TcpLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="tcp-link", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Reset every live connection and refuse new ones; done when this returns."""
        self._run_in_loop(self._cut)

    def restore(self) -> None:
        """Forward new connections again (the ones cut stay dead, as after a real outage)."""
        self._run_in_loop(lambda: setattr(self, "up", True))

    def live_connections(self) -> int:
        return len(self._peers) // 2

    def stop(self) -> None:
        if self._thread is None:
            return
        self._run_in_loop(self._shutdown)
        self._thread.join(timeout=5)
        self._thread = None
        for sock in (self._listener, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()
        self._selector.close()

    # ------------------------------------------------------------ the loop's thread

    def _run_in_loop(self, action: Callable[[], None]) -> None:
        done = threading.Event()
        with self._lock:
            self._pending.append((action, done))
        self._wake_w.send(b"x")
        if not done.wait(timeout=5):
            raise TimeoutError("the TCP link's thread did not answer")

    def _cut(self) -> None:
        self.up = False
        self._drop_all()

    def _shutdown(self) -> None:
        self._running = False
        self._drop_all()

    def _drop_all(self) -> None:
        for sock in list(self._peers):
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for one in (sock, peer):
            if one is None:
                continue
            self._peers.pop(one, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(one)
            _reset(one)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if not self.up:
            self.refused += 1
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(client)
            return
        self.accepted += 1
        for sock in (client, upstream):
            sock.settimeout(5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peers[client], self._peers[upstream] = upstream, client
        self._selector.register(client, selectors.EVENT_READ)
        self._selector.register(upstream, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(_CHUNK)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)  # one side closed or failed: so does the other

    def _loop(self) -> None:
        while self._running:
            for key, _ in self._selector.select(timeout=0.5):
                sock: Any = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock is self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        sock.recv(_CHUNK)
                    with self._lock:
                        pending, self._pending = self._pending, []
                    for action, done in pending:
                        action()
                        done.set()
                    if not self._running:
                        return
                else:
                    self._forward(sock)
