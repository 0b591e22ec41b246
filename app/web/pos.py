"""The POS API (``/api/v1/pos``, CONTRACTS.md §3): signed, idempotent, JSON in and out.

Views parse, call one service, serialise. The request owns the transaction: it commits once, with the
idempotency record, the ledger entries and the outbox event together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app import idempotency
from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest
from app.loyalty import card_link_texts, enrollment, ledger, purchases, rules
from app.loyalty.programs import phone_region
from app.models import Card, Program
from app.wallet.links import card_links
from app.web.auth import pos_signature_required
from app.web.bodies import parse, read_json
from app.web.messaging import send_text
from app.web.problems import PROBLEM_JSON
from app.web.schemas import AmountQuery, EnrolIn, EventIn, PurchaseIn, RefundIn
from app.web.write_once import Caller, Outcome, run_once

bp = Blueprint("pos", __name__, url_prefix="/api/v1/pos")

M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------- request plumbing


def _parse(model: type[M], payload: Any) -> M:
    """The body; a phone in it is read in the programme's region. Only a body with a phone costs the query that
    reads the region: the everyday purchase names the card and keeps its three statements."""
    default = _settings().default_phone_region
    has_phone = isinstance(payload, dict) and payload.get("phone") is not None
    region = phone_region(get_session(), program_id=g.store.program_id, default=default) if has_phone else default
    return parse(model, payload, context={"phone_region": region})


def _settings() -> Any:
    return current_app.config["TALLYPASS"]


def _json(body: dict[str, Any], status: int, *, replayed: bool = False) -> Response:
    response = Response(json.dumps(body), status=status,
                        mimetype=PROBLEM_JSON if status >= 400 else "application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


# The POS API's answers for app.web.write_once: its own JSON, its problem bodies, its words for the conflicts.
_POS = Caller(respond=lambda body, status, replayed: _json(body, status, replayed=replayed),
              problem=lambda exc: exc.problem(request.path),
              in_flight="a request with this Idempotency-Key is still being processed; retry shortly",
              reused="this Idempotency-Key was used for a different request")


def _idempotent(payload: Any, handler: Callable[[Session], Outcome]) -> Response:
    """Run ``handler`` once per Idempotency-Key (app/web/write_once.py); without a key, just once."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        session = get_session()
        body, status = handler(session)
        session.commit()
        return _json(body, status)
    if not 1 <= len(key) <= idempotency.MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest("Idempotency-Key must be 1–255 printable characters", code="bad-idempotency-key")
    return run_once(store_id=g.store.id, key=key, payload=payload, handler=handler, caller=_POS)


def _program(session: Session) -> Program:
    program = session.get(Program, g.store.program_id)
    assert program is not None  # foreign key
    return program


def _find_card(session: Session, ref: EventIn) -> Card:
    """The referenced card, locked for this transaction (the service would lock it anyway)."""
    return ledger.find_card(session, program_id=g.store.program_id, barcode=ref.card, phone=ref.phone, lock=True)


def _card_body(card: Card | purchases.CardState) -> dict[str, Any]:
    state = card if isinstance(card, purchases.CardState) else purchases.CardState.of(card)
    body: dict[str, Any] = {"barcode": state.barcode, "balance": state.balance, "tier": state.tier}
    if state.stamps is not None:
        body["stamps"] = state.stamps
        body["stamps_required"] = state.stamps_required
    return body


def _money(value: Decimal) -> str:
    return str(value.quantize(rules.CENT))


def till_name(name: str) -> str:
    """What a till shows of a customer's name: the first name and the last name's initial ("Ana P.")."""
    words = name.split()
    if len(words) < 2:
        return words[0] if words else ""
    return f"{words[0]} {words[-1][0]}."


# ---------------------------------------------------------------- endpoints


@bp.post("/customers")
@pos_signature_required
def enrol_customer() -> Response:
    """201 with the card's secret links when this request created the customer; otherwise (the phone is a
    customer already, with or without a card here) 201/200 without them, and the link is texted to the
    customer's own phone instead (``link_sms``): a till never learns the link to someone else's card page."""
    payload = read_json()
    data = _parse(EnrolIn, payload)

    def handle(session: Session) -> Outcome:
        result = enrollment.enrol(
            session, program=_program(session), phone=data.phone, name=data.name, email=data.email,
            birthday=data.birthday, consents=data.consents, referral_code=data.referral_code,
            home_store=g.store, source="pos",
        )
        card = result.card
        links = card_links(card, _settings().base_url)
        body: dict[str, Any] = {"customer_id": card.customer_id,
                                "card": {"serial": card.serial, **_card_body(card)}}
        if result.customer_created:
            body["card"]["links"] = links
        else:
            body["link_sms"] = card_link_texts.text_card_link(
                session, card=card, link=links["page"], now=utcnow(),
                send=lambda **message: send_text(session, **message))
        return body, 201 if result.created else 200

    return _idempotent(payload, handle)


@bp.get("/cards/<barcode>")
@pos_signature_required
def card_lookup(barcode: str) -> Response:
    session = get_session()
    card = ledger.find_card(session, program_id=g.store.program_id, barcode=barcode)
    body: dict[str, Any] = {"barcode": card.barcode, "name": till_name(card.customer.name), **_card_body(card)}
    raw_amount = request.args.get("amount")
    if raw_amount is not None:
        amount = _parse(AmountQuery, {"amount": raw_amount}).amount
        program = card.program
        rules.check_amount(amount, program.max_purchase_amount)
        points = 0
        if program.kind == "points":
            points = rules.max_redeemable(balance=card.balance, amount=amount,
                                          cap_percent=program.redeem_cap_percent, point_value=program.point_value)
        body["max_redeemable_for"] = {
            "amount": _money(amount),
            "points": points,
            "discount": _money(rules.money_for(points, program.point_value)),
        }
    return _json(body, 200)


@bp.post("/purchases")
@pos_signature_required
def purchase() -> Response:
    payload = read_json()
    data = _parse(PurchaseIn, payload)

    def handle(session: Session) -> Outcome:
        done = purchases.record(
            session, store=g.store, barcode=data.card, phone=data.phone, receipt_id=data.receipt_id,
            amount=data.amount, redeem_points=data.redeem_points, occurred_at=data.occurred_at, items=data.items,
            actor=g.actor,
        )
        body: dict[str, Any] = {
            "purchase_id": done.purchase_id,
            "earned": done.earned,
            "redeemed": done.redeemed,
            "discount": _money(done.discount),
            "amount_due": _money(done.amount_due),
            "card": _card_body(done.card),
        }
        if done.rewards:
            body["rewards"] = [{"kind": r.kind, "name": r.name, "code": r.code, "quantity": r.quantity,
                                "value": _money(r.value) if r.value is not None else None}
                               for r in done.rewards]
        return body, 200 if done.replayed else 201

    return _idempotent(payload, handle)


@bp.post("/refunds")
@pos_signature_required
def refund() -> Response:
    payload = read_json()
    data = _parse(RefundIn, payload)

    def handle(session: Session) -> Outcome:
        result = ledger.record_refund(session, store=g.store, refund_id=data.refund_id,
                                      receipt_id=data.receipt_id, amount=data.amount, actor=g.actor)
        r = result.refund
        body = {
            "refund_id": r.refund_id,
            "points_reversed": r.points_reversed,
            "points_returned": r.points_returned,
            "card": _card_body(result.card),
        }
        return body, 200 if result.replayed else 201

    return _idempotent(payload, handle)


@bp.post("/events")
@pos_signature_required
def event() -> Response:
    payload = read_json()
    data = _parse(EventIn, payload)

    def handle(session: Session) -> Outcome:
        card = _find_card(session, data)
        result = ledger.record_event(session, store=g.store, card=card, event_id=data.event_id,
                                     name=data.name, actor=g.actor)
        body: dict[str, Any] = {"bonus": result.event.bonus, "card": _card_body(result.card)}
        if result.event.reason:
            body["reason"] = result.event.reason
        return body, 200 if result.replayed else 201

    return _idempotent(payload, handle)
