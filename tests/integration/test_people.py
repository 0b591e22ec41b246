"""Users managed by an admin (app.merchants.users, app.merchants.invitations): invitations and reset links
(hashed, expiring, single use; using one ends the user's other sessions), role changes with a cashier's stores,
enabling, removing, and the guard rails that keep an active admin and stop anyone removing themself. Audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.merchants import audit, dashboard_sessions, invitations
from app.merchants.dashboard_sessions import Lifetime
from app.merchants.users import (
    authenticate,
    change_role,
    check_password,
    create_user,
    disable_user,
    enable_user,
    remove_user,
)
from app.models import AuditEvent, DashboardSession, User, UserLink

PASSWORD = "correct horse battery"  # noqa: S105 (a test account)
LIFETIME = Lifetime(idle=timedelta(hours=1), absolute=timedelta(hours=12))


def _admin(db: Session, email: str = "boss@shop.test") -> User:
    return create_user(db, email=email, password=PASSWORD, role="admin")


def _actions(db: Session) -> list[str]:
    return [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_an_invitation_makes_an_account_without_a_password_and_a_one_time_link(db_session: Session) -> None:
    boss, now = _admin(db_session), utcnow()
    issued = invitations.invite(db_session, email=" Ana@Shop.TEST ", role="marketer", now=now, actor=boss)
    ana = issued.link.user
    assert (ana.email, ana.role, ana.invitation_pending, ana.is_active) == ("ana@shop.test", "marketer", True, True)
    stored = db_session.scalars(select(UserLink)).one()
    assert stored.token_hash == invitations.digest(issued.token) and issued.token not in stored.token_hash
    assert stored.expires_at == now + timedelta(hours=72) and stored.purpose == "invite"
    # Nobody signs in as an invited user, whatever the password.
    assert authenticate(db_session, email="ana@shop.test", password="", now=now) is None
    assert authenticate(db_session, email="ana@shop.test", password="-" * 10, now=now) is None

    assert invitations.open_link(db_session, token=issued.token, now=now + timedelta(hours=71)).user_id == ana.id
    with pytest.raises(InvalidInput) as mismatch:
        invitations.use_link(db_session, token=issued.token, password="a new password", confirm="another one",
                             now=now)
    assert mismatch.value.errors[0].field == "confirm"
    with pytest.raises(InvalidInput) as short:
        invitations.use_link(db_session, token=issued.token, password="short", confirm="short", now=now)
    assert short.value.errors[0].field == "password"
    assert ana.invitation_pending  # refused input changed nothing

    user = invitations.use_link(db_session, token=issued.token, password="a new password",
                                confirm="a new password", now=now + timedelta(hours=1))
    assert user.id == ana.id and not ana.invitation_pending and check_password(ana, "a new password")
    assert authenticate(db_session, email="ana@shop.test", password="a new password", now=now) is not None
    with pytest.raises(invitations.LinkUnusable) as used:
        invitations.use_link(db_session, token=issued.token, password="another password",
                             confirm="another password", now=now + timedelta(hours=2))
    assert used.value.status == 410 and used.value.extra["reason"] == "used" and "used already" in used.value.detail
    assert check_password(ana, "a new password")
    assert [a for a in _actions(db_session) if a.startswith("user-")] == [
        "user-invited", "user-password-changed", "user-invitation-accepted"]
    assert all(issued.token not in str(e.details) for e in db_session.scalars(select(AuditEvent)))


def test_expired_unknown_and_replaced_links_say_so(db_session: Session) -> None:
    boss, now = _admin(db_session), utcnow()
    first = invitations.invite(db_session, email="bo@shop.test", role="viewer", now=now, actor=boss)
    with pytest.raises(invitations.LinkUnusable) as expired:
        invitations.open_link(db_session, token=first.token, now=now + timedelta(hours=72))
    assert expired.value.extra["reason"] == "expired" and "expired on" in expired.value.detail
    second = invitations.reissue_invitation(db_session, user=first.link.user, now=now, actor=boss)
    with pytest.raises(NotFound):  # the newer link replaced it
        invitations.open_link(db_session, token=first.token, now=now)
    for token in ("", "nope", "x" * 5000):
        with pytest.raises(NotFound):
            invitations.open_link(db_session, token=token, now=now)
    assert invitations.open_link(db_session, token=second.token, now=now).purpose == "invite"
    assert invitations.pending_links(db_session, now=now)[first.link.user_id].id == second.link.id
    with pytest.raises(Conflict):  # an accepted invitation is not renewed; a reset link is the way
        invitations.reissue_invitation(db_session, user=boss, now=now, actor=boss)
    with pytest.raises(Conflict):  # and a pending one is not reset
        invitations.issue_reset(db_session, user=first.link.user, now=now, actor=boss)


def test_a_reset_link_ends_every_session_of_the_user(db_session: Session) -> None:
    boss, now = _admin(db_session), utcnow()
    cleo = create_user(db_session, email="cleo@shop.test", password=PASSWORD, role="viewer")
    for _ in range(2):
        dashboard_sessions.start(db_session, user=cleo, now=now, lifetime=LIFETIME)
    issued = invitations.issue_reset(db_session, user=cleo, now=now, actor=boss)
    assert check_password(cleo, PASSWORD)  # still works until the link is used
    invitations.use_link(db_session, token=issued.token, password="brand new secret", confirm="brand new secret",
                         now=now)
    assert not check_password(cleo, PASSWORD) and check_password(cleo, "brand new secret")
    rows = db_session.scalars(select(DashboardSession).where(DashboardSession.user_id == cleo.id)).all()
    assert len(rows) == 2 and all(r.revoked_reason == "password-changed" for r in rows)
    assert "user-password-reset-issued" in _actions(db_session)
    assert "user-password-reset-used" in _actions(db_session)
    disable_user(db_session, user=cleo, now=now, actor=boss)
    with pytest.raises(Conflict):
        invitations.issue_reset(db_session, user=cleo, now=now, actor=boss)
    late = invitations.issue_reset  # a link issued before disabling stops working
    enable_user(db_session, user=cleo, now=now, actor=boss)
    link = late(db_session, user=cleo, now=now, actor=boss)
    disable_user(db_session, user=cleo, now=now, actor=boss)
    with pytest.raises(invitations.LinkUnusable) as disabled:
        invitations.open_link(db_session, token=link.token, now=now)
    assert disabled.value.extra["reason"] == "disabled"


def test_roles_and_a_cashiers_stores_change_and_are_audited(db_session: Session,
                                                            make_program: Callable[..., Any],
                                                            make_store: Callable[..., Any]) -> None:
    boss, now = _admin(db_session), utcnow()
    program = make_program()
    one, two = make_store(program, "Centru").store, make_store(program, "Botanica").store
    dan = create_user(db_session, email="dan@shop.test", password=PASSWORD, role="viewer")
    with pytest.raises(InvalidInput) as no_store:
        change_role(db_session, user=dan, role="cashier", now=now, actor=boss)
    assert no_store.value.errors[0].field == "stores"
    with pytest.raises(InvalidInput):
        change_role(db_session, user=dan, role="owner", now=now, actor=boss)
    with pytest.raises(InvalidInput):
        change_role(db_session, user=dan, role="marketer", store_ids=[one.id], now=now, actor=boss)
    assert dan.role == "viewer"
    change_role(db_session, user=dan, role="cashier", store_ids=[two.id, one.id], now=now, actor=boss)
    assert dan.role == "cashier" and [s.id for s in dan.stores] == sorted([one.id, two.id])
    change_role(db_session, user=dan, role="marketer", now=now, actor=boss)
    assert dan.stores == []
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "user-role-changed")
                               .order_by(AuditEvent.id)).all()[-1]
    assert event.details["role"] == "marketer" and event.details["before"]["role"] == "cashier"
    assert event.actor == "boss@shop.test"


def test_the_last_active_admin_stays(db_session: Session) -> None:
    boss, now = _admin(db_session), utcnow()
    for attempt in (lambda: change_role(db_session, user=boss, role="marketer", now=now, actor=boss),
                    lambda: disable_user(db_session, user=boss, now=now, actor="cli"),
                    lambda: remove_user(db_session, user=boss, now=now, actor="cli")):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "last-admin" and "last active admin" in refused.value.detail
    assert (boss.role, boss.is_active) == ("admin", True)
    # An invited admin who has not chosen a password, or a disabled one, does not count.
    invitations.invite(db_session, email="new@shop.test", role="admin", now=now, actor=boss)
    ex = _admin(db_session, "ex@shop.test")
    disable_user(db_session, user=ex, now=now, actor=boss)
    with pytest.raises(Conflict):
        disable_user(db_session, user=boss, now=now, actor="cli")
    enable_user(db_session, user=ex, now=now, actor=boss)
    change_role(db_session, user=boss, role="viewer", now=now, actor=ex)  # now there is another
    assert boss.role == "viewer"


def test_nobody_removes_themself_and_removing_keeps_the_audit_trail(db_session: Session) -> None:
    boss, now = _admin(db_session), utcnow()
    other = _admin(db_session, "other@shop.test")
    with pytest.raises(Conflict) as self_removal:
        remove_user(db_session, user=boss, now=now, actor=boss)
    assert self_removal.value.code == "remove-self"
    audit.record(db_session, actor=other, action="login", now=now)
    dashboard_sessions.start(db_session, user=other, now=now, lifetime=LIFETIME)
    invitations.issue_reset(db_session, user=other, now=now, actor=boss)
    other_id = other.id
    remove_user(db_session, user=other, now=now, actor=boss)
    db_session.expire_all()
    assert db_session.get(User, other_id) is None
    assert db_session.scalars(select(DashboardSession).where(DashboardSession.user_id == other_id)).first() is None
    assert db_session.scalars(select(UserLink).where(UserLink.user_id == other_id)).first() is None
    login = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "login")).one()
    assert (login.actor, login.user_id) == ("other@shop.test", None)
    removed = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "user-removed")).one()
    assert removed.details == {"email": "other@shop.test", "role": "admin"} and removed.actor == "boss@shop.test"
