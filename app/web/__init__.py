"""The web layer: thin blueprints, and one application-level error path that answers RFC 9457
``application/problem+json`` to API clients and an HTML page to browsers."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, render_template, request
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from app import db_outage
from app.database import discard_session
from app.errors import AppError, Unavailable
from app.log import correlation_id
from app.web import security_headers
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
    from app.web import api, auth, card, dashboard, forms, health, i18n, join, media, passkit, pos, ratelimit, sms, till
    from app.web.display import init_app as init_display
    from app.web.home import bp as home
    from app.web.input_guard import init_app as guard_input

    auth.init_app(app)
    security_headers.init_app(app)
    ratelimit.init_app(app)
    forms.init_app(app)
    i18n.init_app(app)
    init_display(app)
    app.register_blueprint(home)
    app.register_blueprint(health.bp)
    app.register_blueprint(pos.bp)
    app.register_blueprint(passkit.bp)
    app.register_blueprint(card.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(join.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(till.bp)
    dashboard.init_app(app)

    app.before_request(_assign_request_id)
    guard_input(app)  # malformed input is refused after the request id is set, before any other hook or view
    app.after_request(_security_headers)
    app.register_error_handler(AppError, _app_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SQLAlchemyError, _database_error)
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
    security_headers.add(response)
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


def _database_error(error: SQLAlchemyError) -> Response:
    """A database outage (unreachable, restarting, read-only, out of connections, statement timeout) is 503
    with Retry-After; any other database error is a bug (logged, 500). See ``app.db_outage``."""
    outage = db_outage.outage_of(error)
    if outage is None:
        return _unexpected_error(error)
    discard_session()
    log.warning("database %s on %s %s (%s); answered 503", outage.kind, request.method, request.path,
                db_outage.describe(error))
    unavailable = Unavailable(outage.detail, code=outage.code, extra={"retry_after": outage.retry_after})
    if wants_json():
        return _render(unavailable)
    # The page is rendered without the context processors, which may ask the database (who is signed in).
    html = current_app.jinja_env.get_template("errors/unavailable.html").render(
        error=unavailable, reload=request.method == "GET")
    response = Response(html, status=503)
    response.headers["Retry-After"] = str(outage.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    discard_session()
    return _render(AppError("An unexpected error occurred; it has been logged."))
