"""The campaign API's lists and edits: campaigns per programme and state, editing a draft, progress, the
delivery log with filters, and the outbox (marketer tokens only)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.campaigns.automations import ensure_templates
from app.db import utcnow
from app.loyalty import enrollment
from app.models import AuditEvent, ChannelMessage, Delivery
from tests.web.api_client import call


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> Any:
    program = make_program(name="Cafea & Co.")
    for n, consents in enumerate([{"sms": True}, {"sms": True}, {}]):
        card = make_card(program, balance=10 * (n + 1), name=f"Client {n}", phone=f"+3736922000{n}")
        enrollment.set_consents(db_session, customer=card.customer, consents=consents, source="test", now=utcnow())
    db_session.flush()
    return program


def create(client: FlaskClient, token: str, program: Any, name: str = "Hello") -> int:
    created = call(client, "POST", "/campaigns", token, json={
        "program": program.slug, "name": name, "channels": ["sms"], "quiet_start_hour": 0, "quiet_end_hour": 0,
        "variants": [{"name": "A", "body": "Hi {{ first_name }}"}, {"name": "B", "body": "Hello {{ name }}"}]})
    assert created.status_code == 201, created.json
    return created.json["id"]


def test_campaigns_are_listed_per_programme_and_state(client: FlaskClient, program: Any, token: str,
                                                      make_program: Callable[..., Any], db_session: Session) -> None:
    other = make_program()
    first, second = create(client, token, program, "First"), create(client, token, program, "Second")
    create(client, token, other, "Elsewhere")
    call(client, "POST", f"/campaigns/{first}/start", token)
    listed = call(client, "GET", f"/campaigns?program={program.slug}", token).json
    assert [c["name"] for c in listed["items"]] == ["Second", "First"] and listed["total"] == 2
    assert listed["items"][1]["sent"] == 2 and listed["items"][1]["state"] == "finished"
    drafts = call(client, "GET", f"/campaigns?program={program.slug}&state=draft", token).json
    assert [c["id"] for c in drafts["items"]] == [second]
    paged = call(client, "GET", "/campaigns?per_page=1&page=2", token).json
    assert paged["total"] == 3 and len(paged["items"]) == 1
    ensure_templates(db_session, program=program, now=utcnow())
    automations = call(client, "GET", f"/campaigns?program={program.slug}&automations=true", token).json
    assert automations["items"] and all(c["automation"] for c in automations["items"])
    assert call(client, "GET", "/campaigns?state=lost", token).status_code == 422
    assert call(client, "GET", "/campaigns?program=nope", token).status_code == 404


def test_a_draft_is_edited_and_only_a_draft(client: FlaskClient, program: Any, token: str,
                                            db_session: Session) -> None:
    campaign_id = create(client, token, program)
    edited = call(client, "PATCH", f"/campaigns/{campaign_id}", token, json={
        "name": "Renamed", "holdout_percent": "10", "variants": [{"name": "B", "body": "Only B"}]})
    assert edited.status_code == 200
    assert edited.json["name"] == "Renamed" and Decimal(edited.json["holdout_percent"]) == 10
    assert [v["name"] for v in edited.json["variants"]] == ["B"] and edited.json["channels"] == ["sms"]
    bad = call(client, "PATCH", f"/campaigns/{campaign_id}", token, json={"variants": [{"name": "A",
                                                                                       "body": "{{ nope }}"}]})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "variants.0.body"
    assert call(client, "GET", f"/campaigns/{campaign_id}", token).json["variants"][0]["body"] == "Only B"
    assert call(client, "PATCH", f"/campaigns/{campaign_id}", token, json={"colour": "red"}).status_code == 422
    assert call(client, "PATCH", f"/campaigns/{campaign_id}", token, json={"segment_id": 999999}).status_code == 404
    call(client, "POST", f"/campaigns/{campaign_id}/start", token)
    late = call(client, "PATCH", f"/campaigns/{campaign_id}", token, json={"name": "Too late"})
    assert late.status_code == 409 and "only a draft" in late.json["detail"]  # the campaign's state conflicts
    assert db_session.query(AuditEvent).filter_by(action="campaign-edited").count() == 1


def test_progress_and_the_delivery_log(client: FlaskClient, program: Any, token: str, viewer: str) -> None:
    campaign_id = create(client, token, program)
    before = call(client, "GET", f"/campaigns/{campaign_id}/progress", viewer).json
    nothing = call(client, "GET", f"/campaigns/{campaign_id}/results", viewer)
    assert nothing.status_code == 200 and nothing.json["by_status"] == {} and nothing.json["uplift"] is None
    assert before["percent"] == 0 and before["audience_size"] is None and before["state"] == "draft"
    call(client, "POST", f"/campaigns/{campaign_id}/start", token)
    after = call(client, "GET", f"/campaigns/{campaign_id}/progress", viewer).json
    assert after["percent"] == 100 and after["done"] == 3
    assert after["counts"]["sent"] == 2 and after["counts"]["skipped"] == 1 and after["counts"]["queued"] == 0

    log = call(client, "GET", f"/campaigns/{campaign_id}/deliveries", viewer).json
    assert log["total"] == 3 and {d["status"] for d in log["items"]} == {"sent", "skipped"}
    sent = call(client, "GET", f"/campaigns/{campaign_id}/deliveries?status=sent&channel=sms", viewer).json
    assert sent["total"] == 2 and all(d["variant"] in ("A", "B") for d in sent["items"])
    one = call(client, "GET", f"/campaigns/{campaign_id}/deliveries?phone=69220002", viewer).json
    assert [d["customer_name"] for d in one["items"]] == ["Client 2"] and one["items"][0]["reason"] == "unreachable"
    variant_a = call(client, "GET", f"/campaigns/{campaign_id}/deliveries?variant=A", viewer).json
    variant_b = call(client, "GET", f"/campaigns/{campaign_id}/deliveries?variant=B", viewer).json
    assert variant_a["total"] + variant_b["total"] == 3
    assert call(client, "GET", f"/campaigns/{campaign_id}/deliveries?status=lost", viewer).status_code == 422
    assert call(client, "GET", "/campaigns/999999/progress", viewer).status_code == 404


def test_retry_names_which_deliveries_and_never_resends_the_interrupted_as_failed(
        client: FlaskClient, program: Any, token: str, db_session: Session) -> None:
    campaign_id = create(client, token, program)
    call(client, "POST", f"/campaigns/{campaign_id}/start", token)
    sent = db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                     Delivery.status == "sent").order_by(Delivery.id)).all()
    # One text certainly failed (the gateway refused it), one was interrupted: it may have arrived.
    db_session.execute(update(Delivery).where(Delivery.id == sent[0].id).values(status="failed", error="21211"))
    db_session.execute(update(Delivery).where(Delivery.id == sent[1].id).values(status="failed",
                                                                                reason="interrupted"))
    db_session.commit()
    unnamed = call(client, "POST", f"/campaigns/{campaign_id}/retry", token)
    assert unnamed.status_code == 400, unnamed.json  # the caller must say which; nothing is queued
    assert call(client, "POST", f"/campaigns/{campaign_id}/retry", token,
                json={"deliveries": "everything"}).status_code == 422

    failed = call(client, "POST", f"/campaigns/{campaign_id}/retry", token, json={"deliveries": "failed"})
    assert failed.status_code == 200, failed.json
    assert (failed.json["requeued"], failed.json["kept"], failed.json["campaign"]["id"]) == (1, {}, campaign_id)
    interrupted = call(client, "POST", f"/campaigns/{campaign_id}/retry", token, json={"deliveries": "interrupted"})
    assert (interrupted.json["requeued"], interrupted.json["kept"]) == (0, {"sms": 1})  # a text is never resent
    db_session.expire_all()
    rows = {d.id: (d.status, d.reason) for d in db_session.scalars(select(Delivery).where(
        Delivery.campaign_id == campaign_id))}
    assert rows[sent[0].id] == ("sent", None) and rows[sent[1].id] == ("failed", "interrupted")
    audits = [e.details for e in db_session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign-retry")
                                                    .order_by(AuditEvent.id))]
    assert audits == [{"deliveries": "failed", "retried": 1}, {"deliveries": "interrupted", "retried": 0}]


def test_the_outbox_lists_recorded_messages_for_marketers(client: FlaskClient, program: Any, token: str,
                                                          viewer: str, db_session: Session) -> None:
    db_session.commit()
    db_session.execute(delete(ChannelMessage))
    campaign_id = create(client, token, program)
    call(client, "POST", f"/campaigns/{campaign_id}/start", token)
    listed = call(client, "GET", "/outbox?channel=sms", token).json
    assert listed["total"] == 2 and {m["recipient"] for m in listed["items"]} == {"+37369220000", "+37369220001"}
    assert all(m["payload"]["body"].startswith(("Hi Client", "Hello Client")) for m in listed["items"])
    assert call(client, "GET", "/outbox?channel=fax", token).status_code == 422
    assert call(client, "GET", "/outbox", viewer).status_code == 403


def test_the_new_operations_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/campaigns"])
    assert "patch" in paths["/api/v1/campaigns/{campaign_id}"]
    assert paths["/api/v1/outbox"]["get"]["x-required-role"] == "marketer"
    for path in ("/api/v1/campaigns/{campaign_id}/progress", "/api/v1/campaigns/{campaign_id}/deliveries"):
        assert paths[path]["get"]["x-required-role"] == "viewer"
