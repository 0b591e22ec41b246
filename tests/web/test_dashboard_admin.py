"""Admin pages: API tokens (created and shown once, listed, revoked) and the audit log (newest first, filtered
by actor, action and date, paged)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import audit, tokens
from app.models import ApiToken, AuditEvent
from app.web.dashboard.pages import PAGE_SIZE
from tests.web.dashboard_client import sign_in_as


@pytest.fixture(autouse=True)
def program(make_program: Callable[..., Any]) -> Any:
    return make_program()  # the overview, where a sign-in lands, needs one


def _api(client: FlaskClient, token: str) -> int:
    return client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).status_code


def test_an_admin_creates_a_token_sees_it_once_and_revokes_it(client: FlaskClient, db_session: Session) -> None:
    _, csrf = sign_in_as(client, db_session, "admin")
    empty = client.get("/dashboard/tokens")
    assert empty.status_code == 200 and "No API token yet" in empty.text

    bad = client.post("/dashboard/tokens", data={"csrf_token": csrf, "name": "   ", "role": "owner"})
    assert bad.status_code == 422
    assert 'id="name-error">Name the token after what will use it' in bad.text
    assert 'id="role-error">Choose what the token may do.' in bad.text
    assert db_session.scalars(select(ApiToken)).first() is None

    made = client.post("/dashboard/tokens", data={"csrf_token": csrf, "name": "CRM sync", "role": "admin"})
    assert made.status_code == 201 and "only time it is shown" in made.text
    token = re.search(r'id="new-token">([^<]+)<', made.text).group(1)
    assert token.startswith("tp_")
    listing = client.get("/dashboard/tokens")
    assert token not in listing.text and "CRM sync" in listing.text and token[:10] in listing.text
    assert "never" in listing.text  # not used yet
    assert _api(client, token) == 200
    row = db_session.scalars(select(ApiToken)).one()
    row.last_used_at = utcnow().replace(year=2030, month=1, day=2, hour=3, minute=4)
    db_session.commit()
    assert "2030-01-02 03:04 (UTC)</time>" in client.get("/dashboard/tokens").text  # every programme's page: UTC

    revoked = client.post(f"/dashboard/tokens/{row.id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert "Token “CRM sync”" in client.get(revoked.headers["Location"]).text
    assert _api(client, token) == 401
    actions = [(e.action, e.actor, e.details.get("name")) for e in
               db_session.scalars(select(AuditEvent).where(AuditEvent.action != "login").order_by(AuditEvent.id))]
    assert actions == [("api-token-created", "admin@shop.test", "CRM sync"),
                       ("api-token-revoked", "admin@shop.test", "CRM sync")]
    assert all(token not in str(e.details) for e in db_session.scalars(select(AuditEvent)))


def test_only_admins_see_tokens_and_the_audit_log(client: FlaskClient, db_session: Session) -> None:
    _, csrf = sign_in_as(client, db_session, "marketer")
    assert client.get("/dashboard/tokens").status_code == 403
    assert client.get("/dashboard/audit").status_code == 403
    assert client.post("/dashboard/tokens", data={"csrf_token": csrf, "name": "x", "role": "admin"}).status_code == 403
    assert db_session.scalars(select(ApiToken)).first() is None


def test_the_audit_log_is_newest_first_filtered_and_paged(client: FlaskClient, db_session: Session) -> None:
    now = utcnow()
    old = now - timedelta(days=10)
    audit.record(db_session, actor="ops@shop.test", action="store-created", now=old, target="store:1",
                 details={"name": "Centru"})
    for n in range(PAGE_SIZE + 2):
        audit.record(db_session, actor="api-token:tp_abc", action="pos-key-created", now=now - timedelta(minutes=n),
                     target="store:1", details={"key_id": f"pk_{n:04d}"})
    db_session.commit()
    sign_in_as(client, db_session, "admin")

    first = client.get("/dashboard/audit")
    assert first.status_code == 200
    rows = re.findall(r'<tr data-event="(\d+)">', first.text)
    assert len(rows) == PAGE_SIZE
    assert first.text.index("pk_0000") < first.text.index("pk_0001")  # newest first (the sign-in is newer still)
    assert "Older →" in first.text
    second = client.get("/dashboard/audit?page=2")
    assert "Centru" in second.text and "← Newer" in second.text

    by_actor = client.get("/dashboard/audit?actor=OPS@")
    assert len(re.findall(r'<tr data-event="\d+">', by_actor.text)) == 1 and "Centru" in by_actor.text
    by_action = client.get("/dashboard/audit?action=login")
    assert len(re.findall(r'<tr data-event="\d+">', by_action.text)) == 1 and "admin@shop.test" in by_action.text
    day = old.date().isoformat()
    by_date = client.get(f"/dashboard/audit?from={day}&to={day}")
    assert len(re.findall(r'<tr data-event="\d+">', by_date.text)) == 1 and "Centru" in by_date.text
    none = client.get("/dashboard/audit?actor=nobody")
    assert "No event matches these filters" in none.text
    wildcard = client.get("/dashboard/audit?actor=%25")  # a literal %, not "anything"
    assert "No event matches these filters" in wildcard.text
    bad = client.get("/dashboard/audit?from=last+week")
    assert bad.status_code == 200 and 'id="from-error">From: Use a date like 2026-11-23.' in bad.text
    assert 'value="last week"' in bad.text


def test_an_empty_audit_log_says_what_will_appear(client: FlaskClient, db_session: Session) -> None:
    sign_in_as(client, db_session, "admin")
    db_session.execute(AuditEvent.__table__.delete())
    db_session.commit()
    page = client.get("/dashboard/audit")
    assert "Nothing recorded yet" in page.text


def test_tokens_issue_refuses_bad_names(db_session: Session) -> None:
    from app.errors import InvalidInput

    with pytest.raises(InvalidInput):
        tokens.issue(db_session, name="", now=utcnow())
    with pytest.raises(InvalidInput):
        tokens.issue(db_session, name="ok", role="owner", now=utcnow())
