"""After a purchase, a customer who turned on notifications on the card page gets "+N points, balance M"
in their browser: through the real POS API and outbox, to the local push service (tests/fakes/
push_service.py), which checks VAPID and decrypts the aes128gcm payload with the browser's keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment
from app.models import Card, WebPushSubscription
from tests.fakes.push_service import FakePushService


@pytest.fixture
def push() -> Iterator[FakePushService]:
    with FakePushService() as service:
        yield service


@pytest.fixture
def shop(make_program: Callable[..., Any], make_store: Callable[..., Any], make_card: Callable[..., Any],
         pos_for: Callable[..., Any], db_session: Session) -> dict[str, Any]:
    program = make_program(tiers=[("Member", "0", "10")])
    card = make_card(program, balance=5)
    card.customer.locale = "ru"
    enrollment.set_consents(db_session, customer=card.customer, consents={"push": True}, source="card-page",
                            now=utcnow())
    db_session.flush()
    return {"card": card, "pos": pos_for(make_store(program, "Till"))}


def subscribe_browser(db_session: Session, card: Card, subscription: dict[str, str]) -> None:
    """What POST /c/<token>/push stores; written directly because the fake's endpoint is plain http on
    127.0.0.1, which the endpoint rightly refuses from a browser."""
    db_session.add(WebPushSubscription(customer_id=card.customer_id, endpoint=subscription["endpoint"],
                                       p256dh=subscription["p256dh"], auth=subscription["auth"]))
    db_session.flush()


def test_a_purchase_reaches_the_browser(shop: dict[str, Any], push: FakePushService, db_session: Session) -> None:
    card = shop["card"]
    subscription = push.new_subscription()
    subscribe_browser(db_session, card, subscription)
    response = shop["pos"].post("/purchases", {"receipt_id": "R-1", "card": card.barcode, "amount": "120.00"})
    assert response.status_code == 201
    [message] = push.messages(subscription["endpoint"])
    payload = json.loads(message["plaintext"])
    assert payload["body"] == "+12 баллов, баланс 17"
    assert message["ttl"] > 0 and message["urgency"] == "normal"


def test_no_push_without_consent_or_for_a_purchase_without_points(shop: dict[str, Any], push: FakePushService,
                                                                 db_session: Session) -> None:
    card = shop["card"]
    subscription = push.new_subscription()
    subscribe_browser(db_session, card, subscription)
    shop["pos"].post("/purchases", {"receipt_id": "R-0", "card": card.barcode, "amount": "5.00"})  # earns 0
    enrollment.set_consents(db_session, customer=card.customer, consents={"push": False}, source="card-page",
                            now=utcnow())
    db_session.flush()
    shop["pos"].post("/purchases", {"receipt_id": "R-1", "card": card.barcode, "amount": "120.00"})
    assert push.messages(subscription["endpoint"]) == []


def test_a_gone_browser_is_forgotten(shop: dict[str, Any], push: FakePushService, db_session: Session) -> None:
    card = shop["card"]
    subscription = push.new_subscription()
    subscribe_browser(db_session, card, subscription)
    push.expire(subscription["endpoint"])
    shop["pos"].post("/purchases", {"receipt_id": "R-1", "card": card.barcode, "amount": "120.00"})
    assert db_session.scalar(select(func.count()).select_from(WebPushSubscription)) == 0


def test_the_card_page_stores_a_browser_subscription(client: FlaskClient, shop: dict[str, Any], push: FakePushService,
                                                    db_session: Session) -> None:
    card = shop["card"]
    html = client.get(f"/c/{card.page_token}").text
    token = re.search(r'data-csrf="([^"]+)"', html).group(1)
    assert re.search(r'data-key="[A-Za-z0-9_-]{87}"', html)  # our VAPID public key for pushManager.subscribe
    keys = push.new_subscription()
    browser = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc123", "keys": {"p256dh": keys["p256dh"],
                                                                                 "auth": keys["auth"]}}
    url = f"/c/{card.page_token}/push"
    assert client.post(url, json=browser).status_code == 403  # no CSRF token
    assert client.post(url, json=browser, headers={"X-CSRF-Token": token}).status_code == 201
    assert db_session.scalars(select(WebPushSubscription.endpoint)).all() == [browser["endpoint"]]
    bad = {"endpoint": "http://127.0.0.1/push", "keys": {"p256dh": "x", "auth": "y"}}
    refused = client.post(url, json=bad, headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json["errors"]} >= {"endpoint", "p256dh", "auth"}
    assert client.delete(url, json=browser, headers={"X-CSRF-Token": token}).status_code == 204
    assert db_session.scalar(select(func.count()).select_from(WebPushSubscription)) == 0


def post_subscription(client: FlaskClient, card: Card, browser: dict[str, Any]) -> Any:
    html = client.get(f"/c/{card.page_token}").text
    token = re.search(r'data-csrf="([^"]+)"', html).group(1)
    return client.post(f"/c/{card.page_token}/push", json=browser,
                       headers={"X-CSRF-Token": token, "Accept": "application/json"})


def test_a_subscription_held_by_one_card_cannot_be_moved_to_another_by_posting_it(
        client: FlaskClient, shop: dict[str, Any], push: FakePushService, make_card: Callable[..., Any],
        db_session: Session) -> None:
    """The attack: someone who copied a victim's endpoint, p256dh and auth (a shared computer, a browser
    extension, a support screenshot) posts them from their own card page. Before, the subscription was
    re-pointed to the attacker's card: the victim's browser then showed the attacker's card's messages and
    stopped getting its own. Knowing the three values proves nothing (they are not secret from whoever saw
    them), so a subscription held by one card is never moved: 409, and nothing changes."""
    victim, attacker = shop["card"], make_card(shop["card"].program)
    keys = push.new_subscription()
    browser = {"endpoint": "https://fcm.googleapis.com/fcm/send/victim-browser",
               "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}
    assert post_subscription(client, victim, browser).status_code == 201

    refused = post_subscription(client, attacker, browser)
    assert refused.status_code == 409, refused.text
    assert refused.json["type"].endswith("/push-subscription-taken")
    db_session.expire_all()
    owners = dict(db_session.execute(select(WebPushSubscription.endpoint, WebPushSubscription.customer_id)).all())
    assert owners == {browser["endpoint"]: victim.customer_id}
    consents = {c.channel: c.granted for c in db_session.get(Card, attacker.id).customer.consents}
    assert "push" not in consents  # the refused request changed nothing for the attacker's card either
    # Posting it again to its own card is fine (the page does so when the browser renews it).
    assert post_subscription(client, victim, browser).status_code == 201


def test_a_browser_that_signs_into_a_second_card_gets_a_fresh_subscription_for_it(
        client: FlaskClient, shop: dict[str, Any], push: FakePushService, make_card: Callable[..., Any],
        db_session: Session) -> None:
    """The legitimate case: one browser (one service worker, so one subscription) opens a second card's page.
    Its subscription belongs to the first card, so the page's script (app/static/card.js) unsubscribes it at
    the push service and subscribes afresh: only the browser itself can do that, and the new endpoint is held
    by nobody. The first card's row now points at an endpoint the push service answers 410 for, and the
    first push to it deletes it."""
    first, second = shop["card"], make_card(shop["card"].program)
    old, new = push.new_subscription(), push.new_subscription()
    as_json = {"endpoint": "https://fcm.googleapis.com/fcm/send/first-subscription",
               "keys": {"p256dh": old["p256dh"], "auth": old["auth"]}}
    assert post_subscription(client, first, as_json).status_code == 201
    assert post_subscription(client, second, as_json).status_code == 409  # the page then renews it
    renewed = {"endpoint": "https://fcm.googleapis.com/fcm/send/renewed-subscription",
               "keys": {"p256dh": new["p256dh"], "auth": new["auth"]}}
    assert post_subscription(client, second, renewed).status_code == 201
    db_session.expire_all()
    owners = dict(db_session.execute(select(WebPushSubscription.endpoint, WebPushSubscription.customer_id)).all())
    assert owners == {as_json["endpoint"]: first.customer_id, renewed["endpoint"]: second.customer_id}
