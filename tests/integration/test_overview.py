"""The overview's figures against a small programme whose answers are counted by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import ledger
from app.models import AppleDevice, AppleRegistration, GoogleObject
from app.reports.overview import overview
from app.segments.rfm import SEGMENT_NAMES


def test_figures_match_a_hand_count(db_session: Session, make_program: Callable[..., Any],
                                    make_store: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    program = make_program()
    other = make_program()
    store = make_store(program).store
    a, b, c = (make_card(program) for _ in range(3))
    make_card(other)  # another programme's member counts nowhere here
    today = utcnow().date()

    def buy(card: Any, days_ago: int, amount: str, receipt: str) -> Any:
        at = datetime.combine(today - timedelta(days=days_ago), time(12), tzinfo=UTC)
        return ledger.record_purchase(db_session, store=store, card=card, receipt_id=receipt, amount=Decimal(amount),
                                      occurred_at=at, now=at)

    first = buy(a, 1, "100.00", "R1")
    buy(a, 2, "50.00", "R2")
    buy(b, 3, "30.00", "R3")
    buy(b, 40, "70.00", "R4")  # before the range, within 90 days
    buy(c, 60, "20.00", "R5")  # active in 90 days, not in 30
    first.purchase.refunded_amount = Decimal("20.00")
    device = AppleDevice(library_id="phone-a", push_token="ab" * 32)
    db_session.add(device)
    db_session.flush()
    db_session.add_all([AppleRegistration(device_id=device.id, card_id=a.id),
                        GoogleObject(card_id=b.id, object_id="x.b", inserted_at=utcnow()),
                        GoogleObject(card_id=c.id, object_id="x.c")])  # not at Google yet
    a.customer.rfm_segment = b.customer.rfm_segment = "Champions"
    c.customer.rfm_segment = "At Risk"
    db_session.flush()

    got = overview(db_session, program=program, start=today - timedelta(days=9), end=today)

    assert (got.members, got.new_members) == (3, 3)
    assert (got.apple_cards, got.google_cards) == (1, 1)
    assert (got.active_30, got.active_90) == (2, 3)
    assert (got.purchases, got.purchasers) == (3, 2)
    assert got.revenue == Decimal("160.00")  # 100 − 20 refunded + 50 + 30
    assert got.average_receipt == Decimal("60.00")  # receipts as rung up: (100 + 50 + 30) / 3
    assert got.purchase_frequency == 1.5 and got.repeat_rate == 0.5
    assert got.points_liability == a.balance + b.balance + c.balance > 0
    assert got.liability_value == Decimal(got.points_liability) * program.point_value
    assert list(got.rfm) == list(SEGMENT_NAMES)
    assert (got.rfm["Champions"], got.rfm["At Risk"], sum(got.rfm.values())) == (2, 1, 3)
    assert len(got.days) == 10 and got.days[-1] == today
    by_day = dict(zip(got.days, got.purchases_per_day, strict=True))
    assert [by_day[today - timedelta(days=n)] for n in range(10)] == [0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert got.revenue_per_day[-2] == Decimal("80.00") and sum(got.revenue_per_day) == Decimal("160.00")
    assert got.members_per_day[-1] == 3 and sum(got.members_per_day) == 3

    quiet = overview(db_session, program=program, start=today - timedelta(days=400), end=today - timedelta(days=100))
    assert (quiet.purchases, quiet.purchasers, quiet.new_members) == (0, 0, 0)
    assert quiet.average_receipt is None and quiet.repeat_rate is None and quiet.purchase_frequency is None
