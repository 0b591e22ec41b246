"""Stores, POS keys, API tokens and the audit log over the JSON API: roles, validation as problem+json,
secrets in the creating answer only, rotation with an overlap, and every change in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.db import utcnow
from tests.conftest import PosCredentials
from tests.web.api_client import api_token, call


@pytest.fixture
def program(make_program: Callable[..., Any], db_session: Session) -> Any:
    program = make_program(welcome_bonus=0, timezone="Europe/Chisinau")
    db_session.commit()
    return program


def test_stores_are_created_listed_and_changed(client: FlaskClient, program: Any, admin: str,
                                               db_session: Session) -> None:
    bad = call(client, "POST", "/stores", admin, json={"program": program.slug, "name": "X", "latitude": 120,
                                                       "longitude": 10})
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    assert bad.json["errors"][0]["field"] == "latitude"
    zone = call(client, "POST", "/stores", admin, json={"program": program.slug, "name": "X", "timezone": "Nowhere"})
    assert zone.status_code == 422 and zone.json["errors"] == [{"field": "timezone", "message": (
        "Value error, must be an IANA time zone name, e.g. Europe/Chisinau (see components/schemas/TimeZone)")}]
    made = call(client, "POST", "/stores", admin, json={"program": program.slug, "name": "Centru",
                                                        "latitude": 47.01, "longitude": 28.86})
    assert made.status_code == 201
    assert made.json | {"id": 0} == {"id": 0, "program": program.slug, "name": "Centru", "address": "",
                                     "latitude": 47.01, "longitude": 28.86, "timezone": "Europe/Chisinau",
                                     "live_keys": 0, "closed_at": None}
    store_id = made.json["id"]
    one_side = call(client, "PATCH", f"/stores/{store_id}", admin, json={"latitude": None})
    assert one_side.status_code == 422  # both coordinates, or neither
    changed = call(client, "PATCH", f"/stores/{store_id}", admin, json={"name": "Centru Nou", "latitude": None,
                                                                        "longitude": None})
    assert changed.status_code == 200 and changed.json["name"] == "Centru Nou" and changed.json["latitude"] is None
    listed = call(client, "GET", f"/stores?program={program.slug}&per_page=1", api_token(db_session, "viewer"))
    assert listed.status_code == 200 and listed.json["total"] == 1 and listed.json["next"] is None
    assert [s["name"] for s in listed.json["items"]] == ["Centru Nou"]
    assert call(client, "GET", "/stores?program=nope", admin).status_code == 404

    marketer = api_token(db_session, "marketer")
    refused = call(client, "POST", "/stores", marketer, json={"program": program.slug, "name": "Y"})
    assert refused.status_code == 403 and "admin" in refused.json["detail"]

    events = call(client, "GET", "/audit-events?action=store-updated", admin).json
    assert events["total"] == 1
    assert events["items"][0]["actor"].startswith("api-token:tp_")
    assert events["items"][0]["details"]["name"] == ["Centru", "Centru Nou"]


def test_keys_are_created_rotated_and_revoked_by_admins_only(client: FlaskClient, program: Any, admin: str,
                                                              make_store: Callable[..., PosCredentials],
                                                              make_card: Callable[..., Any], db_session: Session,
                                                              pos_for: Callable[..., Any],
                                                              app_with: Callable[..., Any]) -> None:
    creds = make_store(program, name="Centru")
    card = make_card(program)
    db_session.commit()
    path = f"/stores/{creds.store.id}/keys"
    marketer = api_token(db_session, "marketer")
    assert call(client, "GET", path, marketer).status_code == 403
    assert call(client, "POST", path, marketer).status_code == 403

    created = call(client, "POST", path, admin)
    assert created.status_code == 201 and created.json["secret"].startswith("sk_")
    fresh = PosCredentials(creds.store, created.json["key_id"], created.json["secret"])
    assert pos_for(fresh).get(f"/cards/{card.barcode}").status_code == 200
    listed = call(client, "GET", path, admin).json["items"]
    assert {k["key_id"] for k in listed} == {creds.key_id, fresh.key_id}
    assert all("secret" not in k for k in listed) and all(k["state"] == "live" for k in listed)

    too_long = call(client, "POST", f"{path}/{creds.key_id}/rotate", admin, json={"overlap_hours": 721})
    assert too_long.status_code == 422
    rotated = call(client, "POST", f"{path}/{creds.key_id}/rotate", admin, json={"overlap_hours": 24})
    assert rotated.status_code == 201
    assert rotated.json["replaced"]["key_id"] == creds.key_id and rotated.json["replaced"]["state"] == "retiring"
    successor = PosCredentials(creds.store, rotated.json["key_id"], rotated.json["secret"])
    assert pos_for(creds).get(f"/cards/{card.barcode}").status_code == 200  # inside the overlap
    assert pos_for(successor).get(f"/cards/{card.barcode}").status_code == 200

    revoked = call(client, "POST", f"{path}/{creds.key_id}/revoke", admin)
    assert revoked.status_code == 200 and revoked.json["state"] == "revoked"
    other_process = app_with().test_client()
    response = other_process.get(f"/api/v1/pos/cards/{card.barcode}", headers=pos_for(creds).headers(b""))
    assert response.status_code == 401
    again = call(client, "POST", f"{path}/{creds.key_id}/rotate", admin, json={})
    assert again.status_code == 409
    assert call(client, "POST", f"{path}/pk_elsewhere/revoke", admin).status_code == 404
    assert call(client, "POST", "/stores/999999/keys", admin).status_code == 404

    actions = [e["action"] for e in call(client, "GET", "/audit-events?actor=api-token", admin).json["items"]]
    assert actions == ["pos-key-revoked", "pos-key-rotated", "pos-key-created"]


def test_tokens_over_the_api(client: FlaskClient, admin: str, db_session: Session) -> None:
    made = call(client, "POST", "/tokens", admin, json={"name": "BI export", "role": "viewer"})
    assert made.status_code == 201 and made.json["token"].startswith("tp_") and made.json["role"] == "viewer"
    new = made.json["token"]
    assert call(client, "GET", "/tokens", new).status_code == 403  # a viewer token
    listed = call(client, "GET", "/tokens", admin).json["items"]
    assert {t["name"] for t in listed} == {"admin token", "BI export"} and all("token" not in t for t in listed)
    assert call(client, "POST", "/tokens", admin, json={"name": "", "role": "viewer"}).status_code == 422
    assert call(client, "POST", "/tokens", admin, json={"name": "x", "role": "owner"}).status_code == 422

    revoked = call(client, "POST", f"/tokens/{made.json['id']}/revoke", admin)
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    assert call(client, "GET", "/stores?program=x", new).status_code == 401
    live = call(client, "GET", "/tokens?include_revoked=false", admin).json["items"]
    assert [t["name"] for t in live] == ["admin token"]
    me = next(t for t in listed if t["name"] == "admin token")
    itself = call(client, "POST", f"/tokens/{me['id']}/revoke", admin)
    assert itself.status_code == 409 and itself.mimetype == "application/problem+json"
    assert call(client, "POST", "/tokens/999999/revoke", admin).status_code == 404


def test_the_audit_listing_filters_and_pages(client: FlaskClient, admin: str, db_session: Session) -> None:
    from datetime import timedelta

    from app.merchants import audit

    now = utcnow()
    for n in range(3):
        audit.record(db_session, actor=f"user{n}@shop.test", action="store-created", now=now - timedelta(days=n))
    db_session.commit()
    page = call(client, "GET", "/audit-events?per_page=2", admin).json
    assert [e["actor"] for e in page["items"]] == ["user0@shop.test", "user1@shop.test"] and page["next"] == 2
    assert call(client, "GET", "/audit-events?per_page=2&page=2", admin).json["items"][0]["actor"] == "user2@shop.test"
    day = (now - timedelta(days=1)).date().isoformat()
    dated = call(client, "GET", f"/audit-events?since={day}&until={day}", admin).json
    assert [e["actor"] for e in dated["items"]] == ["user1@shop.test"]
    reversed_range = call(client, "GET", "/audit-events?since=2026-02-02&until=2026-02-01", admin)
    assert reversed_range.status_code == 200 and reversed_range.json["items"] == []  # nothing is in it
    assert call(client, "GET", "/audit-events?until=9999-12-31", admin).status_code == 200
    assert call(client, "GET", "/audit-events", api_token(db_session, "marketer")).status_code == 403
