"""A local stand-in for a Twilio-compatible Messages API, holding state in memory, and the webhooks such a
gateway sends (delivery statuses, incoming messages), signed exactly as Twilio signs them.

It answers the way Twilio does, so the client and the webhooks are tested against behaviour, not a mock:

- ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` (form-encoded): HTTP basic auth with the account
  SID and auth token, else 401 (code 20003, with ``WWW-Authenticate``); another account's SID in the path is
  404 (20404). What the Messages resource takes comes from the official ``twilio`` library, never from a
  list typed here (``MESSAGE_PARAMETERS``: ``MessageList.create``'s keyword arguments, which of them have no
  default, their types and enum values, and the form field each becomes, found by letting the library build
  a request for each). A field the resource does not have is ignored, as Twilio ignores it, but recorded
  as Twilio's warning 20001 ("One or more parameters you sent the REST API were not recognized and were
  ignored") in ``warnings``, and leaving the ``with`` block with a warning recorded fails the test (a
  misspelt ``StatusCallback`` is exactly such a field). Then, as Twilio answers (codes from its error
  reference): the library's required ``To`` (21604), ``From`` or ``MessagingServiceSid`` (21603), ``Body``,
  ``MediaUrl`` or ``ContentSid`` (21602), ``Body`` at most 1600 characters (21617), ``To`` in E.164
  (21211), ``To`` ≠ ``From`` (21266), ``From`` one of the account's ``numbers`` when given (21606),
  ``StatusCallback`` an absolute http(s) URL with a host name without underscores, at most 4000 characters
  (21609), ``ValidityPeriod`` an integer from 1 to 36000 (21624), ``ScheduleType`` one of the library's
  values (35126), and ``To`` not opted out of ``From`` (21610, "Attempt to send to unsubscribed
  recipient"). Accepted messages get an ``SM`` + 32 hex sid and answer 201 with Twilio's message resource,
  status ``queued``. ``GET …/Messages/<sid>.json`` fetches one.
- Errors in Twilio's JSON shape ``{"code", "message", "more_info", "status"}``; unknown paths 404 (20404),
  wrong methods 405.
- ``fail(status, times, code=..., retry_after=...)`` scripts faults, answered before authentication; with
  ``after_processing=True`` the request is carried out first (the message exists) and then answered with
  the fault, as when a 500 or a gateway timeout hides a message that was created.
- Opt-outs per (phone, sender), as Twilio keeps them: ``inbound()`` with ``opt_out_type`` STOP/START (Advanced
  Opt-Out), or without one a body that is one of the standard keywords (Twilio's default handling), adds or
  removes the pair; ``opt_outs`` may also be set directly (a STOP the service never heard of).
- Webhooks: ``deliver_status(sid, "delivered")`` POSTs ``MessageSid``, ``MessageStatus`` (and the legacy
  ``SmsSid``/``SmsStatus``), ``AccountSid``, ``From``, ``To``, ``ApiVersion`` and ``ErrorCode`` when given to
  the message's ``StatusCallback``; ``inbound(from_, to, body)`` POSTs an incoming message to
  ``inbound_url``. Both carry ``X-Twilio-Signature`` computed by the official library
  (``twilio.request_validator.RequestValidator.compute_signature``), independently of the application's
  code. They go through
  ``deliver(url, form, headers) -> status code``: by default an httpx POST; tests of a Flask app pass one that
  calls its test client.

Over real HTTP/1.1 on 127.0.0.1 with keep-alive (``with FakeSmsGateway(...) as gateway:``), reusing the
threaded server and keep-alive handler of tests/fakes/google_wallet_api.py; ``connections`` counts TCP
connections accepted. In process: ``httpx.Client(transport=httpx.WSGITransport(app=gateway.wsgi_app))``.

``official_request(...)`` is the request the official library itself builds for a message (its
``twilio.rest.Client`` with an ``HttpClient`` that captures instead of sending), for tests to compare what
the application sends with.
"""

from __future__ import annotations

import hmac
import inspect
import json
import logging
import re
import secrets
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient
from twilio.rest.api.v2010.account import message as twilio_message
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.live_http import LiveHttpFake

__all__ = ["Delivery", "FakeSmsGateway", "FakeSmsMessage", "MESSAGE_PARAMETERS", "OfficialRequest", "Parameter",
           "RecordedRequest", "TwilioWarning", "message_parameters", "official_request", "twilio_signature"]

API_VERSION = "2010-04-01"
MAX_BODY = 1600
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
_E164 = re.compile(r"\+[1-9]\d{6,14}")  # E.164; the shortest numbers in use have 7 digits
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)

_ROUTES = Map(
    [
        Rule(f"/{API_VERSION}/Accounts/<account>/Messages.json", endpoint="messages", methods=["POST"]),
        Rule(f"/{API_VERSION}/Accounts/<account>/Messages/<sid>.json", endpoint="message", methods=["GET"]),
    ]
)

Deliver = Callable[[str, dict[str, str], dict[str, str]], int]


def twilio_signature(auth_token: str, url: str, form: Mapping[str, Any]) -> str:
    """Twilio's ``X-Twilio-Signature`` for a form POST to ``url``, computed by the official library (not by
    the application's code, so each checks the other)."""
    return RequestValidator(auth_token).compute_signature(url, form)


# -------------------------------------------------------------------------------- the official library


class OfficialRequest(NamedTuple):
    """A request as the official library hands it to its HTTP client."""

    method: str
    url: str
    auth: tuple[str, str] | None
    data: dict[str, Any]  # form fields; a list value is a field sent once per item
    headers: dict[str, str]


class _CapturingHttpClient(HttpClient):
    """The library's HTTP client interface, capturing each request instead of sending it, and answering
    201 with a message resource so that ``create`` completes."""

    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False)
        self.requests: list[OfficialRequest] = []

    def request(self, method: str, uri: str, params: Any = None, data: Any = None, headers: Any = None,
                auth: Any = None, timeout: Any = None, allow_redirects: bool = False) -> TwilioResponse:
        self.requests.append(OfficialRequest(method, uri, auth, dict(data or {}), dict(headers or {})))
        return TwilioResponse(201, json.dumps({"sid": "SM" + "0" * 32, "status": "queued"}))


def official_request(account_sid: str, auth_token: str, **create: Any) -> OfficialRequest:
    """The request ``twilio.rest.Client(account_sid, auth_token).messages.create(**create)`` makes."""
    http = _CapturingHttpClient()
    TwilioClient(account_sid, auth_token, http_client=http, environment={}).api.v2010.accounts(
        account_sid).messages.create(**create)
    (request,) = http.requests
    return request


class Parameter(NamedTuple):
    """One parameter of the Messages resource's create, as the official library defines it."""

    field: str  # the form field ("StatusCallback")
    argument: str  # the keyword argument of MessageList.create ("status_callback")
    required: bool  # no default in the library's signature
    kind: type  # str, bool, int, float, datetime, list, or the library's enum class
    choices: frozenset[str] | None  # an enum's values


def _probes(kind: type) -> tuple[Any, Any]:
    """Two different values of ``kind`` for the library to serialize."""
    if kind is bool:
        return True, False
    if kind is int:
        return 7, 8
    if kind is float:
        return 0.5, 1.5
    if kind is datetime:
        return datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    if kind is list:
        return ["probe-a"], ["probe-b"]
    return "probe-a", "probe-b"


@cache
def message_parameters() -> dict[str, Parameter]:
    """The Messages resource's parameters by form field, from ``MessageList.create`` in the installed
    ``twilio`` library: its keyword arguments and their types (``Union[X, object]``, X a type, ``List[str]``
    or an enum class of ``MessageInstance``), which have no default, and the form field each becomes: the
    library builds two requests differing only in that argument's value, and the field that differs is
    the argument's."""
    create = twilio_message.MessageList.create
    hints = typing.get_type_hints(create, globalns=vars(twilio_message),
                                  localns={"MessageInstance": twilio_message.MessageInstance})
    signature = inspect.signature(create)
    arguments = [name for name in signature.parameters if name != "self"]
    required = {name for name in arguments if signature.parameters[name].default is inspect.Parameter.empty}
    kinds: dict[str, type] = {}
    for name in arguments:
        options = [a for a in typing.get_args(hints[name]) if a is not object] or [hints[name]]
        kinds[name] = typing.get_origin(options[0]) or options[0]
    base = {name: _probes(kinds[name])[0] for name in required}
    account = "AC" + "0" * 32
    found: dict[str, Parameter] = {}
    for name in arguments:
        first, second = (official_request(account, "probe-token", **{**base, name: value}).data
                         for value in _probes(kinds[name]))
        changed = {key for key in first.keys() | second.keys() if first.get(key) != second.get(key)}
        if len(changed) != 1:
            raise AssertionError(f"MessageList.create({name}=...) became the form fields {sorted(changed)}")
        (form_field,) = changed
        kind = kinds[name]
        enum = isinstance(kind, type) and kind.__qualname__.startswith("MessageInstance.")
        choices = frozenset(v for k, v in vars(kind).items() if not k.startswith("_") and isinstance(v, str)) \
            if enum else None
        found[form_field] = Parameter(form_field, name, name in required, kind, choices)
    return found


MESSAGE_PARAMETERS = message_parameters()
_REQUIRED = sorted(p.field for p in MESSAGE_PARAMETERS.values() if p.required)
if _REQUIRED != ["To"]:  # Twilio's answer to each missing field must be taught to the fake, not guessed
    raise AssertionError(f"the twilio library now requires {_REQUIRED}; the fake knows Twilio's error for To only")


class RecordedRequest(NamedTuple):
    method: str
    path: str
    form: dict[str, str]  # the first value of each field
    headers: dict[str, str]  # lower-case names
    fields: list[tuple[str, str]] = []  # every (field, value) in the order sent


class TwilioWarning(NamedTuple):
    """What Twilio's debugger would log for a request it carried out anyway (warning 20001: fields the
    resource does not have, ignored)."""

    code: int
    path: str
    fields: list[str]


class Delivery(NamedTuple):
    """A webhook the fake sent, and the status code it got back."""

    url: str
    form: dict[str, str]
    headers: dict[str, str]
    status: int


@dataclass
class FakeSmsMessage:
    sid: str
    to: str
    from_: str
    body: str
    status: str = "queued"
    status_callback: str | None = None
    error_code: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def resource(self, account_sid: str) -> dict[str, Any]:
        """Twilio's message resource."""
        created = format_datetime(self.created_at, usegmt=True)
        return {
            "account_sid": account_sid, "api_version": API_VERSION, "body": self.body,
            "date_created": created, "date_sent": None, "date_updated": created, "direction": "outbound-api",
            "error_code": self.error_code, "error_message": None, "from": self.from_,
            "messaging_service_sid": None, "num_media": "0", "num_segments": str(segments(self.body)),
            "price": None, "price_unit": "USD", "sid": self.sid, "status": self.status, "to": self.to,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}.json",
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}/Media.json"},
        }


@dataclass
class _Fault:
    method: str  # "*" for any
    status: int
    remaining: int
    code: int | None
    message: str | None
    retry_after: str | None
    after_processing: bool


class _TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def segments(body: str) -> int:
    """How many SMS parts a body takes: 160/153 GSM-7 characters, else 70/67 UCS-2."""
    single, part = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)


def _post_with_httpx(url: str, form: dict[str, str], headers: dict[str, str]) -> int:
    return httpx.post(url, data=form, headers=headers, timeout=10.0).status_code


class FakeSmsGateway(LiveHttpFake):
    """A Twilio-compatible Messages API and its webhooks (see the module docstring)."""

    LABEL = "fake SMS gateway"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        numbers: Iterable[str] | None = None,
        deliver: Deliver | None = None,
        inbound_url: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = set(numbers) if numbers is not None else None  # None: any From is the account's
        self.deliver: Deliver = deliver or _post_with_httpx
        self.inbound_url = inbound_url
        self.messages: dict[str, FakeSmsMessage] = {}
        self.opt_outs: set[tuple[str, str]] = set()  # (phone, sender)
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self.warnings: list[TwilioWarning] = []  # leaving ``with`` with any of them fails (see __exit__)
        self._faults: list[_Fault] = []
        self._init_live()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        super().__exit__(exc_type, *rest)
        if exc_type is None and self.warnings:
            raise AssertionError(f"the SMS gateway ignored fields the Messages resource does not have (Twilio's "
                                 f"warning 20001): {self.warnings}")

    # ---------------------------------------------------------------------------- public API

    @property
    def api_url(self) -> str:
        """What TALLYPASS_SMS_API_URL points at (Twilio's is https://api.twilio.com)."""
        return self.base_url

    @property
    def messages_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        code: int | None = None,
        message: str | None = None,
        retry_after: str | float | None = None,
        method: str = "POST",
        after_processing: bool = False,
    ) -> None:
        """Answer the next ``times`` requests with ``method`` ("*": any) with ``status`` and Twilio's error
        body (``code`` defaults to 20429 for 429, 20500 otherwise), before authentication; with
        ``after_processing`` only after carrying the request out."""
        with self._lock:
            self._faults.append(_Fault(method.upper(), status, times, code, message,
                                       None if retry_after is None else str(retry_after), after_processing))

    def sign(self, url: str, form: dict[str, str]) -> str:
        return twilio_signature(self.auth_token, url, form)

    def deliver_status(self, sid: str, status: str, *, error_code: int | str | None = None) -> int:
        """Move message ``sid`` to ``status`` and POST the signed status callback to its ``StatusCallback``;
        returns the HTTP status the callback got."""
        with self._lock:
            message = self.messages[sid]
            if not message.status_callback:
                raise ValueError(f"message {sid} was sent without a StatusCallback")
            message.status = status
            if error_code is not None:
                message.error_code = int(error_code)
            form = {
                "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "From": message.from_,
                "MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status, "To": message.to,
            }
            url = message.status_callback
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return self._deliver(url, form)

    def inbound(self, from_: str, to: str, body: str, opt_out_type: str | None = None, *,
                url: str | None = None) -> int:
        """A text from ``from_`` to our number ``to``, POSTed (signed) to ``url`` or ``inbound_url``. Twilio's
        opt-out handling applies first: ``opt_out_type`` STOP/START (Advanced Opt-Out, also sent as
        ``OptOutType``), or else a standard STOP/START keyword as the whole body. Returns the HTTP status."""
        target = url or self.inbound_url
        if not target:
            raise ValueError("no inbound_url: set it to the service's /sms/inbound URL")
        kind = opt_out_type.upper() if opt_out_type else None
        word = body.strip().upper()
        with self._lock:
            if kind == "STOP" or (kind is None and word in STOP_WORDS):
                self.opt_outs.add((from_, to))
            elif kind == "START" or (kind is None and word in START_WORDS):
                self.opt_outs.discard((from_, to))
        sid = "SM" + secrets.token_hex(16)
        form = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "Body": body, "From": from_,
            "MessageSid": sid, "NumMedia": "0", "NumSegments": str(segments(body)), "SmsMessageSid": sid,
            "SmsSid": sid, "SmsStatus": "received", "To": to,
        }
        if kind:
            form["OptOutType"] = kind
        return self._deliver(target, form)

    def wsgi_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)

    # ---------------------------------------------------------------------------- webhooks

    def _deliver(self, url: str, form: dict[str, str]) -> int:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": self.sign(url, form),
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        status = self.deliver(url, dict(form), dict(headers))
        with self._lock:
            self.deliveries.append(Delivery(url, form, headers, status))
        return status

    # ---------------------------------------------------------------------------- dispatch

    def _respond(self, request: Request) -> Response:
        fields: MultiDict[str, str] = request.form if request.mimetype == "application/x-www-form-urlencoded" \
            else MultiDict()
        with self._lock:
            self.requests.append(RecordedRequest(
                request.method, request.path, fields.to_dict(), {k.lower(): v for k, v in request.headers.items()},
                list(fields.items(multi=True)),
            ))
            fault = self._take_fault(request.method)
        if fault is not None and not fault.after_processing:
            return self._fault_response(fault)
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            code = exc.code or 404
            return _error(code, 20404 if code == 404 else 20004,
                          "Method not allowed" if code == 405 else f"The requested resource {request.path} was "
                          "not found")
        try:
            self._authenticate(request, args["account"])
            with self._lock:
                if endpoint == "messages":
                    response = _json(201, self._create(fields, request.path).resource(self.account_sid))
                else:
                    message = self.messages.get(args["sid"])
                    if message is None:
                        raise _TwilioError(404, 20404, f"The requested resource {request.path} was not found")
                    response = _json(200, message.resource(self.account_sid))
        except _TwilioError as exc:
            response = _error(exc.status, exc.code, exc.message)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return self._fault_response(fault) if fault is not None else response

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.method in ("*", method):
                fault.remaining -= 1
                return fault
        return None

    def _fault_response(self, fault: _Fault) -> Response:
        code = fault.code or (20429 if fault.status == 429 else 20500)
        response = _error(fault.status, code, fault.message or _phrase(fault.status))
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    def _authenticate(self, request: Request, account: str) -> None:
        auth = request.authorization
        ok = (
            auth is not None and auth.type == "basic"
            and hmac.compare_digest((auth.username or "").encode(), self.account_sid.encode())
            and hmac.compare_digest((auth.password or "").encode(), self.auth_token.encode())
        )
        if not ok:
            raise _TwilioError(401, 20003, "Authenticate")
        if account != self.account_sid:
            raise _TwilioError(404, 20404, f"The requested resource {request.path} was not found")

    def _create(self, fields: MultiDict[str, str], path: str) -> FakeSmsMessage:
        unknown = sorted(set(fields) - set(MESSAGE_PARAMETERS))
        if unknown:  # Twilio carries the request out and logs warning 20001 in its debugger
            self.warnings.append(TwilioWarning(20001, path, unknown))
        form = {name: fields.get(name, "") for name in MESSAGE_PARAMETERS}
        to, from_, body = form["To"], form["From"], form["Body"]
        callback = fields.get("StatusCallback")
        if not to:  # the one argument without a default in the library (checked where MESSAGE_PARAMETERS is made)
            raise _TwilioError(400, 21604, "A 'To' phone number is required.")
        if not (from_ or form["MessagingServiceSid"]):
            raise _TwilioError(400, 21603, "A 'From' phone number is required.")
        if not (body or form["MediaUrl"] or form["ContentSid"]):
            raise _TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise _TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not _E164.fullmatch(to):
            raise _TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to == from_:
            raise _TwilioError(400, 21266, "'To' and 'From' number cannot be the same")
        if from_ and self.numbers is not None and from_ not in self.numbers:
            raise _TwilioError(400, 21606, f"The From phone number {from_} is not a valid, SMS-capable inbound "
                                           "phone number or short code for your account.")
        if callback is not None and not _valid_callback(callback):
            raise _TwilioError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        if form["ValidityPeriod"] and not (form["ValidityPeriod"].isdigit()
                                           and 1 <= int(form["ValidityPeriod"]) <= 36000):
            raise _TwilioError(400, 21624, "Validity period can only be set to integers between 1 and 36,000 "
                                           "seconds (10 hours max).")
        schedule = MESSAGE_PARAMETERS["ScheduleType"].choices or frozenset()
        if form["ScheduleType"] and form["ScheduleType"] not in schedule:
            raise _TwilioError(400, 35126, "The ScheduleType value provided is not supported for this channel")
        if (to, from_) in self.opt_outs:
            raise _TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
        message = FakeSmsMessage(sid="SM" + secrets.token_hex(16), to=to, from_=from_, body=body,
                                 status_callback=callback)
        self.messages[message.sid] = message
        return message

def _valid_callback(url: str) -> bool:
    """Twilio's rules for ``StatusCallback`` (error 21609): a fully qualified http(s) URL whose host name has
    no underscore, at most 4000 characters."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and "_" not in host and len(url) <= 4000

# -------------------------------------------------------------------------------- responses


def _json(status: int, data: Any) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json; charset=utf-8")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error(status: int, code: int, message: str) -> Response:
    return _json(status, {"code": code, "message": message,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})
