"""The Users page (admin), the Account page (everyone, a cashier too), one-time links, a cashier's place (the
till, not the dashboard), and two-factor sign-in through the forms, with codes made by pyotp."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants.users import check_password, create_user
from app.models import AuditEvent, DashboardSession, User, UserLink
from tests.web.dashboard_client import PASSWORD, csrf, sign_in_as

NEW_PASSWORD = "a brand new passphrase"  # noqa: S105 (a test account)


@pytest.fixture(autouse=True)
def program(make_program: Callable[..., Any]) -> Any:
    return make_program()  # the overview, where a sign-in lands, needs one


def _error(page: str, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]+)<', page)
    assert match, f"no error beside {field}"
    return unescape(match.group(1))


def _link(page: str) -> str:
    match = re.search(r'id="one-time-link">([^<]+)<', page)
    assert match, "no link shown"
    return match.group(1).removeprefix("http://localhost")


def _fresh(app: Flask) -> FlaskClient:
    return app.test_client()


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/dashboard/account").status_code == 200


def test_an_admin_invites_a_marketer_who_sets_a_password_and_is_signed_in(
        app: Flask, client: FlaskClient, db_session: Session) -> None:
    _, token = sign_in_as(client, db_session, "admin")
    page = client.get("/dashboard/users")
    assert page.status_code == 200 and 'data-user="admin@shop.test"' in page.text

    bad = client.post("/dashboard/users", data={"csrf_token": token, "email": "not an address", "role": "owner"})
    assert bad.status_code == 422
    assert "Enter the e-mail address" in _error(bad.text, "email")
    assert _error(bad.text, "role") == "Choose what the person may do."
    taken = client.post("/dashboard/users", data={"csrf_token": token, "email": "ADMIN@shop.test", "role": "viewer"})
    assert taken.status_code == 409 and "already exists" in _error(taken.text, "email")
    assert db_session.scalars(select(User)).all()[1:] == []

    made = client.post("/dashboard/users", data={"csrf_token": token, "email": "Ana@Shop.test", "role": "marketer"})
    assert made.status_code == 201
    link = _link(made.text)
    assert link.startswith("/dashboard/welcome/") and "shown only now" in made.text
    listing = client.get("/dashboard/users").text
    assert link not in listing
    row = re.search(r'<tr data-user="ana@shop.test">.*?</tr>', listing, re.S).group(0)
    assert ">marketer<" in row and "invited" in row and "link valid until" in row and "never" in row

    guest = _fresh(app)
    form = guest.get(link)
    assert form.status_code == 200 and "Welcome to Tallypass" in form.text and "ana@shop.test" in form.text
    assert form.headers["Referrer-Policy"] == "no-referrer"
    token_of_guest = csrf(guest, link)
    differ = guest.post(link, data={"csrf_token": token_of_guest, "password": NEW_PASSWORD, "confirm": "other"})
    assert differ.status_code == 422 and "Does not match the password" in _error(differ.text, "confirm")
    short = guest.post(link, data={"csrf_token": token_of_guest, "password": "short", "confirm": "short"})
    assert short.status_code == 422 and "at least 10 characters" in _error(short.text, "password")
    done = guest.post(link, data={"csrf_token": token_of_guest, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/dashboard/"
    assert "Ana@" not in done.headers["Location"]
    assert "you are signed in" in guest.get("/dashboard/").text
    ana = db_session.scalars(select(User).where(User.email == "ana@shop.test")).one()
    db_session.refresh(ana)
    assert check_password(ana, NEW_PASSWORD) and not ana.invitation_pending

    again = _fresh(app).get(link)
    assert again.status_code == 410 and "This link has been used" in again.text
    unknown = _fresh(app).get("/dashboard/welcome/not-a-real-token")
    assert unknown.status_code == 404 and "This link is not valid" in unknown.text
    assert "invited" not in re.search(r'<tr data-user="ana@shop.test">.*?</tr>', client.get("/dashboard/users").text,
                                      re.S).group(0)


def test_a_cashier_is_invited_with_stores_and_lands_on_the_till(
        app: Flask, client: FlaskClient, db_session: Session, program: Any, make_store: Callable[..., Any]) -> None:
    store = make_store(program, "Centru").store
    _, token = sign_in_as(client, db_session, "admin")
    assert "Centru" in client.get("/dashboard/users").text
    no_store = client.post("/dashboard/users", data={"csrf_token": token, "email": "kim@shop.test", "role": "cashier"})
    assert no_store.status_code == 422 and "one store at least" in _error(no_store.text, "stores")
    junk = client.post("/dashboard/users", data={"csrf_token": token, "email": "kim@shop.test", "role": "cashier",
                                                 "stores": "x"})
    assert junk.status_code == 422 and _error(junk.text, "stores") == "Choose stores from the list."
    made = client.post("/dashboard/users", data={"csrf_token": token, "email": "kim@shop.test", "role": "cashier",
                                                 "stores": str(store.id)})
    assert made.status_code == 201
    guest = _fresh(app)
    link = _link(made.text)
    done = guest.post(link, data={"csrf_token": csrf(guest, link), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/till/"
    kim = db_session.scalars(select(User).where(User.email == "kim@shop.test")).one()
    assert [s.id for s in kim.stores] == [store.id]


def test_a_cashier_is_told_the_dashboard_is_for_managers(client: FlaskClient, db_session: Session, program: Any,
                                                         make_store: Callable[..., Any]) -> None:
    store = make_store(program, "Centru").store
    create_user(db_session, email="kim@shop.test", password=PASSWORD, role="cashier", store_ids=[store.id])
    db_session.commit()
    signed = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "kim@shop.test",
                                                   "password": PASSWORD, "next": "/dashboard/customers"})
    assert signed.status_code == 303 and signed.headers["Location"] == "/till/"
    for path in ("/dashboard/", "/dashboard/customers", "/dashboard/users"):
        page = client.get(path)
        assert page.status_code == 403, path
        assert "The dashboard is for managers" in page.text and 'href="/till/"' in page.text
    token = csrf(client, "/dashboard/account")
    refused = client.post("/dashboard/users", data={"csrf_token": token, "email": "x@shop.test", "role": "admin"})
    assert refused.status_code == 403
    assert db_session.scalars(select(User).where(User.email == "x@shop.test")).first() is None
    account = client.get("/dashboard/account")
    assert account.status_code == 200 and "Back to the till" in account.text
    nav = re.search(r'<nav class="dash-nav".*?</nav>', account.text, re.S).group(0)
    assert re.findall(r">([^<]+)</a>", nav) == ["Account"]
    # Signed in already, /dashboard/login sends a cashier to the till too; a till page asked for is honoured.
    assert client.get("/dashboard/login").headers["Location"] == "/till/"
    assert client.get("/dashboard/login?next=/till/scan").headers["Location"] == "/till/scan"
    assert client.get("/dashboard/login?next=//evil.test/till").headers["Location"] == "/till/"


def test_a_manager_may_be_sent_to_the_till_after_signing_in(client: FlaskClient, db_session: Session) -> None:
    create_user(db_session, email="boss@shop.test", password=PASSWORD, role="admin")
    db_session.commit()
    signed = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "boss@shop.test",
                                                   "password": PASSWORD, "next": "/till/"})
    assert signed.headers["Location"] == "/till/"


def test_only_admins_manage_users(client: FlaskClient, db_session: Session) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    assert client.get("/dashboard/users").status_code == 403
    assert "Users" not in re.search(r'<nav class="dash-nav".*?</nav>', client.get("/dashboard/").text, re.S).group(0)
    me = db_session.scalars(select(User)).one()
    for action in ("role", "disable", "enable", "link", "remove", "two-factor-reset"):
        assert client.post(f"/dashboard/users/{me.id}/{action}",
                           data={"csrf_token": token, "role": "admin"}).status_code == 403
    db_session.refresh(me)
    assert me.role == "marketer" and me.is_active


def test_role_disable_reset_and_remove_from_the_users_page(app: Flask, client: FlaskClient,
                                                           db_session: Session) -> None:
    boss, token = sign_in_as(client, db_session, "admin")
    dee = create_user(db_session, email="dee@shop.test", password=PASSWORD, role="viewer")
    db_session.commit()
    elsewhere = _fresh(app)
    elsewhere.post("/dashboard/login", data={"csrf_token": csrf(elsewhere), "email": "dee@shop.test",
                                             "password": PASSWORD})
    assert _signed_in(elsewhere)

    # The last active admin cannot be demoted, disabled or removed; the reason shows beside the control.
    demote = client.post(f"/dashboard/users/{boss.id}/role", data={"csrf_token": token, "role": "viewer"})
    assert demote.status_code == 409 and "last active admin" in _error(demote.text, "role")
    disable = client.post(f"/dashboard/users/{boss.id}/disable", data={"csrf_token": token})
    assert disable.status_code == 409 and "last active admin" in disable.text
    remove_self = client.post(f"/dashboard/users/{boss.id}/remove", data={"csrf_token": token})
    assert remove_self.status_code == 409 and "cannot remove your own account" in remove_self.text
    db_session.refresh(boss)
    assert (boss.role, boss.is_active) == ("admin", True)
    assert "/remove" not in client.get(f"/dashboard/users/{boss.id}").text  # no button to remove oneself

    made = client.post(f"/dashboard/users/{dee.id}/role", data={"csrf_token": token, "role": "marketer"})
    assert made.status_code == 303 and "dee@shop.test is now a marketer" in client.get(made.headers["Location"]).text
    off = client.post(f"/dashboard/users/{dee.id}/disable", data={"csrf_token": token})
    assert off.status_code == 303
    assert not _signed_in(elsewhere)  # signed out at once
    assert "disabled" in client.get(f"/dashboard/users/{dee.id}").text
    on = client.post(f"/dashboard/users/{dee.id}/enable", data={"csrf_token": token})
    assert on.status_code == 303

    reset = client.post(f"/dashboard/users/{dee.id}/link", data={"csrf_token": token})
    assert reset.status_code == 201 and "password-reset link" in reset.text
    link = _link(reset.text)
    guest = _fresh(app)
    assert "Choose a new password" in guest.get(link).text
    guest.post(link, data={"csrf_token": csrf(guest, link), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert _signed_in(guest)
    db_session.refresh(dee)
    assert check_password(dee, NEW_PASSWORD)

    gone = client.post(f"/dashboard/users/{dee.id}/remove", data={"csrf_token": token})
    assert gone.status_code == 303 and "dee@shop.test is removed" in client.get(gone.headers["Location"]).text
    assert not _signed_in(guest)
    assert client.get(f"/dashboard/users/{dee.id}").status_code == 404
    actions = [e.action for e in db_session.scalars(select(AuditEvent).where(AuditEvent.action.like("user-%"))
                                                    .order_by(AuditEvent.id))]
    assert actions == ["user-role-changed", "user-disabled", "user-enabled", "user-password-reset-issued",
                       "user-password-changed", "user-password-reset-used", "user-removed"]


def test_everyone_changes_their_own_password_and_other_sessions_end(app: Flask, client: FlaskClient,
                                                                     db_session: Session) -> None:
    me, token = sign_in_as(client, db_session, "viewer")
    other = _fresh(app)
    other.post("/dashboard/login", data={"csrf_token": csrf(other), "email": me.email, "password": PASSWORD})
    assert _signed_in(other)
    token = csrf(client, "/dashboard/account")
    wrong = client.post("/dashboard/account/password", data={"csrf_token": token, "current": "nope",
                                                             "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert wrong.status_code == 422 and _error(wrong.text, "current") == "This is not your current password."
    differ = client.post("/dashboard/account/password", data={"csrf_token": token, "current": PASSWORD,
                                                              "password": NEW_PASSWORD, "confirm": "x"})
    assert differ.status_code == 422 and "differ" in _error(differ.text, "confirm")
    db_session.refresh(me)
    assert check_password(me, PASSWORD)
    done = client.post("/dashboard/account/password", data={"csrf_token": token, "current": PASSWORD,
                                                            "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303
    assert "signed out on 1 other device" in client.get("/dashboard/account").text
    assert _signed_in(client) and not _signed_in(other)
    db_session.refresh(me)
    assert check_password(me, NEW_PASSWORD)
    live = db_session.scalars(select(DashboardSession).where(DashboardSession.user_id == me.id,
                                                             DashboardSession.revoked_at.is_(None))).all()
    assert len(live) == 1


def _enrol(client: FlaskClient, at: datetime | None = None) -> tuple[pyotp.TOTP, list[str]]:
    token = csrf(client, "/dashboard/account")
    page = client.post("/dashboard/account/two-factor", data={"csrf_token": token})
    assert page.status_code == 200 and "<svg" in page.text
    secret = re.search(r'id="totp-secret">([^<]+)<', page.text).group(1).replace(" ", "")
    totp = pyotp.TOTP(secret)
    wrong = client.post("/dashboard/account/two-factor/confirm", data={"csrf_token": token, "code": "000000"
                                                                       if totp.now() != "000000" else "111111"})
    assert wrong.status_code == 422 and "not the code your app shows" in _error(wrong.text, "code")
    done = client.post("/dashboard/account/two-factor/confirm",
                       data={"csrf_token": token, "code": totp.at(at) if at else totp.now()})
    assert done.status_code == 200 and "Save your recovery codes now" in done.text
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
    assert len(codes) == 10
    return totp, codes


def test_two_factor_sign_in_asks_for_the_code_before_any_session(app: Flask, client: FlaskClient,
                                                                   db_session: Session,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [utcnow()]  # the pages' clock, so the test knows which step each code is of
    monkeypatch.setattr("app.web.dashboard.login.utcnow", lambda: clock[0])
    monkeypatch.setattr("app.web.dashboard.account.utcnow", lambda: clock[0])
    boss, _ = sign_in_as(client, db_session, "admin")
    assert "two-factor-prompt" in client.get("/dashboard/users").text  # admins are prompted
    totp, codes = _enrol(client, clock[0])
    assert "two-factor-prompt" not in client.get("/dashboard/users").text

    browser = _fresh(app)
    step_one = browser.post("/dashboard/login", data={"csrf_token": csrf(browser), "email": boss.email,
                                                      "password": PASSWORD, "next": "/dashboard/users"})
    assert step_one.status_code == 303 and step_one.headers["Location"] == "/dashboard/login/code"
    assert not _signed_in(browser)  # no session before the code
    sessions_before = len(db_session.scalars(select(DashboardSession).where(DashboardSession.user_id == boss.id)).all())
    token = csrf(browser, "/dashboard/login/code")
    wrong = browser.post("/dashboard/login/code", data={"csrf_token": token, "code": "12345x"})
    assert wrong.status_code == 401 and "not right" in _error(wrong.text, "code")
    empty = browser.post("/dashboard/login/code", data={"csrf_token": token, "code": ""})
    assert empty.status_code == 422
    # The code the enrolment used is spent: it does not sign anybody in, even within its 30 seconds.
    replay = browser.post("/dashboard/login/code", data={"csrf_token": token, "code": totp.at(clock[0])})
    assert replay.status_code == 401 and not _signed_in(browser)
    assert len(db_session.scalars(select(DashboardSession).where(DashboardSession.user_id == boss.id)).all()) == \
        sessions_before
    clock[0] += timedelta(seconds=30)
    ok = browser.post("/dashboard/login/code", data={"csrf_token": token, "code": totp.at(clock[0])})
    assert ok.status_code == 303 and ok.headers["Location"] == "/dashboard/users"
    assert _signed_in(browser)
    # Five minutes after the password, the second step is refused: the password must be given again.
    late = _fresh(app)
    late.post("/dashboard/login", data={"csrf_token": csrf(late), "email": boss.email, "password": PASSWORD})
    clock[0] += timedelta(minutes=5, seconds=30)
    slow = late.post("/dashboard/login/code", data={"csrf_token": csrf(late, "/dashboard/login"),
                                                    "code": totp.at(clock[0])})
    assert slow.status_code == 303 and slow.headers["Location"] == "/dashboard/login" and not _signed_in(late)

    # A recovery code works once.
    third = _fresh(app)
    third.post("/dashboard/login", data={"csrf_token": csrf(third), "email": boss.email, "password": PASSWORD})
    recovered = third.post("/dashboard/login/code", data={"csrf_token": csrf(third, "/dashboard/login/code"),
                                                          "code": codes[0]})
    assert recovered.status_code == 303 and "9 left" in third.get(recovered.headers["Location"]).text
    fourth = _fresh(app)
    fourth.post("/dashboard/login", data={"csrf_token": csrf(fourth), "email": boss.email, "password": PASSWORD})
    spent = fourth.post("/dashboard/login/code", data={"csrf_token": csrf(fourth, "/dashboard/login/code"),
                                                       "code": codes[0]})
    assert spent.status_code == 401 and not _signed_in(fourth)
    logins = db_session.scalars(select(AuditEvent).where(AuditEvent.action.in_(["login", "login-failed"]))
                                .order_by(AuditEvent.id)).all()
    assert any(e.details == {"step": "two-factor"} for e in logins if e.action == "login-failed")
    assert any(e.details == {"two_factor": "recovery"} for e in logins if e.action == "login")


def test_wrong_codes_are_throttled_like_wrong_passwords(app_with: Callable[..., Flask], db_session: Session) -> None:
    app = app_with(login_free_failures=2)
    client = app.test_client()
    boss, _ = sign_in_as(client, db_session, "admin")
    totp, _ = _enrol(client)
    browser = _fresh(app)
    browser.post("/dashboard/login", data={"csrf_token": csrf(browser), "email": boss.email, "password": PASSWORD})
    token = csrf(browser, "/dashboard/login/code")
    assert browser.post("/dashboard/login/code", data={"csrf_token": token, "code": "000001"}).status_code == 401
    assert browser.post("/dashboard/login/code", data={"csrf_token": token, "code": "000002"}).status_code == 401
    held = browser.post("/dashboard/login/code", data={"csrf_token": token, "code": totp.now()})
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
    assert "Too many" in _error(held.text, "code") and not _signed_in(browser)


def test_disabling_two_factor_needs_the_password_and_an_admin_can_reset_it(app: Flask, client: FlaskClient,
                                                                          db_session: Session) -> None:
    boss, token = sign_in_as(client, db_session, "admin")
    ivy = create_user(db_session, email="ivy@shop.test", password=PASSWORD, role="admin")
    db_session.commit()
    ivy_client = _fresh(app)
    ivy_client.post("/dashboard/login", data={"csrf_token": csrf(ivy_client), "email": ivy.email,
                                              "password": PASSWORD})
    _enrol(ivy_client)
    token_ivy = csrf(ivy_client, "/dashboard/account")
    refused = ivy_client.post("/dashboard/account/two-factor/disable", data={"csrf_token": token_ivy,
                                                                            "current_2fa": "wrong"})
    assert refused.status_code == 422 and "stays on" in _error(refused.text, "current_2fa")
    db_session.refresh(ivy)
    assert ivy.two_factor
    page = client.get(f"/dashboard/users/{ivy.id}").text
    assert "on since" in page and "10 recovery codes left" in page
    reset = client.post(f"/dashboard/users/{ivy.id}/two-factor-reset", data={"csrf_token": token})
    assert reset.status_code == 303
    db_session.refresh(ivy)
    assert not ivy.two_factor
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "two-factor-reset")).one()
    assert event.actor == boss.email
    _enrol(ivy_client)
    off = ivy_client.post("/dashboard/account/two-factor/disable", data={"csrf_token": token_ivy,
                                                                        "current_2fa": PASSWORD})
    assert off.status_code == 303
    db_session.refresh(ivy)
    assert not ivy.two_factor and ivy.totp_secret_encrypted is None
    assert db_session.scalars(select(UserLink)).first() is None
