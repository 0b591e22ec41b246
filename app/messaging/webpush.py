"""Web push, on the domain side: a customer's browser subscriptions, and the messages sent to them.

- ``subscribe`` stores the browser's ``PushSubscription`` for a customer (idempotent on the endpoint). An
  endpoint another customer holds is never moved: its endpoint, ``p256dh`` and ``auth`` are not secrets
  (anyone who once saw them could post them from their own card and take over the victim's browser), so
  knowing them proves nothing. A browser that signs into a second card proves it is the browser instead:
  the card page unsubscribes at the push service and subscribes afresh, which only that browser can do,
  and posts the new endpoint, which nobody holds. The first card's row then points at an endpoint the push
  service answers 404/410 for, and the first push deletes it. So a shared device still follows whoever
  turned notifications on last, but only through the device itself.
- ``notify_customer`` sends a payload to each of a customer's subscriptions through the ``WebPusher``, or
  records it in the channel outbox (``ChannelMessage``) when the deployment has no VAPID key. What the push
  service answers is kept on the subscription: ``gone`` (404/410) deletes it, ``sent`` clears its failures,
  ``failed``/``rejected`` count one more consecutive failure, and the tenth deletes it. A payload that is too
  large is our fault, not the subscription's, and is not counted; keys or an endpoint the pusher cannot use
  at all delete the subscription at once.
- ``purchase_message`` is the payload after a purchase, in the customer's language.

Counters change through single UPDATE/DELETE statements (no read-modify-write), so two workers notifying the
same customer at once neither lose a failure nor hold row locks while waiting for a push service.
Domain code: ``fn(session, *, ...)``, flush, never commit; no Flask import.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.channels.webpush import (
    REASON_BAD_ENDPOINT,
    REASON_BAD_KEYS,
    REASON_TOO_LARGE,
    PushOutcome,
    PushResult,
    SubscriptionInfo,
    Urgency,
    WebPusher,
    mask_endpoint,
)
from app.errors import Conflict, FieldError, InvalidInput
from app.models import ChannelMessage, Customer, WebPushSubscription

__all__ = [
    "CHANNEL",
    "MAX_ENDPOINT",
    "MAX_FAILURES",
    "notify_customer",
    "purchase_message",
    "subscribe",
    "unsubscribe",
]

log = logging.getLogger(__name__)

CHANNEL = "web_push"
MAX_ENDPOINT = 1000  # characters; the column's size
MAX_FAILURES = 10  # consecutive failed or refused pushes after which a subscription is deleted
_RECIPIENT_MAX = 255  # ChannelMessage.recipient
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_UNUSABLE = frozenset({REASON_BAD_KEYS, REASON_BAD_ENDPOINT})  # pusher refusals that no retry can cure
W = WebPushSubscription


# -------------------------------------------------------------------------------- subscriptions


def subscribe(
    session: Session, *, customer: Customer, endpoint: str, p256dh: str, auth: str, now: datetime
) -> WebPushSubscription:
    """Store the browser's subscription for ``customer``, or refresh the keys of the one the customer already
    holds with this endpoint (its failures start again from 0).

    :raise InvalidInput: ``endpoint`` is not a push service's https URL of at most 1000 characters, ``p256dh``
        not a base64url P-256 public key (65-byte uncompressed point), ``auth`` not 16 base64url bytes.
    :raise Conflict: another customer holds this endpoint (``push-subscription-taken``; see the module's
        docstring: the browser subscribes afresh instead)."""
    endpoint, p256dh, auth = _validated(endpoint, p256dh, auth)
    row = session.scalars(select(W).where(W.endpoint == endpoint)).first()
    if row is None:
        row = W(customer_id=customer.id, endpoint=endpoint, p256dh=p256dh, auth=auth, created_at=now, failures=0)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # the same browser subscribed through another request meanwhile
            row = session.scalars(select(W).where(W.endpoint == endpoint)).one()
            _refresh(row, customer=customer, p256dh=p256dh, auth=auth)
    else:
        _refresh(row, customer=customer, p256dh=p256dh, auth=auth)
    session.flush()
    return row


def unsubscribe(session: Session, *, customer: Customer, endpoint: str) -> bool:
    """Forget the customer's subscription with this endpoint; False when the customer has none such."""
    deleted = session.execute(
        delete(W).where(W.customer_id == customer.id, W.endpoint == endpoint),
        execution_options={"synchronize_session": "fetch"},
    )
    return bool(deleted.rowcount)  # type: ignore[attr-defined]


def _refresh(row: WebPushSubscription, *, customer: Customer, p256dh: str, auth: str) -> None:
    if row.customer_id != customer.id:
        raise Conflict("this browser's notifications belong to another card; to get this card's, the browser "
                       "subscribes again (a new subscription)", code="push-subscription-taken")
    row.p256dh, row.auth, row.failures = p256dh, auth, 0


def _validated(endpoint: Any, p256dh: Any, auth: Any) -> tuple[str, str, str]:
    problems: list[FieldError] = []
    if not isinstance(endpoint, str) or not _is_push_endpoint(endpoint):
        problems.append(FieldError("endpoint", f"must be the https URL of a push service, at most {MAX_ENDPOINT} "
                                               "characters"))
    key = _b64url_bytes(p256dh)
    if key is None or len(key) != 65 or key[0] != 4 or not _on_p256(key):
        problems.append(FieldError("p256dh", "must be the browser's P-256 public key: 65 bytes, base64url"))
    secret = _b64url_bytes(auth)
    if secret is None or len(secret) != 16:
        problems.append(FieldError("auth", "must be the browser's 16-byte auth secret, base64url"))
    if problems:
        raise InvalidInput("the push subscription cannot be stored", errors=problems)
    assert key is not None and secret is not None
    return endpoint, _b64url(key), _b64url(secret)


def _is_push_endpoint(endpoint: str) -> bool:
    """An https URL with a public host: we POST to it, so it must not reach our own network."""
    if len(endpoint) > MAX_ENDPOINT or not endpoint.isprintable() or any(c.isspace() for c in endpoint):
        return False
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return False
    host = parts.hostname
    if parts.scheme != "https" or not host or parts.username is not None or parts.password is not None:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return "." in host and not host.endswith((".localhost", ".local", ".internal", ".home.arpa"))


def _b64url_bytes(value: Any) -> bytes | None:
    """Base64url with or without padding; the standard alphabet is accepted too (``btoa`` in old scripts)."""
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("=").replace("+", "-").replace("/", "_")
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _on_p256(point: bytes) -> bool:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


# -------------------------------------------------------------------------------- sending


def notify_customer(
    session: Session,
    *,
    customer_id: int,
    payload: dict,
    pusher: WebPusher | None,
    now: datetime,
    ttl: int | None = None,
    urgency: Urgency = "normal",
    topic: str | None = None,
    card_id: int | None = None,
) -> int:
    """Send ``payload`` to every subscription of the customer; returns how many push services took it.

    ``ttl`` None: the pusher's default (a day). ``topic`` (≤ 32 base64url characters) lets a newer message
    replace one still waiting for the browser, e.g. ``"balance"``. With ``pusher`` None, one ``ChannelMessage``
    per subscription is recorded instead (its recipient the masked endpoint) and 0 is returned. ``card_id``
    only goes into those records.

    Blocks while the pusher retries (seconds). :raise ValueError: ``ttl``/``urgency``/``topic`` not allowed."""
    subscriptions = list(session.scalars(select(W).where(W.customer_id == customer_id).order_by(W.id)))
    if not subscriptions:
        return 0
    if pusher is None:
        session.add_all(
            ChannelMessage(channel=CHANNEL, recipient=mask_endpoint(s.endpoint)[:_RECIPIENT_MAX], card_id=card_id,
                           created_at=now, payload={"body": payload, "ttl": ttl, "urgency": urgency, "topic": topic})
            for s in subscriptions
        )
        session.flush()
        return 0
    targets = [(s.id, SubscriptionInfo(s.endpoint, s.p256dh, s.auth)) for s in subscriptions]
    counts = dict.fromkeys(PushOutcome, 0)
    deleted = 0
    for subscription_id, info in targets:
        result = pusher.send(info, payload, ttl=ttl, urgency=urgency, topic=topic)
        counts[result.outcome] += 1
        deleted += _record(session, subscription_id, result, now)
    session.flush()
    log.info("web push to customer %d: %d sent, %d gone, %d failed, %d refused; %d subscription(s) deleted",
             customer_id, counts[PushOutcome.SENT], counts[PushOutcome.GONE], counts[PushOutcome.FAILED],
             counts[PushOutcome.REJECTED], deleted)
    return counts[PushOutcome.SENT]


def notify_many(session: Session, *, payloads: dict[int, dict], pusher: WebPusher, now: datetime,
                ttl: int | None = None, urgency: Urgency = "normal", topic: str | None = None,
                topics: dict[int, str] | None = None) -> dict[int, int]:
    """``notify_customer`` for many customers at once (a campaign batch): one query for the subscriptions,
    one ``send_many`` (the pushes go out side by side), one UPDATE for the successes. ``payloads`` maps
    customer id → payload; ``topics`` customer id → that customer's ``Topic`` (else ``topic`` for all);
    returns customer id → how many push services took it."""
    subscriptions = list(session.scalars(select(W).where(W.customer_id.in_(list(payloads))).order_by(W.id)))
    targets = [(s.id, s.customer_id, SubscriptionInfo(s.endpoint, s.p256dh, s.auth)) for s in subscriptions]
    results = pusher.send_many([(info, payloads[customer_id]) for _, customer_id, info in targets], ttl=ttl,
                               urgency=urgency, topic=topic,
                               topics=[topics.get(c, topic) for _, c, _ in targets] if topics is not None else None)
    sent = dict.fromkeys(payloads, 0)
    succeeded = []
    for (subscription_id, customer_id, _), result in zip(targets, results, strict=True):
        if result.outcome is PushOutcome.SENT:
            sent[customer_id] += 1
            succeeded.append(subscription_id)
        else:
            _record(session, subscription_id, result, now)
    if succeeded:
        session.execute(update(W).where(W.id.in_(succeeded)).values(last_success_at=now, failures=0),
                        execution_options={"synchronize_session": False})
    session.flush()
    return sent


def _record(session: Session, subscription_id: int, result: PushResult, now: datetime) -> int:
    """Keep the outcome on the subscription; returns 1 when it was deleted."""
    this = W.id == subscription_id
    fetch = {"synchronize_session": "fetch"}
    if result.outcome is PushOutcome.SENT:
        session.execute(update(W).where(this).values(last_success_at=now, failures=0), execution_options=fetch)
        return 0
    if result.outcome is PushOutcome.GONE or (result.status is None and result.reason in _UNUSABLE):
        return _delete(session, this)
    if result.reason == REASON_TOO_LARGE:
        return 0
    session.execute(update(W).where(this).values(failures=W.failures + 1), execution_options=fetch)
    return _delete(session, this, W.failures >= MAX_FAILURES)


def _delete(session: Session, *criteria: Any) -> int:
    result = session.execute(delete(W).where(*criteria), execution_options={"synchronize_session": "fetch"})
    return int(result.rowcount)  # type: ignore[attr-defined]


# -------------------------------------------------------------------------------- messages

# Programme-agnostic texts; {points} is the number with its inflected noun.
TEMPLATES: dict[str, dict[str, str]] = {
    "en": {"title": "Points added", "body": "+{points}, balance {balance}"},
    "ru": {"title": "Баллы начислены", "body": "+{points}, баланс {balance}"},
    "ro": {"title": "Puncte adăugate", "body": "+{points}, sold {balance}"},
}


def purchase_message(*, earned: int, balance: int, locale: str) -> dict[str, Any]:
    """The push after a purchase: ``{"title", "body", "tag": "balance", "url": None}`` in en, ru or ro (another
    locale gets English). The ``tag`` makes the browser replace the previous balance notification."""
    if earned < 0:
        raise ValueError(f"earned points cannot be negative ({earned})")
    language = (locale or "en").replace("_", "-").split("-")[0].lower()
    if language not in TEMPLATES:
        language = "en"
    template = TEMPLATES[language]
    points = f"{earned} {_POINTS[language](earned)}"
    return {"title": template["title"], "body": template["body"].format(points=points, balance=balance),
            "tag": "balance", "url": None}


def _points_en(n: int) -> str:
    return "point" if n == 1 else "points"


def _points_ru(n: int) -> str:
    """CLDR: one (1, 21, 31… but not 11), few (2–4, 22–24… but not 12–14), many (the rest)."""
    if n % 10 == 1 and n % 100 != 11:
        return "балл"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "балла"
    return "баллов"


def _points_ro(n: int) -> str:
    """CLDR: one (1), few (0, and 2–19 after the hundreds: 2, 19, 101, 119), other (20, 100, 120…), which
    takes "de"."""
    if n == 1:
        return "punct"
    if n == 0 or 1 <= n % 100 <= 19:
        return "puncte"
    return "de puncte"


_POINTS = {"en": _points_en, "ru": _points_ru, "ro": _points_ro}
