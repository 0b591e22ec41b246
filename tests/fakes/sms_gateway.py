"""A local stand-in for a Twilio-compatible Messages API, holding state in memory, and the webhooks such a
gateway sends (delivery statuses, incoming messages), signed exactly as Twilio signs them.

It answers the way Twilio does, so the client and the webhooks are tested against behaviour, not a mock:

- ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` (form-encoded): HTTP basic auth with the account
  SID and auth token, else 401 (code 20003, with ``WWW-Authenticate``); another account's SID in the path is
  404 (20404). Then, in Twilio's order: ``To`` required (21604), ``From`` required (21603), ``Body``
  required (21602) and at most 1600 characters (21617), ``To`` in E.164 (21211), ``To`` ≠ ``From``
  (21266), ``From`` one of the account's ``numbers`` when given (21606), ``StatusCallback`` an absolute
  http(s) URL (21609), and ``To`` not opted out of ``From`` (21610, "Attempt to send to unsubscribed
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
  ``inbound_url``. Both carry ``X-Twilio-Signature`` computed here, independently of the application's
  code: base64(HMAC-SHA1(auth token, URL + each field name and value, sorted by name)). They go through
  ``deliver(url, form, headers) -> status code``: by default an httpx POST; tests of a Flask app pass one that
  calls its test client.

Over real HTTP/1.1 on 127.0.0.1 with keep-alive (``with FakeSmsGateway(...) as gateway:``), reusing the
threaded server and keep-alive handler of tests/fakes/google_wallet_api.py; ``connections`` counts TCP
connections accepted. In process: ``httpx.Client(transport=httpx.WSGITransport(app=gateway.wsgi_app))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.live_http import LiveHttpFake

__all__ = ["Delivery", "FakeSmsGateway", "FakeSmsMessage", "RecordedRequest", "twilio_signature"]

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


def twilio_signature(auth_token: str, url: str, form: dict[str, str]) -> str:
    """Twilio's ``X-Twilio-Signature`` for a form POST to ``url`` (written here from Twilio's description, not
    taken from the application, so each checks the other)."""
    data = url + "".join(name + form[name] for name in sorted(form))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


class RecordedRequest(NamedTuple):
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]  # lower-case names


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
        self._faults: list[_Fault] = []
        self._init_live()

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
        form = request.form.to_dict() if request.mimetype == "application/x-www-form-urlencoded" else {}
        with self._lock:
            self.requests.append(RecordedRequest(
                request.method, request.path, form, {k.lower(): v for k, v in request.headers.items()}
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
                    response = _json(201, self._create(form).resource(self.account_sid))
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

    def _create(self, form: dict[str, str]) -> FakeSmsMessage:
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        callback = form.get("StatusCallback")
        if not to:
            raise _TwilioError(400, 21604, "A 'To' phone number is required.")
        if not from_:
            raise _TwilioError(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise _TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise _TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not _E164.fullmatch(to):
            raise _TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to == from_:
            raise _TwilioError(400, 21266, "'To' and 'From' number cannot be the same")
        if self.numbers is not None and from_ not in self.numbers:
            raise _TwilioError(400, 21606, f"The From phone number {from_} is not a valid, SMS-capable inbound "
                                           "phone number or short code for your account.")
        if callback is not None:
            parts = urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _TwilioError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        if (to, from_) in self.opt_outs:
            raise _TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
        message = FakeSmsMessage(sid="SM" + secrets.token_hex(16), to=to, from_=from_, body=body,
                                 status_callback=callback)
        self.messages[message.sid] = message
        return message

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
