"""Turning a campaign's segment into its deliveries, once and set-based (ARCHITECTURE.md "Campaigns").

One ``INSERT … SELECT`` writes a ``Delivery`` per customer holding an active card in the programme: the
holdout's rows as ``holdout`` (never sent; the baseline for conversions) and the others ``queued`` with
their variant. The split is a pure function of (campaign, customer), so rerunning it, or asking later
which variant a customer got, gives the same answer; the unique (campaign, customer) key makes a
second materialisation add nobody twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import Campaign, Card, Customer, Delivery, Segment

BUCKETS = 10_000
# Multiplicative hashing (Knuth's 2654435761, reduced mod 10,000 to 5761, coprime with 10,000): consecutive
# customer ids land on distinct buckets spread over the whole range; the campaign id shifts the pattern.
_MULTIPLIER, _SHIFT = 5761, 7919


def bucket(campaign_id: int, customer_id: int) -> int:
    """The customer's bucket in 0..9999 for this campaign (the same formula as the SQL below)."""
    return (customer_id * _MULTIPLIER + campaign_id * _SHIFT % BUCKETS) % BUCKETS


def _bucket_sql(campaign_id: int) -> ColumnElement[int]:
    shift = campaign_id * _SHIFT % BUCKETS
    return (cast(Card.customer_id, BigInteger) * literal(_MULTIPLIER, BigInteger) + shift) % BUCKETS


def cut_points(campaign: Campaign) -> tuple[int, list[tuple[int, int]]]:
    """The holdout's upper bucket, and each variant's (upper bucket, variant id), in bucket order."""
    holdout = int(campaign.holdout_percent * Decimal(BUCKETS) / 100)
    variants = sorted(campaign.variants, key=lambda v: v.id)
    total = sum(v.weight for v in variants)
    cuts, running = [], 0
    for variant in variants:
        running += variant.weight
        cuts.append((holdout + (BUCKETS - holdout) * running // total, variant.id))
    return holdout, cuts


def assigned_variant(campaign: Campaign, customer_id: int) -> int | None:
    """The variant id this customer gets, or None for the holdout."""
    holdout, cuts = cut_points(campaign)
    b = bucket(campaign.id, customer_id)
    if b < holdout:
        return None
    return next(variant_id for upper, variant_id in cuts if b < upper)


def audience(session: Session, *, campaign: Campaign, now: datetime, sms_sender: str | None = None):  # noqa: ANN201
    """``select(Customer.id)`` of the campaign's segment (or everyone with an active card)."""
    if campaign.segment_id is None:
        return (select(Customer.id).join(Card, Card.customer_id == Customer.id)
                .where(Card.program_id == campaign.program_id, Card.status == "active",
                       Customer.anonymized_at.is_(None)))
    from app.segments import rules

    segment = session.get(Segment, campaign.segment_id)
    return rules.members(session, segment=segment, now=now, sms_sender=sms_sender)


ANALYZE_FROM = 5_000  # audiences at least this large refresh the planner's statistics of the delivery table


def materialise(session: Session, *, campaign: Campaign, now: datetime, sms_sender: str | None = None) -> int:
    """Write the deliveries (idempotent); returns how many rows the audience has now."""
    if not campaign.variants:
        raise ValueError("a campaign needs at least one variant")
    holdout, cuts = cut_points(campaign)
    b = _bucket_sql(campaign.id)
    last = literal(cuts[-1][1], type_=Integer)
    variant = case(*[(b < upper, literal(variant_id, type_=Integer)) for upper, variant_id in cuts[:-1]],
                   else_=last) if len(cuts) > 1 else last
    members = audience(session, campaign=campaign, now=now, sms_sender=sms_sender).subquery()
    source = (
        select(literal(campaign.id), Card.customer_id, Card.id,
               case((b < holdout, literal(None, type_=Integer)), else_=variant),
               case((b < holdout, literal("holdout")), else_=literal("queued")), literal(now), literal(now))
        .where(and_(Card.program_id == campaign.program_id, Card.status == "active",
                    Card.customer_id.in_(select(members.c[0]))))
    )
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(Delivery)
        .from_select(["campaign_id", "customer_id", "card_id", "variant_id", "status", "created_at", "updated_at"],
                     source)
        .on_conflict_do_nothing(index_elements=[Delivery.campaign_id, Delivery.customer_id, Delivery.occurrence])
    )
    size = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id))
    if (size or 0) >= ANALYZE_FROM and session.get_bind().dialect.name == "postgresql":
        # The senders' claims start at once, before autovacuum has seen the new rows; without fresh statistics
        # PostgreSQL plans each claim as if the table were still small, and sorts the whole queue every time.
        session.execute(text("ANALYZE delivery"))
    campaign.audience_size, campaign.materialised_at = size, now
    session.flush()
    return size or 0
