"""SMS through a Twilio-compatible Messages API, and the checks for the webhooks such a gateway sends.

Sending: ``POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``, ``From``,
``Body`` and ``StatusCallback``, with HTTP basic auth (account SID, auth token). ``StatusCallback`` is part of the
client's configuration (``TwilioConfig.status_callback``: the service's ``/sms/status``), so no message can leave
without it: a message sent without one never reports delivered/undelivered/failed. The answer is
``201`` with the message resource (``sid`` ``SM…``, ``status`` ``queued`` or ``accepted``). Errors come as
``{"code": <Twilio error number>, "message", "more_info", "status": <HTTP status>}``:

- 4xx other than 429 is ``SmsRejected`` and never retried: 21211 (the ``To`` number is not valid), 21610 (the
  recipient sent STOP to this sender), 21606/21408 (the sender or region is not enabled), 20003 (bad
  credentials, logged once at ERROR with what to fix)…
- 429, 5xx and network errors are ``SmsUnavailable`` once the retries are used up. Creating a message is not
  idempotent (Twilio offers no idempotency key, and a second POST is a second text the customer reads and we
  pay for), so, like ``addMessage`` in ``google_wallet.py``, a request is repeated only when the gateway cannot
  have acted on it: 429, 503, or a connection that was never made. A 500/502/504 or a connection lost after
  the request went out may have created the message; it is not repeated and ``possibly_sent`` is True.
  Retries back off exponentially with jitter, or wait ``Retry-After``; a longer ``Retry-After`` than
  ``backoff_max`` ends the attempts at once (``retry_after`` says how long the gateway asked for).

Webhooks (status callbacks, incoming messages) carry ``X-Twilio-Signature``: base64 of HMAC-SHA1 keyed
with the auth token over the full URL Twilio requested followed by every POST parameter, sorted by name,
as name + value (``twilio_signature``). ``valid_signature`` accepts exactly what Twilio's own
``twilio.request_validator.RequestValidator.validate`` accepts (see ``_url_variants``: the URL with its port
removed and the URL with the scheme's default port added when it has none; a JSON body through its
``bodySHA256`` query parameter), compared in constant time. It is written out here rather than imported
because the ``twilio`` package (the whole REST client) is only a test dependency, whose validator the tests
compare this one with, case by case.

One keep-alive ``httpx.Client`` per client, shared by all threads; a forked child (Celery prefork) makes its
own on first use. The auth token is never logged nor part of an exception or a repr; recipients are logged
masked to their last four digits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import parse_qs, quote, urlparse, urlsplit

import httpx

from app.channels.http import retry_after as _retry_after

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = [
    "API_VERSION",
    "SIGNATURE_HEADER",
    "SentSms",
    "SmsClient",
    "SmsError",
    "SmsRejected",
    "SmsUnavailable",
    "TwilioConfig",
    "build_sms_client",
    "mask_phone",
    "opt_out_action",
    "outbox_warning",
    "status_callback_url",
    "twilio_signature",
    "valid_signature",
]

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_BODY = 1600  # characters; Twilio refuses longer bodies (error 21617)
MAX_CALLBACK_URL = 4000  # characters; Twilio refuses a longer StatusCallback (error 21609)

# Our webhooks (app/web/sms.py): WEBHOOK_PATH + STATUS_PATH gets delivery statuses, + INBOUND_PATH replies.
WEBHOOK_PATH = "/sms"
STATUS_PATH = "/status"
INBOUND_PATH = "/inbound"

# Error codes the domain acts on.
UNSUBSCRIBED_RECIPIENT = 21610
INVALID_TO_NUMBER = 21211

_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_NOT_PROCESSED_STATUSES = frozenset({429, 503})  # the gateway did not act on the request
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # the request never left
_CREDENTIAL_STATUSES = frozenset({401, 403})
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d ()-]{5,}\d")

# Twilio's standard opt-out keywords (whole message, case-insensitive). With Advanced Opt-Out the
# gateway matches its own (possibly localised) keywords and says which it saw in ``OptOutType``.
_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_START_WORDS = frozenset({"START", "YES", "UNSTOP"})
_HELP_WORDS = frozenset({"HELP", "INFO"})
_OPT_OUT_TYPES: dict[str, Literal["stop", "start", "help"]] = {"STOP": "stop", "START": "start", "HELP": "help"}


# -------------------------------------------------------------------------------- helpers without a client


def mask_phone(number: str | None) -> str:
    """A phone number for the logs: only its last four digits (``***1234``)."""
    digits = re.sub(r"\D", "", number or "")
    return f"***{digits[-4:]}" if len(digits) > 4 else "***"


def _mask_numbers(text: str) -> str:
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)


def status_callback_url(base_url: str) -> str:
    """The ``StatusCallback`` every message carries: the service's public base URL + ``/sms/status``."""
    return base_url.rstrip("/") + WEBHOOK_PATH + STATUS_PATH


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(params, "getlist", None)  # werkzeug's MultiDict: a repeated field has several values
    if callable(getlist):
        return [str(v) for v in getlist(name)]
    value = params[name]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Any] | None = None) -> str:
    """``X-Twilio-Signature`` of a POST to ``url`` (the full URL Twilio requested, query string included) with
    these form fields: base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 …)), names sorted
    (plain code-point order, as Twilio sorts). A field sent several times (a MultiDict, or a list value)
    contributes each distinct value, sorted, as Twilio's libraries do."""
    data = url
    for name in sorted(set(params or {})):
        for value in sorted(set(_values(params or {}, name))):
            data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URLs a signature is checked against, as ``RequestValidator.validate`` builds them (Twilio's
    "signature generation on the back end is inconsistent" about ports): the URL with its port removed and
    the URL with a port. Written to give the very same strings, quirks included, so that we accept exactly
    what Twilio's validator accepts:

    - both are ``urlparse(url)`` put back together (``geturl()``), which lower-cases the scheme and drops an
      empty ``?`` or ``#``; the URL "as given" counts only in that form;
    - without the port: a URL with a port (other than 0) loses everything in its host part from the first
      ``:``, otherwise it stays as it is;
    - with the port: a URL without one (or with port 0) gets ``:443`` for https and ``:80`` for anything
      else; a URL with a port stays as it is (a non-default port is never replaced by the default one).

    :raise ValueError: the port is not a number from 0 to 65535 (Twilio's validator raises too).
    """
    parsed = urlparse(url)
    port = parsed.port  # raises ValueError for a port that is not a number in range
    if port:
        without_port = parsed._replace(netloc=parsed.netloc.split(":")[0]).geturl()
        with_port = parsed.geturl()
    else:
        without_port = parsed.geturl()
        default = 443 if parsed.scheme == "https" else 80
        with_port = parsed._replace(netloc=f"{parsed.netloc}:{default}").geturl()
    return [without_port, with_port]


def valid_signature(auth_token: str, url: str, params: Mapping[str, Any] | str | None,
                    signature: str | None) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) is Twilio's for a request to ``url`` with
    these form fields, by the rules of ``twilio.request_validator.RequestValidator.validate`` (HMAC-SHA1,
    the auth token as key): true for exactly the same requests. ``params`` may also be the raw body (a
    ``str``) of a JSON webhook: then ``url`` must carry ``bodySHA256`` = the hex SHA-256 of the body, and the
    signature covers the URL alone. Constant-time comparisons; every candidate URL is checked (no early exit).
    A missing signature, an empty auth token, a port that is not a number, or a JSON body without a
    ``bodySHA256`` is never valid (Twilio's validator raises an exception for all but the empty token)."""
    if signature is None or not auth_token:
        return False
    try:
        candidates = _url_variants(url)
    except ValueError:
        return False
    body_ok = True
    fields: Mapping[str, Any] | None = None if isinstance(params, str) else params
    if isinstance(params, str):
        hashes = parse_qs(urlparse(url).query).get("bodySHA256")
        if not hashes:
            return False
        body_ok = hmac.compare_digest(hashlib.sha256(params.encode("utf-8")).hexdigest().encode("ascii"),
                                      hashes[0].encode("utf-8", "replace"))
        fields = None
    given = signature.encode("utf-8", "replace")  # a replaced character is never in a base64 signature
    ok = False
    for candidate in candidates:
        expected = twilio_signature(auth_token, candidate, fields).encode("ascii")
        ok |= hmac.compare_digest(expected, given)
    return body_ok and ok


def opt_out_action(params: Mapping[str, Any]) -> Literal["stop", "start", "help"] | None:
    """What an incoming message asks for: the gateway's ``OptOutType`` (STOP/START/HELP, sent under
    Twilio's Advanced Opt-Out) when present, else one of the standard keywords making up the whole
    ``Body`` (trimmed, any case): STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT → "stop"; START, YES,
    UNSTOP → "start"; HELP, INFO → "help". None for any other message."""
    kind = str(params.get("OptOutType") or "").strip().upper()
    if kind in _OPT_OUT_TYPES:
        return _OPT_OUT_TYPES[kind]
    word = str(params.get("Body") or "").strip().upper()
    if word in _STOP_WORDS:
        return "stop"
    if word in _START_WORDS:
        return "start"
    if word in _HELP_WORDS:
        return "help"
    return None


# -------------------------------------------------------------------------------- errors


class SmsError(Exception):
    """The gateway refused a message or could not be reached. ``status``: the HTTP status (None for a network
    error); ``code``: Twilio's numeric error code when the answer carried one; ``message``: Twilio's text
    (``str(exc)`` is ours, with recipients masked)."""

    def __init__(self, text: str, *, status: int | None = None, code: int | None = None,
                 message: str | None = None, more_info: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info


class SmsRejected(SmsError):
    """4xx other than 429: the message will not be sent as it is (invalid or unsubscribed recipient, sender
    not allowed, bad credentials…). Never retried."""


class SmsUnavailable(SmsError):
    """429 / 5xx / network errors still failing after the retries. ``possibly_sent``: the gateway may have
    created the message (a 500/502/504, or a connection lost after the request went out), so sending again
    risks a duplicate. ``retry_after``: seconds the gateway asked to wait, when longer than ``backoff_max``."""

    def __init__(self, text: str, *, possibly_sent: bool = False, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.possibly_sent = possibly_sent
        self.retry_after = retry_after


# -------------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class TwilioConfig:
    api_url: str  # e.g. "https://api.twilio.com" (TALLYPASS_SMS_API_URL)
    account_sid: str  # "AC…" (TALLYPASS_SMS_ACCOUNT_SID)
    auth_token: str = field(repr=False)  # TALLYPASS_SMS_AUTH_TOKEN; never logged
    sender: str  # the From number (E.164), short code or alphanumeric sender id (TALLYPASS_SMS_FROM)
    # The absolute URL the gateway POSTs each message's delivery statuses to (``status_callback_url``); sent
    # with every message, so none can go out without reporting back.
    status_callback: str = field(kw_only=True)
    timeout: float = 10.0
    max_attempts: int = 3  # for 429 / 503 / connections never made
    backoff: float = 0.5  # first retry delay, doubling, with jitter, capped at backoff_max; Retry-After wins
    backoff_max: float = 8.0


class SentSms(NamedTuple):
    sid: str  # the gateway's message id, "SM…"
    status: str  # "queued", or "accepted" through a messaging service


class _Reply(NamedTuple):
    response: httpx.Response | None  # None: network error
    error: str  # the network error, else ""
    sent: bool  # False when the request surely never reached the gateway


class SmsClient:
    """Sends text messages through a Twilio-compatible Messages API; synchronous and thread-safe. ``http`` lets
    tests pass their own ``httpx.Client`` (then not closed here, and it must carry no other credentials)."""

    def __init__(self, config: TwilioConfig, *, http: httpx.Client | None = None) -> None:
        _check_config(config)
        self._config = config
        self._url = (f"{config.api_url.rstrip('/')}/{API_VERSION}/Accounts/"
                     f"{quote(config.account_sid, safe='')}/Messages.json")
        self._auth = httpx.BasicAuth(config.account_sid, config.auth_token)
        self._owns_http = http is None
        self._http = http if http is not None else _new_http(config)
        self._pid = os.getpid()

    @property
    def sender(self) -> str:
        return self._config.sender

    @property
    def status_callback(self) -> str:
        return self._config.status_callback

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SentSms:
        """Send ``body`` to ``to`` (E.164) from the configured sender, with ``StatusCallback``: the
        configured URL, or ``status_callback`` when given (an absolute http(s) URL; never absent).

        :raise SmsRejected: 4xx other than 429 (``code`` 21211 invalid number, 21610 unsubscribed recipient…).
        :raise SmsUnavailable: 429 / 5xx / network errors after the retries, or an error after which the
            message may exist (``possibly_sent``).
        :raise ValueError: an empty body, or one over 1600 characters, or a ``status_callback`` Twilio would
            refuse.
        """
        if not body or not body.strip():
            raise ValueError("an SMS needs a non-empty body")
        if len(body) > MAX_BODY:
            raise ValueError(f"an SMS body holds at most {MAX_BODY} characters, not {len(body)}")
        callback = status_callback or self._config.status_callback
        if status_callback:
            _check_callback(status_callback)
        form = {"To": to, "From": self._config.sender, "Body": body, "StatusCallback": callback}
        who = mask_phone(to)
        attempts = 0
        while True:
            attempts += 1
            reply = self._post(form)
            response = reply.response
            if response is not None and response.is_success:
                sent = _sent_from(response)
                log.info("sms to %s: %s %s", who, sent.sid, sent.status)
                return sent
            status = response.status_code if response is not None else None
            if response is not None and status not in _RETRY_STATUSES:
                raise self._rejected(response, who)
            code, message, more_info = _twilio_error(response)
            detail = (f"{status}" + (f" (code {code})" if code else "")) if response is not None else reply.error
            retry_after = _retry_after(response.headers.get("retry-after")) if response is not None else None
            kw: dict[str, Any] = {"status": status, "code": code, "message": message, "more_info": more_info}
            if not (reply.sent is False or status in _NOT_PROCESSED_STATUSES):
                text = (f"SMS to {who}: {detail}; not repeated, as the gateway may have created the message "
                        "(check its message log before sending again)")
                log.warning("%s", text)
                raise SmsUnavailable(text, possibly_sent=True, **kw)
            cfg = self._config
            if attempts >= cfg.max_attempts or (retry_after is not None and retry_after > cfg.backoff_max):
                tail = f"; the gateway asked to retry after {retry_after:.0f} s" if retry_after is not None else ""
                text = f"SMS to {who} failed after {attempts} attempt(s): {detail}{tail}"
                log.warning("%s", text)
                long_wait = retry_after if retry_after is not None and retry_after > cfg.backoff_max else None
                raise SmsUnavailable(text, retry_after=long_wait, **kw)
            delay = self._delay(attempts, retry_after)
            log.warning("SMS to %s: %s, retry %d of %d in %.2f s", who, detail, attempts, cfg.max_attempts - 1,
                        delay)
            time.sleep(delay)

    def close(self) -> None:
        """Close the connections (only those of an ``httpx.Client`` this client made)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SmsClient(api_url={self._config.api_url!r}, account_sid={self._config.account_sid!r})"

    # ---------------------------------------------------------------------------- internals

    def _post(self, form: dict[str, str]) -> _Reply:
        if os.getpid() != self._pid and self._owns_http:
            # A forked child (Celery prefork) must neither use nor close the parent's sockets.
            self._http, self._pid = _new_http(self._config), os.getpid()
        try:
            return _Reply(self._http.post(self._url, data=form, auth=self._auth), "", True)
        except (httpx.TransportError, OSError) as exc:  # OSError: a TLS alert httpcore did not map
            text = f"{type(exc).__name__}: {_mask_numbers(str(exc))}" if str(exc) else type(exc).__name__
            return _Reply(None, text, not isinstance(exc, _NOT_SENT_ERRORS))

    def _rejected(self, response: httpx.Response, who: str) -> SmsRejected:
        code, message, more_info = _twilio_error(response)
        status = response.status_code
        said = f" (code {code}: {_mask_numbers(message)})" if code and message else (
            f" (code {code})" if code else (f": {_mask_numbers(message)}" if message else ""))
        if status in _CREDENTIAL_STATUSES or (status == 404 and code == 20404):
            text = (f"the SMS gateway refused our credentials or account ({status}{said}): check "
                    "TALLYPASS_SMS_ACCOUNT_SID, TALLYPASS_SMS_AUTH_TOKEN and TALLYPASS_SMS_API_URL")
            log.error("%s", text)
        else:
            text = f"SMS to {who} refused: {status}{said}"
            log.info("%s", text)
        return SmsRejected(text, status=status, code=code, message=message, more_info=more_info)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        cfg = self._config
        ceiling = min(cfg.backoff_max, cfg.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def build_sms_client(settings: Settings) -> SmsClient | None:
    """The deployment's SMS client, or None when messages go to the channel outbox instead: provider
    ``outbox``, or ``twilio`` without an account SID, auth token or sender."""
    if settings.sms_provider != "twilio":
        return None
    token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token is not None else ""
    if not (settings.sms_account_sid and token and settings.sms_from):
        missing = [name for name, value in (("TALLYPASS_SMS_ACCOUNT_SID", settings.sms_account_sid),
                                            ("TALLYPASS_SMS_AUTH_TOKEN", token),
                                            ("TALLYPASS_SMS_FROM", settings.sms_from)) if not value]
        log.warning("SMS provider twilio without %s: text messages go to the channel outbox", ", ".join(missing))
        return None
    return SmsClient(TwilioConfig(api_url=settings.sms_api_url, account_sid=settings.sms_account_sid,
                                  auth_token=token, sender=settings.sms_from,
                                  status_callback=status_callback_url(settings.base_url)))


def _outbox_reason(settings: Settings) -> str | None:
    """Why this deployment's texts go to the channel outbox instead of the gateway, or None when they do not."""
    if settings.sms_provider != "twilio":
        return f"TALLYPASS_SMS_PROVIDER is {settings.sms_provider}"
    token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token is not None else ""
    missing = [name for name, value in (("TALLYPASS_SMS_ACCOUNT_SID", settings.sms_account_sid),
                                        ("TALLYPASS_SMS_AUTH_TOKEN", token),
                                        ("TALLYPASS_SMS_FROM", settings.sms_from)) if not value]
    if missing:
        return f"TALLYPASS_SMS_PROVIDER is twilio but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} unset"
    try:
        _check_config(TwilioConfig(api_url=settings.sms_api_url, account_sid=settings.sms_account_sid or "",
                                   auth_token=token, sender=settings.sms_from or "",
                                   status_callback=status_callback_url(settings.base_url)))
    except ValueError as exc:
        return f"the SMS settings are unusable ({exc})"
    return None


def outbox_warning(settings: Settings) -> str | None:
    """In production, the warning an operator must not miss when no text message can leave (the provider is
    ``outbox``, or ``twilio`` without a usable configuration): one-time codes, card links and campaign texts
    are only recorded in the channel outbox. None in development and tests, or with a working gateway. Names
    settings, never their values."""
    if settings.env != "production":
        return None
    reason = _outbox_reason(settings)
    if reason is None:
        return None
    return (f"SMS is off: {reason}, so no text message leaves this service; each is only recorded in the "
            "dashboard's Outbox. Customers who sign up at /join/<programme> with a phone number that already has "
            "a card are sent a one-time code that never reaches them, so they cannot get their card back; card "
            "links sent by SMS and campaign texts do not arrive either. Set TALLYPASS_SMS_PROVIDER=twilio, "
            "TALLYPASS_SMS_ACCOUNT_SID, TALLYPASS_SMS_AUTH_TOKEN and TALLYPASS_SMS_FROM (see docs/sms.md).")


# -------------------------------------------------------------------------------- helpers


def _check_config(config: TwilioConfig) -> None:
    parts = urlsplit(config.api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the SMS api_url must be an http(s) URL, not {config.api_url!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("SMS api_url %s is plain http: the auth token travels unencrypted", config.api_url)
    if not config.account_sid or not config.auth_token or not config.sender:
        raise ValueError("the SMS client needs an account SID, an auth token and a sender")
    _check_callback(config.status_callback)
    if config.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if config.backoff < 0 or config.backoff_max < 0 or config.timeout <= 0:
        raise ValueError("backoff and backoff_max must not be negative, timeout must be positive")


def _check_callback(url: str) -> None:
    """The rules Twilio applies to ``StatusCallback`` before answering 21609: an absolute http(s) URL with
    a host name (without underscores), at most 4000 characters."""
    parts = urlsplit(url or "")
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or "_" in host or len(url) > MAX_CALLBACK_URL:
        raise ValueError(f"the SMS status callback must be an absolute http(s) URL (TALLYPASS_BASE_URL + "
                         f"{WEBHOOK_PATH}{STATUS_PATH}) that Twilio accepts, not {url!r}")


def _new_http(config: TwilioConfig) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(config.timeout),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=16, keepalive_expiry=60.0),
    )


def _sent_from(response: httpx.Response) -> SentSms:
    try:
        data = response.json()
    except ValueError:
        data = None
    sid = data.get("sid") if isinstance(data, dict) else None
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(sid, str) or not sid:
        raise SmsError(f"the SMS gateway answered {response.status_code} without a message sid",
                       status=response.status_code)
    return SentSms(sid, status if isinstance(status, str) and status else "queued")


def _twilio_error(response: httpx.Response | None) -> tuple[int | None, str | None, str | None]:
    """(code, message, more_info) of Twilio's JSON error body, Nones when it has none."""
    if response is None or not response.content:
        return None, None, None
    try:
        data = response.json()
    except ValueError:
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    code = data.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    message, more_info = data.get("message"), data.get("more_info")
    return (code if isinstance(code, int) and not isinstance(code, bool) else None,
            message if isinstance(message, str) else None,
            more_info if isinstance(more_info, str) else None)


