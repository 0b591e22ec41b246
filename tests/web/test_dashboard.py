"""The dashboard's doors: signing in (CSRF, no open redirect, a fresh session; throttling is in
test_sign_in_throttle.py), and every
dashboard route refusing anonymous users and roles below the one it declares."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User
from app.web.dashboard.access import RANK

PASSWORD = "correct horse battery"  # noqa: S105 (a test account)
PUBLIC = {"dashboard.login", "dashboard.login_post", "dashboard.login_code", "dashboard.login_code_post",
          "dashboard.link", "dashboard.link_post"}  # before a session: the sign-in steps, one-time links


@pytest.fixture
def app(app: Flask) -> Flask:
    """The app with a page only marketers and one only admins may open, until the dashboard has its own: the
    role checks below then meet every rank."""
    from app.web.dashboard.access import requires

    app.add_url_rule("/dashboard/_probe/marketer", "dashboard.probe_marketer", requires("marketer")(lambda: "ok"))
    app.add_url_rule("/dashboard/_probe/admin", "dashboard.probe_admin", requires("admin")(lambda: "ok"))
    return app


def csrf(client: FlaskClient, url: str = "/dashboard/login") -> str:
    page = client.get(url)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **extra: str) -> Any:
    return client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": email, "password": password,
                                                 **extra})


def dashboard_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, path, endpoint) of every dashboard route but the sign-in form's."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("dashboard.") or rule.endpoint in PUBLIC:
            continue
        # Arguments get values naming nothing: the role is checked before anything is looked up.
        path = re.sub(r"<int:\w+>", "999999", rule.rule)
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?\w+>", "none", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, path, rule.endpoint))
    return routes


def test_every_dashboard_route_declares_a_role(app: Flask) -> None:
    routes = dashboard_routes(app)
    assert routes, "no dashboard routes found"
    for _, path, endpoint in routes:
        assert getattr(app.view_functions[endpoint], "required_role", None) in RANK, f"{path} has no @requires"


def test_anonymous_users_are_sent_to_sign_in(app: Flask, client: FlaskClient, make_program: Callable[..., Any]
                                             ) -> None:
    make_program()
    for method, path, _ in dashboard_routes(app):
        response = client.open(path, method=method, data={"csrf_token": "x"})
        if method == "GET":
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/dashboard/login?next="), path
        else:
            assert response.status_code == 401, (method, path)  # refused before the CSRF check


def test_every_form_post_needs_the_csrf_token(app: Flask, client: FlaskClient, make_user: Callable[..., User],
                                               make_program: Callable[..., Any]) -> None:
    make_program()
    assert sign_in(client, make_user("admin").email).status_code == 303
    posts = [(path, endpoint) for method, path, endpoint in dashboard_routes(app) if method == "POST"]
    assert len(posts) > 20
    for path, _endpoint in posts:
        for token in (None, "forged"):
            response = client.post(path, data={} if token is None else {"csrf_token": token})
            assert response.status_code == 403 and "expired" in response.text, (path, token, response.status_code)


@pytest.mark.parametrize("role", ["viewer", "marketer", "admin"])
def test_each_role_reaches_what_its_rank_allows(role: str, app: Flask, client: FlaskClient,
                                                make_user: Callable[..., User], make_program: Callable[..., Any]
                                                ) -> None:
    make_program()
    assert sign_in(client, make_user(role).email).status_code == 303
    token = csrf(client, "/dashboard/")
    for method, path, endpoint in dashboard_routes(app):
        if endpoint == "dashboard.logout":
            continue  # it would end the session the loop needs; tested below
        needed = app.view_functions[endpoint].required_role
        response = client.open(path, method=method, data={"csrf_token": token})
        if RANK[role] < RANK[needed]:
            assert response.status_code == 403, (role, method, path)
        else:
            assert response.status_code not in (401, 403), (role, method, path, response.status_code)


def test_signing_in_starts_a_fresh_session_and_is_audited(client: FlaskClient, make_user: Callable[..., User],
                                                          make_program: Callable[..., Any], db_session: Session
                                                          ) -> None:
    make_program()
    user = make_user("viewer")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    response = sign_in(client, "  Viewer@Shop.test ", next="/dashboard/?from=2026-11-01")
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/?from=2026-11-01"
    with client.session_transaction() as session:
        assert set(session) == {"dashboard_session", "_permanent"}  # only the session's token; nothing planted
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "viewer@shop.test" in page.text
    db_session.expire_all()
    assert db_session.get(User, user.id).last_login_at is not None
    assert [(e.action, e.actor) for e in db_session.scalars(select(AuditEvent))] == [("login", "viewer@shop.test")]

    out = client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})
    assert out.status_code == 303
    assert client.get("/dashboard/").status_code == 302


def test_a_wrong_password_or_unknown_address_gets_the_same_answer(client: FlaskClient,
                                                                  make_user: Callable[..., User],
                                                                  db_session: Session) -> None:
    make_user("admin")
    wrong = sign_in(client, "admin@shop.test", "not the password")
    unknown = sign_in(client, "nobody@shop.test")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert 'id="password-error">That e-mail address and password do not match an active account.' in response.text
    empty = sign_in(client, "", "")
    assert empty.status_code == 422 and 'id="email-error"' in empty.text and 'id="password-error"' in empty.text
    assert [e.action for e in db_session.scalars(select(AuditEvent))] == ["login-failed", "login-failed"]


def test_sign_in_needs_the_forms_csrf_token(client: FlaskClient, make_user: Callable[..., User]) -> None:
    make_user("admin")
    client.get("/dashboard/login")
    response = client.post("/dashboard/login", data={"email": "admin@shop.test", "password": PASSWORD})
    assert response.status_code == 403
    with client.session_transaction() as session:
        assert "user_id" not in session


def test_after_sign_in_only_dashboard_paths_are_followed(app: Flask, make_user: Callable[..., User],
                                                         make_program: Callable[..., Any]) -> None:
    make_program()
    make_user("viewer")
    for target in ("https://evil.example/", "//evil.example/dashboard", "/dashboard\\@evil.example", "/join/x"):
        response = sign_in(app.test_client(), "viewer@shop.test", next=target)
        assert response.headers["Location"] == "/dashboard/", target


def test_dashboard_pages_carry_strict_headers(client: FlaskClient) -> None:
    response = client.get("/dashboard/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_bad_date_range_is_explained_beside_its_field(client: FlaskClient, make_user: Callable[..., User],
                                                        make_program: Callable[..., Any]) -> None:
    make_program()
    sign_in(client, make_user("viewer").email)
    bad = client.get("/dashboard/?from=yesterday")
    assert bad.status_code == 200 and 'id="from-error">From: Use a date like 2026-11-23.' in bad.text
    backwards = client.get("/dashboard/?from=2026-11-20&to=2026-11-01")
    assert 'id="to-error">To: The end must not be before the start.' in backwards.text
