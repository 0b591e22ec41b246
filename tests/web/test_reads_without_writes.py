"""Every page and JSON read answers while the database refuses writes (a read-only standby after a failover).

A read that also writes bookkeeping ("last used", "last seen", ...) in the request's own transaction fails as
soon as that write fails. Bookkeeping belongs in ``app.database.best_effort_write``, which skips it when the
database refuses. This test opens every GET route of the app, with real ids and each caller's credentials, in
a transaction that is read-only, so a new route that writes while reading fails here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import tokens
from app.models import ApiToken
from tests.conftest import PosClient, PosCredentials
from tests.web.api_client import call
from tests.web.dashboard_client import sign_in_as
from tests.web.test_passkit import DEVICE, PASS_TYPE, auth, register

# Routes that cannot be reached with a GET and real values (none today); say why when adding one.
NOT_CHECKED: dict[str, str] = {}
# GET routes that answer 503 while the database refuses writes, by design.
UNAVAILABLE_WHEN_READ_ONLY = {
    "api.export_customers": "an export of every member's personal data is audited first, or not made",
    "dashboard.customers_export": "an export of every member's personal data is audited first, or not made",
    "health.healthz": "tells the load balancer that this database takes no purchases",
}


@pytest.fixture
def world(client: FlaskClient, db_session: Session, make_program: Callable[..., Any],
          make_store: Callable[..., PosCredentials], make_card: Callable[..., Any]) -> dict[str, Any]:
    """One of everything a GET route can name, made while the database still accepts writes."""
    program = make_program(welcome_bonus=0)
    creds = make_store(program, name="Centru")
    card = make_card(program, balance=40, name="Ana Popescu")
    db_session.commit()
    row, token = tokens.issue(db_session, name="reader", role="admin", now=utcnow())
    db_session.commit()
    rules = {"all": [{"field": "balance", "op": "gte", "value": 1}]}
    segment = call(client, "POST", "/segments", token, json={"program": program.slug, "name": "All", "kind": "rules",
                                                             "rules": rules})
    campaign = call(client, "POST", "/campaigns", token, json={
        "program": program.slug, "name": "Hello", "channels": ["sms"],
        "variants": [{"name": "A", "body": "Hi {{ first_name }}"}]})
    assert segment.status_code == 201 and campaign.status_code == 201, (segment.json, campaign.json)
    assert register(client, card).status_code == 201
    admin, _ = sign_in_as(client, db_session, "admin")
    # The token was used above, less than a minute ago: make its "last used" due again, so reads try to write it.
    db_session.get(ApiToken, row.id).last_used_at = None
    db_session.commit()
    return {"program": program, "creds": creds, "card": card, "token": token, "segment_id": segment.json["id"],
            "campaign_id": campaign.json["id"], "user_id": admin.id}


def _values(world: dict[str, Any]) -> dict[str, str]:
    program, card = world["program"], world["card"]
    return {
        "campaign_id": str(world["campaign_id"]), "customer_id": str(card.customer_id),
        "segment_id": str(world["segment_id"]), "store_id": str(world["creds"].store.id),
        "program_id": str(program.id), "job_id": "999999", "import_id": "999999", "slug": program.slug,
        "token": card.page_token,
        "barcode": card.barcode, "serial": card.serial, "pass_type_id": PASS_TYPE, "device_id": DEVICE,
        "kind": "logo", "digest": "0" * 16, "filename": "style.css", "user_id": str(world["user_id"]),
    }


def _read_routes(app: Flask, values: dict[str, str]) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_CHECKED:
            continue
        names = re.findall(r"<(?:[^:>]+:)?(\w+)>", rule.rule)
        missing = [name for name in names if name not in values]
        assert not missing, f"{rule.rule}: give {missing} a real value in _values (or NOT_CHECKED, with why)"
        routes.append((rule.endpoint, re.sub(r"<(?:[^:>]+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)))
    return sorted(routes)


@contextlib.contextmanager
def make_read_only(connection: Connection, is_postgres: bool) -> Iterator[None]:
    """Inside the block, the test's transaction refuses every write, as a hot standby does. What the app's
    sessions wrote before must be committed (their savepoints released) first."""
    if is_postgres:
        # In a savepoint of its own: rolling it back is the only way back to read-write.
        savepoint = connection.begin_nested()
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield
        finally:
            savepoint.rollback()
    else:
        connection.exec_driver_sql("PRAGMA query_only = ON")
        try:
            yield
        finally:
            connection.exec_driver_sql("PRAGMA query_only = OFF")


def test_every_read_answers_while_the_database_refuses_writes(
        app: Flask, client: FlaskClient, world: dict[str, Any], connection: Connection, is_postgres: bool) -> None:
    routes = _read_routes(app, _values(world))
    assert len(routes) > 50
    pos = PosClient(client, world["creds"])
    with make_read_only(connection, is_postgres):
        failures = []
        for endpoint, path in routes:
            if endpoint.startswith("pos."):
                response = pos.get(path.removeprefix("/api/v1/pos"))
            elif endpoint.startswith("api."):
                bearer = {"Authorization": f"Bearer {world['token']}"}
                response = client.get(path, headers=bearer)
                if response.status_code == 422:  # a programme's list: name the programme
                    response = client.get(path, query_string={"program": world["program"].slug}, headers=bearer)
            elif endpoint == "passkit.latest_pass":
                response = client.get(path, headers=auth(world["card"]))
            else:
                response = client.get(path)
            if response.status_code != 503 if endpoint in UNAVAILABLE_WHEN_READ_ONLY else response.status_code >= 500:
                failures.append((endpoint, path, response.status_code, response.get_data(as_text=True)[:300]))
            response.close()
    assert failures == []
