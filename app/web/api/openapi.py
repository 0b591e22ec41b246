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
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from app.demo import DEMO_SLUG
from app.errors import AppError, BadRequest, Forbidden, InvalidInput
from app.field_types import EXACT
from app.merchants.users import ROLE_RANK
from app.web.api import bp
from app.web.api._models import LISTED, REF
from app.web.bodies import read_json
from app.web.problems import PROBLEM_JSON, from_validation_error

F = TypeVar("F", bound=Callable[..., Any])

TITLE = "Tallypass marketer API"
VERSION = "1"
# Problem answers every operation may give, with what causes them.
PROBLEMS = {
    400: "Malformed input: a NUL character, a number of more than 4,300 digits, or a body that is not JSON the "
         "service reads (see the description of the API).",
    401: "No valid API token.",
    403: "The token's role may not do this.",
    404: "Something named in the path or body does not exist.",
    409: "The request conflicts with the current state.",
    422: "Invalid input, or not allowed in the current state; `errors` lists the fields.",
}
BODY_PROBLEMS = {413: "The body is too large."}
NO_NUL = "^[^\\x00]*$"  # every string without a pattern of its own: PostgreSQL text holds no NUL


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
    rules: tuple[str, ...] = ()  # what the server checks that JSON Schema cannot say (each refusal is a 422)

    def least_role(self, method: str) -> str:
        return self.role or ("viewer" if method in ("GET", "HEAD") else "marketer")


def operation(*, summary: str, tag: str, responses: dict[int, type[BaseModel] | None],
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None, role: str | None = None,
              raw_body: str | None = None, raw_response: str | None = None, description: str = "",
              problems: dict[int, str] | None = None, rules: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Declare an API view. The view returns an instance of a model listed in ``responses`` (or a
    ``(model, status)`` pair, or ``None`` for a listed status without a body). With ``raw_response`` (a
    media type such as "text/csv"), it returns a Flask ``Response`` of that type instead. ``rules`` lists
    what the server checks beyond the JSON Schema of the body (a template that must parse, names that must
    differ from one item to the next...): the document states them in words, as ``x-rules``."""
    op = Operation(summary=summary, tag=tag, responses=responses, body=body, query=query, role=role,
                   raw_body=raw_body, raw_response=raw_response, description=description,
                   extra_problems=problems or {}, rules=tuple(rules))
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
                kwargs["body"] = _parse_body(op.body)
            elif op.raw_body is not None and not request.content_length and not request.headers.get(
                    "Transfer-Encoding"):  # (not read here: the view sets its own size limit first)
                raise BadRequest(f"send the {op.raw_body} document as the body", code="missing-body")
            if op.query is not None:
                kwargs["query"] = _parse_query(op.query)
            return _answer(op, view(**kwargs))

        wrapper.operation = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body, validated in pydantic's strict mode: a value of another JSON type than the document
    says is refused, not converted (``false`` is no integer, ``0`` no date, ``"5"`` no number). Field types
    that read text (dates, decimal strings) do so themselves (app.web.api._models, app.field_types)."""
    payload = read_json()  # the service's JSON limits, 400 beyond them
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object", code="malformed-json")
    try:
        return model.model_validate(_whole_numbers(payload), strict=True, context={EXACT: True})
    except ValidationError as error:
        # A body of several shapes (a RootModel of a union tagged by a field, e.g. a segment's kind): the first
        # place in each error's location is the tag, not a field of the body.
        tagged = issubclass(model, RootModel)
        raise from_validation_error(error, drop=1 if tagged else 0) from None


def _whole_numbers(value: Any) -> Any:
    """JSON numbers that are whole as integers: to JSON Schema ``2.0`` is an integer, to pydantic's strict
    mode it is not. (A number field still takes them: strict floats take integers.)"""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _types(schema: dict[str, Any]) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set(schema.get("type", []))
    for option in schema.get("anyOf", []):
        found |= _types(option)
    return found


def _typed(schema: dict[str, Any], raw: str) -> Any:
    """A query string's text as the JSON value the document says the parameter is, or the text itself."""
    types = _types(schema)
    if "integer" in types and INTEGER.fullmatch(raw):
        return int(raw)
    if "number" in types and NUMBER.fullmatch(raw):
        return float(raw)
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true"
    return raw


@functools.cache
def _query_properties(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(schema_generator=DocumentSchema).get("properties", {})  # type: ignore[no-any-return]


def _parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string, each parameter read as the type the document gives it (integers written as
    integers, booleans as ``true``/``false``), then validated in strict mode like a body."""
    unknown = set(request.args) - set(model.model_fields)
    if unknown:
        raise InvalidInput(f"unknown query parameter {sorted(unknown)[0]!r}")
    properties = _query_properties(model)
    values = {name: _typed(properties.get(name, {}), request.args[name]) for name in model.model_fields
              if name in request.args}
    try:
        return model.model_validate(values, strict=True, context={EXACT: True})
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


class DocumentSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with what the service refuses of any string stated: a string without a pattern
    or a format of its own gets one that excludes NUL."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if self.mode == "validation" and "pattern" not in json_schema and "format" not in json_schema:
            json_schema["pattern"] = NO_NUL
        return json_schema

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        """A field that may be left out but not sent as null (its default None is never validated) shows no
        default: null is not a value of its type."""
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None and not _allows_null(json_schema):
            del json_schema["default"]
        return json_schema


def _allows_null(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    return ("null" in types if isinstance(types, list) else types == "null") or any(
        _allows_null(option) for option in schema.get("anyOf", []) + schema.get("oneOf", []))


def _point_to_listed(node: Any) -> Any:
    """Swap ``{"x-listed-as": name, ...}`` for ``{"$ref": "#/components/schemas/<name>"}`` everywhere."""
    if isinstance(node, dict):
        if "x-listed-as" in node:
            return {"$ref": REF.format(model=node["x-listed-as"])}
        return {key: _point_to_listed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_point_to_listed(item) for item in node]
    return node



def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def swap(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        schema: dict[str, Any] = {"type": "string", "pattern": NO_NUL}
        if name == "slug":
            schema["examples"] = [DEMO_SLUG]  # the programme `flask --app app demo` (and `make run`) makes
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
    refs, schema = models_json_schema(list(models), ref_template=REF, schema_generator=DocumentSchema)
    schemas = _point_to_listed(schema.get("$defs", {}))
    schemas.update(LISTED)

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
        if op.description or op.rules:
            entry["description"] = "\n\n".join(
                [op.description] * bool(op.description)
                + ["Checked beyond the schema (422 when not met):\n" + "\n".join(f"- {r}" for r in op.rules)]
                * bool(op.rules))
        if op.rules:
            entry["x-rules"] = list(op.rules)
        if op.query is not None:
            query_schema = schemas[ref(op.query, "validation")["$ref"].rsplit("/", 1)[1]]
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required,
                               "schema": _point_to_listed(prop)})
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": ref(op.body, "validation")}}}
        elif op.raw_body is not None:
            raw: dict[str, Any] = {"type": "string", "minLength": 1}
            if op.raw_body.startswith("text/"):
                raw["pattern"] = NO_NUL  # a text body with a NUL byte is refused as malformed (400)
            entry["requestBody"] = {"required": True, "content": {op.raw_body: {"schema": raw}}}
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
