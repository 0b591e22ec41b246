"""Google Wallet client: loyalty classes and objects over REST, and "Add to Google Wallet" links
(../shared/reference/google_wallet.md).

REST, §3: ``{api_url}/loyaltyClass`` and ``{api_url}/loyaltyObject`` with insert (POST), get, patch, update (PUT)
and addMessage. PATCH replaces whole top-level fields (send the full ``loyaltyPoints``), PUT replaces the
resource. ``insert_or_patch`` and ``patch_or_insert`` are the two idempotent flows the official sample builds
from 409 and 404.

Authentication, §3 "OAuth2 with pyjwt + httpx only": the JWT-bearer grant (RFC 7523). An RS256 assertion
``{iss, scope, aud=token_url, iat, exp=iat+3600}`` signed with the service account's key (header ``kid``) is
exchanged at ``token_url`` for a bearer token, cached until 60 s before it expires; one thread refreshes it
while the others wait. A 401 from the API means Google no longer takes the token: it is refreshed once and
the request repeated once.

Errors, §3 table: 400 (and any other 4xx that is not about credentials, existence or load) ``GoogleInvalid``,
carrying the refused body and Google's own message, 404 ``GoogleNotFound``, 409 ``GoogleConflict``; 403 (the
service account is not a user of the issuer), a second 401 and a token endpoint refusing the assertion are
``GoogleConfigError``, logged once at ERROR with what to fix. A notification quota refusal (§4: three per pass
per 24 h, ``QuotaExceededException``) is ``GoogleQuotaExceeded`` and never retried. Other 429s, 5xx and network
errors are retried ``max_attempts`` times with exponential back-off and jitter, or after ``Retry-After``,
one WARNING per retry; then ``GoogleUnavailable``. addMessage is not idempotent (a repeated
``TEXT_AND_NOTIFY`` message would be a second notification, and the quota is three a day): it is retried only
when Google cannot have acted on it (429, 503, or no connection made).

Save links, §2: ``save_jwt`` signs ``{iss, aud: "google", typ: "savetowallet", iat, origins, payload}`` with
RS256 and no ``exp``; ``save_url`` prefixes ``https://pay.google.com/gp/v/save/``. Browsers truncate links whose
JWT is over ``MAX_SAVE_JWT`` (1800) characters: insert the class and object by REST first and put only the
object's id in the payload (a "skinny" JWT).

One ``httpx.Client`` (HTTP/2, keep-alive) per client, shared by all threads. A forked child (Celery prefork)
makes its own and never touches the parent's connections. The access token and the assertion are never
logged and never part of an exception.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.channels.http import reset_after_fork
from app.channels.http import retry_after as _retry_after

__all__ = [
    "MAX_SAVE_JWT",
    "SAVE_URL_PREFIX",
    "SCOPE",
    "GoogleConfigError",
    "GoogleConflict",
    "GoogleInvalid",
    "GoogleNotFound",
    "GoogleQuotaExceeded",
    "GoogleUnavailable",
    "GoogleWalletClient",
    "GoogleWalletConfig",
    "GoogleWalletError",
    "Kind",
    "ServiceAccount",
    "save_jwt",
    "save_url",
]

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"
MAX_SAVE_JWT = 1800  # characters of the JWT in a save link (reference §2)

Kind = Literal["loyaltyClass", "loyaltyObject"]
_KINDS = frozenset({"loyaltyClass", "loyaltyObject"})

_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ASSERTION_LIFETIME = 3600  # seconds; Google refuses longer-lived assertions
_TOKEN_MARGIN = 60.0  # a cached access token is replaced this long before it expires
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_NOT_PROCESSED_STATUSES = frozenset({429, 503})  # Google did not act on the request
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # the request never left
_NOT_ABOUT_THE_BODY = frozenset({401, 403, 404, 408, 409, 429})  # other 4xx refuse the request as it is
_QUOTA_REASON = "QuotaExceeded"
_REQUIRED_KEY_FIELDS = ("client_email", "private_key", "private_key_id")
_INVITE_HINT = (
    "invite the service account {email} as a user (Developer) of the issuer in the Google Pay & Wallet Console "
    "(Users), and check TALLYPASS_GOOGLE_ISSUER_ID"
)


# -------------------------------------------------------------------------------- service account and save links


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a Google service-account key file that Tallypass uses."""

    client_email: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    private_key_id: str
    project_id: str = ""

    @classmethod
    def from_file(cls, path: Path) -> ServiceAccount:
        """Google's key-file JSON, as the Cloud console downloads it (TALLYPASS_GOOGLE_SERVICE_ACCOUNT)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the Google service-account key file: {exc.strerror}") from None
        try:
            info = json.loads(text)
        except ValueError:
            raise ValueError(f"{path}: not a Google service-account key file (not JSON)") from None
        try:
            return cls.from_info(info)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def from_info(cls, info: dict) -> ServiceAccount:
        """The parsed key-file JSON. ValueError names what is wrong, never the key itself."""
        if not isinstance(info, dict):
            raise ValueError("not a Google service-account key file (expected a JSON object)")
        kind = info.get("type", "service_account")
        if kind != "service_account":
            raise ValueError(f"not a service-account key file (type {kind!r}); download a key of the service account")
        missing = [name for name in _REQUIRED_KEY_FIELDS if not isinstance(info.get(name), str) or not info[name]]
        if missing:
            raise ValueError(f"the service-account key file lacks {', '.join(missing)}")
        try:
            key = serialization.load_pem_private_key(info["private_key"].encode("utf-8"), password=None)
        except (ValueError, TypeError):
            raise ValueError("private_key is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"private_key is not an RSA key ({type(key).__name__}); Google signs with RS256")
        project_id = info.get("project_id")
        return cls(
            client_email=info["client_email"],
            private_key=key,
            private_key_id=info["private_key_id"],
            project_id=project_id if isinstance(project_id, str) else "",
        )


def save_jwt(account: ServiceAccount, payload: dict, *, origins: list[str], now: int | None = None) -> str:
    """RS256, header kid=private_key_id; claims iss=client_email, aud="google", typ="savetowallet", iat, origins,
    payload. No exp (reference §2: not in Google's spec, and a link in an e-mail must not go stale).

    ``origins`` are full origins (``https://shop.example``) allowed to show the save button; ``[]`` for plain
    links. The caller checks ``len(token) <= MAX_SAVE_JWT`` and falls back to a skinny payload above it."""
    if not isinstance(payload, dict) or not payload:
        raise ValueError("the save JWT payload must be a non-empty dict such as {'loyaltyObjects': [{'id': ...}]}")
    for origin in origins:
        parts = urlsplit(origin) if isinstance(origin, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"origin {origin!r} must be scheme://host, e.g. 'https://shop.example' (reference §2)")
    claims = {
        "iss": account.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time()) if now is None else int(now),
        "origins": list(origins),
        "payload": payload,
    }
    return jwt.encode(claims, account.private_key, algorithm="RS256", headers={"kid": account.private_key_id},
                      json_encoder=_Utf8Encoder)


class _Utf8Encoder(json.JSONEncoder):
    """JSON as UTF-8 rather than ``\\u`` escapes: "Ș" then costs 2 bytes of the link instead of 6, which
    matters under the 1800-character limit for names in Romanian or Russian."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "ensure_ascii": False})


def save_url(token: str) -> str:
    """The "Add to Google Wallet" link for a save JWT."""
    return SAVE_URL_PREFIX + token


# -------------------------------------------------------------------------------- errors


class GoogleWalletError(Exception):
    """A request Google refused or could not answer. ``reason`` is Google's most specific code: the first
    ``errors[].reason`` of the JSON error body, else its ``status`` (or the OAuth ``error``); the message
    is in ``str(exc)``, and Google's own ``error.message`` alone in ``detail``. ``path`` is relative to the API
    URL (``/loyaltyObject/<id>``) or the token URL's path."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        method: str | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.method = method
        self.path = path
        self.detail = detail


class GoogleConfigError(GoogleWalletError):
    """An operator must fix configuration: the message says what."""


class GoogleUnavailable(GoogleWalletError):
    """429 / 5xx / network errors still failing after the retries. ``retry_after``: seconds Google asked to
    wait (when that was longer than ``backoff_max``), else None."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class GoogleNotFound(GoogleWalletError):
    """404: no such class or object (or the object's class is missing or still a draft)."""


class GoogleConflict(GoogleWalletError):
    """409: a class or object with this id already exists."""


class GoogleQuotaExceeded(GoogleWalletError):
    """A notification quota refusal (QuotaExceededException, reference §4): send it again without
    ``NOTIFY_ON_UPDATE`` / as ``TEXT``, or tomorrow. Never retried."""


class GoogleInvalid(GoogleWalletError):
    """400, or another 4xx that is neither about credentials (401/403), existence (404/409) nor load (408/429):
    Google refused the request as it is (a field the resource does not have, a type, more than 10 messages…).
    Never retried: the same body would be refused again. ``body`` is the body Google refused (None for a GET)."""

    def __init__(self, message: str, *, body: dict | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.body = body


# -------------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class GoogleWalletConfig:
    api_url: str  # e.g. "https://walletobjects.googleapis.com/walletobjects/v1" (TALLYPASS_GOOGLE_API_URL)
    token_url: str  # e.g. "https://oauth2.googleapis.com/token" (TALLYPASS_GOOGLE_TOKEN_URL); also the assertion's aud
    account: ServiceAccount
    timeout: float = 10.0
    max_attempts: int = 4  # for 429 (not quota) / 5xx / network errors
    backoff: float = 0.5  # first retry delay, doubling, jitter, capped at backoff_max; honour Retry-After
    backoff_max: float = 8.0


class _Token(NamedTuple):
    value: str
    refresh_at: float  # clock() after which a new token is fetched


class _Reply(NamedTuple):
    response: httpx.Response | None  # None: network error
    error: str  # the network error, else ""
    sent: bool  # False when the request surely never reached the server


class GoogleWalletClient:
    """Loyalty classes and objects through Google Wallet's REST API; every method is synchronous and
    thread-safe. ``http`` lets tests and benchmarks pass their own ``httpx.Client`` (then not closed here);
    ``clock`` (seconds since the epoch) exists for tests of the access token's lifetime."""

    def __init__(
        self,
        config: GoogleWalletConfig,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_config(config)
        self._config = config
        self._api = config.api_url.rstrip("/")
        self._token_path = urlsplit(config.token_url).path or "/"
        self._clock = clock
        self._owns_http = http is None
        self._http = http if http is not None else _new_http(config)
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        reset_after_fork(self)

    # ---------------------------------------------------------------------------- public API

    def access_token(self) -> str:
        """A bearer token for the API, from the JWT-bearer grant (RFC 7523) at ``token_url``; cached until 60 s
        before it expires. Concurrent callers wait for one refresh instead of each making their own."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        with self._token_lock:
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = self._token = self._fetch_token()
            return token.value

    def insert(self, kind: Kind, resource: dict) -> dict:
        """POST {api}/{kind}. 409 (``GoogleConflict``) when the id exists: a retry after a lost answer can meet
        its own first attempt, so callers that may repeat an insert use ``insert_or_patch``."""
        return self._call("POST", _kind(kind), resource)

    def get(self, kind: Kind, resource_id: str) -> dict:
        return self._call("GET", _resource_path(kind, resource_id))

    def patch(self, kind: Kind, resource_id: str, body: dict) -> dict:
        """PATCH: each top-level field of ``body`` replaces the stored one whole (reference §3), so send the
        complete ``loyaltyPoints``. Add ``"notifyPreference": "NOTIFY_ON_UPDATE"`` to notify the holder (§4)."""
        return self._call("PATCH", _resource_path(kind, resource_id), body)

    def update(self, kind: Kind, resource_id: str, resource: dict) -> dict:
        """PUT: replaces the whole resource; fields left out are lost."""
        if resource.get("id", resource_id) != resource_id:
            raise ValueError(f"update of {resource_id!r} with a resource whose id is {resource['id']!r}")
        return self._call("PUT", _resource_path(kind, resource_id), {**resource, "id": resource_id})

    def add_message(self, kind: Kind, resource_id: str, message: dict) -> dict:
        """POST {api}/{kind}/{id}/addMessage ``{"message": message}``; returns the updated resource. A resource
        holds at most 10 messages: prune ``messages`` with a PATCH first (reference §4)."""
        reply = self._call(
            "POST", _resource_path(kind, resource_id) + "/addMessage", {"message": message}, idempotent=False
        )
        resource = reply.get("resource")
        if not isinstance(resource, dict):
            raise GoogleWalletError(
                "Google Wallet answered addMessage without a resource", method="POST",
                path=_resource_path(kind, resource_id) + "/addMessage",
            )
        return resource

    def insert_or_patch(self, kind: Kind, resource: dict) -> tuple[dict, bool]:
        """Insert; when the id exists (409), patch the same fields (without ``id``) instead.
        Returns (resource, created)."""
        resource_id = _resource_id(resource)
        try:
            return self.insert(kind, resource), True
        except GoogleConflict:
            body = {k: v for k, v in resource.items() if k != "id"}
            return self.patch(kind, resource_id, body), False

    def patch_or_insert(self, kind: Kind, resource_id: str, body: dict, *, full: dict) -> tuple[dict, bool]:
        """Patch; when the resource does not exist (404), insert ``full``, which must carry ``id`` and
        ``body``'s fields. Should another writer insert it in between (409), patch after all.
        Returns (resource, created)."""
        if _resource_id(full) != resource_id:
            raise ValueError(f"patch_or_insert of {resource_id!r}: full['id'] is {full.get('id')!r}")
        differing = sorted(k for k, v in body.items() if k not in ("id", "notifyPreference") and full.get(k) != v)
        if differing:
            raise ValueError(f"patch_or_insert of {resource_id!r}: full lacks body's {', '.join(differing)}")
        try:
            return self.patch(kind, resource_id, body), False
        except GoogleNotFound:
            pass
        try:
            return self.insert(kind, full), True
        except GoogleConflict:
            return self.patch(kind, resource_id, body), False

    def close(self) -> None:
        """Close the connections (only those of an ``httpx.Client`` this client made)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> GoogleWalletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- API requests

    def _call(self, method: str, path: str, body: dict | None = None, *, idempotent: bool = True) -> dict:
        if body is not None and not isinstance(body, dict):
            raise TypeError(f"the body of {method} {path} must be a dict, not {type(body).__name__}")
        url = self._api + path
        attempts, refreshed = 0, False
        while True:
            attempts += 1
            bearer = self.access_token()
            reply = self._send(method, url, json=body, headers={"Authorization": f"Bearer {bearer}"})
            response = reply.response
            if response is not None and response.is_success:
                return _json_object(response, method, path)
            if response is not None and response.status_code == 401 and not refreshed:
                refreshed = True
                attempts -= 1  # the repeat with a fresh token is not one of the back-off attempts
                self._forget_token(bearer)
                log.info("Google Wallet %s %s: 401, repeating once with a new access token", method, path)
                continue
            status = response.status_code if response is not None else None
            if response is not None:
                error = _error_from_response(response, method, path, self._config.account.client_email, body)
                if not isinstance(error, GoogleUnavailable):
                    if isinstance(error, GoogleConfigError):
                        log.error("%s", error)
                    raise error
                detail = f"{status} {error.reason or ''}".rstrip()
            else:
                detail = reply.error
            retry_after = _retry_after(response.headers.get("retry-after")) if response is not None else None
            if not idempotent and not (reply.sent is False or status in _NOT_PROCESSED_STATUSES):
                raise GoogleUnavailable(
                    f"Google Wallet {method} {path} failed ({detail}) and is not repeated: Google may have acted on "
                    "it",
                    status=status, reason=_reason_of(response), method=method, path=path,
                )
            self._back_off_or_raise(method, path, attempts, status, detail, retry_after, _reason_of(response))

    def _send(self, method: str, url: str, **kwargs: Any) -> _Reply:
        try:
            return _Reply(self._http.request(method, url, **kwargs), "", True)
        except (httpx.TransportError, OSError) as exc:  # OSError: a TLS alert httpcore did not map
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return _Reply(None, text, not isinstance(exc, _NOT_SENT_ERRORS))

    def _back_off_or_raise(
        self, method: str, path: str, attempts: int, status: int | None, detail: str, retry_after: float | None,
        reason: str | None,
    ) -> None:
        """Sleep before the next attempt (one WARNING), or raise GoogleUnavailable when the attempts are used up
        or Google asked for a longer pause than ``backoff_max`` (a retry sooner would be refused again)."""
        cfg = self._config
        if attempts >= cfg.max_attempts or (retry_after is not None and retry_after > cfg.backoff_max):
            tail = f"; Google asked to retry after {retry_after:.0f} s" if retry_after is not None else ""
            message = f"Google Wallet {method} {path} failed after {attempts} attempts: {detail}{tail}"
            log.warning("%s", message)
            raise GoogleUnavailable(
                message, status=status, reason=reason, method=method, path=path,
                retry_after=retry_after if retry_after is not None and retry_after > cfg.backoff_max else None,
            )
        delay = self._delay(attempts, retry_after)
        log.warning(
            "Google Wallet %s %s: %s, retry %d of %d in %.2f s",
            method, path, detail, attempts, cfg.max_attempts - 1, delay,
        )
        time.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter (retries from many workers spread out), or Google's Retry-After."""
        cfg = self._config
        if retry_after is not None:
            return retry_after
        ceiling = min(cfg.backoff_max, cfg.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    # ---------------------------------------------------------------------------- access token

    def _forget_token(self, rejected: str) -> None:
        """The API refused ``rejected``: drop it unless another thread already replaced it (then many
        concurrent 401s still cost one refresh)."""
        with self._token_lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None

    def _fetch_token(self) -> _Token:
        """The JWT-bearer grant, retried like API requests; call with ``_token_lock`` held."""
        account, cfg, path = self._config.account, self._config, self._token_path
        attempts = 0
        while True:
            attempts += 1
            now = self._clock()
            assertion = jwt.encode(
                {
                    "iss": account.client_email,
                    "scope": SCOPE,
                    "aud": cfg.token_url,
                    "iat": int(now),
                    "exp": int(now) + _ASSERTION_LIFETIME,
                },
                account.private_key,
                algorithm="RS256",
                headers={"kid": account.private_key_id},
            )
            reply = self._send("POST", cfg.token_url, data={"grant_type": _GRANT_TYPE, "assertion": assertion})
            response = reply.response
            status = response.status_code if response is not None else None
            if response is not None and response.is_success:
                return self._token_from(response, now)
            if response is not None and status not in _RETRY_STATUSES:
                error, description = _oauth_error(response)
                message = (
                    f"the Google token endpoint refused the service account {account.client_email} ({status} "
                    f"{error or ''}{': ' + description if description else ''}): check that "
                    "TALLYPASS_GOOGLE_SERVICE_ACCOUNT holds a current key of that account (keys can be deleted or "
                    "disabled in the Cloud console), that TALLYPASS_GOOGLE_TOKEN_URL is Google's, and that the "
                    "system clock is right"
                )
                log.error("%s", message)
                raise GoogleConfigError(message, status=status, reason=error, method="POST", path=path)
            detail = f"{status} {_oauth_error(response)[0] or ''}".rstrip() if response is not None else reply.error
            retry_after = _retry_after(response.headers.get("retry-after")) if response is not None else None
            self._back_off_or_raise("POST", path, attempts, status, detail, retry_after, None)

    def _token_from(self, response: httpx.Response, requested_at: float) -> _Token:
        try:
            body = response.json()
            value, expires_in = body["access_token"], float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise GoogleWalletError(
                "the Google token endpoint answered without an access_token", status=response.status_code,
                method="POST", path=self._token_path,
            ) from None
        if not isinstance(value, str) or not value:
            raise GoogleWalletError(
                "the Google token endpoint answered an empty access_token", status=response.status_code,
                method="POST", path=self._token_path,
            )
        log.info("Google access token issued for %s (expires in %.0f s)", self._config.account.client_email,
                 expires_in)
        return _Token(value, requested_at + expires_in - _TOKEN_MARGIN)

    # ---------------------------------------------------------------------------- fork

    def _after_fork_in_child(self) -> None:
        """Celery prefork: the child must not use the parent's sockets (HTTP/2 would interleave frames) nor close
        them (a GOAWAY would end the parent's connection). Keep the inherited client referenced, unused."""
        self._token_lock = threading.Lock()  # another thread may have held it at fork time
        if self._owns_http:
            _ABANDONED.append(self._http)
            self._http = _new_http(self._config)


# -------------------------------------------------------------------------------- helpers


def _check_config(config: GoogleWalletConfig) -> None:
    for name in ("api_url", "token_url"):
        parts = urlsplit(getattr(config, name))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Google Wallet {name} must be an http(s) URL, not {getattr(config, name)!r}")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            log.warning("Google Wallet %s %s is plain http: the access token travels unencrypted", name,
                        getattr(config, name))
    if not isinstance(config.account, ServiceAccount):
        raise ValueError("GoogleWalletConfig.account must be a ServiceAccount (ServiceAccount.from_file)")
    if config.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if config.backoff < 0 or config.backoff_max < 0 or config.timeout <= 0:
        raise ValueError("backoff and backoff_max must not be negative, timeout must be positive")


def _new_http(config: GoogleWalletConfig) -> httpx.Client:
    # HTTP/2 to Google multiplexes every thread's requests on one connection; against an http:// stand-in
    # it is HTTP/1.1 with one kept-alive connection per concurrent thread.
    return httpx.Client(
        http2=True,
        timeout=httpx.Timeout(config.timeout),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32, keepalive_expiry=60.0),
    )


def _kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {kind!r}")
    return "/" + kind


def _resource_path(kind: str, resource_id: str) -> str:
    if not isinstance(resource_id, str) or resource_id in ("", ".", ".."):
        raise ValueError(f"invalid Google Wallet resource id {resource_id!r}")
    return f"{_kind(kind)}/{quote(resource_id, safe='')}"


def _resource_id(resource: dict) -> str:
    resource_id = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(resource_id, str) or not resource_id:
        raise ValueError("the resource needs an 'id' ('<issuerId>.<suffix>')")
    return resource_id


def _json_object(response: httpx.Response, method: str, path: str) -> dict:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise GoogleWalletError(
            f"Google Wallet {method} {path}: {response.status_code} without a JSON object",
            status=response.status_code, method=method, path=path,
        )
    return data


def _google_error(response: httpx.Response | None) -> tuple[str | None, str | None, list[str]]:
    """(status, message, [errors[].reason]) of Google's JSON error body, Nones when it has none."""
    if response is None or not response.content:
        return None, None, []
    try:
        data = response.json()
    except ValueError:
        return None, None, []
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None, []
    status = error.get("status") if isinstance(error.get("status"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    reasons = [
        e["reason"] for e in error.get("errors") or [] if isinstance(e, dict) and isinstance(e.get("reason"), str)
    ]
    return status, message, reasons


def _reason_of(response: httpx.Response | None) -> str | None:
    status, _, reasons = _google_error(response)
    return reasons[0] if reasons else status


def _error_from_response(response: httpx.Response, method: str, path: str, client_email: str,
                         body: dict | None = None) -> GoogleWalletError:
    code = response.status_code
    status, message, reasons = _google_error(response)
    reason = reasons[0] if reasons else status
    quota = any(_QUOTA_REASON in r for r in reasons) or _QUOTA_REASON in (message or "")
    said = f" ({reason}: {message})" if message else (f" ({reason})" if reason else "")
    kw: dict[str, Any] = {"status": code, "reason": reason, "method": method, "path": path, "detail": message}
    if quota:
        return GoogleQuotaExceeded(
            f"Google Wallet {method} {path}: notification quota exceeded{said}; send it without NOTIFY_ON_UPDATE "
            "or as a TEXT message (at most 3 notifications per pass per 24 h)", **kw
        )
    if code in _RETRY_STATUSES:
        return GoogleUnavailable(f"Google Wallet {method} {path}: {code}{said}", **kw)
    if code == 400 or (400 <= code < 500 and code not in _NOT_ABOUT_THE_BODY):
        return GoogleInvalid(f"Google Wallet refused {method} {path} as invalid ({code}){said}", body=body, **kw)
    if code == 401:
        return GoogleConfigError(
            f"Google Wallet refused a freshly issued access token for {method} {path} (401{said}): check that the "
            f"service account {client_email} is enabled and that TALLYPASS_GOOGLE_API_URL and "
            "TALLYPASS_GOOGLE_TOKEN_URL belong together", **kw
        )
    if code == 403:
        return GoogleConfigError(
            f"Google Wallet denied {method} {path} (403{said}): " + _INVITE_HINT.format(email=client_email), **kw
        )
    if code == 404:
        return GoogleNotFound(f"Google Wallet {method} {path}: not found{said}", **kw)
    if code == 409:
        return GoogleConflict(f"Google Wallet {method} {path}: already exists{said}", **kw)
    return GoogleWalletError(f"Google Wallet {method} {path}: unexpected {code}{said}", **kw)


def _oauth_error(response: httpx.Response | None) -> tuple[str | None, str | None]:
    """(error, error_description) of an OAuth 2.0 error body (RFC 6749 §5.2)."""
    if response is None or not response.content:
        return None, None
    try:
        data = response.json()
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    error, description = data.get("error"), data.get("error_description")
    if isinstance(error, dict):  # some Google front ends answer in the API's error shape
        status, message, reasons = _google_error(response)
        return (reasons[0] if reasons else status), message
    return (error if isinstance(error, str) else None), (description if isinstance(description, str) else None)


# What forked children inherited and must neither use nor close.
_ABANDONED: list[httpx.Client] = []
