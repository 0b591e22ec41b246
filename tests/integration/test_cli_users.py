"""``flask --app app user set-password / list / disable`` (CONTRACTS.md §6): clear errors for unknown e-mail
addresses, sessions ended on a password change or disabling, one JSON object from ``list --json``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import dashboard_sessions, invitations
from app.merchants.dashboard_sessions import Lifetime
from app.merchants.users import check_password, create_user
from app.models import AuditEvent, DashboardSession, User
from tests.integration.test_cli import one_json_object, run

PASSWORD = "long-enough-password"  # noqa: S105 (a test account)
LIFETIME = Lifetime(idle=timedelta(hours=1), absolute=timedelta(hours=12))


def _with_sessions(db: Session, email: str, role: str = "marketer", **extra: Any) -> User:
    user = create_user(db, email=email, password=PASSWORD, role=role, **extra)
    for _ in range(2):
        dashboard_sessions.start(db, user=user, now=utcnow(), lifetime=LIFETIME)
    db.flush()
    return user


def _live(db: Session, user: User) -> int:
    return len(db.scalars(select(DashboardSession).where(DashboardSession.user_id == user.id,
                                                         DashboardSession.revoked_at.is_(None))).all())


def test_set_password_from_stdin_ends_the_sessions(app: Flask, db_session: Session) -> None:
    ana = _with_sessions(db_session, "ana@shop.test")
    result = run(app, "user", "set-password", "ANA@shop.test", "--password-stdin", input="a new password\n")
    assert result.exit_code == 0, result.output
    assert "password of ana@shop.test changed; 2 sessions ended" in result.output
    db_session.expire_all()
    assert check_password(ana, "a new password") and _live(db_session, ana) == 0
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "user-password-changed")).one()
    assert event.actor == "cli" and "a new password" not in str(event.details)


def test_set_password_from_the_prompt_and_its_errors(app: Flask, db_session: Session) -> None:
    ana = _with_sessions(db_session, "ana@shop.test")
    prompted = run(app, "user", "set-password", "ana@shop.test", input="prompted password\nprompted password\n")
    assert prompted.exit_code == 0, prompted.output
    db_session.expire_all()
    assert check_password(ana, "prompted password")
    short = run(app, "user", "set-password", "ana@shop.test", "--password-stdin", input="short\n")
    assert short.exit_code != 0 and "password: must have at least 10 characters" in short.output
    unknown = run(app, "user", "set-password", "nobody@shop.test", "--password-stdin", input="a new password\n")
    assert unknown.exit_code != 0
    assert "no user has the e-mail address 'nobody@shop.test'" in unknown.output
    db_session.expire_all()
    assert check_password(ana, "prompted password")


def test_set_password_finishes_a_pending_invitation(app: Flask, db_session: Session) -> None:
    issued = invitations.invite(db_session, email="new@shop.test", role="viewer", now=utcnow(), actor="cli")
    assert run(app, "user", "set-password", "new@shop.test", "--password-stdin",
               input="a new password\n").exit_code == 0
    db_session.expire_all()
    assert not issued.link.user.invitation_pending


def test_disable_ends_the_sessions_and_keeps_an_admin(app: Flask, db_session: Session) -> None:
    ana = _with_sessions(db_session, "ana@shop.test")
    boss = create_user(db_session, email="boss@shop.test", password=PASSWORD, role="admin")
    result = run(app, "user", "disable", "ana@shop.test")
    assert result.exit_code == 0 and "user ana@shop.test disabled; 2 sessions ended" in result.output
    db_session.expire_all()
    assert not ana.is_active and _live(db_session, ana) == 0
    last = run(app, "user", "disable", "boss@shop.test")
    assert last.exit_code != 0 and "last active admin" in last.output
    db_session.expire_all()
    assert boss.is_active
    unknown = run(app, "user", "disable", "nobody@shop.test")
    assert unknown.exit_code != 0 and "no user has the e-mail address" in unknown.output


def test_list_json_is_one_object_with_every_user(app: Flask, db_session: Session,
                                                 make_program: Callable[..., Any],
                                                 make_store: Callable[..., Any]) -> None:
    empty = run(app, "user", "list", "--json")
    assert one_json_object(empty.output) == {"users": []}
    store = make_store(make_program(), "Centru").store
    boss = create_user(db_session, email="boss@shop.test", password=PASSWORD, role="admin")
    boss.last_login_at = utcnow().replace(year=2030, month=1, day=2, hour=3, minute=4, second=5, microsecond=0)
    create_user(db_session, email="kim@shop.test", password=PASSWORD, role="cashier", store_ids=[store.id])
    invitations.invite(db_session, email="new@shop.test", role="viewer", now=utcnow(), actor="cli")
    db_session.flush()
    listed = one_json_object(run(app, "user", "list", "--json").output)["users"]
    assert [(u["email"], u["role"], u["stores"], u["active"], u["invitation_pending"]) for u in listed] == [
        ("boss@shop.test", "admin", [], True, False), ("new@shop.test", "viewer", [], True, True),
        ("kim@shop.test", "cashier", [store.id], True, False)]
    assert listed[0]["last_sign_in"] == "2030-01-02T03:04:05+00:00" and listed[1]["last_sign_in"] is None
    assert {"id", "two_factor", "created_at"} <= set(listed[0]) and listed[0]["id"] == boss.id
    assert "password" not in str(listed)
    human = run(app, "user", "list")
    assert human.exit_code == 0 and "kim@shop.test  cashier stores" in human.output and "invited" in human.output
