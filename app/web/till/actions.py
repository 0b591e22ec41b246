"""The till's JSON calls (``/till/api/...``): look a card up, quote a purchase, record it, refund it.

Recording goes through the POS API's services (``purchases.record``, ``ledger.record_refund``) and its
idempotency records (``app.idempotency``). The browser makes one ``attempt`` id when the cashier confirms and
sends it again with every retry of that attempt (a double tap, a timeout, a lost answer): the first outcome is
stored with the change it made, in one commit, and replayed. The key is ``till␟<user id>␟<attempt>``: the
unit separator is not printable, and a POS integration's keys must be, so a till never meets a POS key. The
receipt (or refund) id is ``till-<attempt>``, unique per store as every receipt is: even with no idempotency
record the ledger would not record the attempt twice. Every change is audited with the cashier.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from flask import Response, current_app, request
from flask_babel import format_currency, format_percent
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.database import get_session
from app.db import utcnow
from app.loyalty import ledger, purchases, rules, till
from app.loyalty.programs import phone_region
from app.merchants import audit
from app.models import Card, Program, Store, User
from app.web.bodies import parse, read_json
from app.web.pos import till_name
from app.web.till import bp
from app.web.till.access import store_for, till_user
from app.web.till.messages import as_json, translated
from app.web.till.schemas import LookupIn, PurchaseIn, QuoteIn, RefundIn
from app.web.write_once import Caller, Outcome, run_once

M = TypeVar("M", bound=BaseModel)
CODE_BEFORE_DIGIT = re.compile(r"^([A-Z]{2,3})(?=\d)")
KEY_SEPARATOR = "\x1f"  # not printable: no POS Idempotency-Key contains it


# ---------------------------------------------------------------- plumbing


def _parse(model: type[M], payload: Any) -> M:
    """The request body, a typed phone read in the region of the store's programme (the store is checked after)."""
    default = current_app.config["TALLYPASS"].default_phone_region
    store_id = payload.get("store") if isinstance(payload, dict) else None
    store = get_session().get(Store, store_id) if type(store_id) is int and 0 < store_id < 2**31 else None
    region = phone_region(get_session(), program_id=store.program_id, default=default) if store else default
    return parse(model, payload, context={"phone_region": region})


def _money(value: Decimal, program: Program) -> dict[str, str]:
    """An amount as the API writes it ("12.50") and as the cashier reads it, in the programme's currency. Babel
    leaves out CLDR's currency spacing ("MDL12.50" in English): a letter code gets its no-break space back."""
    value = value.quantize(rules.CENT)
    text = CODE_BEFORE_DIGIT.sub("\\1\u00a0", format_currency(value, program.currency))
    return {"value": str(value), "text": text}


def _card(session: Session, store: Store, ref: Any, *, lock: bool = False) -> Card:
    return ledger.find_card(session, program_id=store.program_id, barcode=ref.card, phone=ref.phone, lock=lock)


def _card_body(card: Card, *, balance: int | None = None, stamps: int | None = None) -> dict[str, Any]:
    program = card.program
    body: dict[str, Any] = {
        "card": card.barcode, "name": till_name(card.customer.name), "kind": program.kind,
        "balance": card.balance if balance is None else balance, "tier": card.tier.name if card.tier else None,
        "cap": format_percent(program.redeem_cap_percent / 100, "#,##0.##%"),
    }
    if program.kind == "stamps":
        body["stamps"] = card.stamps if stamps is None else stamps
        body["stamps_required"] = program.stamps_required
    return body


def _checked_quote(card: Card, amount: Decimal, redeem_points: int) -> till.Quote:
    """The quote, or the refusal with the most points that may pay (for the message beside the field)."""
    rules.check_amount(amount, card.program.max_purchase_amount)
    most = till.max_redeemable(card, amount)
    try:
        return till.quote(card, amount=amount, redeem_points=redeem_points)
    except rules.RuleViolation as refusal:
        refusal.extra["max_points"] = most
        raise


def _quote_body(card: Card, quote: till.Quote) -> dict[str, Any]:
    program = card.program
    return {
        "amount": _money(quote.amount, program), "redeemed": quote.redeemed,
        "discount": _money(quote.discount, program), "amount_due": _money(quote.amount_due, program),
        "earned": quote.earned, "max_points": till.max_redeemable(card, quote.amount),
        "card": _card_body(card, balance=quote.balance_after, stamps=quote.stamps_after),
        "rewards": quote.rewards,
    }


# The till's answers for app.web.write_once: never cached, refusals in the cashier's language.
_TILL = Caller(respond=lambda body, status, replayed: as_json(body, status, replayed=replayed),
               problem=lambda exc: translated(exc, request.path),
               in_flight="this attempt is still being recorded; retry shortly",
               reused="this attempt was used for a different request")


def _idempotent(user: User, store_id: int, attempt: str, payload: Any,
                handler: Callable[[Session], Outcome]) -> Response:
    """Run ``handler`` once per attempt of this user (app/web/write_once.py), keyed apart from any POS key."""
    key = KEY_SEPARATOR.join(("till", str(user.id), attempt))
    return run_once(store_id=store_id, key=key, payload=payload, handler=handler, caller=_TILL)


# ---------------------------------------------------------------- calls


@bp.post("/api/lookup")
@till_user(json=True)
def lookup(user: User) -> Response:
    """The card by its number (the QR code's value) or its holder's phone; with ``amount``, also the most points
    that may pay for it. Audited: the cashier saw a customer's name and balance."""
    data = _parse(LookupIn, read_json())
    session, now = get_session(), utcnow()
    store = store_for(session, user, data.store)
    card = _card(session, store, data)
    body = _card_body(card)
    if data.amount is not None:
        rules.check_amount(data.amount, card.program.max_purchase_amount)
        most = till.max_redeemable(card, data.amount)
        body["max_redeemable"] = {"points": most,
                                  "discount": _money(rules.money_for(most, card.program.point_value), card.program)}
    else:
        audit.record(session, actor=user, action="till.lookup", now=now, target=f"card:{card.id}",
                     details={"store": store.id, "by": "card" if data.card is not None else "phone"},
                     ip=request.remote_addr)
        session.commit()
    return as_json(body, 200)


@bp.post("/api/quote")
@till_user(json=True)
def quote(user: User) -> Response:
    """The purchase as it would be recorded (earned points, discount, amount due): the confirmation step."""
    data = _parse(QuoteIn, read_json())
    session = get_session()
    store = store_for(session, user, data.store)
    card = _card(session, store, data)
    return as_json(_quote_body(card, _checked_quote(card, data.amount, data.redeem_points)), 200)


@bp.post("/api/purchases")
@till_user(json=True)
def purchase(user: User) -> Response:
    """Record the confirmed purchase (receipt ``till-<attempt>``) through the POS API's purchase service."""
    payload = read_json()
    data = _parse(PurchaseIn, payload)
    store = store_for(get_session(), user, data.store)
    store_id, receipt_id = store.id, f"till-{data.attempt}"

    def handle(session: Session) -> Outcome:
        card = _card(session, store, data, lock=True)
        _checked_quote(card, data.amount, data.redeem_points)  # the cashier's refusal, with the most points
        card_id, barcode, now = card.id, card.barcode, utcnow()
        done = purchases.record(session, store=store, barcode=barcode, phone=None, receipt_id=receipt_id,
                                amount=data.amount, redeem_points=data.redeem_points, actor=f"user:{user.id}",
                                now=now)
        audit.record(session, actor=user, action="till.purchase", now=now, target=f"card:{card_id}",
                     details={"store": store_id, "receipt_id": receipt_id, "amount": str(data.amount),
                              "redeemed": done.redeemed, "earned": done.earned},
                     ip=request.remote_addr)
        session.expire_all()  # the fast path wrote with SQL: read the card back as it is now
        card = session.get(Card, card_id)
        assert card is not None
        program = card.program
        body = {
            "receipt_id": receipt_id, "earned": done.earned, "redeemed": done.redeemed,
            "discount": _money(done.discount, program), "amount_due": _money(done.amount_due, program),
            "card": _card_body(card),
            "rewards": [{"name": r.name, "code": r.code, "quantity": r.quantity} for r in done.rewards],
        }
        return body, 201

    return _idempotent(user, store_id, data.attempt, payload, handle)


@bp.post("/api/refunds")
@till_user(json=True)
def refund(user: User) -> Response:
    """Refund (part of) a purchase by its receipt id at this store, through the POS API's refund service."""
    payload = read_json()
    data = _parse(RefundIn, payload)
    store = store_for(get_session(), user, data.store)
    store_id, refund_id = store.id, f"till-{data.attempt}"

    def handle(session: Session) -> Outcome:
        now = utcnow()
        result = ledger.record_refund(session, store=store, refund_id=refund_id, receipt_id=data.receipt_id,
                                      amount=data.amount, actor=f"user:{user.id}", now=now)
        card, r = result.card, result.refund
        audit.record(session, actor=user, action="till.refund", now=now, target=f"card:{card.id}",
                     details={"store": store_id, "receipt_id": data.receipt_id, "refund_id": refund_id,
                              "amount": str(data.amount), "points_reversed": r.points_reversed,
                              "points_returned": r.points_returned},
                     ip=request.remote_addr)
        body = {"refund_id": refund_id, "receipt_id": data.receipt_id, "amount": _money(data.amount, card.program),
                "points_reversed": r.points_reversed, "points_returned": r.points_returned,
                "card": _card_body(card)}
        return body, 201

    return _idempotent(user, store_id, data.attempt, payload, handle)
