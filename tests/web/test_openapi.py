"""The marketer API's OpenAPI 3.1 document: valid, complete, and true to what the API does.

Schemathesis (tests/web/api_fuzz.py) generates requests from the document for every operation, valid and
invalid ones, in every phase including stateful sequences, with fixed seeds, and checks that none gets a
5xx, that each status code, media type and body is the one declared, that invalid input is refused, valid
input taken, and a missing token refused. The lints below keep the document saying what the server checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.web.api.openapi import operation
from tests.web.api_fuzz import SEEDS, run, seed_world


def test_the_document_is_valid_openapi_3_1_and_public(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.json
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                               "description": "An API token, `tp_…`."}


def test_every_api_route_is_in_the_document(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document":
            path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, (path, method)
    creating = spec["paths"]["/api/v1/campaigns"]["post"]
    assert creating["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CampaignIn"}
    assert set(creating["responses"]) >= {"201", "400", "401", "403", "413", "422"}
    assert creating["x-required-role"] == "marketer"


def test_an_undeclared_answer_is_refused_rather_than_sent(app: Flask, client: FlaskClient, admin: str
                                                          ) -> None:
    class Declared(BaseModel):
        ok: bool

    class Other(BaseModel):
        other: int

    def wrong_model() -> Other:
        return Other(other=1)

    def wrong_status() -> tuple[Declared, int]:
        return Declared(ok=True), 202

    for name, view in (("wrong_model", wrong_model), ("wrong_status", wrong_status)):
        declared = operation(summary=name, tag="probe", responses={200: Declared})(view)
        app.view_functions[f"api.{name}"] = declared
        app.url_map.add(app.url_rule_class(f"/api/v1/_probe/{name}", endpoint=f"api.{name}", methods=["GET"]))
        response = client.get(f"/api/v1/_probe/{name}", headers={"Authorization": f"Bearer {admin}"})
        assert response.status_code == 500 and response.mimetype == "application/problem+json"
        assert "declaration" in response.json["detail"] or "declared" in response.json["detail"]


# ------------------------------------------------------------------------------- the document says it all


def _request_schemas(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, schema)`` of every schema a request is checked against: parameters, bodies, and the named
    schemas they use, walked down to each property and item."""
    schemas = spec["components"]["schemas"]
    seen: set[str] = set()

    def walk(where: str, node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from walk(f"{where}[{i}]", item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                yield from walk(name, schemas[name])
            return
        yield where, node
        for key in ("properties", "patternProperties", "$defs"):
            for name, child in node.get(key, {}).items():
                yield from walk(f"{where}.{name}", child)
        for key in ("items", "additionalProperties", "propertyNames"):  # not if/then/not: conditions, not values
            if isinstance(node.get(key), dict):
                yield from walk(f"{where}.{key}", node[key])
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            yield from walk(f"{where}.{key}", node.get(key, []))

    for path, item in spec["paths"].items():
        for method, op in item.items():
            label = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                yield from walk(f"{label} {param['in']} {param['name']}", param["schema"])
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                if media == "application/json":
                    yield from walk(f"{label} body", content["schema"])


def test_the_document_bounds_every_number_and_string_of_a_request(client: FlaskClient) -> None:
    """What a client may send is what the server takes: every integer has its range (the database's ids are
    32-bit), and every string says which characters it may hold (never NUL), so a request the document allows
    is never refused for a rule only the server knew."""
    spec = client.get("/api/v1/openapi.json").json
    unbounded, unspoken = [], []
    for where, schema in _request_schemas(spec):
        if schema.get("type") in ("integer", "number") and not (
                ("minimum" in schema or "exclusiveMinimum" in schema)
                and ("maximum" in schema or "exclusiveMaximum" in schema)):
            unbounded.append(where)
        if schema.get("type") == "string" and not ({"pattern", "format", "enum", "const"} & set(schema)):
            unspoken.append(where)
    assert not unbounded, unbounded
    assert not unspoken, unspoken
    assert spec["components"]["schemas"]["TimeZone"]["enum"][:1] == ["Africa/Abidjan"]


def test_a_state_conflict_is_409_and_declared(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert "409" in op["responses"], (method, path)
            assert "400" in op["responses"], (method, path)  # malformed input can reach any operation


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", "/programs/demo/bonus-rules", {"rules": [{"event_name": "review", "points": False}]}, "rules.0.points"),
    ("POST", "/stores/{store}/keys/{key}/rotate", {"overlap_hours": False}, "overlap_hours"),
    ("POST", "/customers/{customer}/adjustments", {"program": "demo", "points": True, "reason": "x"}, "points"),
    ("POST", "/campaigns/{campaign}/schedule", {"at": 0}, "at"),
    ("POST", "/campaigns/{campaign}/schedule", {"at": "2030-01-01T09:00:00"}, "at"),  # no offset
    ("PUT", "/programs/demo/tiers", {"tiers": [{"name": "A", "qualifying_spend": "", "earn_percent": "1"}]},
     "tiers.0.qualifying_spend"),
    ("PUT", "/programs/demo/tiers", {"tiers": [{"name": "A", "qualifying_spend": 0, "earn_percent": "1"}]},
     "tiers.0.qualifying_spend"),  # a decimal is a string
    ("PATCH", "/campaigns/{campaign}", {"holdout_percent": "10.125"}, "holdout_percent"),
    ("PATCH", "/programs/demo/settings", {"name": None}, "name"),
    ("PATCH", "/stores/{store}", {"latitude": 47.0}, "longitude"),
    ("PATCH", "/stores/{store}", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ("POST", "/tokens", {"name": "ci\u0007bot"}, "name"),
    ("POST", "/segments", {"program": "demo", "name": "R", "kind": "rules"}, "rules"),
    ("POST", "/customers/{customer}/adjustments", {"program": "demo", "points": 5, "reason": "   "}, "reason"),
])
def test_a_value_of_another_type_or_form_than_the_document_says_is_refused(
        client: FlaskClient, admin: str, fuzz_world: dict[str, Any], method: str, path: str, body: dict[str, Any],
        field: str) -> None:
    """Bodies are validated strictly: ``false`` is no integer, ``0`` no date; and each rule the document states
    (decimal places, empty numeric strings, nulls, paired coordinates, IANA zones, printable names...) is the
    server's too."""
    response = client.open(f"/api/v1{path.format(**fuzz_world)}", method=method, json=body,
                           headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 422, response.json
    assert [e["field"] for e in response.json["errors"]][:1] == [field], response.json


def test_query_parameters_are_read_as_the_document_types_them(client: FlaskClient, admin: str,
                                                               fuzz_world: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {admin}"}
    for query in ("until=0", "since=20260101", "page=1.0", "page=+1", "include_revoked=1"):
        path = "/api/v1/tokens" if "revoked" in query else "/api/v1/audit-events"
        assert client.get(f"{path}?{query}", headers=auth).status_code == 422, query
    assert client.get("/api/v1/audit-events?until=2026-01-31&page=2", headers=auth).status_code == 200
    assert client.get("/api/v1/tokens?include_revoked=false", headers=auth).status_code == 200


def test_a_32_bit_id_is_the_most_a_store_list_holds(client: FlaskClient, admin: str, fuzz_world: dict[str, Any]
                                                    ) -> None:
    auth = {"Authorization": f"Bearer {admin}"}
    response = client.patch(f"/api/v1/campaigns/{fuzz_world['campaign']}", json={"geo_store_ids": [2**31]},
                            headers=auth)
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "geo_store_ids.0"


# ------------------------------------------------------------------------- schemathesis, every phase


@pytest.fixture
def fuzz_world(app: Flask, make_program: Any, make_card: Any, make_store: Any, db_session: Session) -> dict[str, Any]:
    """A programme ``demo`` with a card, a store with a key and a draft campaign (in the test's transaction)."""
    from app.campaigns import lifecycle
    from app.campaigns.lifecycle import VariantSpec
    from app.db import utcnow

    program = make_program(slug="demo")
    card = make_card(program, phone="+37369000001", balance=40)
    creds = make_store(program, latitude=47.0, longitude=28.8)
    campaign = lifecycle.create(db_session, program=program, name="Spring", channels=["sms"],
                                variants=[VariantSpec("A", "Hello {{ first_name }}")], now=utcnow())
    db_session.commit()
    return {"program": program.slug, "customer": card.customer_id, "store": creds.store.id, "key": creds.key_id,
            "campaign": campaign.id}


# Bounded for `make test` (CI): under a minute per seed. `make fuzz-api` runs the same longer: more seeds,
# examples and steps, and the coverage phase of the segment rule trees (see api_fuzz.with_rule_trees).
EXAMPLES = int(os.environ.get("TALLYPASS_FUZZ_EXAMPLES", "10"))
STEPS = int(os.environ.get("TALLYPASS_FUZZ_STEPS", "10"))
FUZZ_SEEDS = [int(seed) for seed in os.environ.get("TALLYPASS_FUZZ_SEEDS", "").split()] or list(SEEDS)
COVER_TREES = bool(os.environ.get("TALLYPASS_FUZZ_TREES"))


@pytest.mark.committing
@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_schemathesis_finds_nothing(committing_app: Flask, seed: int) -> None:
    """Schemathesis with every check, in its examples, coverage, fuzzing and stateful phases, with a fixed
    seed, over HTTP, on PostgreSQL with real commits: no 5xx, every status, media type and body as declared,
    invalid input refused, valid input taken (or refused with 409 for the current state, or 422 by a rule the
    operation lists in ``x-rules``), authentication enforced."""
    world = seed_world(committing_app)
    report = run(committing_app, token=world["token"], seed=seed, max_examples=EXAMPLES, max_steps=STEPS,
                 cover_trees=COVER_TREES)
    assert set(report.scenarios) >= {"coverage", "fuzzing", "stateful"}, report.summary()
    assert report.clean, report.summary()
