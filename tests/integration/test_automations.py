"""Automations: editable campaign templates that queue one message per customer and occurrence."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import automations, send
from app.campaigns.channels import PushChannel, SmsChannel, WalletChannel
from app.loyalty import enrollment, ledger
from app.models import Campaign, ChannelMessage, Delivery, LedgerEntry

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def deliveries(db_session: Session, automation: str) -> list[Delivery]:
    return list(db_session.scalars(select(Delivery).join(Campaign, Campaign.id == Delivery.campaign_id)
                                   .where(Campaign.automation == automation)))


def test_templates_are_created_once_and_running(db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    first = automations.ensure_templates(db_session, program=program, now=NOON)
    again = automations.ensure_templates(db_session, program=program, now=NOON)
    assert set(first) == set(automations.TEMPLATES) and {c.id for c in first.values()} == {c.id for c in again.values()}
    assert all(c.state == "running" and c.variants[0].body for c in first.values())


def test_a_trigger_counts_once_per_occurrence_and_not_when_paused(db_session: Session,
                                                                  make_program: Callable[..., Any],
                                                                  make_card: Callable[..., Any]) -> None:
    card = make_card(make_program())
    assert automations.trigger(db_session, automation="tier_change", card=card, occurrence="v3", now=NOON)
    assert not automations.trigger(db_session, automation="tier_change", card=card, occurrence="v3", now=NOON)
    assert automations.trigger(db_session, automation="tier_change", card=card, occurrence="v5", now=NOON)
    campaign = db_session.scalar(select(Campaign).where(Campaign.automation == "tier_change"))
    campaign.state = "paused"
    assert not automations.trigger(db_session, automation="tier_change", card=card, occurrence="v7", now=NOON)
    assert len(deliveries(db_session, "tier_change")) == 2


def test_birthday_bonus_and_message_once_a_year(db_session: Session, make_program: Callable[..., Any],
                                                make_card: Callable[..., Any]) -> None:
    program = make_program(birthday_bonus=100, timezone="Europe/Chisinau")
    today = make_card(program, birthday=date(1990, 11, 23))
    make_card(program, birthday=date(1990, 11, 24))
    assert automations.birthdays(db_session, program=program, now=NOON) == 1
    assert automations.birthdays(db_session, program=program, now=NOON + timedelta(hours=2)) == 0
    assert today.balance == 100
    assert [d.occurrence for d in deliveries(db_session, "birthday")] == ["2026"]


def test_expiry_reminder_says_how_many_points_and_when(db_session: Session, make_program: Callable[..., Any],
                                                       make_card: Callable[..., Any]) -> None:
    program = make_program(expiry_days=30)
    card = make_card(program)
    ledger.grant_bonus(db_session, card=card, points=40, reason="old", now=NOON - timedelta(days=25))
    ledger.grant_bonus(db_session, card=card, points=10, reason="new", now=NOON)
    enrollment.set_consents(db_session, customer=card.customer, consents={"sms": True}, source="t", now=NOON)
    db_session.flush()
    assert automations.expiry_reminders(db_session, program=program, now=NOON) == 1
    assert automations.expiry_reminders(db_session, program=program, now=NOON) == 0
    campaign = db_session.scalar(select(Campaign).where(Campaign.automation == "expiry_reminder"))
    campaign.quiet_start_hour = campaign.quiet_end_hour = 0
    channels = {"wallet": WalletChannel(None, None), "push": PushChannel(None), "sms": SmsChannel(None, "Tallypass")}
    send.send_batch(db_session, campaign_id=campaign.id, channels=channels, base_url="https://t", now=NOON)
    [text] = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "sms")).all()
    expires = db_session.scalar(select(LedgerEntry.expires_at).where(LedgerEntry.reason == "old"))
    assert text.payload["body"] == f"{card.customer.name.split()[0]}, 40 points expire on {expires.date()}. " \
                                   "Use them before then!"


def test_a_tier_change_at_the_till_queues_its_message(make_program: Callable[..., Any], make_store: Callable[..., Any],
                                                      make_card: Callable[..., Any], pos_for: Callable[..., Any],
                                                      db_session: Session) -> None:
    program = make_program(tiers=[("Bronze", "0", "1"), ("Silver", "100", "2")])
    card = make_card(program)
    pos = pos_for(make_store(program, "Till"))
    assert pos.post("/purchases", {"receipt_id": "R1", "card": card.barcode, "amount": "150.00"}).status_code == 201
    [row] = deliveries(db_session, "tier_change")
    assert row.card_id == card.id and row.status == "queued"
    assert [d.card_id for d in deliveries(db_session, "welcome")] == [card.id]


def test_entering_at_risk_queues_a_win_back(app: Any, db_session: Session, make_program: Callable[..., Any],
                                            make_store: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    from decimal import Decimal

    from app.db import utcnow
    from app.models import Purchase
    from app.tasks.segments import recompute_rfm

    program = make_program(rfm_mode="fixed", rfm_thresholds={
        "recency_days": [30, 60, 90, 180], "frequency": [2, 4, 8, 12], "monetary": [50, 100, 200, 400]})
    store = make_store(program, "Till").store
    lapsing, regular = make_card(program), make_card(program)
    now = utcnow()
    for card, days_ago in ((lapsing, 120), (regular, 10)):
        for n in range(5):  # five visits: F = 3
            db_session.add(Purchase(store_id=store.id, receipt_id=f"{card.id}-{n}", card_id=card.id,
                                    amount=Decimal("20"), amount_due=Decimal("20"),
                                    occurred_at=now - timedelta(days=days_ago + n)))
    regular.customer.rfm_segment = "Champions"  # scored before: this is not the first run
    db_session.commit()
    with app.app_context():
        recompute_rfm.run()
        recompute_rfm.run()  # still At Risk, not newly: nothing more
    db_session.expire_all()
    assert lapsing.customer.rfm_segment == "At Risk" and regular.customer.rfm_segment != "At Risk"
    assert [d.card_id for d in deliveries(db_session, "win_back")] == [lapsing.id]


def test_the_first_scoring_sends_no_win_back(app: Any, db_session: Session, make_program: Callable[..., Any],
                                             make_store: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    from decimal import Decimal

    from app.db import utcnow
    from app.models import Purchase
    from app.tasks.segments import recompute_rfm

    program = make_program(rfm_mode="fixed", rfm_thresholds={
        "recency_days": [30, 60, 90, 180], "frequency": [2, 4, 8, 12], "monetary": [50, 100, 200, 400]})
    store = make_store(program, "Till").store
    card = make_card(program)
    for n in range(5):
        db_session.add(Purchase(store_id=store.id, receipt_id=f"x{n}", card_id=card.id, amount=Decimal("20"),
                                amount_due=Decimal("20"), occurred_at=utcnow() - timedelta(days=120 + n)))
    db_session.commit()
    with app.app_context():
        recompute_rfm.run()
    db_session.expire_all()
    assert card.customer.rfm_segment == "At Risk"
    assert deliveries(db_session, "win_back") == []
