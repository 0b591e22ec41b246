"""The overview counts a programme's own days: a purchase at 00:30 in Chisinau (22:30 UTC the day before) is on
the Chisinau day, on PostgreSQL and on SQLite alike, also in zones whose offset is not whole hours."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from app.local_time import day_bounds, today, zone_named
from app.loyalty import ledger
from app.reports.overview import overview


def test_zones_and_day_bounds() -> None:
    chisinau = ZoneInfo("Europe/Chisinau")
    assert zone_named("Europe/Chisinau") == chisinau
    assert zone_named("") == zone_named(None) == zone_named("Mars/Olympus") == ZoneInfo("UTC")
    # 30 March 2026 is after the spring change (UTC+3): the day starts at 21:00 UTC the day before.
    assert day_bounds(date(2026, 3, 30), date(2026, 3, 30), chisinau) == (
        datetime(2026, 3, 29, 21, tzinfo=UTC), datetime(2026, 3, 30, 21, tzinfo=UTC))
    # The night of the change is 23 hours long.
    since, until = day_bounds(date(2026, 3, 29), date(2026, 3, 29), chisinau)
    assert (until - since).total_seconds() == 23 * 3600
    assert today(chisinau, datetime(2026, 11, 23, 22, 30, tzinfo=UTC)) == date(2026, 11, 24)


@pytest.mark.parametrize(("zone", "late", "next_day"), [
    # 23:30 and 00:30 local time, in UTC
    ("Europe/Chisinau", datetime(2026, 11, 23, 21, 30, tzinfo=UTC), datetime(2026, 11, 23, 22, 30, tzinfo=UTC)),
    ("Asia/Kolkata", datetime(2026, 11, 23, 18, 0, tzinfo=UTC), datetime(2026, 11, 23, 19, 0, tzinfo=UTC)),
    ("Asia/Kathmandu", datetime(2026, 11, 23, 18, 14, tzinfo=UTC), datetime(2026, 11, 23, 18, 15, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 24, 4, 59, tzinfo=UTC), datetime(2026, 11, 24, 5, 0, tzinfo=UTC)),
])
def test_purchases_and_new_members_count_on_the_programmes_day(
        zone: str, late: datetime, next_day: datetime, db_session: Session, make_program: Callable[..., Any],
        make_store: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    program = make_program(timezone=zone)
    store = make_store(program).store
    evening = make_card(program, now=late)
    night = make_card(program, now=next_day)
    for n, (card, at) in enumerate(((evening, late), (night, next_day))):
        ledger.record_purchase(db_session, store=store, card=card, receipt_id=f"r{n}", amount=Decimal("10.00"),
                               occurred_at=at, now=at)
    assert late.astimezone(ZoneInfo(zone)).date() == date(2026, 11, 23)
    assert next_day.astimezone(ZoneInfo(zone)).date() == date(2026, 11, 24)

    both = overview(db_session, program=program, start=date(2026, 11, 22), end=date(2026, 11, 25))
    assert dict(zip(both.days, both.purchases_per_day, strict=True)) == {
        date(2026, 11, 22): 0, date(2026, 11, 23): 1, date(2026, 11, 24): 1, date(2026, 11, 25): 0}
    assert dict(zip(both.days, both.members_per_day, strict=True))[date(2026, 11, 24)] == 1
    assert dict(zip(both.days, both.revenue_per_day, strict=True))[date(2026, 11, 23)] == Decimal("10.00")

    second_day = overview(db_session, program=program, start=date(2026, 11, 24), end=date(2026, 11, 24))
    assert (second_day.purchases, second_day.new_members) == (1, 1)
