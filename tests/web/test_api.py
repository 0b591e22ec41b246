"""The JSON API for segments and campaigns: bearer tokens, roles, validation as problem+json, and a
campaign driven from creation to results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment
from app.merchants import tokens
from app.models import ApiToken, ChannelMessage
from tests.web.api_client import call


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> Any:
    program = make_program(name="Cafea & Co.")
    for n, consents in enumerate([{"sms": True}, {"sms": True}, {}]):
        card = make_card(program, balance=10 * (n + 1), name=f"Client {n}")
        enrollment.set_consents(db_session, customer=card.customer, consents=consents, source="test", now=utcnow())
    db_session.flush()
    return program


def test_a_token_is_required_and_checked(client: FlaskClient, program: Any, token: str) -> None:
    for bad in (None, "tp_wrong", token + "x"):
        response = call(client, "GET", "/segments/1", bad)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"


def test_a_viewer_may_read_but_not_change(client: FlaskClient, program: Any, db_session: Session) -> None:
    _row, viewer = tokens.issue(db_session, name="ro", role="viewer", now=utcnow())
    db_session.flush()
    rules = {"all": [{"field": "balance", "op": "gte", "value": 20}]}
    counted = call(client, "POST", "/segments/preview", viewer, json={"program": program.slug, "rules": rules})
    assert counted.status_code == 200  # a count changes nothing
    response = call(client, "POST", "/segments", viewer, json={"program": program.slug, "name": "All",
                                                                "kind": "rules", "rules": rules})
    assert response.status_code == 403 and "marketer" in response.json["detail"]


def test_tokens_are_stored_hashed(db_session: Session, token: str) -> None:
    row = db_session.scalars(select(ApiToken)).one()
    assert token not in (row.token_hash, row.prefix) and row.prefix == token[:10]


def test_segment_create_preview_and_errors(client: FlaskClient, program: Any, token: str) -> None:
    rules = {"all": [{"field": "balance", "op": "gte", "value": 20}]}
    preview = call(client, "POST", "/segments/preview", token, json={"program": program.slug, "rules": rules})
    assert preview.status_code == 200 and preview.json == {"count": 2}
    created = call(client, "POST", "/segments", token, json={"program": program.slug, "name": "Rich", "kind": "rules",
                                                            "rules": rules})
    assert created.status_code == 201 and created.json["count"] == 2
    assert call(client, "GET", f"/segments/{created.json['id']}", token).json["count"] == 2
    bad = call(client, "POST", "/segments", token, json={
        "program": program.slug, "name": "Bad", "kind": "rules",
        "rules": {"all": [{"field": "balance", "op": "gte", "value": "lots"}]}})
    assert bad.status_code == 422
    assert bad.json["errors"][0]["field"].startswith("rules.all.0")


def test_a_campaign_from_creation_to_results(client: FlaskClient, program: Any, token: str,
                                             db_session: Session) -> None:
    created = call(client, "POST", "/campaigns", token, json={
        "program": program.slug, "name": "Hello", "channels": ["sms"], "quiet_start_hour": 0, "quiet_end_hour": 0,
        "variants": [{"name": "A", "body": "Hi {{ first_name }}, {{ balance }} points"}]})
    assert created.status_code == 201 and created.json["state"] == "draft"
    campaign_id = created.json["id"]
    preview = call(client, "POST", f"/campaigns/{campaign_id}/preview", token)
    assert preview.json["A"]["body"].startswith("Hi Client") and preview.json["A"]["sms_parts"] == 1
    started = call(client, "POST", f"/campaigns/{campaign_id}/start", token)
    assert started.status_code == 200
    assert started.json["state"] == "finished" and started.json["audience_size"] == 3  # eager: sent inline
    result = call(client, "GET", f"/campaigns/{campaign_id}/results", token).json
    assert result["by_status"] == {"sent": 2, "skipped": 1} and result["by_channel"] == {"sms": 2}
    assert len(db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "sms")).all()) == 2
    again = call(client, "POST", f"/campaigns/{campaign_id}/pause", token)
    assert again.status_code == 409 and "finished" in again.json["detail"]  # a state conflict


def test_campaign_validation(client: FlaskClient, program: Any, token: str) -> None:
    response = call(client, "POST", "/campaigns", token, json={
        "program": program.slug, "name": "X", "channels": ["fax"], "variants": [{"name": "A", "body": "{{ oops }}"}]})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert any(f.startswith("channels") for f in fields)
