"""Resending a campaign's interrupted web pushes replaces rather than repeats, through a real pusher and the
local push service (tests/fakes/push_service.py, which models RFC 8030 §5.4 topic replacement).

The crash is played in process: the intent is written (``send.prepare``), the messages are handed to the
push service, and the worker "dies" before it records anything. Past the lease the rows are failed as
interrupted; the marketer's "resend interrupted" sends them again. Each resend carries the same ``Topic``
(a copy still waiting for an offline browser is replaced, so that browser gets one) and the same ``tag``
and ``id`` in the payload (a copy that did arrive replaces the first on the screen: app/static/sw.js,
shown in Chromium by tests/browser/test_service_worker.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import lifecycle, send
from app.campaigns.channels import PushChannel, push_topic
from app.campaigns.lifecycle import VariantSpec
from app.channels.webpush import VapidKey, WebPushConfig, WebPusher
from app.loyalty import enrollment
from app.models import Delivery, WebPushSubscription
from app.tasks.campaigns import push_topic_key
from tests.fakes.push_service import FakePushService

NOON_UTC = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = "https://tallypass.test"
KEY = push_topic_key("test-secret-key")


@pytest.fixture
def push() -> Iterator[FakePushService]:
    with FakePushService() as service:
        yield service


@pytest.fixture
def pusher() -> Iterator[WebPusher]:
    with WebPusher(WebPushConfig(vapid_key=VapidKey.generate(), subject="mailto:ops@tallypass.example",
                                 backoff=0.005, backoff_max=0.05)) as made:
        yield made


def test_a_resent_interrupted_push_carries_the_same_topic_and_tag_and_replaces_the_pending_copy(
        db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any],
        push: FakePushService, pusher: WebPusher) -> None:
    program = make_program(name="Cafea & Co.")
    cards, endpoints = [], {}
    for _ in range(3):
        card = make_card(program, name="Ana Popescu")
        enrollment.set_consents(db_session, customer=card.customer, consents={"push": True}, source="test",
                                now=NOON_UTC)
        subscription = push.new_subscription()
        db_session.add(WebPushSubscription(customer_id=card.customer_id, created_at=NOON_UTC, **subscription))
        cards.append(card)
        endpoints[card.id] = subscription["endpoint"]
    db_session.flush()
    offline, online, never_left = cards
    push.go_offline(endpoints[offline.id])  # a phone switched off: its message waits at the push service
    channels = {"push": PushChannel(pusher=pusher, topic_key=KEY)}
    campaign = lifecycle.create(db_session, program=program, name="Weekend", channels=["push"],
                                variants=[VariantSpec("A", "Double points, {{ first_name }}", title="Cafea")],
                                now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)

    prepared = send.prepare(db_session, campaign_id=campaign.id, channels=channels, base_url=BASE, now=NOON_UTC)
    handed = [(i.row, i.card, i.message) for i in prepared.outgoing if i.card.id != never_left.id]
    assert len(handed) == 2
    channels["push"].send_many(db_session, items=handed, now=NOON_UTC)  # ... and the worker dies here
    later = NOON_UTC + send.LEASE + timedelta(seconds=1)
    outcomes = send.send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url=BASE,
                               now=later).outcomes
    assert outcomes == Counter({"failed:interrupted": 3})

    assert send.retry(db_session, campaign=campaign, deliveries="interrupted", now=later).requeued == 3
    outcomes = send.send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url=BASE,
                               now=later).outcomes
    assert outcomes == Counter({"sent": 3})

    rows = {d.card_id: d for d in db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}
    requests: dict[int, list[dict[str, Any]]] = {}
    for card in cards:
        sub_id = push.id_of(endpoints[card.id])
        attempts = [r for r in push.requests if r.path.endswith(sub_id)]
        requests[card.id] = [r.headers for r in attempts]
    topics = {card.id: {h["topic"] for h in requests[card.id]} for card in cards}
    for card in cards:
        expected = push_topic(KEY, campaign_id=campaign.id, customer_id=card.customer_id)
        assert topics[card.id] == {expected}, "every attempt of one delivery has the same Topic"
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", expected)  # RFC 8030 §5.4: at most 32 base64url characters
    assert len({next(iter(t)) for t in topics.values()}) == 3  # one per customer: unlinkable at the push service
    assert [len(requests[c.id]) for c in cards] == [2, 2, 1]

    # The offline phone: the resend replaced the copy still waiting; it gets the message once.
    assert push.replaced == 1 and len(push.pending(endpoints[offline.id])) == 1
    assert push.come_online(endpoints[offline.id]) == 1
    # The online browser got both copies: the same tag and id, so the second replaces the first on screen.
    copies = [json.loads(m["plaintext"]) for m in push.messages(endpoints[online.id])]
    assert len(copies) == 2 and copies[0] == copies[1]
    assert copies[0]["tag"] == f"campaign-{campaign.id}" and copies[0]["id"] == f"delivery-{rows[online.id].id}"
    assert [len(push.messages(endpoints[c.id])) for c in cards] == [1, 2, 1]
    assert all(rows[c.id].status == "sent" for c in cards)


def test_the_topic_is_the_deployments_own() -> None:
    """Keyed by the deployment's secret: nobody who knows the scheme can tell from a topic which campaign it
    is, and two deployments never share topics."""
    one = push_topic(push_topic_key("secret one"), campaign_id=7, customer_id=42)
    assert one == push_topic(push_topic_key("secret one"), campaign_id=7, customer_id=42)
    assert one != push_topic(push_topic_key("secret two"), campaign_id=7, customer_id=42)
    assert one != push_topic(push_topic_key("secret one"), campaign_id=7, customer_id=43)
    assert one != push_topic(push_topic_key("secret one"), campaign_id=8, customer_id=42)
