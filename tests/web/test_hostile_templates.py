"""A hostile campaign template is answered 422 wherever a marketer can write one (the API, the dashboard's
composer and live preview), and a stored one that predates the rules fails its deliveries instead of
freezing the worker. Before, ``{{ 3 ** 30000000 }}`` pinned a web worker's core for 23 s and then answered 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment
from app.models import Campaign, CampaignVariant, Delivery
from tests.web.api_client import call
from tests.web.dashboard_client import sign_in_as

HOSTILE = ["{{ 3 ** 30000000 }}", "{{ 9**(9**9) }}", "{{ 'a'*300000000 }}",
           "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"]


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> Any:
    program = make_program(name="Cafea")
    card = make_card(program, balance=10, name="Ana Lungu", phone="+37369330001")
    enrollment.set_consents(db_session, customer=card.customer, consents={"sms": True}, source="test", now=utcnow())
    db_session.flush()
    return program


def _campaign(program: Any, body: str, title: str = "") -> dict[str, Any]:
    return {"program": program.slug, "name": "Autumn", "channels": ["sms"], "quiet_start_hour": 0,
            "quiet_end_hour": 0, "variants": [{"name": "A", "title": title, "body": body}]}


@pytest.mark.parametrize("source", HOSTILE)
def test_the_api_refuses_a_hostile_template_with_422(client: FlaskClient, program: Any, token: str,
                                                     source: str) -> None:
    for field, body in (("body", _campaign(program, source)), ("title", _campaign(program, "Hi", title=source))):
        refused = call(client, "POST", "/campaigns", token, json=body)
        assert refused.status_code == 422 and refused.mimetype == "application/problem+json", refused.text
        assert refused.json["errors"][0]["field"] == f"variants.0.{field}"
    created = call(client, "POST", "/campaigns", token, json=_campaign(program, "Hi {{ first_name }}")).json
    edited = call(client, "PATCH", f"/campaigns/{created['id']}", token,
                  json={"variants": [{"name": "A", "body": source}]})
    assert edited.status_code == 422 and edited.json["errors"][0]["field"] == "variants.0.body"


@pytest.mark.parametrize("source", HOSTILE)
def test_the_dashboard_shows_why_beside_the_field(client: FlaskClient, db_session: Session, program: Any,
                                                  source: str) -> None:
    _, csrf = sign_in_as(client, db_session, "marketer")
    preview = client.post("/dashboard/campaigns/preview", headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
                          json={"program": program.slug, "channels": ["sms"],
                                "variants": [{"name": "A", "title": "", "body": source}]})
    assert preview.status_code == 200
    assert preview.json["variants"][0]["error"] and preview.json["variants"][0]["channels"] == []
    composed = client.post("/dashboard/campaigns/new", data={
        "csrf_token": csrf, "program": program.slug, "name": "Autumn", "segment_id": "", "channel_1": "sms",
        "channel_2": "", "channel_3": "", "variant_name": ["A"], "variant_title": [""], "variant_body": [source],
        "variant_weight": ["1"], "holdout_percent": "0", "max_per_week": "", "quiet_start_hour": "0",
        "quiet_end_hour": "0", "ends_at": ""})
    assert composed.status_code == 422
    assert 'id="variants-0-body-error"' in composed.text


def test_a_stored_hostile_template_fails_its_deliveries(client: FlaskClient, db_session: Session, program: Any,
                                                        token: str) -> None:
    """A template saved before the rules existed (written straight to the database here) is refused when it
    renders: the delivery fails with the reason and the campaign ends."""
    created = call(client, "POST", "/campaigns", token, json=_campaign(program, "Hi {{ first_name }}")).json
    db_session.execute(update(CampaignVariant).where(CampaignVariant.campaign_id == created["id"])
                       .values(body="{{ 3 ** 30000000 }}"))
    db_session.commit()
    started = call(client, "POST", f"/campaigns/{created['id']}/start", token)
    assert started.status_code in (200, 202), started.text
    deliveries = db_session.scalars(select(Delivery).where(Delivery.campaign_id == created["id"])).all()
    assert [d.status for d in deliveries] == ["failed"]
    assert "not a valid template" in (deliveries[0].error or "") and "powers" in (deliveries[0].error or "")
    assert db_session.get(Campaign, created["id"]).state == "finished"
