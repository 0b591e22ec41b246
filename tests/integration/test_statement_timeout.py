"""The database statement timeout on real PostgreSQL: web requests get ``TALLYPASS_DB_STATEMENT_TIMEOUT``, a
statement past it is cancelled and answered 503 (problem+json, or the page), and the connection goes back to the
pool clean; tasks and CLI commands get ``TALLYPASS_DB_WORKER_STATEMENT_TIMEOUT`` (default: the server's own)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask, jsonify
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import create_app, signing
from app.channels.registry import EXTENSION as CHANNELS
from app.database import ENGINE, SESSIONS, get_session, sessions
from app.settings import Settings
from tests.conftest import seed_committed_shop

pytestmark = pytest.mark.committing

APP_NAME = "tallypass-timeout-test"


@pytest.fixture
def make_app(settings: Settings, database_url: str, committing_app: Flask) -> Iterator[Callable[..., Flask]]:
    """Apps with their own engine (the timeout is set by the engine), marked in pg_stat_activity."""
    made: list[Flask] = []
    url = make_url(database_url).update_query_dict({"application_name": APP_NAME})

    def make(**changes: Any) -> Flask:
        app = create_app(settings.model_copy(update={
            "database_url": url.render_as_string(hide_password=False), "db_pool_size": 1, **changes}))

        @app.get("/api/v1/_test/sleep")
        def sleep_json() -> Any:
            get_session().execute(text("SELECT pg_sleep(5)"))
            return {"slept": True}

        @app.get("/_test/sleep")
        def sleep_page() -> Any:
            get_session().execute(text("SELECT pg_sleep(5)"))
            return "slept"

        @app.get("/_test/timeout")
        def show_timeout() -> Any:
            return jsonify(get_session().execute(text("SHOW statement_timeout")).scalar())

        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions[CHANNELS].close()
        app.extensions[ENGINE].dispose()


def _backends(database_url: str) -> list[tuple[str, str]]:
    libpq = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        return admin.execute("SELECT state, coalesce(query, '') FROM pg_stat_activity WHERE application_name = %s",
                             (APP_NAME,)).fetchall()


def test_a_statement_past_the_web_timeout_answers_503_and_the_connection_stays_clean(
        make_app: Callable[..., Flask], database_url: str) -> None:
    client = make_app(db_statement_timeout=0.3).test_client()
    started = time.monotonic()
    api = client.get("/api/v1/_test/sleep")
    assert time.monotonic() - started < 3  # cancelled at 0.3 s, not after the 5 s sleep
    assert api.status_code == 503 and api.mimetype == "application/problem+json"
    problem = api.get_json(force=True)
    assert problem["type"].endswith("/database-timeout") and problem["status"] == 503
    assert int(api.headers["Retry-After"]) > 0
    page = client.get("/_test/sleep", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "Temporarily unavailable" in page.text and int(page.headers["Retry-After"]) > 0
    # The cancelled transaction was rolled back: the pooled connection sits idle, not "idle in transaction
    # (aborted)", and the next request on it (a pool of one) works.
    assert [state for state, _ in _backends(database_url)] == ["idle"]
    assert client.get("/_test/timeout").get_json() == "300ms"
    assert len(_backends(database_url)) == 1


def test_a_purchase_waiting_on_a_locked_card_gets_503_then_goes_through_on_retry(
        make_app: Callable[..., Flask], committing_app: Flask, database_url: str) -> None:
    """A long transaction holding the card (the reason the issue asks for a timeout) no longer holds the till."""
    shop = seed_committed_shop(committing_app.extensions[SESSIONS], slug="locked", earn_percent="3", balance=0,
                               phone="+37369888000")
    client = make_app(db_statement_timeout=0.5).test_client()
    body = json.dumps({"receipt_id": "L1", "card": shop["barcode"], "amount": "100.00"}).encode()

    def post() -> Any:
        return client.post("/api/v1/pos/purchases", data=body, headers={
            "Tallypass-Key": shop["key_id"], "Tallypass-Signature": signing.signature_header(shop["secret"], body),
            "Content-Type": "application/json", "Idempotency-Key": "locked-1"})

    libpq = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    answers: list[Any] = []
    with psycopg.connect(libpq) as holder:
        holder.execute("SELECT 1 FROM card WHERE id = %s FOR UPDATE", (shop["card_id"],))
        till = threading.Thread(target=lambda: answers.append(post()))
        started = time.monotonic()
        till.start()
        till.join(5)  # without a statement timeout the till would wait for as long as the lock is held
        waited = time.monotonic() - started
        holder.rollback()
    till.join(10)
    assert waited < 5, "the purchase waited for the lock"
    refused = answers[0]
    assert refused.status_code == 503, refused.get_json(force=True)
    assert refused.get_json(force=True)["type"].endswith("/database-timeout")
    assert int(refused.headers["Retry-After"]) > 0
    retried = post()
    assert retried.status_code == 201, retried.get_json(force=True)
    assert retried.get_json()["card"]["balance"] == 3


def test_tasks_and_commands_get_the_worker_timeout_and_requests_the_web_one_on_the_same_connection(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(db_statement_timeout=7, db_worker_statement_timeout=0)

    def outside_a_request() -> str:
        with app.app_context(), sessions()() as session:  # as a Celery task or a CLI command uses the database
            return session.execute(text("SHOW statement_timeout")).scalar_one()

    server_default = outside_a_request()
    client = app.test_client()
    assert client.get("/_test/timeout").get_json() == "7s"
    assert outside_a_request() == server_default  # reset on the very connection the request used
    assert client.get("/_test/timeout").get_json() == "7s"

    worker = make_app(db_statement_timeout=7, db_worker_statement_timeout=3600)
    with worker.app_context(), sessions()() as session:
        assert session.execute(text("SHOW statement_timeout")).scalar_one() == "1h"


def test_the_settings_default_to_a_web_timeout_and_none_for_workers() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert 0 < defaults.db_statement_timeout < 60  # under the usual proxy timeout
    assert defaults.db_worker_statement_timeout == 0
