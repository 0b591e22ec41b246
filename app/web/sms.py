"""The SMS gateway's webhooks (a Twilio-compatible gateway; app/channels/sms.py).

- ``POST /sms/status``: delivery-status callbacks (``MessageSid``, ``MessageStatus``, ``ErrorCode``) for the
  messages we sent, every one with ``StatusCallback`` = base URL + ``/sms/status``. The report moves the
  text's ``SmsMessage`` and the campaign delivery sent as it (``messaging.sms.record_report``); a report
  about a text not committed yet is kept and applied when it is. Answered 204 either way.
- ``POST /sms/inbound``: incoming messages (configure it as the sender number's "A message comes in" URL).
  STOP/START change the opt-out and the customer's SMS consent; the answer is empty TwiML, since the
  gateway itself sends the STOP/START/HELP confirmations (Twilio's Advanced Opt-Out).

Both are form-encoded (anything else is 400) and must carry a valid ``X-Twilio-Signature`` computed over
the URL the gateway called, checked as Twilio's own ``RequestValidator`` checks it (``valid_signature``):
the service runs behind a proxy, so that URL is ``TALLYPASS_BASE_URL`` + path (+ query), never
``request.url``. A missing or wrong signature is 403; without a gateway (provider ``outbox``, or no auth
token) both are 404.
Errors are ``application/problem+json`` whatever the caller accepts.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.datastructures import MultiDict

from app.channels.sms import SIGNATURE_HEADER, mask_phone, outbox_warning, valid_signature
from app.database import get_session
from app.db import utcnow
from app.errors import AppError, BadRequest, Forbidden, NotFound
from app.messaging import sms
from app.settings import Settings
from app.web.dashboard import OPERATOR_WARNINGS
from app.web.problems import problem_response

log = logging.getLogger(__name__)

bp = Blueprint("sms", __name__, url_prefix=sms.SMS_PATH)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
FORM = "application/x-www-form-urlencoded"
MAX_SID = 64  # SmsMessage.provider_sid


@bp.record_once
def _warn_when_texts_stay_in_the_outbox(state: BlueprintSetupState) -> None:
    """At startup, in production: a WARNING in the log, and a banner on every dashboard page, when no text
    can leave (``outbox_warning``). The service still starts: a shop may run without SMS on purpose."""
    warning = outbox_warning(state.app.config["TALLYPASS"])
    if warning:
        log.warning("%s", warning)
        state.app.extensions.setdefault(OPERATOR_WARNINGS, []).append(warning)


@bp.errorhandler(AppError)
def _problem(error: AppError) -> Response:
    # The gateway accepts anything; answer problem+json rather than the HTML page browsers get.
    return problem_response(error, instance=request.path)


def _settings() -> Settings:
    return current_app.config["TALLYPASS"]


def _signed_form() -> MultiDict[str, str]:
    """The form of a request the gateway signed.

    :raise 404: this deployment has no SMS gateway.
    :raise 400: the body is not form-encoded (the gateway's webhooks always are).
    :raise 403: ``X-Twilio-Signature`` is missing or does not match.
    """
    settings = _settings()
    token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token is not None else ""
    if settings.sms_provider != "twilio" or not token:
        raise NotFound("this deployment has no SMS gateway")
    if request.mimetype != FORM:
        raise BadRequest(f"the gateway's webhooks are {FORM}", code="not-form-encoded")
    url = settings.base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    form = request.form
    if not valid_signature(token, url, form, request.headers.get(SIGNATURE_HEADER)):
        log.warning("sms webhook %s: missing or invalid %s", request.path, SIGNATURE_HEADER)
        raise Forbidden(f"the {SIGNATURE_HEADER} header is missing or does not match", code="bad-signature")
    return form


def _field(form: MultiDict[str, str], *names: str, required: bool = True) -> str:
    for name in names:
        value = form.get(name, "").strip()
        if value:
            return value
    if required:
        raise BadRequest(f"the form lacks {names[0]}", code="missing-field")
    return ""


@bp.post(sms.STATUS_PATH)
def status_callback() -> Response:
    form = _signed_form()
    sid = _field(form, "MessageSid", "SmsSid")
    status = _field(form, "MessageStatus", "SmsStatus")
    if len(sid) > MAX_SID:
        raise BadRequest("MessageSid is too long", code="bad-sid")
    error_code = _field(form, "ErrorCode", required=False) or None
    session = get_session()
    known = sms.record_report(session, sid=sid, status=status, error_code=error_code, now=utcnow())
    session.commit()
    if not known:
        log.info("sms status %s for message %s, not recorded (yet)", status[:20], sid)
    return Response(status=204)


@bp.post(sms.INBOUND_PATH)
def inbound() -> Response:
    form = _signed_form()
    from_, to = _field(form, "From"), _field(form, "To")
    session = get_session()
    action = sms.handle_inbound(session, from_=from_, to=to, params=form, now=utcnow())
    session.commit()
    if action is None:
        log.info("sms from %s to %s: no keyword, nothing to do", mask_phone(from_), to)
    return Response(EMPTY_TWIML, status=200, content_type="text/xml; charset=utf-8")
