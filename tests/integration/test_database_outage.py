"""A database outage in the middle of real traffic, on real PostgreSQL: the service answers 503 with
``Retry-After`` (problem+json to the POS and the API, a page to browsers) and never 500, loses no acknowledged
purchase, and serves again as soon as the database is back, without a restart.

The app runs on a real HTTP server (werkzeug, threaded) with its own engine and pool, connected to PostgreSQL
through ``tests/fakes/tcp_link.py``: cutting the link resets every live connection and refuses new ones, as a
crashed or restarting server does, without touching the shared server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from app import create_app, signing
from app.channels.registry import EXTENSION as CHANNELS
from app.database import ENGINE, SESSIONS
from app.db import utcnow
from app.merchants import tokens
from app.models import ApiToken, Card, LedgerEntry, Purchase
from app.settings import Settings
from tests.conftest import seed_committed_shop
from tests.fakes.tcp_link import TcpLink

pytestmark = pytest.mark.committing

START_BALANCE = 100
AMOUNT, EARNED = "100.00", 3  # at the shop's 3 %
KINDS = ("pos", "api", "page", "health")


@pytest.fixture
def shop(committing_app: Flask) -> dict[str, Any]:
    factory = committing_app.extensions[SESSIONS]
    shop = seed_committed_shop(factory, slug="outage", earn_percent="3", balance=START_BALANCE, phone="+37369777000")
    with factory.begin() as session:
        card = session.get(Card, shop["card_id"])
        shop["page_token"], shop["customer_id"] = card.page_token, card.customer_id
        _row, shop["api_token"] = tokens.issue(session, name="outage test", role="viewer", now=utcnow())
    return shop


@pytest.fixture
def link(database_url: str) -> Iterator[TcpLink]:
    url = make_url(database_url)
    with TcpLink((url.host or "127.0.0.1", url.port or 5432)) as link:
        yield link


def _through(database_url: str, link: TcpLink) -> str:
    url = make_url(database_url).set(host="127.0.0.1", port=link.port)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def served(settings: Settings, database_url: str, link: TcpLink, committing_app: Flask) -> Iterator[str]:
    """The app on a real port, its database reached through ``link``."""
    app = create_app(settings.model_copy(update={"database_url": _through(database_url, link), "db_pool_size": 4}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)
    app.extensions[CHANNELS].close()
    app.extensions[ENGINE].dispose()


@dataclass
class Answer:
    kind: str  # pos | api | page | health
    ref: str  # the receipt of a purchase
    started: float
    ended: float
    status: int
    headers: httpx.Headers
    body: bytes


class Traffic:
    """Clients that keep sending requests until stopped, recording every answer with its times."""

    def __init__(self, base_url: str, shop: dict[str, Any]) -> None:
        self.base_url, self.shop = base_url, shop
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.receipts = iter(range(1_000_000))
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self, pos: int = 3, api: int = 2, page: int = 1, health: int = 1) -> None:
        for kind, count in (("pos", pos), ("api", api), ("page", page), ("health", health)):
            for _ in range(count):
                thread = threading.Thread(target=self._run, args=(kind,), daemon=True)
                thread.start()
                self.threads.append(thread)

    def wait_for_each_kind(self, since: float, *, times: int = 3, timeout: float = 30) -> None:
        """Until every kind of request started at ``since`` or later has been answered ``times`` times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                seen = [a.kind for a in self.answers if a.started >= since]
            if all(seen.count(kind) >= times for kind in KINDS):
                return
            time.sleep(0.05)
        raise AssertionError(f"too little traffic since {since}: {seen}")

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self.threads), "a client is stuck"

    def purchase(self, client: httpx.Client, receipt: str) -> httpx.Response:
        body = json.dumps({"receipt_id": receipt, "card": self.shop["barcode"], "amount": AMOUNT}).encode()
        headers = {"Tallypass-Key": self.shop["key_id"], "Content-Type": "application/json",
                   "Tallypass-Signature": signing.signature_header(self.shop["secret"], body),
                   "Idempotency-Key": f"key-{receipt}"}
        return client.post("/api/v1/pos/purchases", content=body, headers=headers)

    def _send(self, client: httpx.Client, kind: str) -> tuple[str, httpx.Response]:
        if kind == "pos":
            with self.lock:
                receipt = f"R{next(self.receipts)}"
            return receipt, self.purchase(client, receipt)
        if kind == "api":
            return "", client.get(f"/api/v1/customers/{self.shop['customer_id']}",
                                  headers={"Authorization": f"Bearer {self.shop['api_token']}"})
        if kind == "page":
            return "", client.get(f"/c/{self.shop['page_token']}", headers={"Accept": "text/html"})
        return "", client.get("/healthz")

    def _run(self, kind: str) -> None:
        with httpx.Client(base_url=self.base_url, timeout=20) as client:
            while not self.stopping.is_set():
                started = time.monotonic()
                ref, response = self._send(client, kind)
                answer = Answer(kind, ref, started, time.monotonic(), response.status_code, response.headers,
                                response.content)
                with self.lock:
                    self.answers.append(answer)
                time.sleep(0.01)


def assert_outage_answer(answer: Answer) -> None:
    """503 with a Retry-After in seconds, in the form the caller reads."""
    assert answer.status == 503, answer
    assert int(answer.headers["Retry-After"]) > 0, answer
    if answer.kind == "page":
        assert answer.headers["Content-Type"].startswith("text/html"), answer
        assert b"Temporarily unavailable" in answer.body, answer
    elif answer.kind == "health":
        assert json.loads(answer.body)["database"] == "unreachable", answer
    else:
        problem = json.loads(answer.body)
        assert answer.headers["Content-Type"] == "application/problem+json", answer
        assert problem["status"] == 503 and problem["type"].endswith("/database-unavailable"), problem


def test_a_database_outage_mid_traffic_gives_503_with_retry_after_then_recovers_without_a_restart(
        served: str, shop: dict[str, Any], link: TcpLink, committing_app: Flask) -> None:
    traffic = Traffic(served, shop)
    traffic.start()
    traffic.wait_for_each_kind(0)
    cut_at = time.monotonic()
    link.cut()
    cut_done = time.monotonic()
    traffic.wait_for_each_kind(cut_done)
    restore_at = time.monotonic()
    link.restore()
    restored = time.monotonic()
    traffic.wait_for_each_kind(restored)
    traffic.stop()

    answers = traffic.answers
    assert not [a for a in answers if a.status >= 500 and a.status != 503], "a 5xx other than 503"
    before = [a for a in answers if a.ended < cut_at]
    during = [a for a in answers if a.started >= cut_done and a.ended < restore_at]
    after = [a for a in answers if a.started >= restored]
    assert {a.kind for a in before} == set(KINDS) and all(200 <= a.status < 300 for a in before), before
    # Every request made while the database was away: 503 with Retry-After, of every kind.
    assert {a.kind for a in during} == set(KINDS), "the cut saw too little traffic"
    for answer in during:
        assert_outage_answer(answer)
    for answer in answers:
        if answer.status == 503:
            assert_outage_answer(answer)
    # Back without a restart: the first requests after the database returned succeed, of every kind.
    assert {a.kind for a in after} == set(KINDS)
    assert [a for a in after if not 200 <= a.status < 300] == []

    # No acknowledged purchase lost: each 201 is stored. A till retries each 503 with the same Idempotency-Key:
    # now every purchase counts exactly once (a purchase committed just before its answer was lost replays).
    acknowledged = {a.ref for a in answers if a.kind == "pos" and a.status == 201}
    refused = {a.ref for a in answers if a.kind == "pos" and a.status == 503}
    factory = committing_app.extensions[SESSIONS]
    with factory() as session:
        stored = set(session.scalars(select(Purchase.receipt_id)))
    assert acknowledged <= stored
    with httpx.Client(base_url=served, timeout=20) as client:
        for receipt in sorted(refused):
            assert traffic.purchase(client, receipt).status_code == 201
    with factory() as session:
        receipts = list(session.scalars(select(Purchase.receipt_id)))
        balance = session.scalar(select(Card.balance).where(Card.id == shop["card_id"]))
        ledger_sum = session.scalar(select(func.sum(LedgerEntry.points)).where(LedgerEntry.card_id == shop["card_id"]))
    assert sorted(receipts) == sorted(acknowledged | refused)  # each once
    assert balance == ledger_sum == START_BALANCE + EARNED * len(receipts)
    assert Decimal(AMOUNT) * 3 / 100 == EARNED


# ---------------------------------------------------------------- a read-only database (failover to a standby)


@pytest.fixture
def read_only_app(settings: Settings, database_url: str, committing_app: Flask) -> Iterator[Flask]:
    """The app on a database that refuses writes: every connection starts with default_transaction_read_only,
    as after a failover to a hot standby (same SQLSTATE 25006 for every write)."""
    url = make_url(database_url).update_query_dict({"options": "-c default_transaction_read_only=on"})
    app = create_app(settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)}))
    yield app
    app.extensions[CHANNELS].close()
    app.extensions[ENGINE].dispose()


def _signed_in_cookie(committing_app: Flask) -> str:
    """A dashboard session made on the writable database (signing in writes the audit log)."""
    from app.merchants.users import create_user
    from tests.web.dashboard_client import PASSWORD, csrf

    with committing_app.extensions[SESSIONS].begin() as session:
        create_user(session, email="owner@shop.test", password=PASSWORD, role="admin")
    client = committing_app.test_client()
    signed_in = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": "owner@shop.test",
                                                      "password": PASSWORD})
    assert signed_in.status_code == 303
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_read_only_database_refuses_purchases_with_503_and_still_answers_reads(
        read_only_app: Flask, shop: dict[str, Any], committing_app: Flask) -> None:
    client = read_only_app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["database"] == "read-only"
    assert int(health.headers["Retry-After"]) > 0

    body = json.dumps({"receipt_id": "RO-1", "card": shop["barcode"], "amount": AMOUNT}).encode()
    purchase = client.post("/api/v1/pos/purchases", data=body, headers={
        "Tallypass-Key": shop["key_id"], "Tallypass-Signature": signing.signature_header(shop["secret"], body),
        "Content-Type": "application/json", "Idempotency-Key": "ro-1"})
    assert purchase.status_code == 503 and purchase.mimetype == "application/problem+json"
    assert purchase.get_json()["type"].endswith("/database-read-only")
    assert int(purchase.headers["Retry-After"]) > 0

    # Reads answer although "last used" (due: the token was never used) cannot be written.
    read = client.get(f"/api/v1/customers/{shop['customer_id']}",
                      headers={"Authorization": f"Bearer {shop['api_token']}"})
    assert read.status_code == 200, read.get_json(force=True)
    page = client.get(f"/c/{shop['page_token']}")
    assert page.status_code == 200
    client.set_cookie("session", _signed_in_cookie(committing_app))
    assert client.get("/dashboard/").status_code == 200

    # A form that writes gets the 503 page, which says the change may not be saved.
    token = client.get(f"/c/{shop['page_token']}").text.split('name="csrf_token" value="')[1].split('"')[0]
    saved = client.post(f"/c/{shop['page_token']}/consents", data={"csrf_token": token, "consent_sms": "yes"})
    assert saved.status_code == 503 and saved.mimetype == "text/html"
    assert "may not have been saved" in saved.text and int(saved.headers["Retry-After"]) > 0
    assert 'http-equiv="refresh"' not in saved.text  # a form post is not repeated by itself

    with committing_app.extensions[SESSIONS]() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 0
        assert session.scalar(select(ApiToken.last_used_at)) is None


def test_a_signed_in_user_gets_the_outage_page_not_a_crash_when_the_database_is_down(
        settings: Settings, committing_app: Flask) -> None:
    """The dashboard's pages ask who is signed in; the outage page must not (it is shown without the database)."""
    cookie = _signed_in_cookie(committing_app)
    down = create_app(settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}))
    try:
        client = down.test_client()
        client.set_cookie("session", cookie)
        page = client.get("/dashboard/")
        assert page.status_code == 503 and page.mimetype == "text/html"
        assert "Temporarily unavailable" in page.text
        assert page.headers["Retry-After"] == "5" and 'http-equiv="refresh" content="5"' in page.text
        assert page.headers["Content-Security-Policy"]  # the dashboard's own headers still apply
    finally:
        down.extensions[CHANNELS].close()
        down.extensions[ENGINE].dispose()
