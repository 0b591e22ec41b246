"""The till's attempts racing, with real commits on PostgreSQL (skipped on SQLite): one attempt sent several times
at once (a double tap, a retry while the first is still on its way) is recorded once, and every answer that is
not "still in flight" is the same stored one."""

from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.database import SESSIONS
from app.merchants.users import create_user
from app.models import AuditEvent, Card, LedgerEntry, Purchase
from tests.conftest import seed_committed_shop
from tests.web.dashboard_client import PASSWORD, csrf

pytestmark = pytest.mark.committing

COPIES = 6


def _signed_in(app: Flask, store_id: int) -> tuple[FlaskClient, str]:
    with app.extensions[SESSIONS].begin() as session:
        create_user(session, email="ion@till.test", password=PASSWORD, role="cashier", store_ids=[store_id])
    client = app.test_client()
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "ion@till.test",
                                                     "password": PASSWORD})
    assert response.status_code == 303
    match = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/till/").text)
    assert match
    return client, match.group(1)


def test_one_attempt_sent_at_once_many_times_is_recorded_once(committing_app: Flask) -> None:
    factory = committing_app.extensions[SESSIONS]
    shop = seed_committed_shop(factory, slug="till-race", earn_percent="5", balance=50, phone="+37369555001")
    client, token = _signed_in(committing_app, shop["store_id"])
    cookie = client.get_cookie("session")
    assert cookie is not None
    payload = {"store": shop["store_id"], "card": shop["barcode"], "amount": "40.00", "redeem_points": 10,
               "attempt": str(uuid.uuid4())}
    barrier = threading.Barrier(COPIES)

    def send(_: int) -> tuple[int, dict[str, Any]]:
        copy = committing_app.test_client()  # its own connection, the same browser session
        copy.set_cookie("session", cookie.value)
        barrier.wait()
        response = copy.post("/till/api/purchases", json=payload, headers={"X-CSRF-Token": token})
        return response.status_code, response.get_json(force=True)

    with ThreadPoolExecutor(COPIES) as pool:
        answers = list(pool.map(send, range(COPIES)))

    settled = {json.dumps(body, sort_keys=True) for status, body in answers if status != 409}
    assert len(settled) == 1, answers
    for status, body in answers:
        assert status in (201, 409), (status, body)
        if status == 409:
            assert body["type"].endswith("/idempotency-key-in-flight"), body
    # Nothing in flight now: the retry gets the stored answer.
    retry = client.post("/till/api/purchases", json=payload, headers={"X-CSRF-Token": token})
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert json.dumps(retry.get_json(), sort_keys=True) in settled

    with factory() as session:
        [purchase] = session.scalars(select(Purchase).where(Purchase.card_id == shop["card_id"])).all()
        assert purchase.receipt_id == f"till-{payload['attempt']}"
        entries = sorted((e.kind, e.points) for e in session.scalars(
            select(LedgerEntry).where(LedgerEntry.purchase_id == purchase.id)))
        assert entries == [("earn", 1), ("redeem", -10)]  # 5 % of 30.00 paid
        card = session.get(Card, shop["card_id"])
        assert card is not None and card.balance == 41 == retry.get_json()["card"]["balance"]
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "till.purchase")) == 1
