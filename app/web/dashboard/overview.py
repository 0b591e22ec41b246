"""The overview page: a programme's figures over a date range, with charts."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Response, render_template, request

from app.database import get_session
from app.db import utcnow
from app.local_time import today as local_today
from app.local_time import zone_named
from app.reports.overview import overview as compute
from app.segments.rfm_report import NIGHTLY
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires
from app.web.dashboard.pages import programme

DEFAULT_DAYS = 30
MAX_DAYS = 366


def date_range(zone: ZoneInfo) -> tuple[date, date, dict[str, str]]:
    """``?from=`` and ``?to=`` (ISO dates, both included), else the last 30 days up to today in ``zone`` (the
    programme's); errors per field."""
    today = local_today(zone, utcnow())
    errors: dict[str, str] = {}
    values = {}
    for name, default in (("from", today - timedelta(days=DEFAULT_DAYS - 1)), ("to", today)):
        raw = request.args.get(name, "").strip()
        try:
            values[name] = date.fromisoformat(raw) if raw else default
        except ValueError:
            errors[name] = "Use a date like 2026-11-23."
            values[name] = default
    start, end = values["from"], values["to"]
    if not errors and start > end:
        errors["to"] = "The end must not be before the start."
    elif not errors and (end - start).days >= MAX_DAYS:
        errors["to"] = f"Choose at most {MAX_DAYS} days."
    if errors:
        start, end = today - timedelta(days=DEFAULT_DAYS - 1), today
    return start, end, errors


@bp.get("/")
@requires("viewer")
def overview() -> Response:
    program, programs = programme()
    start, end, errors = date_range(zone_named(program.timezone))
    figures = compute(get_session(), program=program, start=start, end=end)
    chart = {
        "days": [d.isoformat() for d in figures.days],
        "purchases": figures.purchases_per_day,
        "revenue": [float(r) for r in figures.revenue_per_day],
        "members": figures.members_per_day,
        # lists, not a mapping: tojson sorts keys, and the segments have a meaningful order
        "rfm_labels": list(figures.rfm), "rfm_counts": list(figures.rfm.values()),
    }
    html = render_template("dashboard/overview.html", program=program, programs=programs, figures=figures,
                           chart=chart, errors=errors, user=current_user(), rfm_nightly=NIGHTLY,
                           form={"from": request.args.get("from", start.isoformat()),
                                 "to": request.args.get("to", end.isoformat())})
    return Response(html, status=200)
