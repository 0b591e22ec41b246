"""What the segment builder offers: the fields, operators and inputs of ``rules.FIELDS`` (so the builder and
the compiler cannot drift), with the programme's own choices (tiers, stores) and the RFM names.

No Flask here: plain data for the dashboard's JavaScript.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import AppError, FieldError, InvalidInput
from app.models import CONSENT_CHANNELS, Program, Store, Tier
from app.segments import rules
from app.segments.rfm import SEGMENT_NAMES

OP_LABELS: dict[str, str] = {
    "eq": "is", "ne": "is not", "gt": "more than", "gte": "at least", "lt": "less than", "lte": "at most",
    "between": "between", "in": "is one of", "within_km": "within (km)", "has": "has", "not_has": "does not have",
    "contains": "contains",
}
# The input the builder shows for each kind of value (rules._SCALARS).
INPUTS: dict[str, str] = {
    "count": "number", "days": "number", "money": "number", "km": "number", "month": "select",
    "tier": "select", "rfm": "select", "store": "select", "channel": "select", "tag": "text", "text": "text",
}
HINTS: dict[str, str] = {
    "count": "a whole number, e.g. 20",
    "money": "an amount, e.g. 49.90",
    "days": "a number of days, e.g. 30",
    "km": "a distance in km from the customer's home store",
    "month": "",
    "tag": "a tag given to customers, e.g. vip",
    "text": "part of the text, any case",
}
CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "push": "Web push", "wallet": "Wallet pass"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
GROUP_MODES = {"all": "all of these", "any": "any of these", "none": "none of these"}


def _label(name: str, spec: rules.FieldSpec) -> str:
    text = spec.label.replace(" (in the last `days`)", "").replace("`", "")
    return text[:1].upper() + text[1:]


def options(session: Session, *, program: Program) -> dict[str, list[dict[str, Any]]]:
    """The choices of each select-kind value, as ``[{"value", "label"}]``."""
    tiers = session.scalars(select(Tier.name).where(Tier.program_id == program.id).order_by(Tier.qualifying_spend))
    stores = session.execute(select(Store.id, Store.name).where(Store.program_id == program.id).order_by(Store.name))
    return {
        "tier": [{"value": name, "label": name} for name in tiers],
        "store": [{"value": sid, "label": name} for sid, name in stores],
        "rfm": [{"value": name, "label": name} for name in SEGMENT_NAMES],
        "month": [{"value": n, "label": month} for n, month in enumerate(MONTHS, start=1)],
        "channel": [{"value": c, "label": CHANNEL_LABELS.get(c, c)} for c in CONSENT_CHANNELS],
    }


def catalog(session: Session, *, program: Program) -> dict[str, Any]:
    """Everything the builder needs: fields (with operators, input, hint), choices, group modes, limits."""
    fields = [
        {
            "name": name,
            "label": _label(name, spec),
            "kind": spec.kind,
            "input": INPUTS[spec.kind],
            "step": "0.01" if spec.kind == "money" else ("any" if spec.kind == "km" else "1"),
            "hint": HINTS.get(spec.kind, ""),
            "ops": [{"value": op, "label": OP_LABELS.get(op, op)} for op in spec.ops],
            "days": spec.days,
            "stores": spec.stores,
        }
        for name, spec in rules.FIELDS.items()
    ]
    return {
        "fields": fields,
        "options": options(session, program=program),
        "groups": [{"value": k, "label": v} for k, v in GROUP_MODES.items()],
        "max_conditions": rules.MAX_CONDITIONS,
        "currency": program.currency,
    }


def errors_by_path(error: AppError) -> dict[str, str]:
    """``{"rules.all.0.value": message}``: the first message per JSON path, for showing beside the row."""
    out: dict[str, str] = {}
    for item in error.errors:
        message = item.message[:1].upper() + item.message[1:]
        out.setdefault(item.field, message)
    return out


def refuse_nul(tree: Any, *, path: str = "rules") -> None:
    """PostgreSQL text cannot hold NUL characters: refuse them with the path of the first one, before a query
    would fail on them.

    :raise InvalidInput: a string in the tree holds a NUL character.
    """
    stack: list[tuple[Any, str]] = [(tree, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str) and "\x00" in node:
            raise InvalidInput("The rules hold a NUL character",
                               errors=[FieldError(where, "must not contain NUL characters")])
        if isinstance(node, dict):
            stack.extend((value, f"{where}.{key}") for key, value in node.items())
            if any(isinstance(key, str) and "\x00" in key for key in node):
                raise InvalidInput("The rules hold a NUL character",
                                   errors=[FieldError(where, "must not contain NUL characters")])
        elif isinstance(node, list):
            stack.extend((value, f"{where}.{i}") for i, value in enumerate(node))
