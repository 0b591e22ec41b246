"""The outbox viewer: what channels without credentials recorded instead of sending (outbox mode), and the
requests Google Wallet refused with Google's answer, newest first. It shows message contents (phones, texts),
so it needs the marketer role."""

from __future__ import annotations

import json

from flask import Response, request

from app.database import get_session
from app.db import count_rows
from app.web.api.outbox import CHANNELS, messages
from app.web.dashboard import bp
from app.web.dashboard.access import requires
from app.web.dashboard.pages import PAGE_SIZE, page_number, programme, render

LABELS = {"apns": "Apple push (pass update)", "google_wallet": "Google Wallet API call", "web_push": "Web push",
          "sms": "SMS"}


@bp.get("/outbox")
@requires("marketer")
def outbox() -> Response:
    program, programs = programme()
    db, page = get_session(), page_number()
    channel = request.args.get("channel", "")
    channel = channel if channel in CHANNELS else ""
    query = messages(channel or None)
    total = count_rows(db, query)
    rows = [(m, json.dumps(m.payload, indent=2, ensure_ascii=False, sort_keys=True, default=str))
            for m in db.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))]
    return render("dashboard/outbox.html", program=program, programs=programs, rows=rows, channel=channel,
                  channels=CHANNELS, labels=LABELS, page=page, pages=max(1, -(-total // PAGE_SIZE)), total=total)
