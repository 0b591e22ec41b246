"""A local stand-in for APNs: real HTTP/2 over TLS on 127.0.0.1, built on ``h2`` (server side).

It answers the way ../shared/reference/apple_wallet.md §4 says APNs does, so the client is tested on
the wire rather than against a mock: ``POST /3/device/<token>`` only (405 otherwise, 404 for another
path), 400 ``MissingTopic`` / ``BadDeviceToken`` / ``PayloadEmpty``, 403 for a missing, invalid or stale
provider token in token mode, 410 with a ``timestamp``, JSON ``{"reason": ...}`` error bodies and an
``apns-id`` on every answer. It advertises ``SETTINGS_MAX_CONCURRENT_STREAMS`` 1000.

With ``client_ca`` the TLS handshake requires a client certificate that chains to those CA files, as
certificate-based APNs does; the verified subject is recorded with every request. The fake's own server
certificate comes from a throwaway CA made at start (``ca_file``), so clients verify it for real.

One thread accepts, one thread per connection runs the h2 state machine on a blocking TLS socket: a single
connection carries thousands of concurrent streams, answered as fast as they arrive. ``connections``
counts TCP connections accepted (including those whose handshake failed, also counted in
``handshake_failures``), which is what proves that a client keeps to one connection.

``python -m tests.fakes.apns_h2 [--client-ca PEM ...]`` runs it in its own process (for the benchmark,
so the fake does not share the client's interpreter lock): it prints ``{"url", "ca_file"}`` as one JSON
line, answers each ``stats`` line on stdin with ``{"connections", "handshake_failures", "requests"}``, and
stops at end of input.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http
import ipaddress
import json
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["FakeApns", "RecordedRequest"]

_PATH_PREFIX = "/3/device/"
_HEX = re.compile(r"[0-9A-Fa-f]+")
_TOKEN_MAX_AGE = 3600  # APNs refuses provider tokens whose iat is more than an hour old
_MAX_PAYLOAD = 4096
_DEFAULT_REASONS = {
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    token: str | None  # the path's last segment for /3/device/<token>, else None
    headers: dict[str, str]  # lower-case names, pseudo-headers included
    body: bytes
    client_subject: str | None  # RFC 4514 subject of the verified client certificate
    connection_id: int  # 1, 2, … in the order connections were accepted


Scripted = tuple[int, str | None, dict[str, str] | None]


class _Drop(Exception):
    """Close this connection now (a scripted DROP_CONNECTION)."""


class FakeApns:
    """APNs on 127.0.0.1; use as a context manager (see the module docstring)."""

    RESET_STREAM = -1  # script status: answer the stream with RST_STREAM (INTERNAL_ERROR)
    DROP_CONNECTION = -2  # script status: close the TCP connection, failing every stream on it

    def __init__(
        self,
        client_ca: Sequence[str | Path] | None = None,
        token_public_key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey | None = None,
        team_id: str | None = None,
        key_id: str | None = None,
        *,
        max_concurrent_streams: int = 1000,
    ) -> None:
        if isinstance(token_public_key, ec.EllipticCurvePrivateKey):
            token_public_key = token_public_key.public_key()
        self._client_ca = [Path(p) for p in client_ca] if client_ca else None
        self._token_key = token_public_key
        self._team_id = team_id
        self._key_id = key_id
        self._max_streams = max_concurrent_streams
        self.requests: list[RecordedRequest] = []
        self.connections = 0
        self.handshake_failures = 0
        self._scripts: dict[str, deque[Scripted]] = {}
        self._lock = threading.Lock()
        self._verified_jwts: dict[str, int] = {}  # token → iat, so each JWT is verified once
        self._stopping = threading.Event()
        self._live: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._listener: socket.socket | None = None
        self.url = ""
        self.ca_file = Path()

    # ---------------------------------------------------------------------------- public API

    def script(self, token: str, responses: Iterable[Sequence[object]]) -> None:
        """Answer the next requests for ``token`` with these ``(status, reason, extra_headers)``, in order;
        afterwards (and for every other token) the answer is 200. ``reason`` None means APNs's usual one."""
        padded = [(*tuple(r), None, None)[:3] for r in responses]
        with self._lock:
            self._scripts.setdefault(token, deque()).extend(padded)  # type: ignore[arg-type]

    def __enter__(self) -> FakeApns:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-apns-")
        tmp = Path(self._tmp.name)
        self.ca_file, server_pem = _server_credentials(tmp)
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
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._spawn(self._accept_loop, "fake-apns-accept")

    def stop(self) -> None:
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

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
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
            self._spawn(self._serve, f"fake-apns-conn-{conn_id}", sock, conn_id)

    def _serve(self, raw: socket.socket, conn_id: int) -> None:
        tls: ssl.SSLSocket | None = None
        try:
            raw.settimeout(10)
            try:
                tls = self._ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                with self._lock:
                    self.handshake_failures += 1
                return
            with self._lock:
                self._live.discard(raw)
                self._live.add(tls)
            tls.settimeout(None)
            self._run_h2(tls, conn_id, _peer_subject(tls))
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

    def _run_h2(self, tls: ssl.SSLSocket, conn_id: int, subject: str | None) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self._max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        while True:
            data = tls.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = (dict(event.headers), bytearray())  # type: ignore[arg-type]
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id in streams:
                        streams[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    if event.stream_id in streams:
                        headers, body = streams.pop(event.stream_id)
                        self._answer(conn, tls, event.stream_id, headers, bytes(body), subject, conn_id)
                elif isinstance(event, h2.events.StreamReset):
                    streams.pop(event.stream_id, None)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    tls.sendall(conn.data_to_send())
                    return
            out = conn.data_to_send()
            if out:
                tls.sendall(out)

    # ---------------------------------------------------------------------------- APNs behaviour

    def _answer(
        self,
        conn: h2.connection.H2Connection,
        tls: ssl.SSLSocket,
        stream_id: int,
        headers: dict[str, str],
        body: bytes,
        subject: str | None,
        conn_id: int,
    ) -> None:
        method, path = headers.get(":method", ""), headers.get(":path", "")
        token = path[len(_PATH_PREFIX):] if path.startswith(_PATH_PREFIX) else None
        self.requests.append(RecordedRequest(method, path, token, headers, body, subject, conn_id))
        status, reason, extra = self._decide(method, token, headers, body)
        if status == self.RESET_STREAM:
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        if status == self.DROP_CONNECTION:
            raise _Drop
        out_headers = [(":status", str(status)), ("apns-id", str(uuid.uuid4()).upper())]
        payload = b""
        if status != 200:
            error: dict[str, object] = {"reason": reason or _default_reason(status)}
            if status == 410:
                error["timestamp"] = int(time.time() * 1000)
            payload = json.dumps(error).encode()
            out_headers += [("content-type", "application/json"), ("content-length", str(len(payload)))]
        out_headers += [(k.lower(), v) for k, v in (extra or {}).items()]
        conn.send_headers(stream_id, out_headers, end_stream=not payload)
        if payload:
            conn.send_data(stream_id, payload, end_stream=True)

    def _decide(
        self, method: str, token: str | None, headers: dict[str, str], body: bytes
    ) -> tuple[int, str | None, dict[str, str] | None]:
        if method != "POST":
            return 405, "MethodNotAllowed", None
        if not token or "/" in token:
            return 404, "BadPath", None
        if self._token_key is not None:
            refused = self._check_provider_token(headers.get("authorization"))
            if refused:
                return 403, refused, None
        if not headers.get("apns-topic"):
            return 400, "MissingTopic", None
        if not _HEX.fullmatch(token):
            return 400, "BadDeviceToken", None
        if not body:
            return 400, "PayloadEmpty", None
        if len(body) > _MAX_PAYLOAD:
            return 413, "PayloadTooLarge", None
        with self._lock:
            queue = self._scripts.get(token)
            if queue:
                return queue.popleft()
        return 200, None, None

    def _check_provider_token(self, authorization: str | None) -> str | None:
        """None when the bearer token is acceptable, else APNs's reason for refusing it."""
        if not authorization:
            return "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "InvalidProviderToken"
        iat = self._verified_jwts.get(token)
        if iat is None:
            try:
                header = jwt.get_unverified_header(token)
                claims = jwt.decode(
                    token, self._token_key, algorithms=["ES256"], leeway=60, options={"require": ["iat", "iss"]}
                )
            except jwt.PyJWTError:
                return "InvalidProviderToken"
            if header.get("kid") != self._key_id or claims.get("iss") != self._team_id:
                return "InvalidProviderToken"
            iat = int(claims["iat"])
            self._verified_jwts[token] = iat
        if time.time() - iat > _TOKEN_MAX_AGE:
            return "ExpiredProviderToken"
        return None


def _default_reason(status: int) -> str:
    if status in _DEFAULT_REASONS:
        return _DEFAULT_REASONS[status]
    try:
        return http.HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "Unknown"


def _peer_subject(tls: ssl.SSLSocket) -> str | None:
    der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None


def _server_credentials(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA (``ca.pem``) and a server certificate for 127.0.0.1/localhost (``server.pem``,
    certificate then key). EC P-256 keeps start-up fast."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake APNs test CA")])
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
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.push.apple.com (fake)")]))
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


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the fake APNs server until stdin closes.")
    ap.add_argument("--client-ca", action="append", default=[], help="CA file clients must chain to (repeatable)")
    args = ap.parse_args()
    with FakeApns(client_ca=args.client_ca or None) as apns:
        print(json.dumps({"url": apns.url, "ca_file": str(apns.ca_file)}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                stats = {
                    "connections": apns.connections,
                    "handshake_failures": apns.handshake_failures,
                    "requests": len(apns.requests),
                }
                print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
