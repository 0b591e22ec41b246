"""The till's refusals in the cashier's language.

The services refuse in English for integrators (problem+json ``detail``); the till shows the same refusal
translated, chosen by its problem code, and each field's message beside the field it names."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from flask_babel import gettext as _

from app.errors import AppError
from app.web.problems import PROBLEM_JSON

# What the cashier sees for each problem code the till can meet (the %(...)s values come from the problem).
DETAILS = {
    "card-not-found": lambda p: _("No card with this number or phone in this programme."),
    "receipt-not-found": lambda p: _("No purchase with this receipt at this store."),
    "amount-over-limit": lambda p: _("This amount is over the most this programme accepts for one purchase."),
    "negative-amount": lambda p: _("The amount must be positive."),
    "over-redemption-cap": lambda p: _("At most %(points)s points can pay for this purchase.",
                                       points=p.get("max_points", "?")),
    "insufficient-points": lambda p: _("The card does not have that many points."),
    "invalid-points": lambda p: _("Enter a whole number of points."),
    "redemption-not-allowed": lambda p: _("A stamp card has no points to pay with."),
    "points-over-limit": lambda p: _("The card cannot hold that many points."),
    "refund-exceeds-purchase": lambda p: _("This refund is more than what is left of the purchase."),
    "duplicate-receipt": lambda p: _("This receipt was already recorded differently."),
    "duplicate-refund": lambda p: _("This refund was already recorded differently."),
    "idempotency-key-reused": lambda p: _("This attempt was already used for something else; start again."),
    "idempotency-key-in-flight": lambda p: _("Still recording the previous tap; wait a moment."),
    "store-not-allowed": lambda p: _("You do not serve at this store."),
    "csrf-failed": lambda p: _("This page has expired; reload it."),
    "signed-out": lambda p: _("You are signed out; sign in again."),
    "role-too-small": lambda p: _("Your account cannot use the till."),
    "validation-error": lambda p: _("Check the highlighted field."),
    "malformed-json": lambda p: _("The till sent something unexpected; reload the page."),
    "rate-limited": lambda p: _("Too many requests; wait a moment."),
}

FIELDS = {
    "amount": lambda: _("Enter an amount, e.g. 12.50 (at most two decimals)."),
    "redeem_points": lambda: _("Enter a whole number of points, 0 or more."),
    "card": lambda: _("Enter the card number."),
    "phone": lambda: _("Enter a valid phone number."),
    "receipt_id": lambda: _("Enter the receipt number."),
    "store": lambda: _("Choose one of your stores."),
    "attempt": lambda: _("The till sent something unexpected; reload the page."),
}


def translated(error: AppError, instance: str, **values: Any) -> dict[str, Any]:
    """``error``'s problem+json body, its ``detail`` and field messages in the cashier's language (the English
    originals stay for a log or a bug report: ``detail_en``)."""
    body = error.problem(instance)
    body.update(values)
    detail = DETAILS.get(error.code)
    if detail is not None:
        body["detail_en"] = body["detail"]
        body["detail"] = detail(body)
    if body.get("errors"):
        body["errors"] = [{"field": e["field"], "message": _message(error.code, e["field"], e["message"],
                                                                    body["detail"])} for e in body["errors"]]
    return body


def _message(code: str, field: str, original: str, detail: str) -> str:
    """A field's message: what to enter there (input that does not validate), else the refusal itself."""
    if code != "validation-error":
        return detail
    known = FIELDS.get(field.split(".")[0])
    return known() if known is not None else original


def as_json(body: dict[str, Any], status: int, *, replayed: bool = False) -> Response:
    """A till call's answer: JSON, or problem+json for a refusal; never cached."""
    response = Response(json.dumps(body), status=status,
                        mimetype=PROBLEM_JSON if status >= 400 else "application/json")
    response.headers["Cache-Control"] = "no-store"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
