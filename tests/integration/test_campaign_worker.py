"""A campaign sent by real Celery workers through Redis to the local stand-ins of every channel: Apple
(the pass update's APNs push over HTTP/2), Google Wallet (addMessage), a web-push service that decrypts
what it gets, and a Twilio-compatible SMS gateway. The first worker is killed outright in the middle;
a second one finishes the campaign. Every eligible customer gets exactly one message, nobody gets two,
and those who opted out, are in their quiet hours or reached the weekly cap are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import create_app
from app.campaigns import lifecycle, send
from app.campaigns.lifecycle import VariantSpec
from app.channels.registry import EXTENSION as CHANNELS
from app.database import SESSIONS
from app.db import make_session_factory, utcnow
from app.loyalty import enrollment
from app.models import (
    AppleDevice,
    AppleRegistration,
    Campaign,
    Card,
    Customer,
    Delivery,
    GoogleObject,
    OutboxEvent,
    Program,
    SmsOptOut,
    Tier,
    WebPushSubscription,
)
from app.settings import Settings
from app.tasks import outbox as outbox_tasks
from app.tasks.campaigns import BATCH
from app.wallet import google
from tests.fakes.apns_h2 import FakeApns
from tests.fakes.google_wallet_api import FakeGoogleWallet
from tests.fakes.push_service import FakePushService
from tests.fakes.sms_gateway import FakeSmsGateway

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, AUTH_TOKEN, SENDER = "AC" + "7" * 32, "f" * 32, "+37322000111"
GROUPS = {"apple": 600, "google": 150, "push": 900, "sms": 900, "opted_out": 150, "quiet": 150, "capped": 150}
BODY = "Hi {{ first_name }}, double points this weekend"


def _redis_url() -> str:
    return os.environ.get("TALLYPASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _zone_at(hour: int) -> str:
    """A fixed-offset zone where the local hour is ``hour`` now (Etc/GMT signs are inverted)."""
    offset = (hour - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}"


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYPASS_")}
    return {**env, **settings.environment(), "TALLYPASS_LOG_LEVEL": "WARNING"}


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app.celery_app", "worker", "--pool", "solo",
             "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )


@pytest.fixture
def fakes(apple_certs: Path) -> Iterator[dict[str, Any]]:
    account = json.loads((apple_certs / "google-service-account.json").read_text())
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(account["private_key"].encode(), password=None)
    with FakeApns(client_ca=[apple_certs / "root-ca.pem", apple_certs / "wwdr.pem"]) as apns, \
            FakeGoogleWallet(key, account["client_email"], Settings(_env_file=None).google_issuer_id) as wallet, \
            FakePushService() as push, FakeSmsGateway(ACCOUNT, AUTH_TOKEN, numbers=[SENDER]) as sms:  # type: ignore[call-arg]
        yield {"apns": apns, "google": wallet, "push": push, "sms": sms}


def _seed(app: Flask, fakes: dict[str, Any]) -> dict[str, Any]:
    """Customers in groups, committed; their sign-up events count as already handled (older members)."""
    factory = app.extensions[SESSIONS]
    noon, night = _zone_at(12), _zone_at(23)
    groups: dict[str, list[int]] = {name: [] for name in GROUPS}
    endpoints: dict[int, str] = {}
    tokens: dict[int, str] = {}
    with app.app_context(), factory.begin() as session:
        program = Program(slug="worker", name="Cafea", point_value=1, redeem_cap_percent=50)
        session.add(program)
        session.flush()
        session.add(Tier(program_id=program.id, name="Member", qualifying_spend=0, earn_percent=5))
        wallet = app.extensions[CHANNELS].google()
        n = 0
        for group, size in GROUPS.items():
            for _ in range(size):
                n += 1
                card = enrollment.enrol(session, program=program, phone=f"+3736{n:07d}", name=f"Ana{n} Popescu").card
                card.customer.timezone = night if group == "quiet" else noon
                channel = {"apple": "wallet", "google": "wallet", "push": "push"}.get(group, "sms")
                enrollment.set_consents(session, customer=card.customer, consents={channel: True}, source="test",
                                        now=utcnow())
                groups[group].append(card.id)
                if group == "apple":
                    tokens[card.id] = f"{n:064x}"
                    device = AppleDevice(library_id=f"device{n}", push_token=tokens[card.id])
                    session.add(device)
                    session.flush()
                    session.add(AppleRegistration(device_id=device.id, card_id=card.id))
                elif group == "google":
                    google.ensure_object(session, setup=wallet.setup, card=card, client=wallet.client, now=utcnow())
                elif group == "push":
                    sub = fakes["push"].new_subscription()
                    endpoints[card.id] = sub["endpoint"]
                    session.add(WebPushSubscription(customer_id=card.customer_id, **sub))
                elif group == "opted_out":
                    session.add(SmsOptOut(phone=card.customer.phone, sender=SENDER))  # texted STOP
        session.flush()
        earlier = lifecycle.create(session, program=program, name="Earlier", channels=["sms"], now=utcnow(),
                                   variants=[VariantSpec("A", "Earlier")])
        earlier.state = "finished"
        for card_id in groups["capped"]:  # two messages this week already
            card = session.get(Card, card_id)
            for day in (1, 2):
                session.add(Delivery(campaign_id=earlier.id, customer_id=card.customer_id, card_id=card_id,
                                     occurrence=str(day), status="sent", channel="sms",
                                     sent_at=utcnow() - timedelta(days=day)))
        campaign = lifecycle.create(session, program=program, name="Weekend", channels=["wallet", "push", "sms"],
                                    max_per_week=2, variants=[VariantSpec("A", BODY)], now=utcnow())
        session.execute(update(OutboxEvent).values(processed_at=utcnow()))
        versions = dict(session.execute(select(Card.id, Card.version)).all())
    return {"campaign_id": campaign.id, "groups": groups, "endpoints": endpoints, "tokens": tokens,
            "versions": versions}


def _count(session: Session, campaign_id: int, **where: Any) -> int:
    query = select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
    for column, value in where.items():
        query = query.where(getattr(Delivery, column) == value)
    return session.scalar(query) or 0


@pytest.mark.committing
def test_real_workers_send_a_campaign_once_through_a_crash(committing_app: Flask, settings: Settings,
                                                           fakes: dict[str, Any], engine: Any,
                                                           tmp_path: Path) -> None:
    try:
        import redis

        redis.Redis.from_url(_redis_url()).flushdb()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs Redis at {_redis_url()}: {exc}")
    settings = settings.model_copy(update={
        "broker_url": _redis_url(), "campaign_lease_seconds": 5, "base_url": "https://tallypass.test",
        "apns_url": fakes["apns"].url, "apns_ca_file": fakes["apns"].ca_file,
        "google_api_url": fakes["google"].api_url, "google_token_url": fakes["google"].token_url,
        "sms_provider": "twilio", "sms_api_url": fakes["sms"].api_url, "sms_account_sid": ACCOUNT,
        "sms_auth_token": SecretStr(AUTH_TOKEN), "sms_from": SENDER,
    })
    app = create_app(settings)
    app.extensions[SESSIONS] = make_session_factory(engine, dispatch=outbox_tasks.dispatch_events)
    seed = _seed(app, fakes)
    campaign_id, groups = seed["campaign_id"], seed["groups"]
    factory = app.extensions[SESSIONS]
    env = _worker_env(settings)
    first = _start_worker(env, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        from app.tasks.campaigns import start_campaign, tick_campaigns

        fakes["push"].hold_after(250 + 20)
        with app.app_context():
            start_campaign.delay(campaign_id)
        # Kill the first worker outright in the middle of a batch of web pushes: the push service has taken the
        # first 20 of the batch and holds the other 180, so some reached the browsers and none is recorded as
        # sent yet. (In id order the 750 wallet customers come first, then the pushes; with batches of 200,
        # pushes 251–450 are one batch.)
        deadline = time.monotonic() + 120
        while not fakes["push"].held and time.monotonic() < deadline:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.01)
        assert fakes["push"].held, "the worker never reached the held batch"
        time.sleep(0.5)  # the rest of its pushes in flight reach the gate too
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        fakes["push"].release()  # the held pushes reach the browsers after all; nobody hears of it
        with factory() as session:
            left = _count(session, campaign_id, status="queued") + _count(session, campaign_id, status="sending")
        assert left > 500, "the worker was meant to die mid-campaign"

        second = _start_worker(env, tmp_path / "second.log")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with app.app_context():  # what the beat does every minute, sooner
                tick_campaigns.delay()
                outbox_tasks.sweep_outbox.delay()
            time.sleep(2)
            with factory() as session:
                busy = session.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.campaign_id == campaign_id,
                    (Delivery.status == "sending") | ((Delivery.status == "queued") & Delivery.not_before.is_(None))))
                unprocessed = session.scalar(select(func.count()).select_from(OutboxEvent).where(
                    OutboxEvent.processed_at.is_(None)))
            if not busy and not unprocessed:
                break
        else:
            pytest.fail("the second worker did not finish the campaign")
        # The marketer's choice in the log. The web pushes the killed worker was handing over are
        # "interrupted": most of them did arrive. "Retry failed" leaves them alone; "resend interrupted" sends
        # them again with the same Topic, tag and id, so a copy replaces the first rather than repeating it.
        with app.app_context(), factory.begin() as session:
            campaign = session.get(Campaign, campaign_id)
            assert send.retryable(session, campaign=campaign)["failed"] == 0
            assert send.retry(session, campaign=campaign, deliveries="failed", now=utcnow()).requeued == 0
            resent = send.retry(session, campaign=campaign, deliveries="interrupted", now=utcnow()).requeued
        assert 0 < resent <= BATCH
        with app.app_context():
            from app.tasks.campaigns import kick

            kick(campaign_id, senders=1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with factory() as session:
                if not _count(session, campaign_id, resend_channel="push", status="queued") + _count(
                        session, campaign_id, resend_channel="push", status="sending"):
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the interrupted web pushes were not resent")
    finally:
        fakes["push"].release()
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(10)
        app.extensions[CHANNELS].close()
    assert b"Traceback" not in (tmp_path / "second.log").read_bytes(), (tmp_path / "second.log").read_text()[-3000:]

    with factory() as session:
        rows = {r.card_id: r for r in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))}
        cards = {c.id: c for c in session.scalars(select(Card))}
        campaign = session.get(Campaign, campaign_id)
        objects = dict(session.execute(select(GoogleObject.card_id, GoogleObject.object_id)).all())
        phones = dict(session.execute(select(Card.id, Customer.phone).join(Customer)).all())
    interrupted = {card_id for card_id, r in rows.items() if r.resend_channel == "push"}
    assert len(interrupted) == resent  # the batch the worker had in hand, and no other
    assert not any(r.reason == "interrupted" for r in rows.values())  # no text was in doubt here
    reached = [len(fakes["push"].messages(seed["endpoints"][card_id])) for card_id in interrupted]
    assert max(reached) == 2 and min(reached) == 1  # some had reached the browser before: now twice, others once
    for card_id in interrupted:  # ... and the two copies are one notification on the screen (sw.js: the tag)
        copies = fakes["push"].messages(seed["endpoints"][card_id])
        assert len({m["plaintext"] for m in copies}) == 1 and len({m["topic"] for m in copies}) == 1

    # Skipped, each with its reason; the quiet ones wait for their morning, and nothing went to them.
    for card_id in groups["opted_out"]:
        assert (rows[card_id].status, rows[card_id].reason) == ("skipped", "opted-out")
    for card_id in groups["capped"]:
        assert (rows[card_id].status, rows[card_id].reason) == ("skipped", "frequency-cap")
    for card_id in groups["quiet"]:
        row = rows[card_id]
        assert (row.status, row.reason) == ("queued", "quiet-hours") and row.not_before > utcnow()
    assert campaign is not None and campaign.state == "running"  # until the quiet customers' morning

    # Every eligible customer: sent (an interrupted web push once more, as the marketer chose).
    for group, channel in (("apple", "wallet"), ("google", "wallet"), ("push", "push"), ("sms", "sms")):
        for card_id in groups[group]:
            row = rows[card_id]
            assert (row.status, row.channel) == ("sent", channel), (group, card_id, row.status, row.error)

    # What the phones got. Apple: the pass changed once (one lock-screen message), and APNs told the device.
    pushed = Counter(r.token for r in fakes["apns"].requests)
    for card_id in groups["apple"]:
        assert cards[card_id].version == seed["versions"][card_id] + 1
        assert (cards[card_id].offer_text or "").endswith(", double points this weekend")
        assert pushed[seed["tokens"][card_id]] >= 1
    # Google: exactly one message with the campaign's id on each object.
    for card_id in groups["google"]:
        stored = fakes["google"].objects[objects[card_id]]
        ours = [m for m in stored.get("messages", []) if m["id"] == f"campaign-{campaign_id}"]
        assert len(ours) == 1 and ours[0]["body"].endswith(", double points this weekend"), card_id
    # Web push: decrypted by the push service, one per customer (two copies of one for an interrupted row).
    for card_id in groups["push"]:
        got = fakes["push"].messages(seed["endpoints"][card_id])
        assert len(got) == (len(got) if card_id in interrupted else 1) <= 2
        for message in got:
            assert json.loads(message["plaintext"])["body"].endswith("double points this weekend")
    # SMS: one text per number, none to those who opted out, are capped or asleep.
    texts = Counter(m.to for m in fakes["sms"].messages.values())
    for card_id in groups["sms"]:
        assert texts[phones[card_id]] == (texts[phones[card_id]] if card_id in interrupted else 1) <= 1
    for group in ("opted_out", "capped", "quiet", "apple", "google", "push"):
        assert not any(texts[phones[card_id]] for card_id in groups[group]), group
    assert max(texts.values()) == 1
