"""Apple's PassKit web service (CONTRACTS.md §4; ../shared/reference/apple_wallet.md §3).

The five endpoints under ``webServiceURL`` (= base URL + ``/passkit``), with Apple's status codes:
register 201/200/401, serial list 200/204, latest pass 200/304/401, unregister 200/401, log 200.
Three of them carry ``Authorization: ApplePass <authenticationToken>``; the serial list is
authenticated by the device library identifier alone, as Apple specifies.
"""

from __future__ import annotations

import hmac
import json
import logging
import re

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest, Unauthorized
from app.models import Card
from app.wallet import apple
from app.web import ratelimit
from app.web.bodies import parse_body
from app.web.wallet import pkpass_response

log = logging.getLogger(__name__)

bp = Blueprint("passkit", __name__, url_prefix=apple.PASSKIT_PATH + "/v1")

_DEVICE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DUMMY_TOKEN = "x" * 32  # compared against when the serial is unknown, so both paths take as long
MAX_LOG_ENTRIES = 50
# What one device's log post may put into our log: anyone can post there, unauthenticated.
MAX_LOG_BODY = 16 * 1024
MAX_LOGGED_ENTRIES = 10
MAX_LOGGED_CHARACTERS = 500


class RegistrationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pushToken: str = Field(min_length=1, max_length=200, pattern=r"^[0-9A-Fa-f]+$")  # noqa: N815 (Apple's key)


class LogIn(BaseModel):
    logs: list[str] = Field(max_length=MAX_LOG_ENTRIES)


def _pass_type_id() -> str:
    return current_app.config["TALLYPASS"].apple_pass_type_id


def _device(device_id: str) -> str:
    if not _DEVICE_ID.fullmatch(device_id):
        raise BadRequest("the device library identifier is not valid", code="bad-device-id")
    return device_id


def _authorized_card(pass_type_id: str, serial: str) -> Card:
    """The card whose pass carries the token in ``Authorization: ApplePass <token>``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    card = apple.card_by_serial(get_session(), serial) if len(serial) <= 64 else None
    expected = card.apple_auth_token if card is not None else _DUMMY_TOKEN
    matches = hmac.compare_digest(token.strip().encode(), expected.encode())
    if card is None or not matches or scheme != "ApplePass" or pass_type_id != _pass_type_id():
        raise Unauthorized("the pass's authentication token is missing or does not match")
    return card


@bp.post("/devices/<device_id>/registrations/<pass_type_id>/<serial>")
def register(device_id: str, pass_type_id: str, serial: str) -> Response:
    card = _authorized_card(pass_type_id, serial)
    body = parse_body(RegistrationIn)
    session = get_session()
    created = apple.register(session, card=card, library_id=_device(device_id),
                             push_token=body.pushToken.lower(), now=utcnow())  # type: ignore[attr-defined]
    session.commit()
    return Response(status=201 if created else 200)


@bp.get("/devices/<device_id>/registrations/<pass_type_id>")
def serial_numbers(device_id: str, pass_type_id: str) -> Response:
    since = apple.parse_update_tag(request.args.get("passesUpdatedSince"))
    found = None
    if pass_type_id == _pass_type_id() and _DEVICE_ID.fullmatch(device_id):
        found = apple.serials_since(get_session(), library_id=device_id, since=since)
    if found is None:
        return Response(status=204)
    serials, tag = found
    return Response(json.dumps({"serialNumbers": serials, "lastUpdated": tag}), mimetype="application/json")


@bp.get("/passes/<pass_type_id>/<serial>")
def latest_pass(pass_type_id: str, serial: str) -> Response:
    card = _authorized_card(pass_type_id, serial)
    since = request.if_modified_since
    if since is not None and not apple.modified_since(card, since):
        response = Response(status=304)
        response.last_modified = since
        return response
    return pkpass_response(get_session(), card)


@bp.delete("/devices/<device_id>/registrations/<pass_type_id>/<serial>")
def unregister(device_id: str, pass_type_id: str, serial: str) -> Response:
    card = _authorized_card(pass_type_id, serial)
    session = get_session()
    apple.unregister(session, card=card, library_id=_device(device_id))
    session.commit()
    return Response(status=200)


@bp.post("/log")
def device_log() -> Response:
    """Apple's devices report web-service errors here. Unauthenticated, so limited per client address
    (``TALLYPASS_FORM_RATE_LIMIT``, counted on its own), in body size, and in what reaches our log."""
    ratelimit.check_ip("passkit-log", ratelimit.client_address())
    request.max_content_length = MAX_LOG_BODY
    body = parse_body(LogIn)
    entries: list[str] = body.logs  # type: ignore[attr-defined]
    for entry in entries[:MAX_LOGGED_ENTRIES]:
        text = "".join(ch if ch.isprintable() else " " for ch in entry[:MAX_LOGGED_CHARACTERS])
        log.warning("wallet device log: %s%s", text, " […]" if len(entry) > MAX_LOGGED_CHARACTERS else "")
    if len(entries) > MAX_LOGGED_ENTRIES:
        log.warning("wallet device log: %d more entries not logged", len(entries) - MAX_LOGGED_ENTRIES)
    return Response(status=200)
