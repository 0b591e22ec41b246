"""Programmes over the JSON API: reading, settings and design, tiers and bonus rules replaced as a whole, PNG
uploads, and the re-sync job's progress; errors as problem documents, every answer as the OpenAPI document
declares it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import tokens
from app.models import AuditEvent, Card, ProgramImage
from app.web.api.openapi import document
from tests.web.api_client import call


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any]) -> Any:
    program = make_program()
    make_card(program)
    make_card(program)
    return program


def png(width: int = 600, height: int = 300) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 90, 60, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_programmes_are_listed_and_read(client: FlaskClient, program: Any, token: str) -> None:
    listed = call(client, "GET", "/programs", token)
    assert listed.status_code == 200
    assert [p["slug"] for p in listed.json["items"]] == [program.slug]
    assert (listed.json["page"], listed.json["has_more"]) == (1, False)
    assert call(client, "GET", "/programs?page=2", token).json["items"] == []
    assert call(client, "GET", "/programs?page=0", token).status_code == 422
    one = call(client, "GET", f"/programs/{program.slug}", token).json
    assert one["point_value"] == "1.00" and one["expiry_days"] == 365 and one["images"] == []
    assert [t["name"] for t in one["tiers"]] == ["Bronze", "Silver", "Gold"] and one["logo_url"] is None
    missing = call(client, "GET", "/programs/nope", token)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


def test_patching_settings_changes_only_what_is_given(client: FlaskClient, program: Any, token: str,
                                                      db_session: Session) -> None:
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token,
                    json={"redeem_cap_percent": "25", "expiry_days": None})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["program"]["redeem_cap_percent"] == "25.00" and body["program"]["expiry_days"] is None
    assert body["program"]["point_value"] == "1.00"
    assert body["job"] is None  # nothing the cards show changed

    versions = {c.id: c.version for c in db_session.scalars(select(Card).where(Card.program_id == program.id))}
    design = call(client, "PATCH", f"/programs/{program.slug}/settings", token,
                  json={"background_color": "#112233", "logo_text": "Beans"})
    assert design.status_code == 200
    job = design.json["job"]
    assert (job["state"], job["done"], job["total"]) == ("done", 2, 2)
    assert job["created_by"].startswith("api-token:")
    db_session.expire_all()
    for card in db_session.scalars(select(Card).where(Card.program_id == program.id)):
        assert card.version == versions[card.id] + 1
    assert call(client, "GET", f"/jobs/{job['id']}", token).json["state"] == "done"
    actors = {e.actor for e in db_session.scalars(select(AuditEvent).where(AuditEvent.action == "program.updated"))}
    assert len(actors) == 1 and actors.pop().startswith("api-token:")


def test_the_largest_purchase_amount_is_read_and_changed_as_the_document_says(client: FlaskClient, program: Any,
                                                                              token: str, app: Flask) -> None:
    assert call(client, "GET", f"/programs/{program.slug}", token).json["max_purchase_amount"] == "100000.00"
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token,
                    json={"max_purchase_amount": "250000"})
    assert response.status_code == 200, response.json
    assert response.json["program"]["max_purchase_amount"] == "250000.00" and response.json["job"] is None
    with app.test_request_context():
        schemas = document(app)["components"]["schemas"]
    given = schemas["SettingsIn"]["properties"]["max_purchase_amount"]
    assert "largest purchase amount" in given["description"]
    assert "max_purchase_amount" in schemas["ProgramOut"]["required"]


@pytest.mark.parametrize(("payload", "field"), [
    ({"max_purchase_amount": "0"}, "max_purchase_amount"),
    ({"max_purchase_amount": "10000000000.00"}, "max_purchase_amount"),
    ({"max_purchase_amount": None}, "max_purchase_amount"),
    ({"max_purchase_amount": "١٠٠٠"}, "max_purchase_amount"),
    ({"point_value": "１"}, "point_value"),
    ({"background_color": "green"}, "background_color"),
    ({"redeem_cap_percent": "101"}, "redeem_cap_percent"),
    ({"point_value": None}, "point_value"),
    ({"colour": "#FFFFFF"}, "colour"),
])
def test_invalid_settings_are_refused_per_field(client: FlaskClient, program: Any, token: str,
                                                payload: dict[str, Any], field: str) -> None:
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token, json=payload)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == [field]


def test_a_nul_character_is_malformed_input_and_named(client: FlaskClient, program: Any, token: str) -> None:
    """PostgreSQL text holds no NUL: the body is refused as malformed (400), naming the field."""
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token, json={"name": "bad\u0000name"})
    assert response.status_code == 400 and response.json["type"].endswith("/malformed-json")
    assert response.json["errors"] == [{"field": "name", "message": "must not contain NUL characters"}]


def test_tiers_and_bonus_rules_are_replaced_as_a_whole(client: FlaskClient, program: Any, token: str) -> None:
    tiers = [{"name": "Bronze", "qualifying_spend": "0", "earn_percent": "4"},
             {"name": "Gold", "qualifying_spend": "3000", "earn_percent": "8", "perks": "Free delivery"}]
    response = call(client, "PUT", f"/programs/{program.slug}/tiers", token, json={"tiers": tiers})
    assert response.status_code == 200, response.json
    got = {t["name"]: (t["earn_percent"], t["perks"]) for t in response.json["program"]["tiers"]}
    assert got == {"Bronze": ("4.00", ""), "Gold": ("8.00", "Free delivery")}  # Silver, empty, removed
    assert response.json["job"]["state"] == "done"

    # Bronze has the members: leaving it out is refused, and nothing else changes
    refused = call(client, "PUT", f"/programs/{program.slug}/tiers", token, json={"tiers": tiers[1:]})
    assert refused.status_code == 409 and refused.json["type"].endswith("tier-has-members")
    assert len(call(client, "GET", f"/programs/{program.slug}", token).json["tiers"]) == 2

    twice = call(client, "PUT", f"/programs/{program.slug}/tiers", token, json={"tiers": [tiers[0], tiers[0]]})
    assert twice.status_code == 422 and twice.json["errors"][0]["field"] == "tiers.1.name"

    rules = call(client, "PUT", f"/programs/{program.slug}/bonus-rules", token, json={"rules": [
        {"event_name": "review", "points": 20, "limit_per_period": 1, "period": "month"},
        {"event_name": "check-in", "points": 5}]})
    assert rules.status_code == 200
    assert [(r["event_name"], r["period"]) for r in rules.json["program"]["bonus_rules"]] == [
        ("check-in", "day"), ("review", "month")]
    again = call(client, "PUT", f"/programs/{program.slug}/bonus-rules", token, json={"rules": [
        {"event_name": "review", "points": 30, "period": "week"}]})
    assert [(r["points"], r["limit_per_period"]) for r in again.json["program"]["bonus_rules"]] == [(30, None)]


def test_uploading_a_logo_stores_every_scale_and_resends_the_passes(client: FlaskClient, program: Any, token: str,
                                                                    db_session: Session) -> None:
    response = call(client, "POST", f"/programs/{program.slug}/images/logo", token, data=png(),
                    headers={"Content-Type": "image/png"})
    assert response.status_code == 201, response.json
    assert response.json["scales"] == [1, 2, 3] and response.json["job"]["done"] == 2
    stored = db_session.scalars(select(ProgramImage).where(ProgramImage.program_id == program.id)
                                .order_by(ProgramImage.scale)).all()
    assert [r.sha256 for r in stored] == response.json["sha256"]
    read = call(client, "GET", f"/programs/{program.slug}", token).json
    assert read["images"] == ["logo"]
    assert read["logo_url"] == f"https://tallypass.test/media/programs/{program.id}/logo-{stored[2].sha256[:16]}.png"

    not_png = call(client, "POST", f"/programs/{program.slug}/images/strip", token, data=b"<svg/>",
                   headers={"Content-Type": "image/png"})
    assert not_png.status_code == 422 and "not a PNG" in not_png.json["errors"][0]["message"]
    too_big = call(client, "POST", f"/programs/{program.slug}/images/strip", token,
                   data=b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024 + 10), headers={"Content-Type": "image/png"})
    assert too_big.status_code == 413
    unknown = call(client, "POST", f"/programs/{program.slug}/images/hero", token, data=png(),
                   headers={"Content-Type": "image/png"})
    assert unknown.status_code == 404


def test_a_viewer_token_reads_but_does_not_change(client: FlaskClient, program: Any, db_session: Session) -> None:
    _row, viewer = tokens.issue(db_session, name="ro", role="viewer", now=utcnow())
    db_session.commit()
    assert call(client, "GET", f"/programs/{program.slug}", viewer).status_code == 200
    assert call(client, "PATCH", f"/programs/{program.slug}/settings", viewer,
                json={"name": "Mine"}).status_code == 403
    assert call(client, "GET", "/jobs/999999", viewer).status_code == 404


def test_the_operations_are_in_the_openapi_document(app: Flask) -> None:
    with app.test_request_context():
        paths = document(app)["paths"]
    assert set(paths["/api/v1/programs/{slug}/settings"]) == {"patch"}
    assert "image/png" in paths["/api/v1/programs/{slug}/images/{kind}"]["post"]["requestBody"]["content"]
    assert paths["/api/v1/jobs/{job_id}"]["get"]["x-required-role"] == "viewer"


def test_the_privacy_policy_link_is_set_read_and_cleared(client: FlaskClient, program: Any, token: str,
                                                        db_session: Session) -> None:
    url = "https://cafea.example/legal/privacy?lang=ro#data"
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token, json={"privacy_policy_url": url})
    assert response.status_code == 200, response.json
    assert response.json["program"]["privacy_policy_url"] == url and response.json["job"] is None  # not on passes
    assert call(client, "GET", f"/programs/{program.slug}", token).json["privacy_policy_url"] == url
    cleared = call(client, "PATCH", f"/programs/{program.slug}/settings", token, json={"privacy_policy_url": None})
    assert cleared.json["program"]["privacy_policy_url"] is None


@pytest.mark.parametrize("url", ["http://cafea.example/privacy", "javascript:alert(1)", "https://localhost/p",
                                 "https://cafea.example\\@evil.example/", "https://cafea.example/a b",
                                 "https://user@cafea.example/", "", "https://" + "a" * 490 + ".example"])
def test_a_privacy_policy_link_that_is_not_an_https_page_is_refused(client: FlaskClient, program: Any, token: str,
                                                                    db_session: Session, url: str) -> None:
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token, json={"privacy_policy_url": url})
    assert response.status_code == 422, response.json
    assert [e["field"] for e in response.json["errors"]] == ["privacy_policy_url"]
    db_session.expire_all()
    assert program.privacy_policy_url is None
