"""One declaration per API view, from which both the request handling and the OpenAPI 3.1 document come.

``@operation(...)`` checks the API token's role, validates the JSON body and the query string with the
given pydantic models (the view receives them as ``body=`` and ``query=``), turns the pydantic model the
view returns into JSON, and refuses to answer with a status or a model the declaration does not list. So
``/api/v1/openapi.json`` cannot drift from what the code does: it is built from these declarations and
pydantic's JSON Schema (2020-12, which OpenAPI 3.1 uses as is). Written here rather than taken from
flask-smorest or apiflask: those build on marshmallow or replace Flask's app class, and our models are
pydantic already.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import models_json_schema

from app.errors import AppError, Forbidden, InvalidInput
from app.merchants.users import ROLE_RANK
from app.web.api import bp
from app.web.bodies import parse_body
from app.web.problems import PROBLEM_JSON, from_validation_error

F = TypeVar("F", bound=Callable[..., Any])

TITLE = "Tallypass marketer API"
VERSION = "1"
REF = "#/components/schemas/{model}"
# Problem answers every operation may give, with what causes them.
PROBLEMS = {
    401: "No valid API token.",
    403: "The token's role may not do this.",
    404: "Something named in the path or body does not exist.",
    409: "The request conflicts with the current state.",
    422: "Invalid input, or not allowed in the current state; `errors` lists the fields.",
}
BODY_PROBLEMS = {400: "The body is not valid JSON.", 413: "The body is too large."}


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    role: str | None = None  # None: viewer for GET, marketer otherwise
    raw_body: str | None = None  # a media type the view reads itself (e.g. "text/csv")
    raw_response: str | None = None  # a media type the view answers itself (its 2xx is a Response)
    description: str = ""
    extra_problems: dict[int, str] = field(default_factory=dict)

    def least_role(self, method: str) -> str:
        return self.role or ("viewer" if method in ("GET", "HEAD") else "marketer")


def operation(*, summary: str, tag: str, responses: dict[int, type[BaseModel] | None],
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None, role: str | None = None,
              raw_body: str | None = None, raw_response: str | None = None, description: str = "",
              problems: dict[int, str] | None = None) -> Callable[[F], F]:
    """Declare an API view. The view returns an instance of a model listed in ``responses`` (or a
    ``(model, status)`` pair, or ``None`` for a listed status without a body). With ``raw_response`` (a
    media type such as "text/csv"), it returns a Flask ``Response`` of that type instead."""
    op = Operation(summary=summary, tag=tag, responses=responses, body=body, query=query, role=role,
                   raw_body=raw_body, raw_response=raw_response, description=description,
                   extra_problems=problems or {})
    if role is not None and role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    if not any(200 <= status < 300 for status in responses):
        raise ValueError("declare at least one 2xx response")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            needed = op.least_role(request.method)
            token = g.api_token
            if ROLE_RANK.get(token.role, 0) < ROLE_RANK[needed]:
                raise Forbidden(f"this needs a token with the {needed} role; this one is a {token.role} token",
                                code="role-too-small")
            if op.body is not None:
                kwargs["body"] = parse_body(op.body)
            if op.query is not None:
                kwargs["query"] = _parse_query(op.query)
            return _answer(op, view(**kwargs))

        wrapper.operation = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _parse_query(model: type[BaseModel]) -> BaseModel:
    unknown = set(request.args) - set(model.model_fields)
    if unknown:
        raise InvalidInput(f"unknown query parameter {sorted(unknown)[0]!r}")
    try:
        return model.model_validate({name: request.args.get(name) for name in model.model_fields
                                     if name in request.args})
    except ValidationError as error:
        raise from_validation_error(error) from None


def _answer(op: Operation, result: Any) -> Response:
    if op.raw_response is not None:
        if not (isinstance(result, Response) and result.mimetype == op.raw_response
                and result.status_code in op.responses):
            raise AppError(f"the view was declared to answer {op.raw_response} with a listed status")
        return result
    status = next(s for s in sorted(op.responses) if 200 <= s < 300)
    if isinstance(result, tuple):
        result, status = result
    if status not in op.responses:
        raise AppError(f"the view answered {status}, which its declaration does not list")
    declared = op.responses[status]
    if declared is None:
        if result is not None:
            raise AppError(f"the declaration of {status} has no body, but the view returned one")
        return Response(status=status)
    if not isinstance(result, declared):
        raise AppError(f"the view answered {type(result).__name__}, not the declared {declared.__name__}")
    return Response(result.model_dump_json(), status=status, mimetype="application/json")


# ------------------------------------------------------------------------------------------- the document


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def swap(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        schema: dict[str, Any] = {"type": "string"}
        if converter == "int":  # app.web.RowId
            schema = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", swap, rule), params


def _operations(app: Flask) -> list[tuple[str, str, str, Operation]]:
    """``(path rule, method, endpoint, operation)`` of every API view, in URL order."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{bp.name}.") or rule.endpoint == "api.openapi_document":
            continue
        op = getattr(app.view_functions[rule.endpoint], "operation", None)
        if op is None:
            raise LookupError(f"{rule.endpoint} has no @operation declaration")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, rule.endpoint, op))
    return sorted(found, key=lambda item: (item[0], item[1]))


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the marketer API, built from the ``@operation`` declarations."""
    ops = _operations(app)
    models: dict[tuple[type[BaseModel], str], None] = {(Problem, "serialization"): None}
    for _, _, _, op in ops:
        if op.body is not None:
            models[(op.body, "validation")] = None
        for model in op.responses.values():
            if model is not None:
                models[(model, "serialization")] = None
        if op.query is not None:
            models[(op.query, "validation")] = None
    refs, schema = models_json_schema(list(models), ref_template=REF)
    schemas = schema.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return refs[(model, mode)]  # type: ignore[index]

    problem = {"description": "", "content": {PROBLEM_JSON: {"schema": ref(Problem, "serialization")}}}
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, endpoint, op in ops:
        path, params = _path(rule)
        entry: dict[str, Any] = {
            "operationId": endpoint.removeprefix(f"{bp.name}."),
            "summary": op.summary,
            "tags": [op.tag],
            "x-required-role": op.least_role(method),
        }
        if op.description:
            entry["description"] = op.description
        if op.query is not None:
            query_schema = schemas[ref(op.query, "validation")["$ref"].rsplit("/", 1)[1]]
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": ref(op.body, "validation")}}}
        elif op.raw_body is not None:
            entry["requestBody"] = {"required": True,
                                    "content": {op.raw_body: {"schema": {"type": "string"}}}}
        responses: dict[str, Any] = {}
        for status, model in sorted(op.responses.items()):
            answer: dict[str, Any] = {"description": (model.__doc__ or "").strip().split("\n")[0] if model
                                      else "No content."}
            if not answer["description"]:
                answer["description"] = "OK."
            if model is not None:
                answer["content"] = {"application/json": {"schema": ref(model, "serialization")}}
            elif op.raw_response is not None and 200 <= status < 300:
                answer["content"] = {op.raw_response: {"schema": {"type": "string"}}}
                answer["description"] = f"The {op.raw_response} document."
            responses[str(status)] = answer
        problems = dict(PROBLEMS)
        if op.body is not None or op.raw_body is not None:
            problems.update(BODY_PROBLEMS)
        problems.update(op.extra_problems)
        for status, why in sorted(problems.items()):
            responses.setdefault(str(status), {**problem, "description": why})
        entry["responses"] = responses
        paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Segments, campaigns, programmes, stores, customers and tokens of a Tallypass "
                                "deployment. Send `Authorization: Bearer <token>`; errors are RFC 9457 "
                                "problem documents."},
        "servers": [{"url": current_app.config["TALLYPASS"].base_url.rstrip("/")}],
        "security": [{"bearer": []}],
        "tags": sorted(({"name": t} for t in {op.tag for _, _, _, op in ops}), key=lambda t: t["name"]),
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "An API token, `tp_…`."}}},
    }


@bp.get("/openapi.json")
def openapi_document() -> Response:
    response = jsonify(document(current_app))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
