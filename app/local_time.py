"""A programme's own clock: its IANA time zone, and the UTC instants at which its days begin.

The dashboard shows every time in the programme's zone and counts days (charts, reports, date filters) as the
programme's local days, so a purchase at 23:30 in Chisinau counts for that day, not the next UTC one. No Flask
here: the reports use it too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FALLBACK = "UTC"


def zone_named(name: str | None) -> ZoneInfo:
    """The zone called ``name``; UTC when it is empty or unknown to this machine's tz database."""
    try:
        return ZoneInfo(name or FALLBACK)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(FALLBACK)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone`` (DST-safe: midnight as the zone's clocks show it)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def day_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[since, until) in UTC covering the local days ``start`` to ``end``, both included."""
    return day_start(start, zone), day_start(end + timedelta(days=1), zone)


def today(zone: ZoneInfo, now: datetime | None = None) -> date:
    """The date it is now in ``zone``."""
    return (now or datetime.now(UTC)).astimezone(zone).date()
