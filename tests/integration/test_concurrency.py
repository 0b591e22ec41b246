"""Concurrent POS traffic on one card, with real commits on PostgreSQL (skipped on SQLite).

Many threads post purchases and redemptions on the same card, each request delivered two or three
times at once (the same Idempotency-Key, or the same receipt under another key). The row lock and the
idempotency layer must make every logical request count exactly once and never overdraw.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from app import idempotency, signing
from app.database import SESSIONS
from app.loyalty import ledger
from app.models import LedgerEntry, Purchase
from tests.conftest import seed_committed_shop

pytestmark = pytest.mark.committing

START_BALANCE = 100
EARNERS = 20  # purchases of 100.00 at 3 %: +3 points each, no redemption
REDEEMERS = 30  # purchases of 20.00 redeeming 10 points (the cap allows 10); earn 0 on 10.00 paid


@pytest.fixture
def shop(committing_app):
    return seed_committed_shop(committing_app.extensions[SESSIONS], slug="race", earn_percent="3",
                               balance=START_BALANCE, phone="+37369555000")


def _post(app, shop, path, payload, key):
    body = json.dumps(payload).encode()
    headers = {"Tallypass-Key": shop["key_id"], "Tallypass-Signature": signing.signature_header(shop["secret"], body),
               "Content-Type": "application/json", "Idempotency-Key": key}
    response = app.test_client().post(f"/api/v1/pos{path}", data=body, headers=headers)
    return response.status_code, response.get_json(force=True)


def test_concurrent_purchases_and_redemptions_on_one_card(committing_app, shop):
    requests = []
    for i in range(EARNERS):
        requests.append((f"earn-{i}", {"receipt_id": f"E{i}", "card": shop["barcode"], "amount": "100.00"}))
    for i in range(REDEEMERS):
        requests.append((f"redeem-{i}", {"receipt_id": f"R{i}", "card": shop["barcode"], "amount": "20.00",
                                         "redeem_points": 10}))
    deliveries = []
    for n, (key, payload) in enumerate(requests):
        deliveries += [(key, payload, key), (key, payload, key)]  # a retry racing the original
        if n % 3 == 0:
            deliveries.append((key, payload, key + "-other-key"))  # the same receipt under another key
    barrier = threading.Barrier(24)

    def send(delivery):
        logical, payload, key = delivery
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        return logical, key, *_post(committing_app, shop, "/purchases", payload, key)

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(send, deliveries))

    by_key: dict[str, list[tuple[int, dict]]] = {}
    for _logical, key, status, body in results:
        assert status in (200, 201, 409, 422), (status, body)
        if status == 409:
            assert body["type"].endswith("idempotency-key-in-flight"), body
        if status == 422:
            assert body["type"].endswith("insufficient-points"), body
        by_key.setdefault(key, []).append((status, body))

    # Every non-conflict answer to one Idempotency-Key is the identical stored response.
    for answers in by_key.values():
        settled = [json.dumps(b, sort_keys=True) for s, b in answers if s != 409]
        assert len(set(settled)) <= 1, answers

    # Ask again now that nothing is in flight: every key has a settled answer. A receipt first
    # recorded under its other key answers 200 (already recorded) rather than 201.
    applied: set[str] = set()
    for key, payload in requests:
        for k in (key, key + "-other-key"):
            if k not in by_key:
                continue
            status, body = _post(committing_app, shop, "/purchases", payload, k)
            assert status in (200, 201, 422), (k, status, body)
            if status in (200, 201):
                applied.add(payload["receipt_id"])

    with committing_app.extensions[SESSIONS]() as session:
        purchases = session.execute(select(Purchase.receipt_id, Purchase.redeemed_points)).all()
    assert {r for r, _ in purchases} == applied  # recorded exactly when some answer said so
    assert len(purchases) == len(applied)  # and never twice
    redeemed = sum(1 for _r, points in purchases if points == 10)
    assert sum(1 for _r, points in purchases if points == 0) == EARNERS
    assert redeemed >= START_BALANCE // 10  # the starting balance alone pays for ten
    assert redeemed <= (START_BALANCE + 3 * EARNERS) // 10

    expected = START_BALANCE + 3 * EARNERS - 10 * redeemed
    with committing_app.extensions[SESSIONS]() as session:
        card_balance = session.execute(text("SELECT balance FROM card WHERE id = :id"),
                                       {"id": shop["card_id"]}).scalar_one()
        assert card_balance == expected >= 0
        assert ledger.ledger_sum(session, shop["card_id"]) == expected
        lots = session.scalar(select(func.sum(LedgerEntry.remaining)).where(
            LedgerEntry.card_id == shop["card_id"], LedgerEntry.remaining.is_not(None)))
        assert lots == expected
        assert session.scalar(select(func.min(LedgerEntry.remaining))) >= 0


def test_request_in_flight_gets_409_then_replays(committing_app, shop, engine):
    payload = {"receipt_id": "F1", "card": shop["barcode"], "amount": "10.00"}
    with engine.connect() as other:  # another request holding the key
        other.execute(text("SELECT pg_advisory_lock(:id)"), {"id": idempotency.lock_id(shop["store_id"], "busy")})
        status, body = _post(committing_app, shop, "/purchases", payload, "busy")
        assert status == 409 and body["type"].endswith("idempotency-key-in-flight")
        other.execute(text("SELECT pg_advisory_unlock_all()"))
    first = _post(committing_app, shop, "/purchases", payload, "busy")
    again = _post(committing_app, shop, "/purchases", payload, "busy")
    assert first[0] == again[0] == 201 and first[1] == again[1]
