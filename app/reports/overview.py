"""The dashboard's overview of one programme: how many members, how many carry the card in a wallet, how
often they buy, what the points owed are worth, how the RFM segments are filled, and recent campaigns.

Definitions (each figure is for the programme's cards; days are the programme's local days, in its time zone):

- members: active cards created on or before the end of the range; new members: created in the range;
- in a wallet: cards registered on at least one Apple device; cards whose Google Wallet object exists at
  Google (Google does not tell issuers who saved a pass unless its save callbacks are set up, so this is an
  upper bound of Google saves);
- active 30 / 90 days: members with a purchase in the 30 / 90 days up to the end of the range;
- for the purchases in the range: their number, revenue (amount less refunds), average receipt (amount),
  purchase frequency (purchases per purchasing member) and repeat rate (the share of purchasing members who
  bought at least twice);
- points liability: the points on active cards, and their value at the programme's point value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, case, cast, distinct, func, select
from sqlalchemy.orm import Session

from app.campaigns.results import Uplift, results
from app.local_time import day_bounds, zone_named
from app.models import AppleRegistration, Campaign, Card, Customer, GoogleObject, Program, Purchase
from app.segments.rfm import SEGMENT_NAMES

RECENT_CAMPAIGNS = 5


@dataclass
class RecentCampaign:
    id: int
    name: str
    state: str
    sent: int
    uplift: Uplift | None


@dataclass
class Overview:
    start: date
    end: date
    members: int = 0
    new_members: int = 0
    apple_cards: int = 0
    google_cards: int = 0
    active_30: int = 0
    active_90: int = 0
    purchases: int = 0
    purchasers: int = 0
    revenue: Decimal = Decimal("0")
    average_receipt: Decimal | None = None
    purchase_frequency: float | None = None
    repeat_rate: float | None = None
    points_liability: int = 0
    liability_value: Decimal = Decimal("0")
    rfm: dict[str, int] = field(default_factory=dict)  # segment name → customers, in the standard order
    days: list[date] = field(default_factory=list)
    purchases_per_day: list[int] = field(default_factory=list)
    revenue_per_day: list[Decimal] = field(default_factory=list)
    members_per_day: list[int] = field(default_factory=list)  # new members
    campaigns: list[RecentCampaign] = field(default_factory=list)


def overview(session: Session, *, program: Program, start: date, end: date) -> Overview:
    """Figures for the days ``start`` to ``end`` (both included)."""
    out = Overview(start=start, end=end)
    zone = zone_named(program.timezone)
    since, until = day_bounds(start, end, zone)
    mine = Card.program_id == program.id
    active = mine & (Card.status == "active")
    out.members = session.scalar(select(func.count()).select_from(Card).where(active, Card.created_at < until)) or 0
    out.new_members = session.scalar(select(func.count()).select_from(Card).where(
        mine, Card.created_at >= since, Card.created_at < until)) or 0
    out.apple_cards = session.scalar(select(func.count(distinct(AppleRegistration.card_id)))
                                     .join(Card, Card.id == AppleRegistration.card_id).where(active)) or 0
    out.google_cards = session.scalar(select(func.count()).select_from(GoogleObject)
                                      .join(Card, Card.id == GoogleObject.card_id)
                                      .where(active, GoogleObject.inserted_at.is_not(None))) or 0
    for days in (30, 90):
        count = session.scalar(select(func.count(distinct(Purchase.card_id))).join(Card, Card.id == Purchase.card_id)
                               .where(active, Purchase.occurred_at >= until - timedelta(days=days),
                                      Purchase.occurred_at < until)) or 0
        setattr(out, f"active_{days}", count)

    in_range = (mine, Purchase.occurred_at >= since, Purchase.occurred_at < until)
    per_card = (select(Purchase.card_id, func.count().label("n")).join(Card, Card.id == Purchase.card_id)
                .where(*in_range).group_by(Purchase.card_id).subquery())
    out.purchasers, repeaters = session.execute(select(
        func.count(), func.coalesce(func.sum(case((per_card.c.n >= 2, 1), else_=0)), 0)).select_from(per_card)).one()
    out.purchases, revenue, average = session.execute(
        select(func.count(), func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0),
               func.avg(Purchase.amount)).join(Card, Card.id == Purchase.card_id).where(*in_range)).one()
    out.revenue = _money(revenue)
    out.average_receipt = _money(average) if average is not None else None
    if out.purchasers:
        out.purchase_frequency = out.purchases / out.purchasers
        out.repeat_rate = int(repeaters) / out.purchasers

    out.points_liability = int(session.scalar(select(func.coalesce(func.sum(Card.balance), 0)).where(active)) or 0)
    out.liability_value = _money(Decimal(out.points_liability) * program.point_value)

    counts = dict(session.execute(select(Customer.rfm_segment, func.count()).join(Card, Card.customer_id == Customer.id)
                                  .where(active, Customer.rfm_segment.is_not(None))
                                  .group_by(Customer.rfm_segment)).all())
    out.rfm = {name: counts.get(name, 0) for name in SEGMENT_NAMES}

    per_day: dict[date, tuple[int, Decimal]] = {}
    bucket = _local_bucket(session, Purchase.occurred_at, zone)
    for value, n, r in session.execute(
            select(bucket, func.count(), func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0))
            .join(Card, Card.id == Purchase.card_id).where(*in_range).group_by(bucket)).all():
        d = _local_day(value, zone)
        count, amount = per_day.get(d, (0, Decimal("0")))
        per_day[d] = (count + n, amount + Decimal(str(r)))
    new_per_day: dict[date, int] = {}
    bucket = _local_bucket(session, Card.created_at, zone)
    for value, n in session.execute(select(bucket, func.count()).where(
            mine, Card.created_at >= since, Card.created_at < until).group_by(bucket)).all():
        d = _local_day(value, zone)
        new_per_day[d] = new_per_day.get(d, 0) + n
    out.days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    out.purchases_per_day = [per_day.get(d, (0, 0))[0] for d in out.days]
    out.revenue_per_day = [_money(per_day.get(d, (0, Decimal("0")))[1]) for d in out.days]
    out.members_per_day = [new_per_day.get(d, 0) for d in out.days]

    # Marketers' campaigns; the automations (welcome, birthday…) run all the time and have their own pages.
    for campaign in session.scalars(select(Campaign).where(Campaign.program_id == program.id,
                                                            Campaign.automation.is_(None),
                                                            Campaign.started_at.is_not(None))
                                    .order_by(Campaign.started_at.desc()).limit(RECENT_CAMPAIGNS)):
        found = results(session, campaign=campaign)
        out.campaigns.append(RecentCampaign(id=campaign.id, name=campaign.name, state=campaign.state,
                                            sent=found.by_status.get("sent", 0) + found.by_status.get("delivered", 0),
                                            uplift=found.uplift))
    return out


def _local_bucket(session: Session, column: Any, zone: ZoneInfo) -> Any:
    """What to group a timestamp column by so that each group falls in one local day of ``zone``.

    PostgreSQL knows the zone's rules: the local day itself (``column AT TIME ZONE zone``, then a date). SQLite
    (development) has no time zones: quarter-hours of UTC, which ``_local_day`` turns into local days in Python
    (every zone's offset is a whole number of quarter-hours)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(zone.key, column), Date)
    quarter = func.printf("%02d", cast(func.strftime("%M", column), Integer) / 15 * 15)
    return func.strftime("%Y-%m-%d %H:", column).op("||")(quarter)


def _money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _local_day(value: object, zone: ZoneInfo) -> date:
    """A ``_local_bucket`` as a local day: a date on PostgreSQL, a UTC quarter-hour ("2026-11-23 21:45") on SQLite."""
    if isinstance(value, date):
        return value
    instant = datetime.strptime(str(value), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return instant.astimezone(zone).date()
