"""The web layer: thin blueprints, and one application-level error path that answers RFC 9457
``application/problem+json`` to API clients and an HTML page to browsers."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, g, render_template, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from app.errors import AppError
from app.log import correlation_id
from app.web.problems import from_http_exception, from_validation_error, problem_response

log = logging.getLogger(__name__)

JSON_BLUEPRINTS = {"pos", "api", "passkit", "health", "sms"}
JSON_PREFIXES = ("/api/", "/passkit/")
MAX_REQUEST_ID = 64
MAX_ROW_ID = 2**31 - 1


class RowId(IntegerConverter):
    """``<int:...>`` in every URL. A number too big for the database's integer ids becomes 0, which no row
    has, so the view answers its usual 404 (rather than PostgreSQL refusing the query, or no route matching
    and werkzeug answering 405 when another method of a neighbouring URL exists)."""

    def to_python(self, value: str) -> Any:
        number = super().to_python(value)
        return number if number <= MAX_ROW_ID else 0


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = RowId
    from app.web import api, auth, card, dashboard, forms, health, i18n, join, media, passkit, pos, ratelimit, sms
    from app.web.input_guard import init_app as guard_input

    auth.init_app(app)
    ratelimit.init_app(app)
    forms.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(pos.bp)
    app.register_blueprint(passkit.bp)
    app.register_blueprint(card.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(join.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(api.bp)
    dashboard.init_app(app)

    app.before_request(_assign_request_id)
    guard_input(app)  # malformed input is refused after the request id is set, before any other hook or view
    app.after_request(_security_headers)
    app.register_error_handler(AppError, _app_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def wants_json() -> bool:
    if request.blueprint in JSON_BLUEPRINTS or request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "application/problem+json"])
    return best in ("application/json", "application/problem+json")


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if 0 < len(incoming) <= MAX_REQUEST_ID and incoming.isprintable() else uuid.uuid4().hex
    g.request_id = rid
    correlation_id.set(rid)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response


def _render(error: AppError) -> Response:
    if wants_json():
        response = problem_response(error, instance=request.path)
    else:
        response = Response(render_template("errors/error.html", error=error), status=error.status)
    if "retry_after" in error.extra:
        response.headers["Retry-After"] = str(error.extra["retry_after"])
    return response


def _app_error(error: AppError) -> Response:
    return _render(error)


def _validation_error(error: ValidationError) -> Response:
    return _render(from_validation_error(error))


def _http_error(error: HTTPException) -> Response:
    response = _render(from_http_exception(error))
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()
    return _render(AppError("An unexpected error occurred; it has been logged."))
