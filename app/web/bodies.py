"""Reading JSON request bodies into the pydantic models of ``app.web.schemas``, with the same errors on
every JSON endpoint: 400 ``malformed-json`` for a body that is not a JSON object, 422 with one
``{field, message}`` per problem for one that does not validate.

Every JSON the app reads from a request goes through :func:`loads` (``read_json`` here, ``request.get_json``
through the app's JSON provider, JSON typed into a form): JSON the rest of the code could not handle is
malformed input, refused before it gets further. That is nesting deeper than :data:`MAX_DEPTH` (deep
structures reach Python's recursion limit in whatever walks them), numbers outside 64-bit integers or
finite doubles (a 5,000-digit integer cannot even be printed back), lone UTF-16 surrogates (they have no
UTF-8) and NUL characters (PostgreSQL text holds none). Parsing is pydantic-core's (jiter): it already
refuses lone surrogates, integers of more than 4,300 digits and nesting past 200 levels without recursing
in Python; the walk below adds the tighter limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic_core
from flask import request
from pydantic import BaseModel, ValidationError

from app.errors import BadRequest, FieldError
from app.web.problems import from_validation_error

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 32  # arrays and objects inside one another; segment rules need about 20
MAX_INT = 2**63 - 1


class MalformedJSON(ValueError):
    """JSON the service refuses to read (a ``ValueError``, as ``json.loads`` raises); ``field`` is where
    (``a.b.0``; empty: the text as a whole)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message, self.field = message, field


def loads(data: bytes | str) -> Any:
    """Parse JSON text with the service's limits. :raise MalformedJSON: not JSON, or beyond a limit."""
    try:
        value = pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        raise MalformedJSON(str(exc)) from None
    _check(value)
    return value


_Where = tuple["_Where", object] | None  # (parent, key): the path, spelled out only for an error


def _field(where: _Where) -> str:
    keys: list[str] = []
    while where is not None:
        where, key = where
        keys.append(str(key))
    return ".".join(reversed(keys))


def _check(value: Any) -> None:
    stack: list[tuple[Any, int, _Where]] = [(value, 0, None)]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise MalformedJSON("must not contain NUL characters", _field(where))
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int):
            if not -MAX_INT - 1 <= node <= MAX_INT:
                raise MalformedJSON("integers must fit in 64 bits", _field(where))
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise MalformedJSON("numbers must be finite", _field(where))
        elif isinstance(node, dict):
            if depth >= MAX_DEPTH:
                raise MalformedJSON(f"arrays and objects may be nested at most {MAX_DEPTH} deep", _field(where))
            for key, item in node.items():
                if "\x00" in key:
                    raise MalformedJSON("names must not contain NUL characters", _field(where))
                stack.append((item, depth + 1, (where, key)))
        elif isinstance(node, list):
            if depth >= MAX_DEPTH:
                raise MalformedJSON(f"arrays and objects may be nested at most {MAX_DEPTH} deep", _field(where))
            stack.extend((item, depth + 1, (where, index)) for index, item in enumerate(node))


def read_json() -> Any:
    """The request body as JSON (an empty body reads as null). :raise BadRequest: it is not JSON, or JSON beyond
    the limits of :func:`loads`."""
    data = request.get_data(cache=True)
    if not data:
        return None
    try:
        return loads(data)
    except MalformedJSON as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="malformed-json",
                         errors=[FieldError(exc.field or "body", exc.message)]) from None


def parse(model: type[M], payload: Any, *, context: Mapping[str, Any] | None = None) -> M:
    """:raise BadRequest: ``payload`` is not an object. :raise InvalidInput: it does not validate."""
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object", code="malformed-json")
    try:
        return model.model_validate(payload, context=dict(context) if context else None)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def parse_body(model: type[M]) -> M:
    return parse(model, read_json())
