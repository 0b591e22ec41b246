"""Rule segments: a JSON condition tree compiled to one set-based SQL query (ARCHITECTURE.md "Segments").

A node is a group, ``{"all": [nodes]}``, ``{"any": [nodes]}`` or ``{"not": node}``, or a condition
``{"field": ..., "op": ..., "value": ...}`` (some fields also take ``days`` or ``stores``). ``FIELDS`` lists
each field with its operators and the value it takes. Trees are at most ``MAX_DEPTH`` nodes deep and hold at
most ``MAX_CONDITIONS`` conditions (and as many groups). An empty ``all`` matches everyone, an empty ``any``
nobody.

Every segment, whatever its kind, holds only customers with an *active* card in the segment's programme who
were not anonymised. ``compile_rules`` turns a tree into ``select(Customer.id)``: conditions become plain
comparisons on the customer and card rows or correlated ``EXISTS``/aggregate subqueries (purchases, consents,
devices, stores), so the database does all the work, whatever the number of customers.

Time windows are rolling periods of 24 hours before ``now``. "Days since" a moment counts whole days
(a purchase 36 hours ago was 1 day ago); a customer who never bought has been away forever: ``gt``/``gte``/``ne``
include them, ``eq``/``lt``/``lte``/``between`` do not.

Distances use the spherical law of cosines (``acos``/``sin``/``cos``/``radians``) in SQL. PostgreSQL has these
functions; SQLite has them only when compiled with SQLITE_ENABLE_MATH_FUNCTIONS (3.35+). ``prepare_session``
(called by ``count`` and ``members``) registers Python versions on a SQLite connection that lacks them; call
it before running a ``compile_rules`` query yourself.

No Flask here: services take a session, flush, never commit.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import (
    Boolean,
    Select,
    and_,
    case,
    exists,
    extract,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from app import phones
from app.errors import Conflict, FieldError, InvalidInput
from app.models import (
    CONSENT_CHANNELS,
    AppleRegistration,
    Card,
    Consent,
    Customer,
    GoogleObject,
    Purchase,
    Segment,
    SegmentMember,
    SmsOptOut,
    Store,
    Tier,
    WebPushSubscription,
)

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_GROUPS = 100
MAX_LIST = 1000  # values of an "in" list
MAX_DAYS = 36_500
MAX_COUNT = 2_147_483_647
MAX_MONEY = Decimal("10000000000")
MAX_KM = 20_000.0  # half the Earth's circumference: every place is within it
EARTH_RADIUS_KM = 6371.0088

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
REACHABLE_CHANNELS = CONSENT_CHANNELS  # sms, email, push, wallet


# ---------------------------------------------------------------- the fields a condition can use


@dataclass(frozen=True)
class FieldSpec:
    """What a condition on one field accepts: its operators, the kind of value, and the optional keys."""

    ops: tuple[str, ...]
    kind: str  # see _SCALARS
    label: str  # what it means, for the composer
    days: bool = False  # takes an optional "days" window
    stores: bool = False  # takes an optional "stores" list (near_store)


FIELDS: dict[str, FieldSpec] = {
    "tier": FieldSpec(("eq", "ne", "in"), "tier", "tier of the card"),
    "balance": FieldSpec(COMPARISONS, "count", "points balance"),
    "lifetime_spend": FieldSpec(COMPARISONS, "money", "spend since joining"),
    "window_spend": FieldSpec(COMPARISONS, "money", "spend in the tier window"),
    "visits": FieldSpec(COMPARISONS, "count", "number of purchases (in the last `days`)", days=True),
    "spend": FieldSpec(COMPARISONS, "money", "spend net of refunds (in the last `days`)", days=True),
    "days_since_last_purchase": FieldSpec(COMPARISONS, "days", "days since the last purchase"),
    "birthday_month": FieldSpec(("eq", "in"), "month", "birthday month (1-12)"),
    "store": FieldSpec(("in",), "store", "bought at one of these stores (in the last `days`)", days=True),
    "near_store": FieldSpec(("within_km",), "km", "home store within this many km of a store", stores=True),
    "consent": FieldSpec(("eq",), "channel", "agreed to hear from us on this channel"),
    "reachable": FieldSpec(("eq",), "channel", "agreed to and can be reached on this channel"),
    "tag": FieldSpec(("has", "not_has"), "tag", "tags"),
    "rfm_segment": FieldSpec(("eq", "in"), "rfm", "RFM segment"),
    "name": FieldSpec(("contains",), "text", "name (any case)"),
    "email": FieldSpec(("contains",), "text", "e-mail address (any case)"),
    "created_days_ago": FieldSpec(COMPARISONS, "days", "days since joining the programme"),
}


# ---------------------------------------------------------------- values


class _Bad(ValueError):
    """A value that does not fit; the message is for a marketer."""


def _int(value: Any, low: int, high: int, message: str) -> int:
    if isinstance(value, bool):
        raise _Bad(message)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise _Bad(message)
    return value


# White space to str.strip(): a text value needs one other character. No NUL: PostgreSQL text cannot hold it.
_PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
TEXT_VALUE = f"^[^\\x00]*[^\\x00{_PY_SPACE}][^\\x00]*$"
MONEY_TEXT = "^(?:(?:0|[1-9][0-9]{0,9})(?:\\.[0-9]+)?|10000000000(?:\\.0+)?)$"  # 0 to MAX_MONEY
_TEXT_VALUE, _MONEY_TEXT = re.compile(TEXT_VALUE), re.compile(MONEY_TEXT)


def _text(value: Any, max_length: int, message: str) -> str:
    if not isinstance(value, str) or len(value) > max_length or not _TEXT_VALUE.fullmatch(value):
        raise _Bad(message)
    return value.strip()


def _money(value: Any) -> Decimal:
    message = "must be an amount of money of 0 or more, e.g. 100 or 49.90"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(message)
    if isinstance(value, str) and not _MONEY_TEXT.fullmatch(value):
        raise _Bad(message)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Bad(message) from None
    if not amount.is_finite() or not Decimal(0) <= amount <= MAX_MONEY:
        raise _Bad(message)
    return amount


def _km(value: Any) -> float:
    message = f"must be a distance in km, more than 0 and at most {MAX_KM:,.0f}, e.g. 2.5"
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_KM:
        raise _Bad(message)
    return float(value)


def _channel(value: Any) -> str:
    if value not in CONSENT_CHANNELS:
        raise _Bad(f"must be one of {', '.join(CONSENT_CHANNELS)}")
    return str(value)


_SCALARS: dict[str, Callable[[Any], Any]] = {
    "count": lambda v: _int(v, 0, MAX_COUNT, "must be a whole number of 0 or more, e.g. 3"),
    "days": lambda v: _int(v, 0, MAX_DAYS, f"must be a whole number of days from 0 to {MAX_DAYS}, e.g. 30"),
    "money": _money,
    "month": lambda v: _int(v, 1, 12, "must be a month number from 1 (January) to 12 (December)"),
    "store": lambda v: _int(v, 1, MAX_COUNT, "must be a store number (its id), e.g. 3"),
    "km": _km,
    "tier": lambda v: _text(v, 60, 'must be the name of a tier, e.g. "Gold"'),
    "rfm": lambda v: _text(v, 40, 'must be the name of an RFM segment, e.g. "Champions"'),
    "tag": lambda v: _text(v, 64, 'must be a tag, e.g. "vip"'),
    "text": lambda v: _text(v, 254, "must be the text to look for"),
    "channel": _channel,
}


def _check_value(spec: FieldSpec, op: str, value: Any) -> Any:
    scalar = _SCALARS[spec.kind]
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _Bad("must be two values [from, to], e.g. [10, 50]")
        try:
            low, high = scalar(value[0]), scalar(value[1])
        except _Bad as exc:
            raise _Bad(f"from and to {exc}") from None
        return (low, high) if low <= high else (high, low)  # [50, 10] means 10 to 50, as SQL's BETWEEN SYMMETRIC
    if op == "in":
        if not isinstance(value, list | tuple) or not value:
            raise _Bad("must be a list of one or more values, e.g. [" + _EXAMPLES[spec.kind] + "]")
        if len(value) > MAX_LIST:
            raise _Bad(f"may list at most {MAX_LIST} values")
        items: list[Any] = []
        for position, item in enumerate(value, start=1):
            try:
                checked = scalar(item)
            except _Bad as exc:
                raise _Bad(f"item {position} {exc}") from None
            if checked not in items:
                items.append(checked)
        return tuple(items)
    return scalar(value)


_EXAMPLES = {"tier": '"Silver", "Gold"', "month": "12, 1", "store": "1, 4", "rfm": '"Champions", "Loyal"',
             "count": "1, 2", "days": "7, 30", "money": "100, 200", "km": "1, 2", "tag": '"vip"',
             "text": '"ana"', "channel": '"sms"'}


def _rule_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("segment_rule", message)


# ---------------------------------------------------------------- the tree (pydantic v2)


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Node):
    """``{"field", "op", "value"}``, plus ``days`` (visits, spend, store) or ``stores`` (near_store)."""

    field: Any
    op: Any
    value: Any
    days: Any = None
    stores: Any = None

    @field_validator("field")
    @classmethod
    def _field(cls, value: Any) -> str:
        if not isinstance(value, str) or value not in FIELDS:
            shown = f'"{value}"' if isinstance(value, str) else "this"
            raise _rule_error(f"{shown} is not something rules can use; choose one of {', '.join(FIELDS)}")
        return value

    @field_validator("op")
    @classmethod
    def _op(cls, value: Any, info: ValidationInfo) -> Any:
        spec = FIELDS.get(info.data.get("field", ""))
        if spec is not None and value not in spec.ops:
            shown = f'"{value}"' if isinstance(value, str) else "this"
            raise _rule_error(f"{shown} does not work with {info.data['field']}; use {_either(spec.ops)}")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: Any, info: ValidationInfo) -> Any:
        spec = FIELDS.get(info.data.get("field", ""))
        if spec is None or "op" not in info.data:
            return value
        try:
            return _check_value(spec, info.data["op"], value)
        except _Bad as exc:
            raise _rule_error(str(exc)) from None

    @field_validator("days")
    @classmethod
    def _days(cls, value: Any, info: ValidationInfo) -> int | None:
        spec = FIELDS.get(info.data.get("field", ""))
        if value is None or spec is None:
            return value
        if not spec.days:
            with_days = [name for name, s in FIELDS.items() if s.days]
            raise _rule_error(f"only {_either(with_days, 'and')} take a number of days")
        try:
            return _int(value, 1, MAX_DAYS, f"must be a whole number of days from 1 to {MAX_DAYS}, e.g. 90")
        except _Bad as exc:
            raise _rule_error(str(exc)) from None

    @field_validator("stores")
    @classmethod
    def _stores(cls, value: Any, info: ValidationInfo) -> tuple[int, ...] | None:
        spec = FIELDS.get(info.data.get("field", ""))
        if value is None or spec is None:
            return value
        if not spec.stores:
            raise _rule_error("only near_store takes a list of stores")
        try:
            return _check_value(FieldSpec(("in",), "store", ""), "in", value)  # type: ignore[no-any-return]
        except _Bad as exc:
            raise _rule_error(str(exc)) from None


def _either(words: Iterable[str], last: str = "or") -> str:
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _node_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return f"<{key}>"
        return "<condition>"
    return _MODEL_TAGS.get(type(value))


RuleNode = Annotated[
    Union[  # noqa: UP007 -- pydantic needs the tagged members spelled out
        Annotated["AllOf", Tag("<all>")],
        Annotated["AnyOf", Tag("<any>")],
        Annotated["NotOf", Tag("<not>")],
        Annotated[Condition, Tag("<condition>")],
    ],
    Discriminator(
        _node_kind, custom_error_type="segment_node",
        custom_error_message='must be a condition {"field", "op", "value"} or a group {"all": [...]}, '
                             '{"any": [...]} or {"not": {...}}',
    ),
]


class AllOf(_Node):
    all: list[RuleNode]


class AnyOf(_Node):
    any: list[RuleNode]


class NotOf(_Node):
    not_: RuleNode = Field(alias="not")


_MODEL_TAGS: dict[type, str] = {AllOf: "<all>", AnyOf: "<any>", NotOf: "<not>", Condition: "<condition>"}
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


class RuleTree(RootModel[RuleNode]):
    """The whole tree; ``RuleTree.model_validate(data).root`` is its top node."""


Node = AllOf | AnyOf | NotOf | Condition


# ---------------------------------------------------------------- the tree as JSON Schema (the API document)

_SCALAR_SCHEMAS: dict[str, dict[str, Any]] = {
    "count": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
    "days": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS},
    "money": {"anyOf": [{"type": "number", "minimum": 0, "maximum": float(MAX_MONEY)},
                        {"type": "string", "pattern": MONEY_TEXT}]},
    "month": {"type": "integer", "minimum": 1, "maximum": 12},
    "store": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
    "km": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_KM},
    "tier": {"type": "string", "maxLength": 60, "pattern": TEXT_VALUE},
    "rfm": {"type": "string", "maxLength": 40, "pattern": TEXT_VALUE},
    "tag": {"type": "string", "maxLength": 64, "pattern": TEXT_VALUE},
    "text": {"type": "string", "maxLength": 254, "pattern": TEXT_VALUE},
    "channel": {"type": "string", "enum": list(CONSENT_CHANNELS)},
}


def _condition_schemas(name: str, spec: FieldSpec) -> list[dict[str, Any]]:
    """One schema per kind of operator of the field: a value, [from, to], or a list."""
    scalar = _SCALAR_SCHEMAS[spec.kind]
    extra: dict[str, Any] = {
        "days": ({"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_DAYS}, {"type": "null"}]}
                 if spec.days else {"type": "null"}),
        "stores": ({"anyOf": [{"type": "array", "items": _SCALAR_SCHEMAS["store"], "minItems": 1,
                               "maxItems": MAX_LIST}, {"type": "null"}]} if spec.stores else {"type": "null"}),
    }
    values = {"between": {"type": "array", "items": scalar, "minItems": 2, "maxItems": 2,
                          "description": "[from, to], in either order"},
              "in": {"type": "array", "items": scalar, "minItems": 1, "maxItems": MAX_LIST}}
    groups = [([op for op in spec.ops if op not in values], scalar)]
    groups += [([op], values[op]) for op in ("between", "in") if op in spec.ops]
    return [{"type": "object", "additionalProperties": False, "required": ["field", "op", "value"],
             "properties": {"field": {"const": name}, "op": {"enum": ops}, "value": value, **extra}}
            for ops, value in groups if ops]


def json_schemas(ref: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """The JSON Schema of a rule tree, as named schemas (``RuleNode`` is the top node); ``ref(name)`` is how
    one names another (e.g. ``#/components/schemas/<name>``). The size limits (depth, conditions, groups) are
    in the description only: a schema written out level by level is too large for tools to walk."""
    node, condition = {"$ref": ref("RuleNode")}, {"$ref": ref("RuleCondition")}
    items = {"type": "array", "items": node, "maxItems": MAX_CONDITIONS}
    return {
        "RuleCondition": {"description": "A condition: " + "; ".join(f"{n}: {s.label}" for n, s in FIELDS.items()),
                          "oneOf": [c for name, spec in FIELDS.items() for c in _condition_schemas(name, spec)]},
        "RuleNode": {
            "description": f"A rule tree: a condition, or a group of nodes; at most {MAX_DEPTH} levels deep, with "
                           f"at most {MAX_CONDITIONS} conditions and {MAX_GROUPS} groups in all.",
            "oneOf": [condition,
                      {"type": "object", "additionalProperties": False, "required": ["all"],
                       "properties": {"all": items}, "description": "Every node holds (an empty list: everyone)."},
                      {"type": "object", "additionalProperties": False, "required": ["any"],
                       "properties": {"any": items}, "description": "At least one node holds (an empty list: nobody)."},
                      {"type": "object", "additionalProperties": False, "required": ["not"],
                       "properties": {"not": node}, "description": "The node does not hold."}]},
    }


TREE_RULES = (f"A rule tree is at most {MAX_DEPTH} levels deep and holds at most {MAX_CONDITIONS} conditions and "
              f"{MAX_GROUPS} groups in all.",)


def _size_errors(tree: Any, path: str) -> list[FieldError]:
    """Depth, condition and group limits, checked before pydantic walks (and recurses into) the tree."""
    conditions = groups = 0
    stack: list[tuple[Any, str, int]] = [(tree, path, 1)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return [FieldError(where, f"groups are nested too deeply; use at most {MAX_DEPTH} levels")]
        children: list[tuple[Any, str]] = []
        if isinstance(node, dict) and any(key in node for key in ("all", "any", "not")):
            groups += 1
            key = next(key for key in ("all", "any", "not") if key in node)
            inner = node[key]
            if key == "not":
                children = [(inner, f"{where}.not")]
            elif isinstance(inner, list):
                children = [(child, f"{where}.{key}.{i}") for i, child in enumerate(inner)]
        else:
            conditions += 1
        if conditions > MAX_CONDITIONS:
            return [FieldError(path, f"has more than {MAX_CONDITIONS} conditions; split it into several segments")]
        if groups > MAX_GROUPS:
            return [FieldError(path, f"has more than {MAX_GROUPS} groups; simplify it")]
        stack.extend((child, child_path, depth + 1) for child, child_path in reversed(children))
    return []


_TAGS = frozenset(_MODEL_TAGS.values())
_PYDANTIC_MESSAGES = {
    "missing": "is required",
    "list_type": "must be a list of conditions or groups",
}


def _field_errors(exc: ValidationError, path: str) -> list[FieldError]:
    found: list[FieldError] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        tags = [part for part in loc if part in _TAGS]
        parts = [str(part) for part in loc if part not in _TAGS]
        where = ".".join([path, *parts]) if path else ".".join(parts)
        if error["type"] == "extra_forbidden":
            if tags and tags[-1] == "<condition>":
                message = "is not part of a condition (field, op, value, and days or stores for some fields)"
            else:
                message = 'is not expected here: a group holds exactly one of "all", "any" or "not"'
        else:
            message = _PYDANTIC_MESSAGES.get(error["type"], error["msg"])
        found.append(FieldError(where or "rules", message))
    return found


def _invalid(errors: list[FieldError]) -> InvalidInput:
    detail = "The segment rules are not valid: " + "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return InvalidInput(detail, errors=errors)


def parse_rules(tree: Any, *, path: str = "rules") -> Node:
    """The validated tree, or ``InvalidInput`` whose field errors name JSON paths under ``path``
    (e.g. ``rules.all.2.value``)."""
    errors = _size_errors(tree, path)
    if errors:
        raise _invalid(errors)
    try:
        return RuleTree.model_validate(tree).root
    except ValidationError as exc:
        raise _invalid(_field_errors(exc, path)) from None


# ---------------------------------------------------------------- SQL pieces


class json_list_has(FunctionElement[bool]):  # noqa: N801 -- SQL function style
    """``json_list_has(column, value)``: the JSON array in ``column`` holds the string ``value``."""

    type = Boolean()
    inherit_cache = True
    name = "json_list_has"


@compiles(json_list_has)
def _json_list_has_default(element: json_list_has, compiler: Any, **kw: Any) -> str:
    raise CompileError("tag conditions need PostgreSQL or SQLite")


@compiles(json_list_has, "postgresql")
def _json_list_has_postgresql(element: json_list_has, compiler: Any, **kw: Any) -> str:
    # Both pieces are compiled SQL (a column name and a bind placeholder), never user text.
    column, value = (compiler.process(clause, **kw) for clause in element.clauses)
    array = f"CASE WHEN json_typeof({column}) = 'array' THEN {column} ELSE '[]'::json END"
    return f"EXISTS (SELECT 1 FROM json_array_elements_text({array}) AS tp_tag(value) WHERE tp_tag.value = {value})"  # noqa: S608


@compiles(json_list_has, "sqlite")
def _json_list_has_sqlite(element: json_list_has, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS tp_tag WHERE tp_tag.value = {value})"  # noqa: S608


def _km_between(a: Any, b: Any) -> ColumnElement[float]:
    """Great-circle distance between two stores' coordinates (spherical law of cosines), in km."""
    lat_a, lat_b = func.radians(a.latitude), func.radians(b.latitude)
    cosine = (func.sin(lat_a) * func.sin(lat_b)
              + func.cos(lat_a) * func.cos(lat_b) * func.cos(func.radians(b.longitude) - func.radians(a.longitude)))
    # Rounding can push the cosine of two identical points just past 1, where acos is undefined.
    clamped = case((cosine > 1.0, 1.0), (cosine < -1.0, -1.0), else_=cosine)
    return EARTH_RADIUS_KM * func.acos(clamped)


def _null_safe(fn: Callable[[float], float]) -> Callable[[float | None], float | None]:
    def call(x: float | None) -> float | None:
        return None if x is None else fn(float(x))

    return call


_MATH_FUNCTIONS: dict[str, Callable[[float | None], float | None]] = {
    "acos": _null_safe(math.acos), "sin": _null_safe(math.sin), "cos": _null_safe(math.cos),
    "radians": _null_safe(math.radians),
}


@functools.cache
def sqlite_has_math() -> bool:
    """Whether this process's SQLite library has acos/sin/cos/radians built in."""
    if sqlite3.sqlite_version_info < (3, 35, 0):
        return False
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("SELECT acos(1.0), sin(0.0), cos(0.0), radians(0.0)")
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()
    return True


def prepare_session(session: Session) -> None:
    """On SQLite without math functions, register Python ones on this session's connection (a no-op elsewhere)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite" or sqlite_has_math():
        return
    raw = connection.connection.driver_connection
    for name, fn in _MATH_FUNCTIONS.items():
        raw.create_function(name, 1, fn, deterministic=True)  # type: ignore[union-attr]


# ---------------------------------------------------------------- compiling


@dataclass(frozen=True)
class _Context:
    program_id: int
    now: datetime
    sms_sender: str | None

    def ago(self, days: int) -> datetime:
        return self.now - timedelta(days=days)


def _compare(expr: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "between":
        return expr.between(value[0], value[1])  # type: ignore[no-any-return]
    if op == "in":
        return expr.in_(value)  # type: ignore[no-any-return]
    return {  # type: ignore[no-any-return]
        "eq": expr.__eq__, "ne": expr.__ne__, "gt": expr.__gt__, "gte": expr.__ge__,
        "lt": expr.__lt__, "lte": expr.__le__,
    }[op](value)


def _days_since(within: Callable[[int], ColumnElement[bool]], op: str, value: Any) -> ColumnElement[bool]:
    """A "whole days since X" comparison, from ``within(n)``: X happened less than n days before now.

    With d the exact time since X, whole days = floor(d), and floor(d) >= n  <=>  not within(n),
    floor(d) <= n  <=>  within(n + 1). When X never happened nothing is within any window: the customer
    counts as infinitely long ago.
    """
    if op == "between":
        low, high = value
        return and_(within(high + 1), not_(within(low)))
    n = value
    exactly = and_(within(n + 1), not_(within(n)))
    return {
        "gte": lambda: not_(within(n)), "gt": lambda: not_(within(n + 1)),
        "lt": lambda: within(n), "lte": lambda: within(n + 1),
        "eq": lambda: exactly, "ne": lambda: not_(exactly),
    }[op]()


def _purchases(ctx: _Context, days: int | None, *where: Any) -> Any:
    conditions = [Purchase.card_id == Card.id, *where]
    if days is not None:
        conditions.append(Purchase.occurred_at >= ctx.ago(days))
    return conditions


def _tier(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    names = c.value if c.op == "in" else (c.value,)
    has = exists().where(Tier.id == Card.tier_id, Tier.name.in_(names))
    return not_(has) if c.op == "ne" else has


def _card_column(column: Any) -> Callable[[Condition, _Context], ColumnElement[bool]]:
    return lambda c, ctx: _compare(column, c.op, c.value)


def _visits(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    visits = select(func.count(Purchase.id)).where(*_purchases(ctx, c.days)).scalar_subquery()
    return _compare(visits, c.op, c.value)


def _spend(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    net = func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0)
    spend = select(net).where(*_purchases(ctx, c.days)).scalar_subquery()
    return _compare(spend, c.op, c.value)


def _days_since_last_purchase(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    def within(n: int) -> ColumnElement[bool]:
        return exists().where(Purchase.card_id == Card.id, Purchase.occurred_at > ctx.ago(n))

    return _days_since(within, c.op, c.value)


def _created_days_ago(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    return _days_since(lambda n: Card.created_at > ctx.ago(n), c.op, c.value)


def _birthday_month(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    month = extract("month", Customer.birthday)
    return and_(Customer.birthday.is_not(None), _compare(month, c.op, c.value))


def _store(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    return exists().where(*_purchases(ctx, c.days, Purchase.store_id.in_(c.value)))


def _near_store(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    home, target = aliased(Store, name="home_store"), aliased(Store, name="near_store")
    near = [target.program_id == ctx.program_id, target.latitude.is_not(None), target.longitude.is_not(None),
            _km_between(home, target) <= c.value]
    if c.stores is not None:
        near.append(target.id.in_(c.stores))
    return (
        select(target.id)
        .select_from(home)
        .join(target, and_(*near))
        .where(home.id == Customer.home_store_id, home.latitude.is_not(None), home.longitude.is_not(None))
        .exists()
    )


def _consent(channel: str) -> ColumnElement[bool]:
    return exists().where(Consent.customer_id == Customer.id, Consent.channel == channel, Consent.granted.is_(True))


def _reachable(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    channel = c.value
    if channel == "sms":
        opted_out = [SmsOptOut.phone == Customer.phone]
        if ctx.sms_sender is not None:  # unknown sender: any STOP counts
            opted_out.append(SmsOptOut.sender == ctx.sms_sender)
        means = and_(Customer.phone.is_not(None), not_(exists().where(*opted_out)))
    elif channel == "push":
        means = exists().where(WebPushSubscription.customer_id == Customer.id)
    elif channel == "wallet":
        means = or_(exists().where(AppleRegistration.card_id == Card.id),
                    exists().where(GoogleObject.card_id == Card.id, GoogleObject.inserted_at.is_not(None)))
    else:  # email
        means = and_(Customer.email.is_not(None), Customer.email != "")
    return and_(_consent(channel), means)


def _tag(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    has = json_list_has(Customer.tags, literal(c.value))
    return not_(has) if c.op == "not_has" else has


def _rfm_segment(c: Condition, ctx: _Context) -> ColumnElement[bool]:
    return and_(Customer.rfm_segment.is_not(None), _compare(Customer.rfm_segment, c.op, c.value))


def _contains(column: Any) -> Callable[[Condition, _Context], ColumnElement[bool]]:
    return lambda c, ctx: and_(column.is_not(None), column.icontains(c.value, autoescape=True))


# Every compiler yields a two-valued condition (never SQL NULL), so "not" means what a marketer expects.
_COMPILERS: dict[str, Callable[[Condition, _Context], ColumnElement[bool]]] = {
    "tier": _tier,
    "balance": _card_column(Card.balance),
    "lifetime_spend": _card_column(Card.lifetime_spend),
    "window_spend": _card_column(Card.window_spend),
    "visits": _visits,
    "spend": _spend,
    "days_since_last_purchase": _days_since_last_purchase,
    "birthday_month": _birthday_month,
    "store": _store,
    "near_store": _near_store,
    "consent": lambda c, ctx: _consent(c.value),
    "reachable": _reachable,
    "tag": _tag,
    "rfm_segment": _rfm_segment,
    "name": _contains(Customer.name),
    "email": _contains(Customer.email),
    "created_days_ago": _created_days_ago,
}


def _compile(node: Node, ctx: _Context) -> ColumnElement[bool]:
    if isinstance(node, AllOf):
        return and_(*(_compile(child, ctx) for child in node.all)) if node.all else true()
    if isinstance(node, AnyOf):
        return or_(*(_compile(child, ctx) for child in node.any)) if node.any else false()
    if isinstance(node, NotOf):
        return not_(_compile(node.not_, ctx))
    return _COMPILERS[node.field](node, ctx)


def _base(program_id: int) -> Select[tuple[int]]:
    """Customers holding an active card in the programme, not anonymised (one card per customer and
    programme, so no duplicates; DISTINCT keeps that true for any caller)."""
    return (
        select(Customer.id)
        .distinct()
        .join(Card, and_(Card.customer_id == Customer.id, Card.program_id == program_id, Card.status == "active"))
        .where(Customer.anonymized_at.is_(None))
        # Never borrow an enclosing query's card or customer when nested in one (e.g. in an IN clause).
        .correlate(None)
    )


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now


def compile_rules(
    tree: Mapping[str, Any] | Node, *, program_id: int, now: datetime, sms_sender: str | None = None
) -> Select[tuple[int]]:
    """``select(Customer.id)`` (distinct) of the programme's customers the tree matches.

    ``sms_sender`` is the number SMS go out from: ``reachable sms`` skips phones that sent it STOP (any
    sender's STOP when None).

    :raise InvalidInput: the tree is not valid (field errors under ``rules.``).
    """
    node = tree if isinstance(tree, AllOf | AnyOf | NotOf | Condition) else parse_rules(tree)
    ctx = _Context(program_id=program_id, now=_aware(now), sms_sender=sms_sender)
    return _base(program_id).where(_compile(node, ctx))


def _rfm_names(segment: Segment) -> list[str]:
    names = (segment.definition or {}).get("segments")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput("An RFM segment lists the RFM segment names it holds",
                           errors=[FieldError("definition.segments", "must be a list of RFM segment names")])
    return names


def members(
    session: Session, *, segment: Segment, now: datetime, sms_sender: str | None = None
) -> Select[tuple[int]]:
    """``select(Customer.id)`` of the segment's members, for any kind:

    - ``rules``: the compiled condition tree in ``segment.definition``;
    - ``rfm``: customers whose ``rfm_segment`` is one of ``definition["segments"]``;
    - ``static``: the imported list (``SegmentMember``).

    Always limited to active cards of the segment's programme and customers not anonymised.
    """
    prepare_session(session)
    if segment.kind == "rules":
        return compile_rules(segment.definition or {}, program_id=segment.program_id, now=now,
                             sms_sender=sms_sender)
    base = _base(segment.program_id)
    if segment.kind == "rfm":
        return base.where(Customer.rfm_segment.in_(_rfm_names(segment)))
    if segment.kind == "static":
        return base.where(exists().where(SegmentMember.segment_id == segment.id,
                                         SegmentMember.customer_id == Customer.id))
    raise InvalidInput(f"unknown segment kind {segment.kind!r}",
                       errors=[FieldError("kind", "must be rules, rfm or static")])


def count(
    session: Session, *, segment: Segment | None = None, tree: Mapping[str, Any] | None = None,
    program_id: int | None = None, now: datetime, sms_sender: str | None = None,
) -> int:
    """How many customers a saved segment, or a tree being composed for ``program_id``, holds right now.

    :raise InvalidInput: the tree is not valid.
    """
    if (segment is None) == (tree is None):
        raise TypeError("pass either segment or tree")
    if segment is not None:
        query = members(session, segment=segment, now=now, sms_sender=sms_sender)
    else:
        if program_id is None:
            raise TypeError("a tree needs its program_id")
        prepare_session(session)
        query = compile_rules(tree, program_id=program_id, now=now, sms_sender=sms_sender)  # type: ignore[arg-type]
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


# ---------------------------------------------------------------- static lists from a CSV

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_LINES = 200_000
_CHUNK = 500
_PHONE_HEADERS = frozenset({"phone", "phone number", "phone_number", "telephone", "tel", "mobile", "msisdn"})
_EMAIL_HEADERS = frozenset({"email", "e-mail", "email address", "e-mail address", "email_address", "mail"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]")


@dataclass
class ImportResult:
    added: int  # customers newly put on the list (0 when the same file is imported again)
    unmatched: list[str] = field(default_factory=list)  # readable rows with no customer in the programme
    invalid: list[str] = field(default_factory=list)  # rows with neither a phone number nor an e-mail address


def normalise_phone(value: str, region: str | None) -> str | None:
    """E.164, or None. Like ``app.phones.normalise_phone``, plus numbers whose "+" a spreadsheet dropped."""
    candidates = [value]
    digits = _PHONE_PUNCTUATION.sub("", value)
    if digits.isdigit() and not digits.startswith("0"):
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            return phones.normalise_phone(candidate, region)
        except ValueError:
            continue
    return None


def _normalise_email(value: str) -> str | None:
    value = value.strip().lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:"):]
    return value if len(value) <= 254 and _EMAIL.fullmatch(value) else None


@dataclass
class _Row:
    shown: str
    phones: list[str]
    emails: list[str]


def _rows(csv_text: str, region: str | None) -> Iterator[_Row | str]:
    """Each row as its phones and e-mails, or as the text of a row holding neither (invalid)."""
    text = csv_text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count) if any(d in first_line for d in ",;\t") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns: dict[int, str] | None = None  # index -> "phone" | "email" when there is a header
    phone_of = functools.lru_cache(maxsize=4096)(lambda raw: normalise_phone(raw, region))
    for cells in reader:
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if columns is None:
            header = {i: ("phone" if c.lower() in _PHONE_HEADERS else "email")
                      for i, c in enumerate(cells) if c.lower() in _PHONE_HEADERS | _EMAIL_HEADERS}
            columns = header or {}
            if header:
                continue
        if columns:
            values = [(columns[i], c) for i, c in enumerate(cells) if i in columns and c]
        else:
            values = [("email" if "@" in c else "phone", c) for c in cells if c]
        if not values:
            continue
        phones = [p for kind, v in values if kind == "phone" and (p := phone_of(v))]
        emails = [e for kind, v in values if kind == "email" and (e := _normalise_email(v))]
        shown = ", ".join(v for _, v in values)
        yield _Row(shown, phones, emails) if phones or emails else shown


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _import_error(message: str) -> InvalidInput:
    return InvalidInput(f"The list cannot be imported: {message}", errors=[FieldError("file", message)])


def _insert_ignoring_duplicates(session: Session) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the membership key, so a concurrent import of the same file adds
    nobody twice (and fails nothing)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(SegmentMember).on_conflict_do_nothing(
            index_elements=[SegmentMember.segment_id, SegmentMember.customer_id])
    if dialect == "sqlite":
        return sqlite.insert(SegmentMember).on_conflict_do_nothing(
            index_elements=[SegmentMember.segment_id, SegmentMember.customer_id])
    return insert(SegmentMember)


def import_static(session: Session, *, segment: Segment, csv_text: str, region: str | None) -> ImportResult:
    """Put the programme's customers named in a CSV on a static segment's list (idempotent).

    The CSV holds phone numbers and/or e-mail addresses: one value per line, or columns headed
    ``phone``/``email`` (other columns are ignored). Phone numbers are read as E.164, or as national
    numbers of ``region``; e-mail addresses match in any case. A row matches when any of its values
    belongs to a customer with an active card in the programme (not anonymised). At most 5 MB and
    200,000 lines.

    :raise Conflict: not a static segment. :raise InvalidInput: the file is too large.
    """
    if segment.kind != "static":
        raise Conflict("Only a static segment takes an imported list", code="segment-kind",
                       errors=[FieldError("kind", "must be static to import a list")])
    if len(csv_text) > MAX_IMPORT_BYTES or len(csv_text.encode("utf-8")) > MAX_IMPORT_BYTES:
        raise _import_error("is larger than 5 MB; split it into smaller files")
    if csv_text.rstrip("\r\n").count("\n") + 1 > MAX_IMPORT_LINES:
        raise _import_error(f"has more than {MAX_IMPORT_LINES:,} lines; split it into smaller files")
    session.flush()

    result = ImportResult(added=0)
    rows: list[_Row] = []
    seen_invalid: set[str] = set()
    seen_rows: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    try:
        for row in _rows(csv_text, region):
            if isinstance(row, str):
                if row not in seen_invalid:
                    seen_invalid.add(row)
                    result.invalid.append(row)
                continue
            key = (tuple(row.phones), tuple(row.emails))
            if key not in seen_rows:
                seen_rows.add(key)
                rows.append(row)
    except csv.Error as exc:
        raise _import_error(f"is not a readable CSV file ({exc})") from None

    def holders() -> Select[tuple[int]]:
        return (select(Customer.id)
                .join(Card, and_(Card.customer_id == Customer.id, Card.program_id == segment.program_id,
                                 Card.status == "active"))
                .where(Customer.anonymized_at.is_(None)))

    by_phone: dict[str, int] = {}
    by_email: dict[str, set[int]] = {}
    phones = sorted({p for row in rows for p in row.phones})
    emails = sorted({e for row in rows for e in row.emails})
    for chunk in _chunks(phones):
        for customer_id, phone in session.execute(holders().add_columns(Customer.phone)
                                                  .where(Customer.phone.in_(chunk))):
            by_phone[phone] = customer_id
    for chunk in _chunks(emails):
        lowered = func.lower(Customer.email)
        for customer_id, email in session.execute(holders().add_columns(lowered).where(lowered.in_(chunk))):
            by_email.setdefault(email, set()).add(customer_id)

    matched: set[int] = set()
    for row in rows:
        ids = {by_phone[p] for p in row.phones if p in by_phone}
        for email in row.emails:
            ids |= by_email.get(email, set())
        if ids:
            matched |= ids
        else:
            result.unmatched.append(row.shown)

    for chunk in _chunks(sorted(matched)):
        already = exists().where(SegmentMember.segment_id == segment.id, SegmentMember.customer_id == Customer.id)
        source = select(literal(segment.id), Customer.id).where(Customer.id.in_(chunk), not_(already))
        statement = _insert_ignoring_duplicates(session).from_select(["segment_id", "customer_id"], source)
        outcome = session.execute(statement, execution_options={"preserve_rowcount": True})
        result.added += outcome.rowcount  # type: ignore[attr-defined]
    session.flush()
    return result
