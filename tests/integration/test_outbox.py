"""The transactional outbox: events reach the dispatcher only after their transaction commits, each is
processed once, a sweeper finds what was lost, and a real Celery worker on Redis does the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app, outbox, signing
from app.database import SESSIONS
from app.db import make_session_factory, utcnow
from app.models import OutboxEvent
from app.tasks import outbox as outbox_tasks
from tests.conftest import TEST_SECRET_KEY, seed_committed_shop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorded(connection):
    """A session factory on the test connection whose dispatcher records what it is handed."""
    seen: list[int] = []
    factory = make_session_factory(connection, dispatch=seen.extend, join_transaction_mode="create_savepoint")
    return factory, seen


def test_events_are_dispatched_only_after_commit(recorded):
    factory, seen = recorded
    with factory() as session:
        ev = outbox.emit(session, "card.changed", {"card_id": 1})
        session.flush()
        assert seen == []
        session.commit()
        assert seen == [ev.id]


def test_releasing_a_savepoint_is_not_a_commit(recorded):
    factory, seen = recorded
    with factory() as session:
        with session.begin_nested():  # what the POS idempotency layer wraps each request in
            ev = outbox.emit(session, "card.changed", {"card_id": 1})
        assert seen == []  # an inline task could not even see the row yet
        session.commit()
        assert seen == [ev.id]


def test_rolled_back_events_are_never_dispatched(recorded):
    factory, seen = recorded
    with factory() as session:
        outbox.emit(session, "card.changed", {"card_id": 1})
        session.flush()
        session.rollback()
        session.commit()
    assert seen == []


def test_event_in_a_rolled_back_savepoint_is_dropped(recorded):
    factory, seen = recorded
    with factory() as session:
        kept = outbox.emit(session, "card.changed", {"card_id": 1})
        try:
            with session.begin_nested():
                outbox.emit(session, "card.changed", {"card_id": 2})
                raise RuntimeError("the service failed")
        except RuntimeError:
            pass
        session.commit()
        assert seen == [kept.id]
        topics = session.scalars(select(OutboxEvent.payload)).all()
        assert topics == [{"card_id": 1}]


def test_a_failing_dispatcher_does_not_undo_the_commit(connection):
    def broken(_ids):
        raise ConnectionError("broker is down")

    factory = make_session_factory(connection, dispatch=broken, join_transaction_mode="create_savepoint")
    with factory() as session:
        ev = outbox.emit(session, "card.changed", {"card_id": 1})
        session.commit()  # no exception: the sweeper will re-send
        assert session.get(OutboxEvent, ev.id).processed_at is None


def test_a_failing_handler_leaves_its_event_for_a_retry_and_the_rest_are_processed(app, db_session, monkeypatch):
    def boom(_session, payload):
        if payload["n"] == 2:
            raise RuntimeError("APNs said no")

    monkeypatch.setitem(outbox_tasks.HANDLERS, "test.topic", [boom])
    monkeypatch.setattr(outbox_tasks, "dispatch_events", lambda ids: None)
    events = [outbox.emit(db_session, "test.topic", {"n": n}) for n in (1, 2, 3)]
    db_session.flush()
    with app.app_context():
        assert outbox_tasks.process_batch() == 3
    for ev in events:
        db_session.refresh(ev)
    assert [ev.processed_at is not None for ev in events] == [True, False, True]
    assert events[1].attempts == 1 and "APNs said no" in events[1].last_error
    # A later drain retries it, until MAX_ATTEMPTS.
    events[1].attempts = outbox_tasks.MAX_ATTEMPTS
    db_session.flush()
    with app.app_context():
        assert outbox_tasks.process_batch() == 0


def test_debouncer_publishes_once_per_window_plus_one_at_its_end(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(outbox_tasks.time, "monotonic", lambda: clock[0])
    d = outbox_tasks._Debouncer(0.05)
    assert d.delay() == 0.0  # publish now
    clock[0] += 0.01
    assert d.delay() == pytest.approx(0.04)  # one more at the window's end covers later commits
    clock[0] += 0.01
    assert d.delay() is None  # already covered
    clock[0] += 0.05
    assert d.delay() == 0.0


def test_process_event_runs_handlers_once(db_session, monkeypatch):
    calls = []
    monkeypatch.setitem(outbox_tasks.HANDLERS, "test.topic", [lambda _s, payload: calls.append(payload)])
    ev = outbox.emit(db_session, "test.topic", {"n": 1})
    db_session.flush()
    assert outbox_tasks.process_event(db_session, ev.id) is True
    db_session.flush()
    assert outbox_tasks.process_event(db_session, ev.id) is False
    assert calls == [{"n": 1}]
    assert ev.processed_at is not None and ev.attempts == 1


def _unprocessed(session) -> list[int]:
    return list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None))))


def test_sweep_processes_what_was_left_behind(app, db_session):
    old = OutboxEvent(topic="card.changed", payload={}, created_at=utcnow() - timedelta(minutes=5))
    done = OutboxEvent(topic="card.changed", payload={}, created_at=utcnow() - timedelta(minutes=5),
                       processed_at=utcnow() - timedelta(minutes=1))
    db_session.add_all([old, done])
    db_session.flush()
    with app.app_context():
        assert outbox_tasks.sweep_outbox() == 1
    db_session.refresh(done)
    assert _unprocessed(db_session) == []
    assert done.processed_at < utcnow() - timedelta(seconds=30)  # not processed twice


def test_eager_mode_processes_events_at_commit(app, db_session, make_program, make_card):
    card = make_card(make_program(), balance=10)
    db_session.commit()
    events = db_session.scalars(select(OutboxEvent)).all()
    assert events and all(ev.processed_at is not None for ev in events)
    assert any(ev.payload.get("card_id") == card.id for ev in events)


# ---------------------------------------------------------------- with a broker (PostgreSQL + Redis)


def _redis_url() -> str:
    return os.environ.get("TALLYPASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(_redis_url(), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _seed(factory):
    shop = seed_committed_shop(factory, slug="broker", earn_percent="5", balance=5, phone="+37369444000")
    return shop["key_id"], shop["secret"], shop["barcode"]


def _purchase(app, key_id, secret, barcode, receipt):
    body = json.dumps({"receipt_id": receipt, "card": barcode, "amount": "100.00"}).encode()
    headers = {"Tallypass-Key": key_id, "Tallypass-Signature": signing.signature_header(secret, body),
               "Content-Type": "application/json"}
    return app.test_client().post("/api/v1/pos/purchases", data=body, headers=headers)


@pytest.mark.committing
def test_real_worker_processes_committed_events(committing_app, settings, engine, database_url):
    if not _redis_available():
        pytest.skip("needs Redis at " + _redis_url())
    import redis

    redis.Redis.from_url(_redis_url()).flushdb()
    app = create_app(settings.model_copy(update={"broker_url": _redis_url()}))
    app.extensions[SESSIONS] = make_session_factory(engine, dispatch=outbox_tasks.dispatch_events)
    key_id, secret, barcode = _seed(app.extensions[SESSIONS])
    with app.extensions[SESSIONS]() as session:
        assert session.scalars(select(OutboxEvent).where(OutboxEvent.processed_at.is_(None))).all()

    env = {**os.environ, "TALLYPASS_DATABASE_URL": database_url, "TALLYPASS_BROKER_URL": _redis_url(),
           "TALLYPASS_SECRET_KEY": TEST_SECRET_KEY, "TALLYPASS_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.celery_app", "worker", "--pool", "solo", "--without-heartbeat",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        response = _purchase(app, key_id, secret, barcode, "W-1")
        assert response.status_code == 201
        deadline = time.monotonic() + 30
        pending = None
        while time.monotonic() < deadline:
            with app.extensions[SESSIONS]() as session:
                pending = session.scalars(select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None))).all()
            if not pending:
                break
            time.sleep(0.2)
        assert pending == [], "the worker did not process every committed event"
    finally:
        worker.terminate()
        _out, err = worker.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode()[-2000:]


@pytest.mark.committing
def test_broker_down_loses_nothing(committing_app, settings, engine):
    app = create_app(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))  # nothing listens
    app.extensions[SESSIONS] = make_session_factory(engine, dispatch=outbox_tasks.dispatch_events)
    key_id, secret, barcode = _seed(app.extensions[SESSIONS])

    started = time.monotonic()
    response = _purchase(app, key_id, secret, barcode, "D-1")
    # The sale is recorded although Redis (broker and rate-limit counter) is unreachable.
    assert response.status_code == 201
    assert time.monotonic() - started < 10

    with app.extensions[SESSIONS]() as session:
        pending = _unprocessed(session)
    assert pending  # kept for the sweeper

    # The broker is back (an inline one here): the beat sweeper delivers what was left behind.
    recovered = create_app(settings)
    recovered.extensions[SESSIONS] = make_session_factory(engine, dispatch=outbox_tasks.dispatch_events)
    with recovered.app_context():
        assert outbox_tasks.sweep_outbox() == len(pending)  # runs the task body here, in this app
    with recovered.extensions[SESSIONS]() as session:
        assert _unprocessed(session) == []


def test_the_channel_outbox_keeps_a_month(app, db_session):
    from datetime import timedelta

    from sqlalchemy import select

    from app.db import utcnow
    from app.models import ChannelMessage
    from app.tasks.outbox import purge_channel_messages

    now = utcnow()
    db_session.add_all([
        ChannelMessage(channel="sms", recipient="+37369000001", payload={}, created_at=now - timedelta(days=31)),
        ChannelMessage(channel="sms", recipient="+37369000002", payload={}, created_at=now - timedelta(days=29)),
    ])
    db_session.commit()
    with app.app_context():
        assert purge_channel_messages.run() == 1
    assert db_session.scalars(select(ChannelMessage.recipient)).all() == ["+37369000002"]
