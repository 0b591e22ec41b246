"""Test fixtures (STYLE.md §5 recipe).

The schema is built once per run by the Alembic migrations, on PostgreSQL when
TALLYPASS_TEST_DATABASE_URL is set (CI), else on a SQLite file. Each test runs inside an outer
transaction that is rolled back: the app's sessions, the services and eager Celery tasks all join it
through savepoints. Tests marked ``committing`` use real commits on their own connections instead and
the tables are emptied afterwards.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from app import create_app, migrate, signing
from app.channels.registry import EXTENSION as CHANNELS
from app.database import SESSIONS
from app.db import Base, make_engine, make_session_factory
from app.settings import Settings
from app.tasks.outbox import dispatch_events

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-for-production"


def _normalise(url: str) -> str:
    return Settings(_env_file=None, database_url=url).database_url  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TALLYPASS_TEST_DATABASE_URL")
    if url:
        return _normalise(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Every logger as it was before the test: an app made with ``env`` other than testing configures logging
    (app.log.configure_logging quietens httpx and hpack, replaces the root's handlers), and later tests read
    those loggers' records."""
    def ours(handlers: list[logging.Handler]) -> list[logging.Handler]:
        return [h for h in handlers if not type(h).__module__.startswith("_pytest")]  # pytest's come and go

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    saved = [(logger, logger.level, ours(logger.handlers), logger.propagate, logger.disabled) for logger in loggers]
    yield
    for logger, level, handlers, propagate, disabled in saved:
        logger.setLevel(level)
        logger.handlers[:] = [*handlers, *(h for h in logger.handlers if h not in ours(logger.handlers))]
        logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture
def pg_url(database_url: str, is_postgres: bool) -> str:
    """The test database's URL, for a test that makes engines of its own on PostgreSQL (skipped on SQLite)."""
    if not is_postgres:
        pytest.skip("needs PostgreSQL (TALLYPASS_TEST_DATABASE_URL)")
    return database_url


@pytest.fixture(scope="session")
def engine(database_url: str, is_postgres: bool) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=30)
    if is_postgres:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture(scope="session")
def apple_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in credentials (``dev-certs``: Apple for the settings' default pass type and team, Google)."""
    from app.channels.dev_credentials import write_dev_credentials

    out = tmp_path_factory.mktemp("apple-certs")
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    write_dev_credentials(out, pass_type_id=defaults.apple_pass_type_id, team_id=defaults.apple_team_id)
    return out


@pytest.fixture
def settings(database_url: str, apple_certs: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, env="testing", database_url=database_url, broker_url="",
        secret_key=TEST_SECRET_KEY, base_url="https://tallypass.test",
        pos_rate_limit="10000/second",  # the limit has its own test; load tests must not hit it
        form_rate_limit="10000/minute",
        apple_pass_cert=apple_certs / "pass-cert.pem", apple_pass_key=apple_certs / "pass-key.pem",
        apple_wwdr_cert=apple_certs / "wwdr.pem", google_service_account=apple_certs / "google-service-account.json",
        vapid_private_key=apple_certs / "vapid-private.pem", vapid_subject="mailto:ops@tallypass.test",
    )


@pytest.fixture
def app(settings: Settings, connection: Connection) -> Iterator[Flask]:
    app = create_app(settings)
    app.extensions[SESSIONS] = make_session_factory(
        connection, dispatch=dispatch_events, join_transaction_mode="create_savepoint"
    )
    yield app
    app.extensions[CHANNELS].close()


@pytest.fixture
def app_with(settings: Settings, connection: Connection) -> Iterator[Callable[..., Flask]]:
    """Another app on the test's connection, with some settings changed: ``app_with(apns_url=...)``."""
    made: list[Flask] = []

    def make(**changes: Any) -> Flask:
        other = create_app(settings.model_copy(update=changes))
        other.extensions[SESSIONS] = make_session_factory(
            connection, dispatch=dispatch_events, join_transaction_mode="create_savepoint"
        )
        made.append(other)
        return other

    yield make
    for other in made:
        other.extensions[CHANNELS].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    session = app.extensions[SESSIONS]()
    yield session
    session.close()


# ---------------------------------------------------------------- committing tests (PostgreSQL)


@pytest.fixture
def committing_app(settings: Settings, engine: Engine, is_postgres: bool) -> Iterator[Flask]:
    """An app whose requests commit for real (concurrency tests). Tables are emptied afterwards."""
    if not is_postgres:
        pytest.skip("needs PostgreSQL (set TALLYPASS_TEST_DATABASE_URL)")
    app = create_app(settings)
    app.extensions[SESSIONS] = make_session_factory(engine, dispatch=dispatch_events)
    yield app
    app.extensions[CHANNELS].close()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def seed_committed_shop(factory: Any, *, slug: str, earn_percent: str, balance: int, phone: str) -> dict[str, Any]:
    """For committing tests: a one-tier programme, a store with a POS key and a card, committed."""
    from app.loyalty import enrollment, ledger
    from app.merchants.stores import create_store, issue_credential
    from app.models import Program, Tier

    with factory.begin() as session:
        program = Program(slug=slug, name=slug.title(), point_value=Decimal("1.00"), redeem_cap_percent=Decimal("50"))
        session.add(program)
        session.flush()
        session.add(Tier(program_id=program.id, name="Only", qualifying_spend=Decimal("0"),
                         earn_percent=Decimal(earn_percent)))
        store = create_store(session, program=program, name="Till")
        issued = issue_credential(session, store=store, secret_key=TEST_SECRET_KEY)
        card = enrollment.enrol(session, program=program, phone=phone).card
        ledger.grant_bonus(session, card=card, points=balance, reason="start")
        return {"key_id": issued.credential.key_id, "secret": issued.secret, "barcode": card.barcode,
                "card_id": card.id, "store_id": store.id}


# ---------------------------------------------------------------- factories


@pytest.fixture
def make_program(db_session: Session) -> Callable[..., Any]:
    from app.models import Program, Tier

    counter = iter(range(1, 10_000))

    def make(tiers: list[tuple[str, str, str]] | None = None, **fields: Any) -> Program:
        n = next(counter)
        values: dict[str, Any] = {
            "slug": f"prog-{n}", "name": f"Programme {n}", "currency": "MDL", "point_value": Decimal("1.00"),
            "redeem_cap_percent": Decimal("50"), "expiry_days": 365,
        }
        values.update(fields)
        program = Program(**values)
        db_session.add(program)
        db_session.flush()
        for name, spend, pct in tiers if tiers is not None else [
            ("Bronze", "0", "3"), ("Silver", "1000", "5"), ("Gold", "5000", "10")
        ]:
            db_session.add(Tier(program_id=program.id, name=name, qualifying_spend=Decimal(spend),
                                earn_percent=Decimal(pct)))
        db_session.flush()
        return program

    return make


class PosCredentials:
    def __init__(self, store: Any, key_id: str, secret: str) -> None:
        self.store, self.key_id, self.secret = store, key_id, secret


@pytest.fixture
def make_store(db_session: Session) -> Callable[..., PosCredentials]:
    from app.merchants.stores import create_store, issue_credential

    def make(program: Any, name: str = "Shop", **fields: Any) -> PosCredentials:
        store = create_store(db_session, program=program, name=name, **fields)
        issued = issue_credential(db_session, store=store, secret_key=TEST_SECRET_KEY)
        return PosCredentials(store, issued.credential.key_id, issued.secret)

    return make


@pytest.fixture
def make_card(db_session: Session) -> Callable[..., Any]:
    from app.loyalty import enrollment, ledger

    counter = iter(range(1, 1_000_000))

    def make(program: Any, *, balance: int = 0, phone: str | None = None, **fields: Any) -> Any:
        n = next(counter)
        result = enrollment.enrol(db_session, program=program, phone=phone or f"+3736900{n:04d}",
                                  name=fields.pop("name", f"Customer {n}"), **fields)
        if balance:
            ledger.grant_bonus(db_session, card=result.card, points=balance, reason="test setup")
        db_session.flush()
        return result.card

    return make


class PosClient:
    """Signs requests exactly as a POS must (CONTRACTS.md §3)."""

    def __init__(self, client: FlaskClient, creds: PosCredentials) -> None:
        self.client, self.creds = client, creds

    def headers(self, body: bytes, *, timestamp: int | None = None, key: str | None = None) -> dict[str, str]:
        return {
            "Tallypass-Key": self.creds.key_id,
            "Tallypass-Signature": signing.signature_header(self.creds.secret, body, timestamp=timestamp),
            "Content-Type": "application/json",
            **({"Idempotency-Key": key} if key else {}),
        }

    def post(self, path: str, payload: Any, *, key: str | None = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Any:
        body = raw if raw is not None else json.dumps(payload).encode()
        all_headers = self.headers(body, key=key)
        all_headers.update(headers or {})
        return self.client.post(f"/api/v1/pos{path}", data=body, headers=all_headers)

    def get(self, path: str) -> Any:
        return self.client.get(f"/api/v1/pos{path}", headers=self.headers(b""))


@pytest.fixture
def pos_for(client: FlaskClient) -> Callable[[PosCredentials], PosClient]:
    return lambda creds: PosClient(client, creds)
