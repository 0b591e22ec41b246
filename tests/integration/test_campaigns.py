"""Campaign delivery in process, with the channels in outbox mode: the audience is materialised once with a
deterministic A/B split and holdout, every eligible customer gets exactly one message on their first
reachable channel, and consent, quiet hours, the weekly cap and leases behave."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.campaigns import audience, lifecycle, send, templating
from app.campaigns.channels import PushChannel, SmsChannel, WalletChannel
from app.campaigns.lifecycle import VariantSpec
from app.errors import Conflict, InvalidInput
from app.loyalty import enrollment
from app.models import (
    CAMPAIGN_CHANNELS,
    AppleDevice,
    AppleRegistration,
    ChannelMessage,
    Delivery,
    WebPushSubscription,
)

NOON_UTC = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = "https://tallypass.test"


def channels() -> dict[str, Any]:
    return {"wallet": WalletChannel(google_setup=None, google_client=None), "push": PushChannel(pusher=None),
            "sms": SmsChannel(client=None, sender="Tallypass")}


@pytest.fixture
def program(make_program: Callable[..., Any]) -> Any:
    return make_program(name="Cafea & Co.")


def customer(db_session: Session, make_card: Callable[..., Any], program: Any, *, consents: dict[str, bool],
             push: bool = False, wallet: bool = False, timezone: str = "UTC", name: str = "Ana Popescu") -> Any:
    card = make_card(program, name=name)
    card.customer.timezone = timezone
    enrollment.set_consents(db_session, customer=card.customer, consents=consents, source="test", now=NOON_UTC)
    if push:
        db_session.add(WebPushSubscription(customer_id=card.customer_id, p256dh="k", auth="a",
                                           endpoint=f"https://push.example/{card.id}"))
    if wallet:
        device = AppleDevice(library_id=f"dev{card.id}", push_token="ab" * 32)
        db_session.add(device)
        db_session.flush()
        db_session.add(AppleRegistration(device_id=device.id, card_id=card.id))
    db_session.flush()
    return card


def run(db_session: Session, campaign: Any, *, now: datetime = NOON_UTC) -> Counter[str]:
    total: Counter[str] = Counter()
    while True:
        result = send.send_batch(db_session, campaign_id=campaign.id, channels=channels(), base_url=BASE, now=now,
                                 limit=7)
        total.update(result.outcomes)
        if not result.claimed:
            return total


def test_each_customer_gets_one_message_on_their_first_reachable_channel(
    db_session: Session, make_card: Callable[..., Any], program: Any
) -> None:
    wallet = customer(db_session, make_card, program, consents={"wallet": True, "push": True, "sms": True},
                      push=True, wallet=True)
    push = customer(db_session, make_card, program, consents={"push": True, "sms": True}, push=True)
    sms = customer(db_session, make_card, program, consents={"sms": True})
    nobody = customer(db_session, make_card, program, consents={})
    campaign = lifecycle.create(db_session, program=program, name="Weekend", channels=["wallet", "push", "sms"],
                                variants=[VariantSpec("A", "Hi {{ first_name }}, you have {{ balance }} points")],
                                now=NOON_UTC)
    assert lifecycle.start(db_session, campaign=campaign, now=NOON_UTC) == 4
    assert run(db_session, campaign) == Counter({"sent": 3, "skipped:unreachable": 1})
    rows = {d.card_id: d for d in db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}
    assert (rows[wallet.id].channel, rows[push.id].channel, rows[sms.id].channel) == ("wallet", "push", "sms")
    assert rows[nobody.id].status == "skipped" and rows[nobody.id].reason == "unreachable"
    assert wallet.offer_text == "Hi Ana, you have 0 points"  # the pass's offer field, pushed to the phone
    texts = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "sms")).all()
    assert [t.recipient for t in texts] == [sms.customer.phone]
    assert send.settle(db_session, campaign=campaign, now=NOON_UTC) == "finished"


def test_a_customer_who_said_no_is_skipped_as_opted_out(db_session: Session, make_card: Callable[..., Any],
                                                         program: Any) -> None:
    from app.models import SmsOptOut

    stopped = customer(db_session, make_card, program, consents={"sms": True})
    db_session.add(SmsOptOut(phone=stopped.customer.phone, sender="Tallypass"))  # texted STOP to our sender
    withdrawn = customer(db_session, make_card, program, consents={"sms": True})
    enrollment.set_consents(db_session, customer=withdrawn.customer, consents={"sms": False}, source="test",
                            now=NOON_UTC)
    other_sender = customer(db_session, make_card, program, consents={"sms": True})
    db_session.add(SmsOptOut(phone=other_sender.customer.phone, sender="OtherShop"))
    db_session.flush()
    campaign = lifecycle.create(db_session, program=program, name="Stop", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    assert run(db_session, campaign) == Counter({"skipped:opted-out": 2, "sent": 1})
    sent = db_session.scalars(select(Delivery).where(Delivery.status == "sent")).one()
    assert sent.card_id == other_sender.id  # a STOP binds only the sender it was sent to


def test_materialising_twice_adds_nobody(db_session: Session, make_card: Callable[..., Any], program: Any) -> None:
    for _ in range(5):
        customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Once", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    assert audience.materialise(db_session, campaign=campaign, now=NOON_UTC) == 5
    assert audience.materialise(db_session, campaign=campaign, now=NOON_UTC) == 5
    assert db_session.scalar(select(func.count()).select_from(Delivery)) == 5


def test_split_and_holdout_are_deterministic_and_follow_the_weights(
    db_session: Session, make_card: Callable[..., Any], program: Any
) -> None:
    cards = [make_card(program) for _ in range(400)]
    campaign = lifecycle.create(db_session, program=program, name="AB", channels=["sms"], now=NOON_UTC,
                                holdout_percent=Decimal("10"),
                                variants=[VariantSpec("A", "one", weight=3), VariantSpec("B", "two", weight=1)])
    audience.materialise(db_session, campaign=campaign, now=NOON_UTC)
    rows = db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()
    a, b = (v.id for v in campaign.variants)
    split = Counter("holdout" if r.variant_id is None else ("A" if r.variant_id == a else "B") for r in rows)
    # consecutive ids land on distinct, evenly spread buckets: 10 % holdout, then 3 : 1, within a customer or two
    assert abs(split["holdout"] - 40) <= 2 and abs(split["A"] - 270) <= 3 and abs(split["B"] - 90) <= 3
    for row in rows:  # the SQL and the Python formula agree
        assert row.variant_id == audience.assigned_variant(campaign, row.customer_id)
        assert (row.status == "holdout") == (row.variant_id is None)
    assert len(cards) == len(rows)


def test_quiet_hours_defer_to_the_customers_morning(db_session: Session, make_card: Callable[..., Any],
                                                    program: Any) -> None:
    night = customer(db_session, make_card, program, consents={"sms": True}, timezone="Asia/Tokyo")  # 21:00 there
    day = customer(db_session, make_card, program, consents={"sms": True}, timezone="Europe/Chisinau")  # 14:00
    campaign = lifecycle.create(db_session, program=program, name="Q", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    assert run(db_session, campaign) == Counter({"sent": 1, "deferred": 1})
    waiting = db_session.scalars(select(Delivery).where(Delivery.card_id == night.id)).one()
    assert waiting.status == "queued" and waiting.not_before == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 9:00 JST
    assert waiting.reason == "quiet-hours"
    assert run(db_session, campaign, now=NOON_UTC + timedelta(hours=11)) == Counter()  # still night in Tokyo
    assert run(db_session, campaign, now=NOON_UTC + timedelta(hours=12)) == Counter({"sent": 1})
    sent_first = db_session.scalars(select(Delivery).where(Delivery.card_id == day.id)).one()
    assert sent_first.sent_at == NOON_UTC and waiting.sent_at == NOON_UTC + timedelta(hours=12)


def test_the_weekly_cap_skips_with_its_reason(db_session: Session, make_card: Callable[..., Any],
                                              program: Any) -> None:
    card = customer(db_session, make_card, program, consents={"sms": True})
    for n in range(3):
        campaign = lifecycle.create(db_session, program=program, name=f"C{n}", channels=["sms"], max_per_week=2,
                                    variants=[VariantSpec("A", f"Message {n}")], now=NOON_UTC)
        lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
        outcome = run(db_session, campaign, now=NOON_UTC + timedelta(minutes=n))
    assert outcome == Counter({"skipped:frequency-cap": 1})
    assert db_session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.card_id == card.id, Delivery.status == "sent")) == 2


def test_a_crashed_workers_lease_runs_out(db_session: Session, make_card: Callable[..., Any], program: Any) -> None:
    for _ in range(3):
        customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Lease", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    claimed = send.claim(db_session, campaign_id=campaign.id, limit=10, now=NOON_UTC)  # ... and the worker dies
    assert len(claimed.rows) == 3 and not claimed.in_doubt
    assert run(db_session, campaign, now=NOON_UTC + timedelta(minutes=1)) == Counter()  # still leased
    assert run(db_session, campaign, now=NOON_UTC + send.LEASE + timedelta(seconds=1)) == Counter({"sent": 3})
    assert db_session.scalar(select(func.count()).select_from(ChannelMessage)) == 3


def test_rows_a_dead_worker_was_sending_are_not_sent_twice(db_session: Session, make_card: Callable[..., Any],
                                                           program: Any) -> None:
    wallet = customer(db_session, make_card, program, consents={"wallet": True}, wallet=True)
    push = customer(db_session, make_card, program, consents={"push": True}, push=True)
    sms = customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Crash", channels=["wallet", "push", "sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    prepared = send.prepare(db_session, campaign_id=campaign.id, channels=channels(), base_url=BASE, now=NOON_UTC)
    assert [item.row.channel for item in prepared.outgoing] == ["wallet", "push", "sms"]
    # The intent is committed, the worker dies while handing the messages over; its lease runs out.
    later = NOON_UTC + send.LEASE + timedelta(seconds=1)
    assert run(db_session, campaign, now=later) == Counter({"sent": 1, "failed:interrupted": 2})
    rows = {d.card_id: d for d in db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}
    assert rows[wallet.id].status == "sent"  # a pass update and a Google message with a fixed id repeat harmlessly
    for card in (push, sms):
        assert (rows[card.id].status, rows[card.id].reason) == ("failed", "interrupted")
        assert "may have gone out" in (rows[card.id].error or "")
    # The marketer decides, and the two retries differ: "failed" leaves what may have arrived alone;
    # "interrupted" resends the web push (a copy replaces the first) but never the text message.
    assert send.retryable(db_session, campaign=campaign) == {"failed": 0, "interrupted": 1, "kept": {"sms": 1}}
    assert send.retry(db_session, campaign=campaign, deliveries="failed", now=later).requeued == 0
    retried = send.retry(db_session, campaign=campaign, deliveries="interrupted", now=later)
    assert (retried.requeued, retried.kept) == (1, {"sms": 1})
    assert run(db_session, campaign, now=later) == Counter({"sent": 1})
    db_session.expire_all()
    assert (rows[push.id].status, rows[push.id].channel) == ("sent", "push")
    assert (rows[sms.id].status, rows[sms.id].reason) == ("failed", "interrupted")  # never sent twice


def test_a_paused_campaign_sends_nothing_and_resumes(db_session: Session, make_card: Callable[..., Any],
                                                     program: Any) -> None:
    customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="P", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    lifecycle.pause(db_session, campaign=campaign, now=NOON_UTC)
    assert run(db_session, campaign) == Counter()
    with pytest.raises(Conflict, match="possible: cancelled, running"):  # the state conflicts: 409
        lifecycle.pause(db_session, campaign=campaign, now=NOON_UTC)
    lifecycle.resume(db_session, campaign=campaign, now=NOON_UTC)
    assert run(db_session, campaign) == Counter({"sent": 1})


def test_templates_are_sandboxed_and_checked(program: Any, db_session: Session) -> None:
    with pytest.raises(InvalidInput) as unknown:
        lifecycle.create(db_session, program=program, name="X", channels=["sms"], now=NOON_UTC,
                         variants=[VariantSpec("A", "Hi {{ password }}")])
    assert unknown.value.errors[0].field == "variants.0.body"
    with pytest.raises(InvalidInput):
        templating.render("", "{{ first_name.__class__.__mro__ }}", {"first_name": "Ana"})
    assert templating.render("", "{{ first_name }}: {{ balance }}", {"first_name": "Ana", "balance": 5}).body == \
        "Ana: 5"


@pytest.mark.parametrize(("text", "parts"), [
    ("x" * 160, 1), ("x" * 161, 2), ("x" * 306, 2), ("x" * 307, 3), ("€" * 80, 1), ("€" * 81, 2),
    ("ș" * 70, 1), ("ș" * 71, 2), ("Привет" * 12, 2),
    ("😀" * 35, 1), ("😀" * 36, 2), ("€" + "x" * 158, 1), ("€" + "x" * 159, 2),  # emoji and € take two units
])
def test_sms_segments(text: str, parts: int) -> None:
    assert templating.sms_segments(text) == parts


def test_the_tasks_start_and_finish_a_campaign(app: Any, db_session: Session, make_card: Callable[..., Any],
                                               program: Any) -> None:
    from app.tasks.campaigns import start_campaign, tick_campaigns

    for _ in range(12):
        customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Tasks", channels=["sms"], quiet_start_hour=0,
                                quiet_end_hour=0, variants=[VariantSpec("A", "Hello {{ first_name }}")],
                                now=NOON_UTC)
    db_session.commit()
    with app.app_context():
        assert start_campaign.delay(campaign.id).get() == 12  # eager: the senders ran inline
        tick_campaigns.delay().get()  # the welcome automation's messages for these new customers go out too
    db_session.refresh(campaign)
    assert campaign.state == "finished"
    statuses = Counter(db_session.scalars(select(Delivery.status).where(Delivery.campaign_id == campaign.id)))
    assert statuses == Counter(sent=12)
    texts = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "sms")).all()
    assert sum(t.payload["body"].startswith("Hello") for t in texts) == 12  # (welcome messages may go too)


def test_a_sender_hands_its_worker_back_and_queues_its_continuation(
        app: Any, db_session: Session, make_card: Callable[..., Any], program: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a broker, a sender gives the worker back after ``SLICE_SECONDS`` (the outbox drains queued behind
    it run in between) and queues itself again; the continuation picks up where it stopped."""
    from app.tasks import campaigns as tasks

    for _ in range(12):
        customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Slices", channels=["sms"], quiet_start_hour=0,
                                quiet_end_hour=0, variants=[VariantSpec("A", "Hello {{ first_name }}")],
                                now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC, sms_sender="Tallypass")
    db_session.commit()
    monkeypatch.setattr(tasks, "BATCH", 5)
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)  # every batch is a whole slice
    monkeypatch.setitem(tasks.send_campaign.app.conf, "task_always_eager", False)
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_campaign, "delay", queued.append)  # the broker, as far as this test goes
    with app.app_context():
        sent = [tasks.send_campaign(campaign.id).get("sent", 0)]
        while queued:
            sent.append(tasks.send_campaign(queued.pop()).get("sent", 0))
    assert sent == [5, 5, 2]  # a batch per slice; the last, short batch queues nothing more
    db_session.refresh(campaign)
    assert campaign.state == "finished"
    assert Counter(db_session.scalars(select(Delivery.status).where(Delivery.campaign_id == campaign.id))) \
        == Counter(sent=12)


def test_results_compare_conversions_with_the_holdout(db_session: Session, make_card: Callable[..., Any],
                                                      make_store: Callable[..., Any], program: Any) -> None:
    from app.campaigns.results import results
    from app.models import Purchase

    store = make_store(program, "Till").store
    cards = [customer(db_session, make_card, program, consents={"sms": True}) for _ in range(200)]
    campaign = lifecycle.create(db_session, program=program, name="R", channels=["sms"], now=NOON_UTC,
                                holdout_percent=Decimal("25"), variants=[VariantSpec("A", "Come back!")])
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    run(db_session, campaign)
    rows = {d.card_id: d for d in db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}
    # Half of those messaged buy within the week, a tenth of the holdout does; one buys too late to count.
    for n, card in enumerate(cards):
        messaged = rows[card.id].status == "sent"
        if (messaged and n % 2 == 0) or (not messaged and n % 10 == 0):
            db_session.add(Purchase(store_id=store.id, receipt_id=f"R{n}", card_id=card.id, amount=Decimal("10"),
                                    amount_due=Decimal("10"), occurred_at=NOON_UTC + timedelta(days=2)))
        elif n == 1:
            db_session.add(Purchase(store_id=store.id, receipt_id="late", card_id=card.id, amount=Decimal("10"),
                                    amount_due=Decimal("10"), occurred_at=NOON_UTC + timedelta(days=8)))
    db_session.flush()
    report = results(db_session, campaign=campaign)
    holdout, sent = report.holdout["customers"], report.by_variant["A"]["sent"]
    assert holdout + sent == 200 and report.by_status == {"sent": sent, "holdout": holdout}
    assert report.by_channel == {"sms": sent}
    expected_sent = sum(1 for n, c in enumerate(cards) if rows[c.id].status == "sent" and n % 2 == 0)
    expected_hold = sum(1 for n, c in enumerate(cards) if rows[c.id].status == "holdout" and n % 10 == 0)
    assert report.by_variant["A"]["converted"] == expected_sent
    assert report.holdout["converted"] == expected_hold
    uplift = report.uplift
    assert uplift is not None
    assert uplift.difference == pytest.approx(expected_sent / sent - expected_hold / holdout)
    assert uplift.low < uplift.difference < uplift.high and uplift.low > 0  # a clear effect


def test_delivery_reports_reach_the_campaign_log(db_session: Session, make_card: Callable[..., Any],
                                                 program: Any) -> None:
    cards = [customer(db_session, make_card, program, consents={"sms": True}) for _ in range(2)]
    campaign = lifecycle.create(db_session, program=program, name="DLR", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    run(db_session, campaign)
    rows = db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)).all()
    ok, bad = (row.provider_id for row in rows)
    assert send.record_provider_status(db_session, channel="sms", provider_id=ok, status="delivered", error=None,
                                       now=NOON_UTC) == 1
    assert send.record_provider_status(db_session, channel="sms", provider_id=bad, status="undelivered",
                                       error="30003", now=NOON_UTC) == 1
    assert send.record_provider_status(db_session, channel="sms", provider_id=ok, status="sent", error=None,
                                       now=NOON_UTC) == 0  # never backwards
    db_session.expire_all()
    assert [(r.status, r.error) for r in rows] == [("delivered", None), ("failed", "sms undelivered: 30003")]
    assert {r.card_id for r in rows} == {c.id for c in cards}


def test_failed_deliveries_can_be_retried_from_the_log(db_session: Session, make_card: Callable[..., Any],
                                                       program: Any) -> None:
    card = customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Retry", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    row = db_session.scalars(select(Delivery).where(Delivery.card_id == card.id)).one()
    row.status, row.error, row.attempts = "failed", "gateway down", 3  # as a failed send leaves it
    assert send.settle(db_session, campaign=campaign, now=NOON_UTC) == "finished"
    assert send.retry(db_session, campaign=campaign, deliveries="failed", now=NOON_UTC).requeued == 1
    assert campaign.state == "running"
    assert run(db_session, campaign) == Counter({"sent": 1})
    assert (row.status, row.error) == ("sent", None)


def test_a_high_error_rate_pauses_the_campaign(db_session: Session, make_card: Callable[..., Any],
                                               program: Any) -> None:
    from app.campaigns.channels import SendFailed

    class RefusingGateway(SmsChannel):
        def send(self, session: Session, **_: Any) -> str:
            raise SendFailed("sms failed: 30007 (carrier violation)", retry=False)

    for _ in range(30):
        customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Broken", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    broken = {"sms": RefusingGateway(client=None, sender="Tallypass")}
    states = []
    while campaign.state == "running":
        result = send.send_batch(db_session, campaign_id=campaign.id, channels=broken, base_url=BASE, now=NOON_UTC,
                                 limit=10)
        states.append(send.settle(db_session, campaign=campaign, now=NOON_UTC,
                                  failures=bool(result.outcomes["failed"])))
    assert states == ["running", "paused"]  # 10 failures are too few to judge; 20 of 20 are not
    assert campaign.pause_reason == f"20 of 20 deliveries failed (over {campaign.error_threshold_percent}%)"
    assert db_session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign.id, Delivery.status == "queued")) == 10  # the rest wait for a decision


def test_offers_bump_the_version_the_database_has(db_session: Session, make_card: Callable[..., Any],
                                                  program: Any) -> None:
    """A batch's offers are written in one statement that adds one to each card's version as stored, so a
    purchase committed after the batch loaded its cards is not written over (its version would repeat, and
    the phone would never fetch one of the two passes)."""
    from sqlalchemy import update

    from app.models import Card, OutboxEvent

    cards = [customer(db_session, make_card, program, consents={"wallet": True}, wallet=True) for _ in range(3)]
    campaign = lifecycle.create(db_session, program=program, name="Offer", channels=["wallet"],
                                variants=[VariantSpec("A", "{{ first_name }}: 2x points")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    before = {c.id: c.version for c in cards}
    db_session.execute(update(Card).where(Card.id == cards[1].id).values(version=Card.version + 5),
                       execution_options={"synchronize_session": False})  # another writer, unseen by the ORM
    assert run(db_session, campaign) == Counter({"sent": 3})
    stored = dict(db_session.execute(select(Card.id, Card.version).where(Card.id.in_(before))).all())
    assert stored == {cards[0].id: before[cards[0].id] + 1, cards[1].id: before[cards[1].id] + 6,
                      cards[2].id: before[cards[2].id] + 1}
    assert {c.id: c.version for c in cards} == stored  # the objects in the session agree
    assert all(c.offer_text == "Ana: 2x points" for c in cards)
    events = db_session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "card.changed")).all()
    offers = {e.payload["card_id"]: e.payload for e in events if "offer" in e.payload["reasons"]}
    assert {i: p["version"] for i, p in offers.items()} == stored
    assert {p["campaign_id"] for p in offers.values()} == {campaign.id}
    rows = db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()
    assert {r.card_id: r.provider_id for r in rows} == {i: f"card-version-{v}" for i, v in stored.items()}


def test_an_sms_the_gateway_may_have_sent_is_in_doubt_and_never_resent(
        db_session: Session, make_card: Callable[..., Any], program: Any) -> None:
    """A gateway error after the request went out (``SmsUnavailable.possibly_sent``): the row says so
    (reason ``unconfirmed``), neither retry queues it, and the interrupted one counts it as kept."""
    from app.campaigns.channels import SendFailed

    class LostAnswer(SmsChannel):
        def send(self, session: Session, **_: Any) -> str:
            raise SendFailed("the SMS gateway is unavailable: 502", retry=False, possibly_sent=True)

    card = customer(db_session, make_card, program, consents={"sms": True})
    campaign = lifecycle.create(db_session, program=program, name="Lost", channels=["sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    result = send.send_batch(db_session, campaign_id=campaign.id, now=NOON_UTC, base_url=BASE,
                             channels={"sms": LostAnswer(client=None, sender="Tallypass")})
    assert result.outcomes == Counter({"failed:unconfirmed": 1})
    row = db_session.scalars(select(Delivery).where(Delivery.card_id == card.id)).one()
    assert (row.status, row.reason, row.error) == ("failed", "unconfirmed", "the SMS gateway is unavailable: 502")
    assert send.retry(db_session, campaign=campaign, deliveries="failed", now=NOON_UTC).requeued == 0
    retried = send.retry(db_session, campaign=campaign, deliveries="interrupted", now=NOON_UTC)
    assert (retried.requeued, retried.kept) == (0, {"sms": 1})
    assert (row.status, row.reason) == ("failed", "unconfirmed")


def test_an_interrupted_push_is_resent_on_the_same_channel_only(
        db_session: Session, make_card: Callable[..., Any], program: Any) -> None:
    """A web push that may have arrived is resent as web push or not at all: falling back to SMS would
    send a second, different message to someone who may have the first."""
    card = customer(db_session, make_card, program, consents={"push": True, "sms": True}, push=True)
    campaign = lifecycle.create(db_session, program=program, name="Fallback", channels=["push", "sms"],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    send.prepare(db_session, campaign_id=campaign.id, channels=channels(), base_url=BASE, now=NOON_UTC)
    later = NOON_UTC + send.LEASE + timedelta(seconds=1)  # ... and the worker died handing it over
    assert run(db_session, campaign, now=later) == Counter({"failed:interrupted": 1})
    db_session.execute(delete(WebPushSubscription).where(WebPushSubscription.customer_id == card.customer_id))
    assert send.retry(db_session, campaign=campaign, deliveries="interrupted", now=later).requeued == 1
    row = db_session.scalars(select(Delivery).where(Delivery.card_id == card.id)).one()
    assert (row.status, row.resend_channel) == ("queued", "push")
    assert run(db_session, campaign, now=later) == Counter({"skipped:unreachable": 1})
    assert db_session.scalar(select(func.count()).select_from(ChannelMessage).where(
        ChannelMessage.channel == "sms")) == 0


@pytest.mark.parametrize("channel", CAMPAIGN_CHANNELS)
def test_every_channel_says_whether_a_resend_replaces_and_only_those_are_resent(
        db_session: Session, make_card: Callable[..., Any], program: Any, channel: str) -> None:
    """The guard for the class of mistake: each campaign channel is classified (a channel added without a
    decision fails here), "failed" never touches a delivery in doubt, and "interrupted" resends one only on a
    channel whose resend replaces the first copy."""
    assert set(send.RESEND_REPLACES) == set(CAMPAIGN_CHANNELS)
    card = customer(db_session, make_card, program, consents={channel: True}, push=channel == "push",
                    wallet=channel == "wallet")
    campaign = lifecycle.create(db_session, program=program, name=f"In doubt on {channel}", channels=[channel],
                                variants=[VariantSpec("A", "Hello")], now=NOON_UTC)
    lifecycle.start(db_session, campaign=campaign, now=NOON_UTC)
    for reason in send.IN_DOUBT:
        row = db_session.scalars(select(Delivery).where(Delivery.card_id == card.id)).one()
        row.status, row.reason, row.channel = "failed", reason, channel
        db_session.flush()
        assert send.retry(db_session, campaign=campaign, deliveries="failed", now=NOON_UTC).requeued == 0
        retried = send.retry(db_session, campaign=campaign, deliveries="interrupted", now=NOON_UTC)
        replaces = send.RESEND_REPLACES[channel]
        assert (retried.requeued, retried.kept) == ((1, {}) if replaces else (0, {channel: 1})), reason
        db_session.expire_all()
