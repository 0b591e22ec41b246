"""Segments over the JSON API: list, change (PUT/PATCH), delete (refused while a campaign uses it), the RFM
distribution and its recompute; every change audited with the token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import tokens
from app.models import AuditEvent, Campaign, Segment
from app.segments.rfm import SEGMENT_NAMES
from tests.web.api_client import call

RICH = {"all": [{"field": "balance", "op": "gte", "value": 20}]}


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> Any:
    program = make_program(slug="cafea")
    for n, balance in enumerate([5, 20, 30]):
        make_card(program, balance=balance).customer.rfm_segment = ["Champions", "At Risk", None][n]
    db_session.flush()
    return program


def create(client: FlaskClient, token: str, name: str, **fields: Any) -> Any:
    response = call(client, "POST", "/segments", token, json={"program": "cafea", "name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json


def test_list_change_and_delete(client: FlaskClient, program: Any, token: str, db_session: Session) -> None:
    rich = create(client, token, "Rich", kind="rules", rules=RICH)
    create(client, token, "Best", kind="rfm", segments=["Champions"])
    listed = call(client, "GET", "/segments?program=cafea", token)
    assert listed.status_code == 200
    assert [(s["name"], s["count"]) for s in listed.json["items"]] == [("Best", 1), ("Rich", 2)]
    assert listed.json["total"] == 2 and listed.json["page"] == 1
    assert call(client, "GET", "/segments?program=nope", token).status_code == 404

    taken = call(client, "POST", "/segments", token, json={"program": "cafea", "name": "rich", "kind": "static"})
    assert taken.status_code == 409 and taken.json["errors"] == [
        {"field": "name", "message": "Another segment of this programme has this name."}]

    patched = call(client, "PATCH", f"/segments/{rich['id']}", token, json={"name": "Richest"})
    assert patched.status_code == 200 and patched.json["name"] == "Richest" and patched.json["definition"] == RICH
    bad = call(client, "PATCH", f"/segments/{rich['id']}", token,
               json={"rules": {"all": [{"field": "balance", "op": "gte", "value": -1}]}})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "rules.all.0.value"
    wrong_kind = call(client, "PATCH", f"/segments/{rich['id']}", token, json={"segments": ["Champions"]})
    # What a segment takes depends on its stored kind: the request conflicts with the segment's state
    assert wrong_kind.status_code == 409 and wrong_kind.json["errors"][0]["field"] == "segments"
    missing = call(client, "PUT", f"/segments/{rich['id']}", token, json={"name": "X"})
    assert missing.status_code == 409 and missing.json["errors"][0]["field"] == "rules"
    put = call(client, "PUT", f"/segments/{rich['id']}", token,
               json={"name": "Rich", "rules": {"all": [{"field": "balance", "op": "gte", "value": 30}]}})
    assert put.status_code == 200 and put.json["count"] == 1

    campaign = Campaign(program_id=program.id, name="Autumn", segment_id=rich["id"], state="running",
                        channels=["sms"])
    db_session.add(campaign)
    db_session.flush()
    refused = call(client, "DELETE", f"/segments/{rich['id']}", token)
    assert refused.status_code == 409 and "Autumn" in refused.json["detail"]  # a campaign still uses it
    assert refused.json["campaigns"] == [campaign.id]
    campaign.state = "cancelled"
    db_session.flush()
    gone = call(client, "DELETE", f"/segments/{rich['id']}", token)
    assert gone.status_code == 204 and gone.data == b""
    assert call(client, "GET", f"/segments/{rich['id']}", token).status_code == 404
    assert db_session.scalars(select(Segment.name)).all() == ["Best"]
    actions = [(e.action, e.actor) for e in db_session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == [("segment.create", f"api-token:{token[:10]}")] * 2 + [
        ("segment.update", f"api-token:{token[:10]}")] * 2 + [("segment.delete", f"api-token:{token[:10]}")]


def test_rfm_segments_only_take_rfm_names(client: FlaskClient, program: Any, token: str) -> None:
    response = call(client, "POST", "/segments", token, json={"program": "cafea", "name": "X", "kind": "rfm",
                                                              "segments": ["Champs"]})
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "segments.0"


def test_the_rfm_distribution_and_recompute(client: FlaskClient, program: Any, token: str,
                                            db_session: Session) -> None:
    _row, viewer = tokens.issue(db_session, name="ro", role="viewer", now=utcnow())
    db_session.flush()
    shown = call(client, "GET", "/programs/cafea/rfm", viewer)
    assert shown.status_code == 200
    body = shown.json
    assert list(body["counts"]) == list(SEGMENT_NAMES)
    assert body["counts"]["Champions"] == 1 and body["counts"]["At Risk"] == 1
    assert (body["scored"], body["unscored"], body["mode"], body["last_requested_at"]) == (2, 1, "quintile", None)
    assert call(client, "POST", "/programs/cafea/rfm/recompute", viewer).status_code == 403

    done = call(client, "POST", "/programs/cafea/rfm/recompute", token)
    assert done.status_code == 202 and done.json == {"state": "done"}  # no broker in tests: ran inline
    after = call(client, "GET", "/programs/cafea/rfm", token).json
    assert (after["scored"], after["unscored"]) == (0, 3)  # nobody bought in the window
    assert after["last_requested_at"] is not None
    assert call(client, "GET", "/programs/nope/rfm", token).status_code == 404
