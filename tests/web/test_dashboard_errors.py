"""The dashboard's error page: every error status renders as the page (never a traceback, never a second error),
for anonymous visitors and for signed-in users of every role, whether the error comes before or after the user
is loaded, from a view, from a failing SQL statement, or from a database that cannot be reached at all."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app import errors
from app.database import SESSIONS, get_session
from app.db import make_session_factory
from app.web.dashboard.access import current_user, requires
from tests.web.dashboard_client import sign_in_as

STATUSES = {400: "Malformed request", 401: "Authentication failed", 403: "Not allowed", 404: "Not found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Request body too large", 422: "Invalid input",
            429: "Too many requests", 500: "Internal error", 503: "Not available"}
# werkzeug's own titles, where our vocabulary has no class of that status
HTTP_TITLES = {**STATUSES, 500: "Internal Server Error", 503: "Service Unavailable"}
ROLES = [None, "viewer", "marketer", "admin"]
# Our own vocabulary for each status (a service raises these); werkzeug's abort() covers the framework's own.
APP_ERRORS: dict[int, Callable[[], errors.AppError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    409: errors.Conflict, 413: errors.PayloadTooLarge, 422: errors.InvalidInput, 429: errors.RateLimited,
    500: errors.AppError, 503: errors.Unavailable,
}


def _raise(kind: str, status: int) -> Any:
    if kind == "app" and status in APP_ERRORS:
        raise APP_ERRORS[status]()
    abort(status)


@pytest.fixture
def app(app: Flask) -> Flask:
    """Probe views that fail with a chosen status: after the signed-in user was loaded (``requires``) and
    before anything looked at the user; one that crashes, and one whose SQL the database refuses."""

    def late(kind: str, status: int) -> Any:
        return _raise(kind, status)

    def early(kind: str, status: int) -> Any:
        return _raise(kind, status)

    def whoami() -> Any:
        user = current_user()
        return user.email if user else "nobody"

    def crash() -> Any:
        raise RuntimeError("a bug in a view")

    def bad_sql() -> Any:
        get_session().execute(text("SELECT * FROM no_such_table"))

    app.add_url_rule("/dashboard/_probe/late/<kind>/<int:status>", "dashboard.probe_late", requires("viewer")(late))
    app.add_url_rule("/dashboard/_probe/early/<kind>/<int:status>", "dashboard.probe_early", early)
    app.add_url_rule("/dashboard/_probe/whoami", "dashboard.probe_whoami", whoami)
    app.add_url_rule("/dashboard/_probe/crash", "dashboard.probe_crash", requires("viewer")(crash))
    app.add_url_rule("/dashboard/_probe/bad-sql", "dashboard.probe_bad_sql", requires("viewer")(bad_sql))
    app.add_url_rule("/dashboard/_probe/early-bad-sql", "dashboard.probe_early_bad_sql", bad_sql)
    return app


def signed_in_client(app: Flask, db_session: Session, role: str | None) -> FlaskClient:
    client = app.test_client()
    if role is not None:
        sign_in_as(client, db_session, role)
    return client


def assert_error_page(response: Any, status: int, context: object, title: str | None = None) -> None:
    assert response.status_code == status, (context, response.status_code, response.text[:300])
    assert response.mimetype == "text/html", context
    body = response.text
    assert f'<p class="status">{status}</p>' in body, (context, body[:500])
    assert f"<h1>{title or STATUSES[status]}</h1>" in body, (context, body[:500])
    assert "Traceback" not in body, context
    # A way back into the dashboard, and the page's styles from our own origin (the dashboard's CSP forbids
    # inline styles, so an inline <style> would leave the page unstyled).
    assert 'href="/dashboard/"' in body, context
    assert "<style" not in body and re.search(r'<link rel="stylesheet" href="/static/error\.css[^"]*">', body)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_every_error_status_renders_the_error_page(role: str | None, app: Flask, db_session: Session,
                                                   make_program: Callable[..., Any]) -> None:
    make_program()
    client = signed_in_client(app, db_session, role)
    for status in STATUSES:
        for kind in ("app", "http"):
            early = client.get(f"/dashboard/_probe/early/{kind}/{status}")
            title = STATUSES[status] if kind == "app" else HTTP_TITLES[status]
            assert_error_page(early, status, (role, "early", kind, status), title)
            if role is not None:  # an anonymous visitor is sent to sign in before the view runs
                late = client.get(f"/dashboard/_probe/late/{kind}/{status}")
                assert_error_page(late, status, (role, "late", kind, status), title)
                # The session survived the error page: the next page is still signed in.
                assert client.get("/dashboard/_probe/whoami").text == f"{role}@shop.test", (role, kind, status)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_crashes_and_refused_sql_render_the_error_page(role: str | None, app: Flask, db_session: Session,
                                                       make_program: Callable[..., Any]) -> None:
    make_program()
    client = signed_in_client(app, db_session, role)
    assert_error_page(client.get("/dashboard/_probe/early-bad-sql"), 500, (role, "early bad sql"))
    if role is not None:
        assert_error_page(client.get("/dashboard/_probe/crash"), 500, (role, "crash"))
        assert_error_page(client.get("/dashboard/_probe/bad-sql"), 500, (role, "bad sql"))


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_real_errors_render_the_error_page(role: str | None, app: Flask, db_session: Session,
                                           make_program: Callable[..., Any]) -> None:
    """The same through the dashboard's own doors: an unknown page, a wrong method, a body over the limit, a
    form post without its CSRF token, and (signed in) a page above the user's role or a row that is not there."""
    make_program()
    client = signed_in_client(app, db_session, role)
    assert_error_page(client.get("/dashboard/no-such-page"), 404, role)
    assert_error_page(client.get("/dashboard/logout"), 405, role)
    assert_error_page(client.post("/dashboard/login", data={"email": "x" * 70_000}), 413, role)
    assert_error_page(client.post("/dashboard/login", data={"email": "a@b.c", "password": "p"}), 403, role)
    if role is None:
        assert_error_page(client.post("/dashboard/logout"), 401, role)
    else:
        assert_error_page(client.get("/dashboard/customers/999999"), 404, role)
        if role != "admin":
            assert_error_page(client.get("/dashboard/tokens"), 403, role)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_the_error_page_renders_when_the_database_cannot_be_reached(role: str | None, app: Flask,
                                                                     db_session: Session,
                                                                     make_program: Callable[..., Any]) -> None:
    """The database goes away while a user is signed in: loading the user fails, and the error page must not
    try the database again (a second error would leave the browser with the server's bare 500)."""
    make_program()
    client = signed_in_client(app, db_session, role)
    dead = create_engine("sqlite:////nonexistent-directory/tallypass.db")  # opening it fails at once
    app.extensions[SESSIONS] = make_session_factory(dead)
    for url in ("/dashboard/", "/dashboard/customers", "/dashboard/login"):
        response = client.get(url)
        if role is None:  # nobody to look up: sent to sign in, or shown the form, without the database
            assert response.status_code == (200 if url == "/dashboard/login" else 302), (url, response.text)
            continue
        assert response.status_code in (500, 503), (role, url, response.status_code)
        title = STATUSES[500] if response.status_code == 500 else None
        assert_error_page(response, response.status_code, (role, url), title)
