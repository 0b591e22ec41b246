"""Automations: campaigns that run for good and message one customer when something happens to them.

Each is a ``Campaign`` with ``automation`` set, created from a default template the marketer can edit
(text, channels, variants, pausing). A trigger adds a ``Delivery`` for that customer and occurrence (a
birthday's year, a tier change's card version...); the unique (campaign, customer, occurrence) key
makes a trigger that fires twice harmless, and the ordinary senders deliver it with every rule of a
campaign (consent, quiet hours, caps, channel order).

- ``welcome``: when a card is issued;
- ``birthday``: on the customer's birthday, with the programme's birthday bonus;
- ``expiry_reminder``: points expiring within ``REMINDER_DAYS``;
- ``points_expired``: when points expired;
- ``tier_change``: the card moved to another tier;
- ``win_back``: the customer entered the RFM segment "At Risk".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import extract, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.campaigns import audience
from app.loyalty import ledger
from app.models import Campaign, CampaignVariant, Card, Customer, Delivery, LedgerEntry, Program

REMINDER_DAYS = 7

TEMPLATES: dict[str, tuple[str, str, list[str]]] = {  # name → (title, body, channels)
    "welcome": ("Welcome to {{ programme }}", "Welcome, {{ first_name }}! Your card is ready: {{ card_url }}",
                ["wallet", "push", "sms"]),
    "birthday": ("Happy birthday!", "Happy birthday, {{ first_name }}! A gift is on your card: {{ balance }} points.",
                 ["wallet", "push", "sms"]),
    "expiry_reminder": ("Points expiring soon", "{{ first_name }}, {{ expiring_points }} points expire on "
                        "{{ expiry_date }}. Use them before then!", ["wallet", "push", "sms"]),
    "points_expired": ("Points expired", "Some points expired. You have {{ balance }} points.", ["wallet", "push"]),
    "tier_change": ("Your tier changed", "{{ first_name }}, you are now {{ tier }}.", ["wallet", "push"]),
    "win_back": ("We miss you", "{{ first_name }}, we miss you! Come back: your {{ balance }} points are waiting.",
                 ["wallet", "push", "sms"]),
}


def ensure_templates(session: Session, *, program: Program, now: datetime) -> dict[str, Campaign]:
    """The programme's automation campaigns, created (running, quiet hours and all) where missing."""
    existing = {c.automation: c for c in session.scalars(select(Campaign).where(
        Campaign.program_id == program.id, Campaign.automation.is_not(None)))}
    for name, (title, body, channels) in TEMPLATES.items():
        if name not in existing:
            campaign = Campaign(program_id=program.id, name=f"Automation: {name.replace('_', ' ')}",
                                automation=name, state="running", channels=channels, started_at=now,
                                materialised_at=now, created_at=now, updated_at=now)
            campaign.variants = [CampaignVariant(name="A", title=title, body=body)]
            session.add(campaign)
            existing[name] = campaign
    session.flush()
    return existing


def trigger(session: Session, *, automation: str, card: Card, occurrence: str, now: datetime) -> bool:
    """Queue the automation's message for this card's customer; False when the automation is paused or
    cancelled, or this occurrence was queued before."""
    campaign = session.scalar(select(Campaign).where(Campaign.program_id == card.program_id,
                                                     Campaign.automation == automation))
    if campaign is None:
        campaign = ensure_templates(session, program=card.program, now=now)[automation]
    if campaign.state != "running" or card.status != "active":
        return False
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    row = session.execute(
        insert(Delivery).values(campaign_id=campaign.id, customer_id=card.customer_id, card_id=card.id,
                                variant_id=audience.assigned_variant(campaign, card.customer_id),
                                status="queued", occurrence=occurrence[:40], created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[Delivery.campaign_id, Delivery.customer_id, Delivery.occurrence])
        .returning(Delivery.id)
    ).scalar_one_or_none()
    return row is not None


def birthdays(session: Session, *, program: Program, now: datetime) -> int:
    """Birthday bonus and message for customers whose birthday is today in the programme's time zone.
    The delivery row is the once-a-year guard for the bonus, too."""
    today = now.astimezone(ZoneInfo(program.timezone or "UTC")).date()
    cards = session.scalars(
        select(Card).join(Customer, Customer.id == Card.customer_id)
        .where(Card.program_id == program.id, Card.status == "active", Customer.anonymized_at.is_(None),
               extract("month", Customer.birthday) == today.month, extract("day", Customer.birthday) == today.day)
    ).all()
    done = 0
    for card in cards:
        if trigger(session, automation="birthday", card=card, occurrence=str(today.year), now=now):
            if program.birthday_bonus:
                ledger.grant_bonus(session, card=card, points=program.birthday_bonus, reason="birthday", now=now)
            done += 1
    return done


def expiry_reminders(session: Session, *, program: Program, now: datetime, days: int = REMINDER_DAYS) -> int:
    """A reminder per card with points expiring within ``days`` (once per expiry date)."""
    rows = session.execute(
        select(Card, func.min(LedgerEntry.expires_at))
        .join(LedgerEntry, LedgerEntry.card_id == Card.id)
        .where(Card.program_id == program.id, Card.status == "active", LedgerEntry.remaining > 0,
               LedgerEntry.expires_at > now, LedgerEntry.expires_at <= now + timedelta(days=days))
        .group_by(Card.id)
    ).all()
    return sum(trigger(session, automation="expiry_reminder", card=card, occurrence=f"expiry-{when.date()}",
                       now=now) for card, when in rows)


def expiring(session: Session, *, card: Card, now: datetime, days: int = REMINDER_DAYS) -> tuple[int, date | None]:
    """Points expiring within ``days`` and the first date: the reminder's ``expiring_points`` and ``expiry_date``."""
    total, first = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.remaining), 0), func.min(LedgerEntry.expires_at))
        .where(LedgerEntry.card_id == card.id, LedgerEntry.remaining > 0, LedgerEntry.expires_at > now,
               LedgerEntry.expires_at <= now + timedelta(days=days))
    ).one()
    return int(total), first.date() if first else None
