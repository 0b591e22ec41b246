"""A local stand-in for Google Wallet's REST API and Google's OAuth 2.0 token endpoint, holding state in memory
(../shared/reference/google_wallet.md §6b, option 3: "Local Flask stub", here plain werkzeug), as strict as
Google about what a body may hold.

What Google's resources are comes from Google's own published definition, never from a list typed here: the
``walletobjects`` v1 discovery document that ``google-api-python-client`` ships (``tests/fakes/google_discovery.py``
loads it and validates against it). From it come the routes (each method's ``httpMethod`` and ``path``), every
field name, JSON type and enum value at any depth (``$ref``s, arrays and maps followed), which fields are
required (the document's "Required." markers), and the legacy enum aliases (``underReview`` for
``UNDER_REVIEW``, ``qrCode`` for ``QR_CODE``…). A body with a field, a type or an enum value the resource does
not have is answered 400 ``INVALID_ARGUMENT`` in Google's error shape, e.g. ``Invalid JSON payload received.
Unknown name "rewardsTier" at 'resource': Cannot find field.``, with a ``google.rpc.BadRequest`` field
violation naming the field; the JSON rules are proto3's (int64 as a string or a number, enums by name, null for
"absent", lowerCamelCase or proto names): see google_discovery.py.

What the document cannot express, because it says it only in prose or not at all, is behaviour kept here
(each with its source):

- ``POST /token`` (§3 "OAuth2 with pyjwt + httpx only"): the JWT-bearer grant. The assertion must verify
  (RS256, the service account's public key, ``kid`` when the fake knows it), with ``aud`` = this URL,
  ``iss`` = the client e-mail, a ``scope`` holding ``wallet_object.issuer``, ``iat`` at most 60 s ahead and
  ``exp - iat`` ≤ 3600; else 400 ``invalid_grant`` (``invalid_scope``, ``unsupported_grant_type``) in OAuth's
  ``{"error", "error_description"}`` shape. Tokens live ``token_expires_in`` seconds (tests lower it to force
  refreshes); ``revoke_tokens()`` forgets them all.
- Every API call needs ``Authorization: Bearer <a live token it issued>``, else 401.
- Ids are ``<issuerId>.<suffix>`` with suffix ``[A-Za-z0-9._-]+`` (the ``id`` descriptions); another numeric
  issuer's prefix is 403, as for a service account that is not a user of that issuer.
- ``reviewStatus`` may only be *set* to draft or underReview (its description); ``UNDER_REVIEW`` is stored as
  ``APPROVED``, as Google approves it. An object needs an existing class that is not a draft (404 otherwise).
- An image has exactly one of ``sourceUri`` (a URI with a scheme) or ``privateImageId``; a ``balance`` is
  required inside ``loyaltyPoints``/``secondaryLoyaltyPoints`` and holds exactly one of its forms;
  ``hexBackgroundColor`` is ``#rrggbb`` or ``#rgb``; at most 10 ``merchantLocations`` and 10 ``messages``
  (all from the field descriptions, which are prose).
- PATCH replaces whole top-level fields, no deep merge (§3: the sample sends the whole list); PUT replaces
  the resource, keeping its id. ``notifyPreference`` is honoured per request and never stored (§4).
- Notifications (§4): a PATCH/PUT with ``notifyPreference: NOTIFY_ON_UPDATE`` or an addMessage with
  ``TEXT_AND_NOTIFY`` counts for that resource in ``notifications`` (id → clock times). A fourth within 24 h
  is refused with 429, status ``RESOURCE_EXHAUSTED``, reason ``QuotaExceededException``, and nothing is
  stored. An 11th message is 400 (§4 leaves the real answer open).
- Errors in Google's JSON shape ``{"error": {"code", "message", "status", "errors": [{"message", "domain",
  "reason"}]}}`` with the exception names of §3's table as reasons; unknown paths 404, wrong methods 405, a
  method of the document the stand-in does not implement 501.

Where the reference is silent the fake makes a choice and says so (the reason for a draft class, the
11th message, a message needing a header and a body, notification counting for classes under the class id).
Every answer is itself checked against the method's response schema, so the fake cannot drift from the
document either. ``fail()`` scripts faults (status, reason, Retry-After) for a method and path prefix, answered
before authentication; ``clock`` moves time for token expiry and the 24 h window.

Two ways to use it: in process, ``httpx.Client(transport=httpx.WSGITransport(app=google.wsgi_app))`` with
``google.api_url`` / ``google.token_url`` on ``http://localhost``; or over real HTTP/1.1 on 127.0.0.1 with
keep-alive, ``with FakeGoogleWallet(...) as google:``. werkzeug's own request handler closes the connection
after every response (and waits 10 ms for stray input), so the server keeps werkzeug's threaded server and
``make_environ`` but answers with a handler of its own that reads exactly the request body and keeps the
connection open; ``connections`` counts TCP connections accepted.

``python -m tests.fakes.google_wallet_api --public-key PEM --client-email E --issuer-id N`` runs it in its own
process (for the benchmark): it prints ``{"api_url", "token_url"}`` as one JSON line, answers each ``stats``
line on stdin with ``{"connections", "requests", "classes", "objects"}``, and stops at end of input.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes import google_discovery as discovery
from tests.fakes.live_http import LiveHttpFake

__all__ = ["FakeGoogleWallet", "RecordedRequest"]

log = logging.getLogger(__name__)

API_PREFIX = "/walletobjects/v1"
TOKEN_PATH = "/token"  # noqa: S105 (a path)
SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Behaviour the discovery document states in prose only (see the module docstring):
NOTIFY_LIMIT, NOTIFY_WINDOW = 3, 24 * 3600.0  # notifications per pass per 24 h (reference §4)
MAX_MESSAGES, MAX_LOCATIONS = 10, 10  # the descriptions of messages and merchantLocations
SETTABLE_REVIEW_STATUSES = {"DRAFT": "DRAFT", "UNDER_REVIEW": "APPROVED"}  # reviewStatus's description: what a
# caller may set (legacy aliases too, resolved through the document) → what Google then keeps
SERVED = ("loyaltyclass", "loyaltyobject")  # the REST resources of the document the stand-in serves

_SUFFIX = re.compile(r"[A-Za-z0-9._-]+")
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and "
    "exp values in the JWT claim."
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
    501: "NOT_IMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_DEFAULT_REASONS = {
    400: "BadRequestException", 401: "authError", 403: "PermissionDeniedException", 404: "NotFoundException",
    405: "MethodNotAllowed", 409: "AlreadyExistsException", 429: "rateLimitExceeded", 500: "backendError",
    501: "notImplemented", 502: "backendError", 503: "backendError", 504: "backendError",
}
_INVALID_PAYLOAD_REASON = "invalid"  # errors[].reason of a body the JSON front end refuses


def _routes() -> Map:
    """The token endpoint, and every method of the served resources as the discovery document declares it
    (``walletobjects/v1/loyaltyObject/{resourceId}/addMessage``, POST …)."""
    rules = [Rule(TOKEN_PATH, endpoint="token", methods=["POST"])]
    for resource in SERVED:
        for name, spec in discovery.document()["resources"][resource]["methods"].items():
            path = "/" + spec["path"].replace("{resourceId}", "<resource_id>")
            rules.append(Rule(path, endpoint=f"{resource}.{name}", methods=[spec["httpMethod"]]))
    return Map(rules)


_ROUTES = _routes()


class RecordedRequest(NamedTuple):
    method: str
    path: str
    body: Any  # the parsed JSON body; the form (a dict) for the token endpoint; None when absent or unreadable
    headers: dict[str, str]  # lower-case names


@dataclass
class _Fault:
    method: str  # "*" for any
    path_prefix: str
    status: int
    remaining: int
    reason: str | None
    message: str | None
    retry_after: str | None


class _ApiError(Exception):
    """``field``: the proto path a 400 is about (Google adds a ``google.rpc.BadRequest`` field violation)."""

    def __init__(self, status: int, message: str, reason: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.field = status, message, reason, field

    @classmethod
    def invalid(cls, violation: discovery.Violation) -> _ApiError:
        return cls(400, violation.message, _INVALID_PAYLOAD_REASON, field=violation.field)


class FakeGoogleWallet(LiveHttpFake):
    """Google Wallet's loyalty REST API and the token endpoint (see the module docstring)."""

    LABEL = "fake Google Wallet"

    def __init__(
        self,
        account_public_key: rsa.RSAPublicKey | rsa.RSAPrivateKey,
        client_email: str,
        issuer_id: str,
        *,
        key_id: str | None = None,
        clock: Callable[[], float] = time.time,
        token_expires_in: int = 3600,
    ) -> None:
        if isinstance(account_public_key, rsa.RSAPrivateKey):
            account_public_key = account_public_key.public_key()
        if not str(issuer_id).isdigit():
            raise ValueError(f"Google issuer ids are numeric, not {issuer_id!r}")
        self.public_key = account_public_key
        self.client_email = client_email
        self.issuer_id = str(issuer_id)
        self.key_id = key_id
        self.clock = clock
        self.token_expires_in = token_expires_in
        self.classes: dict[str, dict] = {}
        self.objects: dict[str, dict] = {}
        self.notifications: dict[str, list[float]] = {}
        self.requests: list[RecordedRequest] = []
        self.tokens: dict[str, float] = {}  # access token → clock time it expires
        self._faults: list[_Fault] = []
        self._init_live()

    # ---------------------------------------------------------------------------- public API

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    def fail(
        self,
        method: str,
        path_prefix: str,
        status: int,
        times: int = 1,
        reason: str | None = None,
        *,
        message: str | None = None,
        retry_after: str | float | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose method is ``method`` ("*": any) and whose path starts with
        ``path_prefix`` (e.g. ``/walletobjects/v1/loyaltyObject/`` or ``/token``) with ``status``, in Google's
        error shape (OAuth's on the token endpoint), before any other check."""
        with self._lock:
            self._faults.append(_Fault(
                method.upper(), path_prefix, status, times, reason, message,
                None if retry_after is None else str(retry_after),
            ))

    def revoke_tokens(self) -> None:
        """Forget every access token issued, as when Google revokes them: the next API call gets 401."""
        with self._lock:
            self.tokens.clear()

    def wsgi_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)

    # ---------------------------------------------------------------------------- dispatch

    def _respond(self, request: Request) -> Response:
        body = _parsed_body(request)
        with self._lock:
            self.requests.append(RecordedRequest(
                request.method, request.path, body, {k.lower(): v for k, v in request.headers.items()}
            ))
            fault = self._take_fault(request.method, request.path)
        if fault is not None:
            return self._fault_response(request.path, fault)
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            code = exc.code or 404
            what = "Method not allowed" if code == 405 else f"Not found: {request.path}"
            return _google_error(code, what)
        if endpoint == "token":
            return self._token(request, body)
        if not self._authorized(request.headers.get("Authorization", "")):
            response = _google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
            return response
        resource, _, name = endpoint.partition(".")
        spec = discovery.method(resource, name)
        try:
            if "request" in spec and not isinstance(body, dict):
                raise _ApiError(400, "Invalid JSON payload received: expected a JSON object.", _INVALID_PAYLOAD_REASON)
            with self._lock:  # serialised under the lock too: another thread may be changing the resource
                answer = self._api(resource, name, request, args, body)
                self._check_answer(spec, answer)
                return _json_response(200, answer)
        except _ApiError as exc:
            return _google_error(exc.status, exc.message, exc.reason, field=exc.field)

    @staticmethod
    def _check_answer(spec: dict[str, Any], answer: Any) -> None:
        """The stand-in's own answers must fit the method's response schema: a mismatch is a bug here."""
        found = discovery.problems(spec["response"]["$ref"], answer, at="")
        if found:
            raise AssertionError(f"the fake Google Wallet answered {spec['id']} with what Google would not: "
                                 + "; ".join(map(str, found)))

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.method in ("*", method) and path.startswith(fault.path_prefix):
                fault.remaining -= 1
                return fault
        return None

    def _fault_response(self, path: str, fault: _Fault) -> Response:
        if path.startswith(TOKEN_PATH):
            response = _json_response(
                fault.status, {"error": fault.reason or "server_error", "error_description": fault.message or ""}
            )
        else:
            response = _google_error(fault.status, fault.message or _phrase(fault.status), fault.reason)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    def _api(self, resource: str, name: str, request: Request, args: dict[str, str], body: Any) -> Any:
        schema = discovery.method(resource, "get")["response"]["$ref"]  # LoyaltyClass, LoyaltyObject
        store = self.classes if schema == "LoyaltyClass" else self.objects
        if name == "list":
            return self._list(schema, store, request)
        if name == "insert":
            return self._insert(schema, store, body)
        if name not in ("get", "patch", "update", "addmessage"):
            raise _ApiError(501, f"The stand-in does not implement {resource}.{name}")
        resource_id = args["resource_id"]
        self._check_id(resource_id)
        stored = store.get(resource_id)
        if stored is None:
            raise _ApiError(404, f"Resource not found: {schema} {resource_id}", "NotFoundException")
        if name == "addmessage":
            return {"resource": self._add_message(resource_id, stored, body)}
        if name == "get":
            return stored
        return self._change(schema, store, resource_id, stored, body, replace=name == "update")

    # ---------------------------------------------------------------------------- the token endpoint

    def _token(self, request: Request, form: Any) -> Response:
        form = form if isinstance(form, dict) else {}
        if form.get("grant_type") != GRANT_TYPE:
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}")
        assertion = form.get("assertion")
        if not assertion:
            return _oauth_error("invalid_request", "Missing required parameter: assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=request.base_url,
                options={
                    "verify_exp": False, "verify_iat": False, "verify_nbf": False,  # against self.clock below
                    "require": ["iss", "aud", "iat", "exp", "scope"],
                },
            )
        except jwt.InvalidSignatureError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        except jwt.InvalidAudienceError:
            return _oauth_error("invalid_grant", f"Invalid JWT: aud must be {request.base_url}")
        except jwt.PyJWTError as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT: {exc}")
        if self.key_id is not None and header.get("kid") != self.key_id:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if claims["iss"] != self.client_email:
            return _oauth_error("invalid_grant", "Invalid email or User ID")
        if not isinstance(claims["scope"], str) or SCOPE not in claims["scope"].split():
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        iat, exp, now = claims["iat"], claims["exp"], self.clock()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            return _oauth_error("invalid_grant", _SHORT_LIVED)
        if iat > now + 60 or exp <= now or exp <= iat or exp - iat > 3600:
            return _oauth_error("invalid_grant", _SHORT_LIVED)
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = now + self.token_expires_in
        return _json_response(200, {"access_token": token, "expires_in": self.token_expires_in, "token_type": "Bearer"})

    def _authorized(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expires = self.tokens.get(token.strip())
        return expires is not None and self.clock() < expires

    # ---------------------------------------------------------------------------- resources

    def _list(self, schema: str, store: dict[str, dict], request: Request) -> dict:
        key, field = ("issuerId", None) if schema == "LoyaltyClass" else ("classId", "classId")
        value = request.args.get(key)
        if not value:
            raise _ApiError(400, f"Missing required parameter: {key}")
        if field is None:
            found = [r for r in store.values() if r["id"].partition(".")[0] == value]
        else:
            found = [r for r in store.values() if r.get(field) == value]
        return {"resources": found, "pagination": {"kind": "walletobjects#pagination", "resultsPerPage": len(found)}}

    def _insert(self, schema: str, store: dict[str, dict], body: dict) -> dict:
        _check_body(schema, body, complete=True)
        resource = {k: v for k, v in discovery.normalised(schema, body).items() if k != "notifyPreference"}
        self._check_id(resource["id"])
        self._validate(schema, resource, review_status_sent=True)
        if resource["id"] in store:
            raise _ApiError(409, f"Resource already exists: {schema} {resource['id']}", "AlreadyExistsException")
        stored = _stored(schema, resource)
        store[resource["id"]] = stored
        return stored

    def _change(
        self, schema: str, store: dict[str, dict], resource_id: str, stored: dict, body: dict, *, replace: bool
    ) -> dict:
        """PATCH (``replace`` False: each top-level field replaced whole, a null one removed) or PUT (the whole
        resource)."""
        _check_body(schema, body, complete=replace)
        fields = discovery.normalised(schema, body)
        if fields.get("id", resource_id) != resource_id:
            raise _ApiError(400, f"The id in the body ({fields['id']}) does not match the resource id {resource_id}")
        notify = fields.pop("notifyPreference", None)
        if replace:
            merged = {**fields, "id": resource_id}
        else:
            # proto3 JSON's null is the field's default: the stand-in reads it in a PATCH as "remove the field"
            cleared = {discovery.field_name(schema, k) for k, v in body.items() if v is None}
            merged = {k: v for k, v in {**stored, **fields}.items() if k not in cleared}
            _check_body(schema, merged, complete=True)  # a PATCH must leave a whole resource
        self._validate(schema, merged, review_status_sent=replace or "reviewStatus" in fields)
        if notify == "NOTIFY_ON_UPDATE":
            self._notify(resource_id)
        new = _stored(schema, merged)
        store[resource_id] = new
        return new

    def _add_message(self, resource_id: str, stored: dict, body: dict) -> dict:
        _check_body("AddMessageRequest", body, complete=True, at="")
        message = discovery.normalised("AddMessageRequest", body).get("message")
        if not isinstance(message, dict):
            raise _ApiError(400, "Missing required field: message")
        _check_message(message, "message")
        if len(stored.get("messages") or []) >= MAX_MESSAGES:
            raise _ApiError(400, f"A resource can hold at most {MAX_MESSAGES} messages; remove some first")
        if _message_type(message) == "TEXT_AND_NOTIFY":
            self._notify(resource_id)
        stored["messages"] = [*(stored.get("messages") or []), json.loads(json.dumps(message))]
        return stored

    def _notify(self, resource_id: str) -> None:
        """Count one notification, or refuse it (429 QuotaExceededException) when 3 were sent in 24 h."""
        now = self.clock()
        recent = [t for t in self.notifications.get(resource_id, []) if now - t < NOTIFY_WINDOW]
        if len(recent) >= NOTIFY_LIMIT:
            raise _ApiError(
                429,
                f"QuotaExceededException: at most {NOTIFY_LIMIT} notifications per pass in 24 hours "
                f"({resource_id})",
                "QuotaExceededException",
            )
        self.notifications.setdefault(resource_id, []).append(now)

    # ---------------------------------------------------------------------------- rules in prose (§1)

    def _check_id(self, value: Any, field: str = "id") -> None:
        if not isinstance(value, str) or not value:
            raise _ApiError(400, f"Missing required field: {field}")
        issuer, dot, suffix = value.partition(".")
        if not dot or not issuer.isdigit() or not _SUFFIX.fullmatch(suffix):
            raise _ApiError(400, f"Invalid resource ID: {value!r} (<issuerId>.<suffix>, suffix [A-Za-z0-9._-])")
        if issuer != self.issuer_id:
            raise _ApiError(403, f"The caller does not have permission for issuer {issuer}",
                            "PermissionDeniedException")

    def _validate(self, schema: str, resource: dict, *, review_status_sent: bool) -> None:
        """The rules the discovery document states in prose only; its types, enums and required fields were
        checked before (``_check_body``)."""
        if schema == "LoyaltyClass":
            self._validate_class(resource, review_status_sent=review_status_sent)
        else:
            self._validate_object(resource)
        _check_list(resource, "merchantLocations", MAX_LOCATIONS)
        _check_list(resource, "messages", MAX_MESSAGES)
        for i, message in enumerate(resource.get("messages") or []):
            _check_message(message, f"messages[{i}]")
        for name in ("heroImage", "programLogo", "wideProgramLogo"):
            if name in resource:
                _check_image(resource[name], name)

    def _validate_class(self, resource: dict, *, review_status_sent: bool) -> None:
        status = discovery.canonical_enum("LoyaltyClass", "reviewStatus", resource["reviewStatus"])
        if review_status_sent and status not in SETTABLE_REVIEW_STATUSES:
            raise _ApiError(400, f"reviewStatus may only be set to DRAFT or UNDER_REVIEW, not {status!r}")
        for name in ("issuerName", "programName"):
            if not resource[name]:
                raise _ApiError(400, f"Missing required field: {name}")
        colour = resource.get("hexBackgroundColor")
        if colour is not None and not _HEX_COLOUR.fullmatch(colour):
            raise _ApiError(400, f"Invalid hexBackgroundColor {colour!r}: expected #rrggbb or #rgb")

    def _validate_object(self, resource: dict) -> None:
        class_id = resource["classId"]
        self._check_id(class_id, "classId")
        cls = self.classes.get(class_id)
        if cls is None:
            raise _ApiError(404, f"Class {class_id} not found", "IssuerClassNotFoundException")
        if cls.get("reviewStatus") == "DRAFT":  # the reason is the fake's choice; §1 only says "cannot be used"
            raise _ApiError(404, f"Class {class_id} is a DRAFT: objects need an approved class",
                            "IssuerClassNotFoundException")
        for name in ("loyaltyPoints", "secondaryLoyaltyPoints"):
            if name in resource:
                _check_points(resource[name], name)


# -------------------------------------------------------------------------------- validation helpers


def _check_body(schema: str, body: Any, *, complete: bool, at: str = "resource") -> None:
    """Google's JSON front end: fields, types and enum values of the discovery document, at any depth."""
    try:
        discovery.check(schema, body, at=at, complete=complete)
    except discovery.Violation as violation:
        raise _ApiError.invalid(violation) from None


def _check_list(resource: dict, name: str, limit: int) -> None:
    value = resource.get(name) or []
    if len(value) > limit:
        raise _ApiError(400, f"{name} holds at most {limit} entries, not {len(value)}")


def _check_image(image: dict, name: str) -> None:
    if ("sourceUri" in image) == ("privateImageId" in image):
        raise _ApiError(400, f"{name} needs exactly one of sourceUri or privateImageId")
    if "sourceUri" in image:
        uri = image["sourceUri"].get("uri")
        if not isinstance(uri, str) or not urlsplit(uri).scheme or not urlsplit(uri).netloc:
            raise _ApiError(400, f"{name}.sourceUri.uri must be an absolute URI with a scheme, not {uri!r}")


def _check_points(points: dict, name: str) -> None:
    """``balance`` is "a required field of loyaltyPoints and secondaryLoyaltyPoints", and "only one of these
    subtypes (string, int, double, money) should be populated" (the document's descriptions)."""
    balance = points.get("balance")
    if balance is None:
        raise _ApiError(400, f"Missing required field: {name}.balance")
    forms = list(discovery.schema("LoyaltyPointsBalance")["properties"])
    present = [form for form in forms if form in balance]
    if len(present) != 1:
        raise _ApiError(400, f"{name}.balance needs exactly one of {', '.join(forms)}, not {present}")


def _check_message(message: dict, name: str) -> None:
    # The reference does not say whether Google requires both; the stand-in does (Tallypass sends both).
    for part in ("header", "body"):
        if not message.get(part):
            raise _ApiError(400, f"{name}.{part} is required")


def _message_type(message: dict) -> str:
    return discovery.canonical_enum("Message", "messageType", message.get("messageType", "TEXT"))


def _stored(schema: str, resource: dict) -> dict:
    """A deep copy as Google keeps it: the review status a class moves to, nothing ephemeral."""
    stored = json.loads(json.dumps(resource))
    stored.pop("notifyPreference", None)
    if schema == "LoyaltyClass":
        status = discovery.canonical_enum(schema, "reviewStatus", stored["reviewStatus"])
        stored["reviewStatus"] = SETTABLE_REVIEW_STATUSES.get(status, status)
    return stored


# -------------------------------------------------------------------------------- responses


def _parsed_body(request: Request) -> Any:
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    data = request.get_data(cache=True)
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _json_response(status: int, data: Any) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json; charset=UTF-8")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _google_error(status: int, message: str, reason: str | None = None, *, field: str | None = None) -> Response:
    reason = reason or _DEFAULT_REASONS.get(status, _phrase(status).replace(" ", ""))
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if field is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                             "fieldViolations": [{"field": field, "description": message}]}]
    return _json_response(status, {"error": error})


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return _json_response(status, {"error": error, "error_description": description})


# -------------------------------------------------------------------------------- own process (benchmark)


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the fake Google Wallet API until stdin closes.")
    ap.add_argument("--public-key", required=True, type=Path, help="PEM public (or private) key of the account")
    ap.add_argument("--client-email", required=True)
    ap.add_argument("--issuer-id", required=True)
    ap.add_argument("--key-id", default=None)
    args = ap.parse_args()
    pem = args.public_key.read_bytes()
    key: Any
    if b"PRIVATE KEY" in pem:
        key = serialization.load_pem_private_key(pem, password=None)
    else:
        key = serialization.load_pem_public_key(pem)
    with FakeGoogleWallet(key, args.client_email, args.issuer_id, key_id=args.key_id) as google:
        print(json.dumps({"api_url": google.api_url, "token_url": google.token_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                with google._lock:
                    stats = {"connections": google.connections, "requests": len(google.requests),
                             "classes": len(google.classes), "objects": len(google.objects)}
                print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
