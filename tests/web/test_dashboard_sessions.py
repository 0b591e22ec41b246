"""Dashboard sessions end on the server: a cookie copied before signing out, before a password change or before
the user was disabled opens nothing afterwards; idle and over-age sessions are refused; the database holds only a
hash of the cookie's token; "last seen" is written at most once a minute and a failing write never breaks a page.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, event, exc, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import dashboard_sessions
from app.merchants.users import authenticate, disable_user, set_password
from app.models import AuditEvent, DashboardSession, User
from tests.web.dashboard_client import PASSWORD, csrf

COOKIE = "session"  # Flask's session cookie, which carries the session's token


@pytest.fixture
def app(app: Flask, make_program: Callable[..., Any]) -> Flask:
    """The app with a programme (the overview needs one) and a page that names who is signed in."""
    from app.web.dashboard.access import current_user, requires

    make_program()
    app.add_url_rule("/dashboard/_probe/whoami", "dashboard.probe_whoami",
                     requires("viewer")(lambda: current_user().email))
    return app


def signed_in(app: Flask, user: User, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": user.email,
                                                     "password": password})
    assert response.status_code == 303, response.text
    return client


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def browser_with(app: Flask, cookie: str) -> FlaskClient:
    """Another browser holding a copy of a cookie (an attacker's, or the user's own from a saved profile)."""
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    return other


def opens_the_dashboard(client: FlaskClient) -> bool:
    response = client.get("/dashboard/_probe/whoami")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/dashboard/login?next="), response.headers["Location"]
        return False
    assert response.status_code == 200, response.text
    return True


def sign_out(client: FlaskClient) -> None:
    response = client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/login"


def rows(db_session: Session, user: User) -> list[DashboardSession]:
    db_session.expire_all()
    return list(db_session.scalars(select(DashboardSession).where(DashboardSession.user_id == user.id)
                                   .order_by(DashboardSession.id)))


def token_in(app: Flask, cookie: str) -> str:
    """The session token inside Flask's signed cookie."""
    data = app.session_interface.get_signing_serializer(app).loads(cookie)  # type: ignore[attr-defined]
    return data["dashboard_session"]


# ---------------------------------------------------------------- F7: signing out ends the session


def test_a_cookie_saved_before_signing_out_opens_nothing_afterwards(app: Flask, make_user: Callable[..., User],
                                                                    db_session: Session) -> None:
    user = make_user("admin")
    client = signed_in(app, user)
    saved = cookie_of(client)
    assert opens_the_dashboard(browser_with(app, saved))  # the copy works while the session lives

    sign_out(client)

    assert not opens_the_dashboard(client)
    replay = browser_with(app, saved)
    assert not opens_the_dashboard(replay)  # a GET goes to the sign-in form
    post = replay.post("/dashboard/logout", data={"csrf_token": "anything"})
    assert post.status_code == 401  # a form post is refused as signed out
    [row] = rows(db_session, user)
    assert row.revoked_at is not None and row.revoked_reason == "signed-out"
    assert [e.action for e in db_session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == ["login", "logout"]


def test_signing_out_ends_only_that_browsers_session(app: Flask, make_user: Callable[..., User]) -> None:
    user = make_user("viewer")
    laptop, phone = signed_in(app, user), signed_in(app, user)
    sign_out(laptop)
    assert not opens_the_dashboard(laptop)
    assert opens_the_dashboard(phone)


def test_signing_in_again_ends_the_browsers_previous_session(app: Flask, make_user: Callable[..., User],
                                                             db_session: Session) -> None:
    user = make_user("viewer")
    client = signed_in(app, user)
    first = cookie_of(client)
    again = client.post("/dashboard/login", data={"csrf_token": csrf(client, "/dashboard/"), "email": user.email,
                                                  "password": PASSWORD})
    assert again.status_code == 303
    assert cookie_of(client) != first and opens_the_dashboard(client)
    assert not opens_the_dashboard(browser_with(app, first))
    assert [r.revoked_reason for r in rows(db_session, user)] == ["signed-in-again", None]


def test_a_refused_cookie_is_cleared_from_the_browser(app: Flask, make_user: Callable[..., User]) -> None:
    client = signed_in(app, make_user("viewer"))
    replay = browser_with(app, cookie_of(client))
    sign_out(client)
    replay.get("/dashboard/_probe/whoami")
    with replay.session_transaction() as session:
        assert "dashboard_session" not in session


# ---------------------------------------------------------------- password change, disabled user


def test_a_password_change_ends_the_users_other_sessions(app: Flask, make_user: Callable[..., User],
                                                         db_session: Session) -> None:
    user, colleague = make_user("admin"), make_user("viewer")
    changing, elsewhere, theirs = signed_in(app, user), signed_in(app, user), signed_in(app, colleague)
    kept = rows(db_session, user)[0]

    ended = set_password(db_session, user=user, password="a brand new password", now=utcnow(), actor=user,
                         keep=kept)
    db_session.commit()

    assert ended == 1
    assert opens_the_dashboard(changing)  # the browser that changed it stays signed in
    assert not opens_the_dashboard(elsewhere)
    assert opens_the_dashboard(theirs)  # nobody else's
    assert [r.revoked_reason for r in rows(db_session, user)] == [None, "password-changed"]
    assert authenticate(db_session, email=user.email, password=PASSWORD, now=utcnow()) is None
    assert signed_in(app, user, "a brand new password")
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "user-password-changed")).one()
    assert event.target == f"user:{user.id}" and event.details["sessions_ended"] == 1


def test_a_password_change_without_keep_ends_every_session(app: Flask, make_user: Callable[..., User],
                                                           db_session: Session) -> None:
    user = make_user("viewer")
    clients = [signed_in(app, user) for _ in range(3)]
    assert set_password(db_session, user=user, password="another long password", now=utcnow(), actor="cli") == 3
    db_session.commit()
    assert not any(opens_the_dashboard(c) for c in clients)


def test_a_short_new_password_is_refused_and_ends_nothing(app: Flask, make_user: Callable[..., User],
                                                          db_session: Session) -> None:
    from app.errors import InvalidInput

    user = make_user("viewer")
    client = signed_in(app, user)
    with pytest.raises(InvalidInput) as refused:
        set_password(db_session, user=user, password="short", now=utcnow(), actor="cli")
    assert refused.value.errors[0].field == "password"
    db_session.rollback()
    assert opens_the_dashboard(client)


def test_disabling_a_user_ends_every_session_and_sign_in(app: Flask, make_user: Callable[..., User],
                                                         db_session: Session) -> None:
    user, admin = make_user("marketer"), make_user("admin")
    first, second, admins = signed_in(app, user), signed_in(app, user), signed_in(app, admin)

    assert disable_user(db_session, user=user, now=utcnow(), actor=admin) == 2
    db_session.commit()

    assert not opens_the_dashboard(first) and not opens_the_dashboard(second)
    assert opens_the_dashboard(admins)
    browser = app.test_client()
    again = browser.post("/dashboard/login", data={"csrf_token": csrf(browser), "email": user.email,
                                                   "password": PASSWORD})
    assert again.status_code == 401
    assert {r.revoked_reason for r in rows(db_session, user)} == {"user-disabled"}


def test_a_user_disabled_in_the_database_is_refused_at_once(app: Flask, make_user: Callable[..., User],
                                                            db_session: Session) -> None:
    """Even without ``disable_user`` (an operator's UPDATE), a disabled user's live session opens nothing."""
    user = make_user("viewer")
    client = signed_in(app, user)
    user.is_active = False
    db_session.commit()
    assert not opens_the_dashboard(client)


def test_only_the_user_service_changes_passwords_or_disables_users() -> None:
    """A password or ``is_active`` written anywhere but ``app/merchants/users.py`` would skip ending the user's
    sessions (the defect this guards against: the old fingerprint was the only thing ending them). Checked over
    the source of the app, the CLI and the scripts, as a lint would."""
    root = Path(__file__).resolve().parents[2]
    allowed = {root / "app" / "merchants" / "users.py"}
    writes = re.compile(r"\.(password_hash|is_active)\s*=(?!=)"  # user.password_hash = ...
                        r"|\bupdate\(\s*User\b"  # update(User).values(...)
                        r"|(?i:update\s+user_account)")  # raw SQL
    offenders = []
    for folder in ("app", "bench", "migrations"):
        for path in sorted((root / folder).rglob("*.py")):
            if path in allowed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if writes.search(line.split("#", 1)[0]):
                    offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == [], "change passwords and active flags through app.merchants.users:\n" + "\n".join(offenders)


# ---------------------------------------------------------------- expiry


def test_a_session_idle_for_longer_than_the_idle_timeout_is_refused(app: Flask, make_user: Callable[..., User],
                                                                    db_session: Session) -> None:
    user = make_user("viewer")
    fresh, idle = signed_in(app, user), signed_in(app, user)
    recent, old = rows(db_session, user)
    recent.last_seen_at = utcnow() - timedelta(minutes=29)  # the default idle timeout is 30 minutes
    old.last_seen_at = utcnow() - timedelta(minutes=30, seconds=1)
    db_session.commit()
    assert opens_the_dashboard(fresh)
    assert not opens_the_dashboard(idle)


def test_the_idle_timeout_is_a_setting(app: Flask, app_with: Callable[..., Flask], make_user: Callable[..., User],
                                       db_session: Session) -> None:
    from app.web.dashboard.access import requires

    user = make_user("viewer")
    strict = app_with(dashboard_idle_minutes=5)
    strict.add_url_rule("/dashboard/_probe/whoami", "dashboard.probe_whoami", requires("viewer")(lambda: "me"))
    client = signed_in(strict, user)
    [row] = rows(db_session, user)
    row.last_seen_at = utcnow() - timedelta(minutes=4, seconds=50)
    db_session.commit()
    assert opens_the_dashboard(client)
    row = rows(db_session, user)[0]
    row.last_seen_at = utcnow() - timedelta(minutes=5, seconds=1)
    db_session.commit()
    assert not opens_the_dashboard(client)


def test_a_session_past_its_absolute_lifetime_is_refused_however_busy(app: Flask, make_user: Callable[..., User],
                                                                      db_session: Session) -> None:
    user = make_user("viewer")
    client = signed_in(app, user)
    [row] = rows(db_session, user)
    assert row.expires_at - row.created_at == timedelta(hours=12)
    row.created_at, row.expires_at = utcnow() - timedelta(hours=12), utcnow() - timedelta(seconds=1)
    row.last_seen_at = utcnow()  # in use a moment ago
    db_session.commit()
    assert not opens_the_dashboard(client)


def test_the_cookie_lives_no_longer_than_the_session(app: Flask, make_user: Callable[..., User]) -> None:
    client = app.test_client()
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": make_user().email,
                                                     "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie  # base URL is https
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert timedelta(hours=11, minutes=59) < expires - utcnow() <= timedelta(hours=12)


def test_the_cookie_is_secure_in_production(settings: Any) -> None:
    from app import create_app

    production = settings.model_copy(update={"env": "production"})
    development = settings.model_copy(update={"env": "development", "base_url": "http://127.0.0.1:5000"})
    assert create_app(production).config["SESSION_COOKIE_SECURE"] is True
    assert create_app(development).config["SESSION_COOKIE_SECURE"] is False  # plain http on a laptop


# ---------------------------------------------------------------- what is stored


def test_the_database_holds_only_a_hash_of_the_cookies_token(app: Flask, make_user: Callable[..., User],
                                                             db_session: Session) -> None:
    user = make_user("viewer")
    client = signed_in(app, user)
    token = token_in(app, cookie_of(client))
    [row] = rows(db_session, user)
    assert len(token) >= 43  # 256 random bits
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(getattr(row, column.key)) for column in DashboardSession.__table__.columns)
    assert token not in stored and cookie_of(client) not in stored
    # The hash itself, put in a cookie, opens nothing.
    forged = app.test_client()
    with forged.session_transaction() as session:
        session["dashboard_session"] = row.token_hash
    assert not opens_the_dashboard(forged)


def test_the_cookie_no_longer_names_the_user(app: Flask, make_user: Callable[..., User]) -> None:
    """Before, the cookie held the user's id and a fingerprint of their password hash."""
    client = signed_in(app, make_user("viewer"))
    data = app.session_interface.get_signing_serializer(app).loads(cookie_of(client))  # type: ignore[attr-defined]
    assert "user_id" not in data and "user_fp" not in data
    assert set(data) <= {"dashboard_session", "_permanent", "csrf"}


# ---------------------------------------------------------------- "last seen": cheap, and never in the way


@pytest.fixture
def session_writes(connection: Connection) -> Iterator[list[str]]:
    """The UPDATE statements sent for ``dashboard_session`` on the test's connection."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE DASHBOARD_SESSION"):
            seen.append(statement)

    event.listen(connection, "before_cursor_execute", note)
    yield seen
    event.remove(connection, "before_cursor_execute", note)


def test_last_seen_is_written_at_most_once_a_minute(app: Flask, make_user: Callable[..., User],
                                                    db_session: Session, session_writes: list[str]) -> None:
    user = make_user("viewer")
    client = signed_in(app, user)
    for _ in range(5):
        assert opens_the_dashboard(client)
    assert session_writes == []  # signed in a moment ago: nothing to record

    [row] = rows(db_session, user)
    row.last_seen_at = half_a_minute_ago = utcnow() - timedelta(seconds=30)
    db_session.commit()
    session_writes.clear()
    for _ in range(3):
        assert opens_the_dashboard(client)
    assert session_writes == [] and rows(db_session, user)[0].last_seen_at == half_a_minute_ago

    row = rows(db_session, user)[0]
    row.last_seen_at = utcnow() - timedelta(seconds=61)
    db_session.commit()
    session_writes.clear()
    for _ in range(3):
        assert opens_the_dashboard(client)
    assert len(session_writes) == 1
    assert utcnow() - rows(db_session, user)[0].last_seen_at < timedelta(seconds=5)


def test_a_failing_last_seen_write_does_not_break_the_page(app: Flask, make_user: Callable[..., User],
                                                           db_session: Session, connection: Connection,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """The database refuses the bookkeeping write (read-only after a failover, a lock timeout): the page is
    still served from what was read, the session stays valid, and the next request tries again."""
    user = make_user("viewer")
    client = signed_in(app, user)
    [row] = rows(db_session, user)
    row.last_seen_at = before = utcnow() - timedelta(minutes=5)
    db_session.commit()

    def refuse(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE DASHBOARD_SESSION"):
            raise exc.OperationalError(statement, {}, Exception("cannot execute UPDATE in a read-only transaction"))

    event.listen(connection, "before_cursor_execute", refuse)
    try:
        page = client.get("/dashboard/")
        assert page.status_code == 200 and "viewer@shop.test" in page.text
        assert opens_the_dashboard(client)
    finally:
        event.remove(connection, "before_cursor_execute", refuse)
    assert "could not record dashboard session activity (OperationalError)" in caplog.text
    assert rows(db_session, user)[0].last_seen_at == before
    assert opens_the_dashboard(client)
    assert rows(db_session, user)[0].last_seen_at > before  # recorded once the database takes writes again


# ---------------------------------------------------------------- housekeeping


def test_the_nightly_purge_deletes_only_sessions_that_can_no_longer_sign_in(app: Flask,
                                                                            make_user: Callable[..., User],
                                                                            db_session: Session) -> None:
    from app.tasks.dashboard import purge_dashboard_sessions

    user = make_user("viewer")
    clients = [signed_in(app, user) for _ in range(4)]
    live, revoked, expired, idle = rows(db_session, user)
    now = utcnow()
    revoked.revoked_at = now
    expired.expires_at = now - timedelta(seconds=1)
    idle.last_seen_at = now - timedelta(minutes=31)
    db_session.commit()

    with app.app_context():
        assert purge_dashboard_sessions.delay().result == 3  # eager; .get() refuses after a worker test
    assert [r.id for r in rows(db_session, user)] == [live.id]
    assert opens_the_dashboard(clients[0])
    assert dashboard_sessions.live_sessions(db_session, user_id=user.id, now=utcnow(),
                                            lifetime=dashboard_sessions.Lifetime(timedelta(minutes=30),
                                                                                 timedelta(hours=12))) == [live]
