"""What a campaign achieved: deliveries per status, channel and variant, and conversions (a purchase
within ``conversion_days`` of the message, or of the campaign's start for the holdout, who got none)
compared with the holdout: the uplift in conversion rate with a 95 % confidence interval."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Select, and_, case, exists, func, select
from sqlalchemy.orm import Session

from app.models import DELIVERY_STATES, Campaign, Customer, Delivery, Purchase

Z95 = 1.959964


@dataclass
class Uplift:
    rate: float  # conversion rate of those messaged
    baseline: float  # of the holdout
    difference: float  # rate − baseline, in percentage points / 100
    low: float  # 95 % interval of the difference (normal approximation)
    high: float


@dataclass
class Results:
    by_status: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)  # sent, per channel
    by_variant: dict[str, dict[str, int]] = field(default_factory=dict)  # name → {"sent", "converted", ...}
    holdout: dict[str, int] = field(default_factory=dict)  # {"customers", "converted"}
    uplift: Uplift | None = None


def _uplift(converted: int, total: int, base_converted: int, base_total: int) -> Uplift | None:
    if not total or not base_total:
        return None
    p1, p0 = converted / total, base_converted / base_total
    se = math.sqrt(p1 * (1 - p1) / total + p0 * (1 - p0) / base_total)
    return Uplift(rate=p1, baseline=p0, difference=p1 - p0, low=p1 - p0 - Z95 * se, high=p1 - p0 + Z95 * se)


def results(session: Session, *, campaign: Campaign) -> Results:
    out = Results()
    if campaign.started_at is None:
        return out  # not started: nothing sent, nothing to compare
    out.by_status = dict(session.execute(select(Delivery.status, func.count()).where(
        Delivery.campaign_id == campaign.id).group_by(Delivery.status)).all())
    out.by_channel = dict(session.execute(select(Delivery.channel, func.count()).where(
        Delivery.campaign_id == campaign.id, Delivery.status.in_(("sent", "delivered")))
        .group_by(Delivery.channel)).all())
    days = campaign.conversion_days
    # The moment each row's clock starts: when it was sent, or the campaign's start for the holdout.
    since = case((Delivery.variant_id.is_(None), campaign.started_at), else_=Delivery.sent_at)
    if session.get_bind().dialect.name == "postgresql":
        until = since + timedelta(days=days)
    else:  # SQLite keeps datetimes as text in the same sortable layout datetime() writes
        until = func.datetime(since, f"+{int(days)} days")
    converted = exists().where(
        Purchase.card_id == Delivery.card_id, Purchase.occurred_at >= since,
        Purchase.occurred_at < until, Purchase.refunded_amount < Purchase.amount,
    )
    names = {v.id: v.name for v in campaign.variants}
    counted = Delivery.status.in_(("sent", "delivered", "holdout"))
    # Only the holdout's rows have no variant.
    rows = session.execute(
        select(Delivery.variant_id, func.count(), func.sum(case((and_(converted, since.is_not(None)), 1), else_=0)))
        .where(Delivery.campaign_id == campaign.id, counted).group_by(Delivery.variant_id)
    ).all()
    sent = conv = 0
    for variant_id, count, conversions in rows:
        if variant_id is None:
            out.holdout = {"customers": count, "converted": int(conversions or 0)}
            continue
        name = names.get(variant_id, "?")
        entry = out.by_variant.setdefault(name, {"sent": 0, "converted": 0})
        entry["sent"] += count
        entry["converted"] += int(conversions or 0)
        sent, conv = sent + count, conv + int(conversions or 0)
    if out.holdout:
        out.uplift = _uplift(conv, sent, out.holdout["converted"], out.holdout["customers"])
    return out


PENDING = ("queued", "sending")


def progress(session: Session, *, campaign: Campaign) -> dict[str, object]:
    """How far sending has gone: deliveries per status, how many are settled (anything but queued/sending),
    and that as a whole percentage of the audience (100 once the campaign has finished)."""
    counts = {status: 0 for status in DELIVERY_STATES}
    counts.update(session.execute(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign.id)
                                  .group_by(Delivery.status)).all())
    rows = sum(counts.values())
    done = rows - sum(counts[s] for s in PENDING)
    total = campaign.audience_size if campaign.audience_size is not None else rows
    if campaign.state == "finished":
        percent = 100
    elif total:
        percent = min(100, done * 100 // total)
    else:
        percent = 0
    return {"state": campaign.state, "audience_size": campaign.audience_size, "counts": counts, "done": done,
            "percent": percent, "pause_reason": campaign.pause_reason}


def deliveries(campaign: Campaign, *, status: str | None = None, channel: str | None = None,
               variant: str | None = None, phone: str | None = None) -> Select[tuple[Delivery, Customer]]:
    """The campaign's delivery rows with their customers, filtered, newest change first."""
    query = (select(Delivery, Customer).join(Customer, Customer.id == Delivery.customer_id)
             .where(Delivery.campaign_id == campaign.id))
    if status:
        query = query.where(Delivery.status == status)
    if channel:
        query = query.where(Delivery.channel == channel)
    if variant:
        ids = [v.id for v in campaign.variants if v.name == variant]
        query = query.where(Delivery.variant_id.in_(ids))
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if digits:
        query = query.where(Customer.phone.contains(digits, autoescape=True))
    return query.order_by(Delivery.updated_at.desc(), Delivery.id.desc())



def sent_counts(session: Session, campaign_ids: list[int]) -> dict[int, int]:
    """Messages sent (or delivered) per campaign."""
    if not campaign_ids:
        return {}
    return dict(session.execute(select(Delivery.campaign_id, func.count()).where(
        Delivery.campaign_id.in_(campaign_ids), Delivery.status.in_(("sent", "delivered")))
        .group_by(Delivery.campaign_id)).all())
