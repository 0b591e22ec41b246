"""The audit log (admin): who changed what, newest first, filtered by actor, action and date, paged."""

from __future__ import annotations

from datetime import date

from flask import Response, request

from app.database import get_session
from app.merchants.audit import known_actions, search_events
from app.web.dashboard import bp
from app.web.dashboard.access import requires
from app.web.dashboard.pages import PAGE_SIZE, page_number, render
from app.web.dashboard.tokens import any_programme


def _day(name: str, errors: dict[str, str]) -> date | None:
    raw = request.args.get(name, "").strip()[:20]
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Use a date like 2026-11-23."
        return None


@bp.get("/audit", endpoint="audit_log")
@requires("admin")
def audit_log_page() -> Response:
    errors: dict[str, str] = {}
    actor = request.args.get("actor", "").strip()[:254]
    action = request.args.get("action", "").strip()[:64]
    start, end = _day("from", errors), _day("to", errors)
    if start and end and start > end:
        errors["to"] = "The end must not be before the start."
        end = None
    page = page_number()
    db = get_session()
    found = search_events(db, actor=actor or None, action=action or None, start=start, end=end,
                          offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    program, programs = any_programme()
    filters = {"actor": actor, "action": action, "from": request.args.get("from", "")[:20],
               "to": request.args.get("to", "")[:20]}
    pager_args = {k: v for k, v in filters.items() if v}
    if program is not None:
        pager_args["program"] = program.slug
    return render("dashboard/audit_log.html", pager_args=pager_args, events=found.events, total=found.total, page=page,
                  pages=max(1, -(-found.total // PAGE_SIZE)), actions=known_actions(db), filters=filters,
                  errors=errors, program=program, programs=programs)
