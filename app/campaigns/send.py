"""Delivering a running campaign, batch by batch (ARCHITECTURE.md "Campaigns").

A sender claims up to ``limit`` queued deliveries with ``FOR UPDATE SKIP LOCKED`` and leases them; any
number of workers can send side by side, and a crashed worker's rows come back when the lease runs out.
For each delivery, in order: the campaign must still be running; quiet hours in the customer's time zone
defer it; the weekly cap skips it; then the campaign's channels are tried in order and the first
reachable one sends (consent, opt-outs and subscriptions decide reachability). Every outcome is written
on the row: ``sent`` with the channel and provider id, ``skipped`` with the reason, ``failed`` with the
error (or back to ``queued`` with a later ``not_before`` when retrying may help).

A failed row is one of two kinds, and the marketer's "retry" (:func:`retry`) names which:

- **failed**: certainly not sent (refused, undeliverable, no browser took it). Sending again is safe, on
  whichever of the campaign's channels reaches the customer then.
- **in doubt** (reason ``interrupted``: a worker stopped while handing it over; ``unconfirmed``: the
  gateway failed after it may have taken the message): it may have arrived. Sending again is offered only
  where a second copy replaces the first: a web push goes out again on the same channel with the same
  ``Topic`` (a copy still waiting at the push service is replaced) and notification ``tag`` (a copy on the
  screen is replaced); wallet rows are never in doubt (a pass update and a Google message with a fixed id
  repeat harmlessly, so they are resent on their own). A text message cannot be replaced or recalled, so
  one in doubt is never sent again from here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.bulk import write_objects
from app.campaigns import templating
from app.campaigns.channels import Channel, SendFailed
from app.errors import InvalidInput
from app.models import Campaign, CampaignVariant, Card, Customer, Delivery

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(minutes=10)
CAP_WINDOW = timedelta(days=7)
MIN_FOR_AUTO_PAUSE = 20  # attempts before the error rate may pause a campaign


@dataclass
class BatchResult:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "sent", "skipped:<reason>", "failed", "deferred"


@dataclass
class Claim:
    rows: list[Delivery]
    in_doubt: set[int]  # ids of rows a dead worker was handing to a channel (``prepare``)


def claim(session: Session, *, campaign_id: int, limit: int, now: datetime, lease: timedelta = LEASE) -> Claim:
    """Lease up to ``limit`` deliveries that are due: queued (and past their ``not_before``), or left in
    ``sending`` by a worker whose lease ran out. First attempts go first, in id order, then retries: an order
    PostgreSQL reads off ``ix_delivery_pending`` (by id alone it would walk the primary key past every row
    already sent)."""
    due = or_(
        (Delivery.status == "queued") & or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
        (Delivery.status == "sending") & (Delivery.lease_until < now),
    )
    rows = list(session.scalars(
        select(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.status.in_(("queued", "sending")), due)
        .order_by(Delivery.attempts, Delivery.id).limit(limit)  # ix_delivery_pending's order
        .with_for_update(skip_locked=True)
    ))
    in_doubt = {row.id for row in rows if row.status == "sending" and row.channel is not None}
    if rows:  # one UPDATE for the batch; the loaded rows are told the same values
        leased = {"status": "sending", "lease_until": now + lease, "updated_at": now}
        session.execute(update(Delivery).where(Delivery.id.in_([row.id for row in rows])).values(**leased),
                        execution_options={"synchronize_session": False})
        for row in rows:
            for name, value in leased.items():
                set_committed_value(row, name, value)
    return Claim(rows, in_doubt)


def quiet_until(customer: Customer, campaign: Campaign, now: datetime) -> datetime | None:
    """When the customer's quiet hours end, if ``now`` falls inside them (their local time)."""
    start, end = campaign.quiet_start_hour, campaign.quiet_end_hour
    if start == end:
        return None
    try:
        zone = ZoneInfo(customer.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    inside = (start <= local.hour or local.hour < end) if start > end else (start <= local.hour < end)
    if not inside:
        return None
    day = local.date() if local.hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=zone).astimezone(now.tzinfo)


def _over_cap(session: Session, campaign: Campaign, customer_id: int, now: datetime) -> bool:
    if not campaign.max_per_week:
        return False
    recent = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.customer_id == customer_id, Delivery.status.in_(("sent", "delivered")),
        Delivery.sent_at > now - CAP_WINDOW))
    return (recent or 0) >= campaign.max_per_week


Writes = dict[Delivery, dict[str, Any]]  # each row's new values, written together (``bulk.write_objects``)


def _skip(writes: Writes, row: Delivery, reason: str, now: datetime) -> str:
    writes[row] = {"status": "skipped", "reason": reason, "lease_until": None, "updated_at": now}
    return f"skipped:{reason}"


@dataclass
class Outgoing:
    """A delivery decided and rendered, waiting to be handed to its channel."""

    row: Delivery
    card: Card
    channel: Channel
    message: templating.Rendered


@dataclass
class Prepared:
    claimed: int = 0
    outgoing: list[Outgoing] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


INTERRUPTED = ("the worker stopped while handing this message to the {channel} channel, so it may have gone out; "
               "it is not repeated on its own (retry it from the log if it did not arrive)")
REASON_INTERRUPTED = "interrupted"  # a worker stopped while handing the message over: it may have arrived
REASON_UNCONFIRMED = "unconfirmed"  # the gateway failed after it may have taken the message
IN_DOUBT = (REASON_INTERRUPTED, REASON_UNCONFIRMED)
# For every campaign channel: does a message sent again replace one that may have arrived, rather than repeat
# it? Web push yes (same Topic at the push service, same tag on the screen), the wallet yes (the same offer on
# the pass, a Google message with the same id); SMS no: a second text is a second text. A new channel must be
# added here (tests/integration/test_campaigns.py checks every channel is), so nobody resends it by default.
RESEND_REPLACES = {"wallet": True, "push": True, "sms": False}
REPLACES_ON_RESEND = tuple(name for name, replaces in RESEND_REPLACES.items() if replaces)
RETRY_KINDS = ("failed", "interrupted")


def _decide(session: Session, *, campaign: Campaign, row: Delivery, card: Card,
            variants: Mapping[int, CampaignVariant], channels: Mapping[str, Channel], base_url: str,
            now: datetime, writes: Writes) -> Outgoing | str:
    """Everything short of sending: an ``Outgoing`` to send, or the outcome (its values put in ``writes``)."""
    customer = card.customer
    if customer.anonymized_at is not None or card.status != "active":
        return _skip(writes, row, "card-inactive", now)
    if (later := quiet_until(customer, campaign, now)) is not None:
        writes[row] = {"status": "queued", "not_before": later, "lease_until": None, "updated_at": now,
                       "reason": "quiet-hours"}
        return "deferred"
    if _over_cap(session, campaign, customer.id, now):
        return _skip(writes, row, "frequency-cap", now)
    if row.resend_channel is not None:  # may have arrived there: only there, where the copy replaces it
        resend = channels.get(row.resend_channel)
        channel = resend if resend is not None and resend.reachable(session, card) else None
    else:
        channel = next((channels[name] for name in campaign.channels
                        if name in channels and channels[name].reachable(session, card)), None)
    if channel is None:
        said_no = any(channels[name].opted_out(session, card) for name in campaign.channels if name in channels)
        return _skip(writes, row, "opted-out" if said_no else "unreachable", now)
    variant = variants[row.variant_id] if row.variant_id is not None else None
    if variant is None:
        return _skip(writes, row, "no-variant", now)
    values = templating.context(card, base_url=base_url)
    if "expir" in variant.body or "expir" in variant.title:  # one more query, only where it is used
        from app.campaigns.automations import expiring

        values["expiring_points"], first = expiring(session, card=card, now=now)
        values["expiry_date"] = first.isoformat() if first else ""
    try:
        message = templating.render(variant.title, variant.body, values)
    except InvalidInput as exc:
        writes[row] = {"status": "failed", "error": exc.detail[:500], "lease_until": None, "updated_at": now}
        return "failed"
    # with status "sending": the intent, committed before sending
    writes[row] = {"attempts": row.attempts + 1, "channel": channel.name, "updated_at": now}
    return Outgoing(row=row, card=card, channel=channel, message=message)


def prepare(session: Session, *, campaign_id: int, channels: Mapping[str, Channel], base_url: str, now: datetime,
            limit: int = 200, lease: timedelta = LEASE) -> Prepared:
    """Claim a batch, write every outcome that needs no sending (skipped, deferred) and mark the rest with the
    channel they go out on. The caller commits this before ``transmit``: a row found later still "sending",
    past its lease and with a channel, was being handed over when its worker died. A channel whose sends are
    ``repeatable`` (the wallet: a pass update and a Google message with a fixed id) simply sends it again;
    for the others (web push, SMS) the message may already be on the phone, so the row fails as interrupted
    instead of risking a second copy."""
    prepared = Prepared()
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.state != "running":
        return prepared
    claimed = claim(session, campaign_id=campaign_id, limit=limit, now=now, lease=lease)
    rows = claimed.rows
    prepared.claimed = len(rows)
    if not rows:
        return prepared
    cards = {c.id: c for c in session.scalars(
        select(Card).where(Card.id.in_([r.card_id for r in rows]))
        .options(joinedload(Card.customer), joinedload(Card.tier), joinedload(Card.program)))}  # consents: preload
    variants = {v.id: v for v in campaign.variants}
    for name in campaign.channels:
        if name in channels:
            channels[name].preload(session, list(cards.values()))
    writes: Writes = {}
    for row in rows:
        if row.id in claimed.in_doubt and row.channel in channels and not channels[row.channel].repeatable:
            writes[row] = {"status": "failed", "reason": REASON_INTERRUPTED, "lease_until": None, "updated_at": now,
                           "error": INTERRUPTED.format(channel=row.channel)}
            prepared.outcomes["failed:interrupted"] += 1
            continue
        decided = _decide(session, campaign=campaign, row=row, card=cards[row.card_id], variants=variants,
                          channels=channels, base_url=base_url, now=now, writes=writes)
        if isinstance(decided, Outgoing):
            prepared.outgoing.append(decided)
        else:
            prepared.outcomes[decided] += 1
    session.flush()
    write_objects(session, writes)
    return prepared


def transmit(session: Session, *, prepared: Prepared, now: datetime) -> Counter[str]:
    """Hand the prepared messages to their channels and write each outcome on its row. A channel with a
    ``send_many`` takes its share of the batch at once (web push sends side by side); the others get one
    message at a time, each in a savepoint so a failed send leaves nothing half-written."""
    outcomes: dict[int, str | None | SendFailed] = {}
    groups: dict[str, list[Outgoing]] = {}
    for item in prepared.outgoing:
        groups.setdefault(item.channel.name, []).append(item)
    for items in groups.values():
        channel = items[0].channel
        send_many = getattr(channel, "send_many", None)
        results = send_many(session, items=[(i.row, i.card, i.message) for i in items], now=now) \
            if send_many is not None else None
        if results is not None:
            outcomes.update((i.row.id, result) for i, result in zip(items, results, strict=True))
            continue
        for item in items:
            try:
                with session.begin_nested():
                    outcomes[item.row.id] = channel.send(session, delivery=item.row, card=item.card,
                                                         message=item.message, now=now)
            except SendFailed as exc:
                outcomes[item.row.id] = exc
    writes: Writes = {}
    for item in prepared.outgoing:
        row, outcome = item.row, outcomes[item.row.id]
        if isinstance(outcome, SendFailed):
            failed = {"error": outcome.reason[:500], "lease_until": None, "updated_at": now}
            if outcome.possibly_sent:
                writes[row] = {**failed, "status": "failed", "reason": REASON_UNCONFIRMED}
                prepared.outcomes["failed:unconfirmed"] += 1
            elif outcome.retry and row.attempts < MAX_ATTEMPTS:
                writes[row] = {**failed, "status": "queued", "not_before": now + RETRY_AFTER}
                prepared.outcomes["deferred"] += 1
            else:
                writes[row] = {**failed, "status": "failed"}
                prepared.outcomes["failed"] += 1
            continue
        writes[row] = {"status": "sent", "provider_id": outcome, "reason": None, "sent_at": now, "lease_until": None,
                       "error": None, "updated_at": now}
        prepared.outcomes["sent"] += 1
    prepared.outgoing = []
    session.flush()
    write_objects(session, writes)
    return prepared.outcomes


def send_batch(session: Session, *, campaign_id: int, channels: Mapping[str, Channel], base_url: str,
               now: datetime, limit: int = 200, lease: timedelta = LEASE) -> BatchResult:
    """``prepare`` and ``transmit`` in the caller's transaction, for callers that need no crash safety
    between the two (tests, a one-off send); the Celery sender commits in between."""
    prepared = prepare(session, campaign_id=campaign_id, channels=channels, base_url=base_url, now=now,
                       limit=limit, lease=lease)
    return BatchResult(claimed=prepared.claimed, outcomes=transmit(session, prepared=prepared, now=now))


def settle(session: Session, *, campaign: Campaign, now: datetime, failures: bool = True) -> str:
    """After a batch: pause on a high error rate, finish when nothing is left to send. Returns the state.

    Counting a campaign's rows reads all of them, so the error rate is counted only after a batch with a
    failure (``failures``); whether anything is left is one indexed EXISTS."""
    if campaign.state == "running" and failures:
        counts = dict(session.execute(select(Delivery.status, func.count()).where(
            Delivery.campaign_id == campaign.id, Delivery.status.in_(("sent", "delivered", "failed")))
            .group_by(Delivery.status)).all())
        attempted = counts.get("sent", 0) + counts.get("delivered", 0) + counts.get("failed", 0)
        failed = counts.get("failed", 0)
        if attempted >= MIN_FOR_AUTO_PAUSE and failed * 100 > campaign.error_threshold_percent * attempted:
            campaign.state = "paused"
            campaign.pause_reason = (f"{failed} of {attempted} deliveries failed "
                                     f"(over {campaign.error_threshold_percent}%)")
    if campaign.state == "running" and not session.scalar(select(exists().where(
            Delivery.campaign_id == campaign.id, Delivery.status.in_(("queued", "sending"))))):
        campaign.state, campaign.finished_at = "finished", now
    campaign.updated_at = now
    session.flush()
    return campaign.state


@dataclass
class Retried:
    requeued: int = 0  # deliveries queued again
    kept: dict[str, int] = field(default_factory=dict)  # in doubt and not resent, per channel (SMS)


def _in_doubt() -> Any:
    return Delivery.reason.in_(IN_DOUBT)


def retryable(session: Session, *, campaign: Campaign) -> dict[str, Any]:
    """What each kind of retry would do: ``{"failed": n, "interrupted": n, "kept": {channel: n}}``:
    certainly failed deliveries, deliveries in doubt that a resend replaces, and those in doubt it leaves."""
    rows = session.execute(
        select(Delivery.reason, Delivery.channel, func.count()).where(Delivery.campaign_id == campaign.id,
                                                                      Delivery.status == "failed")
        .group_by(Delivery.reason, Delivery.channel)).all()
    counts: dict[str, Any] = {"failed": 0, "interrupted": 0, "kept": {}}
    for reason, channel, n in rows:
        if reason not in IN_DOUBT:
            counts["failed"] += n
        elif channel in REPLACES_ON_RESEND:
            counts["interrupted"] += n
        else:
            counts["kept"][channel or "?"] = counts["kept"].get(channel or "?", 0) + n
    return counts


def retry(session: Session, *, campaign: Campaign, deliveries: str, now: datetime) -> Retried:
    """The marketer's "retry" in the log: queue again the deliveries of one kind (module docstring).

    ``failed``: those certainly not sent; each goes out on whichever channel reaches the customer then.
    ``interrupted``: those in doubt on a channel where a resend replaces the first copy (``REPLACES_ON_RESEND``);
    each goes again on the same channel only (``resend_channel``), with the same web-push Topic and tag. Text
    messages in doubt are left as they are and counted in ``kept``.

    :raise ValueError: ``deliveries`` is not one of ``RETRY_KINDS``."""
    if deliveries not in RETRY_KINDS:
        raise ValueError(f"deliveries must be one of {', '.join(RETRY_KINDS)}, not {deliveries!r}")
    failed = (Delivery.campaign_id == campaign.id) & (Delivery.status == "failed")
    out = Retried()
    if deliveries == "failed":
        chosen = failed & (Delivery.reason.is_(None) | ~_in_doubt())
        values: dict[str, Any] = {"resend_channel": None}
    else:
        out.kept = retryable(session, campaign=campaign)["kept"]
        chosen = failed & _in_doubt() & Delivery.channel.in_(REPLACES_ON_RESEND)
        values = {"resend_channel": Delivery.channel}
    result = session.execute(update(Delivery).where(chosen).values(
        status="queued", attempts=0, not_before=None, error=None, reason=None, updated_at=now, **values),
        execution_options={"synchronize_session": "fetch"})
    out.requeued = result.rowcount or 0  # type: ignore[attr-defined]
    if out.requeued and campaign.state in ("finished", "paused"):
        campaign.state, campaign.finished_at, campaign.pause_reason = "running", None, None
    session.flush()
    return out


def record_provider_status(session: Session, *, channel: str, provider_id: str, status: str,
                           error: str | None, now: datetime) -> int:
    """A gateway's delivery report reaches the campaign log: ``sent`` becomes ``delivered``, or ``failed``
    with the gateway's error when the message could not be delivered. Returns the rows changed."""
    status = (status or "").strip().lower()
    if status == "delivered":
        values: dict[str, object] = {"status": "delivered", "updated_at": now}
    elif status in ("undelivered", "failed"):
        values = {"status": "failed", "error": f"{channel} {status}: {error or 'no error code'}"[:500],
                  "updated_at": now}
    else:
        return 0
    result = session.execute(update(Delivery).where(Delivery.channel == channel, Delivery.provider_id == provider_id,
                                                    Delivery.status == "sent").values(**values))
    return result.rowcount or 0
