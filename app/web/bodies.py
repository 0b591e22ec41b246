"""Reading JSON request bodies into the pydantic models of ``app.web.schemas``, with the same errors on
every JSON endpoint: 400 ``malformed-json`` for a body that is not a JSON object, 422 with one
``{field, message}`` per problem for one that does not validate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from app.errors import BadRequest
from app.web.problems import from_validation_error

M = TypeVar("M", bound=BaseModel)


def read_json() -> Any:
    """The request body as JSON (an empty body reads as null). :raise BadRequest: it is not JSON."""
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="malformed-json") from None


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
