"""Building RFC 9457 problem documents from our errors, werkzeug's and pydantic's."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Response
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from app import errors

PROBLEM_JSON = "application/problem+json"

_BY_STATUS: dict[int, type[errors.AppError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    422: errors.InvalidInput,
    429: errors.RateLimited,
}


# What RFC 3986 allows in a path as is; anything else in ``instance`` is percent-encoded (it is a URI reference,
# and the path of a malformed request may hold a NUL or a line break).
PATH_SAFE = "/!$&'()*+,;=:@-._~"


def problem_response(error: errors.AppError, *, instance: str | None = None) -> Response:
    instance = quote(instance, safe=PATH_SAFE) if instance else instance
    return Response(json.dumps(error.problem(instance)), status=error.status, mimetype=PROBLEM_JSON)


def from_http_exception(exc: HTTPException) -> errors.AppError:
    status = exc.code or 500
    cls = _BY_STATUS.get(status)
    if cls is None:
        err = errors.AppError(exc.description)
        err.status = status
        err.title = exc.name
        err.code = exc.name.lower().replace(" ", "-")
        return err
    if status == 413:
        return cls("the request body is larger than 64 KiB")
    return cls(exc.description)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def from_validation_error(exc: ValidationError, *, drop: int = 0) -> errors.InvalidInput:
    """422 with one ``{field, message}`` per problem; ``drop``: leading places of each location that are not
    fields (the tag of a union)."""
    field_errors = [errors.FieldError(_field(e["loc"][drop:]), e["msg"]) for e in exc.errors(include_url=False)]
    return errors.InvalidInput(
        "; ".join(f"{fe.field}: {fe.message}" for fe in field_errors[:5]), errors=field_errors
    )
