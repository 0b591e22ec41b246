"""Campaign work for Celery: start a campaign (materialise its audience) and send its deliveries.

``kick(campaign_id)`` fans out ``SENDERS`` batch senders; each claims leased batches until none is left
(queuing its own continuation every ``SLICE_SECONDS``, so other work is not held up), so two or more workers
share a campaign, and a crashed worker's batch comes back when its lease runs out
(then the beat's ``tick_campaigns`` kicks the campaign again). Deliveries deferred by quiet hours or a
retry wait in the table with their ``not_before``; the same beat picks them up when they are due.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.signals import worker_shutting_down
from flask import current_app
from sqlalchemy import exists, or_, select

from app.campaigns import lifecycle, offers, send
from app.campaigns.channels import Channel, PushChannel, SmsChannel, WalletChannel
from app.channels.registry import EXTENSION, Channels, ChannelUnavailable
from app.database import sessions
from app.db import utcnow
from app.models import Campaign, Delivery

log = logging.getLogger(__name__)

SENDERS = 4  # batch senders started per kick; more workers simply take more of them
# Deliveries per batch: two commits each (the intent, then the outcomes). A worker killed outright leaves
# at most this many rows in doubt; wallet rows are sent again, web-push and SMS rows fail as "interrupted"
# (send.prepare) for the marketer to retry from the log, so nothing goes twice either way. A batch's fixed
# work (the campaign, the claim, the reachability look-ups, two commits, settling, a drain of the outbox)
# costs about 10 ms of CPU: a quarter of a worker's time at 50 rows, under a tenth at 200. 200 web pushes
# are also two rounds of 100 HTTP/2 streams.
BATCH = 200
# A sender hands its worker back after this long and queues its continuation: the tasks queued meanwhile run
# in between, above all the outbox drains whose APNs pushes and Google PATCHes carry a wallet message to the
# phone (otherwise they would wait for the whole campaign: at 100,000 customers, most of a minute).
SLICE_SECONDS = 2.0

_stopping = threading.Event()


@worker_shutting_down.connect
def _stop_sending(**_: Any) -> None:
    """A warm shutdown (SIGTERM) lets the current batch commit, then the senders return."""
    _stopping.set()


def campaign_channels() -> dict[str, Channel]:
    registry: Channels = current_app.extensions[EXTENSION]
    settings = current_app.config["TALLYPASS"]
    try:
        google = registry.google()
    except ChannelUnavailable:
        google = None
    sms_client = registry.sms()
    return {
        "wallet": WalletChannel(google_setup=google.setup if google else None,
                                google_client=google.client if google else None),
        "push": PushChannel(pusher=registry.web_push(), topic_key=push_topic_key(current_app.secret_key)),
        "sms": SmsChannel(client=sms_client, sender=sms_client.sender if sms_client else (settings.sms_from or
                                                                                         "Tallypass")),
    }


def push_topic_key(secret_key: str | bytes | None) -> bytes:
    """The key of the campaigns' web-push topics (``channels.push_topic``), derived from the Flask secret so
    it is the same in every process and for every attempt, and is not the secret itself."""
    secret = secret_key.encode() if isinstance(secret_key, str) else (secret_key or b"")
    return hashlib.sha256(b"tallypass web-push topic\0" + secret).digest()


def kick(campaign_id: int, senders: int = SENDERS) -> None:
    for _ in range(senders):
        send_campaign.delay(campaign_id)


@shared_task
def start_campaign(campaign_id: int) -> int:
    """Materialise and run a draft or scheduled campaign; returns its audience size."""
    settings = current_app.config["TALLYPASS"]
    with sessions().begin() as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or campaign.state not in ("draft", "scheduled"):
            return 0
        size = lifecycle.start(session, campaign=campaign, now=utcnow(), sms_sender=settings.sms_from)
    kick(campaign_id)
    return size


@shared_task
def send_campaign(campaign_id: int) -> dict[str, Any]:
    """Send batches until none is due; one transaction per batch."""
    settings = current_app.config["TALLYPASS"]
    base_url, lease = settings.base_url, timedelta(seconds=settings.campaign_lease_seconds)
    channels = campaign_channels()
    totals: dict[str, int] = {}
    started = time.monotonic()
    while True:
        with sessions()() as session:
            prepared = send.prepare(session, campaign_id=campaign_id, channels=channels, base_url=base_url,
                                    now=utcnow(), limit=BATCH, lease=lease)
            session.commit()  # the intent: from here a dead worker's rows are known to be in doubt
            outcomes = send.transmit(session, prepared=prepared, now=utcnow())
            campaign = session.get(Campaign, campaign_id)
            state = send.settle(session, campaign=campaign, now=utcnow(),
                                failures=any(k.startswith("failed") for k in outcomes)) if campaign else "gone"
            session.commit()
        for outcome, n in outcomes.items():
            totals[outcome] = totals.get(outcome, 0) + n
        if prepared.claimed < BATCH or state != "running" or _stopping.is_set():
            if state == "paused":
                log.warning("campaign %s paused: %s", campaign_id, campaign.pause_reason if campaign else "")
            return totals
        if time.monotonic() - started > SLICE_SECONDS and not send_campaign.app.conf.task_always_eager:
            send_campaign.delay(campaign_id)  # to the back of the queue: what waits behind this runs first
            return totals


@shared_task
def tick_campaigns() -> int:
    """Beat, every minute: start scheduled campaigns that are due, and kick running campaigns with due
    deliveries (deferred by quiet hours or retries, or left by a crashed worker)."""
    now = utcnow()
    with sessions().begin() as session:
        due = list(session.scalars(select(Campaign.id).where(Campaign.state == "scheduled",
                                                             Campaign.scheduled_at <= now)))
        waiting = list(session.scalars(select(Campaign.id).where(
            Campaign.state == "running",
            exists().where(Delivery.campaign_id == Campaign.id, or_(
                (Delivery.status == "queued") & or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
                (Delivery.status == "sending") & (Delivery.lease_until < now))))))
    for campaign_id in due:
        start_campaign.delay(campaign_id)
    for campaign_id in waiting:
        kick(campaign_id, senders=1)
    return len(due) + len(waiting)


@shared_task
def end_offers() -> int:
    """Beat, every 5 minutes: campaign offers (and a geo campaign's stores) leave the cards when the
    campaign ends; one transaction per 500 cards."""
    total = 0
    while True:
        with sessions().begin() as session:
            ended = offers.end_due(session, now=utcnow())
        total += ended
        if ended < 500:
            return total
