"""Every dashboard page shows times on the programme's clock, labelled with its zone, through one helper (the
``local_time`` / ``local_date`` filters of app/web/display.py); days are the programme's days. The cross-programme
admin pages (audit log, API tokens) show UTC, labelled as such."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty import ledger
from app.merchants import audit
from app.models import ChannelMessage, Customer
from app.segments import rfm
from tests.web.dashboard_client import sign_in_as
from tests.web.test_dashboard_campaigns import campaign_id_of, compose
from tests.web.test_decimal_display import shown

NIGHT = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 00:30 on 24 November in Chisinau (UTC+2 in winter)


def test_programme_pages_show_local_times_labelled_with_the_zone(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any], make_store: Callable[..., Any],
        make_card: Callable[..., Any]) -> None:
    program = make_program(name="Cafea", timezone="Europe/Chisinau")
    store = make_store(program, name="Centru").store
    card = make_card(program, now=NIGHT, name="Ana Popescu")
    ledger.record_purchase(db_session, store=store, card=card, receipt_id="R1", amount=Decimal("50.00"),
                           occurred_at=NIGHT, now=NIGHT)
    db_session.add(ChannelMessage(channel="sms", recipient="+37369000001", card_id=card.id, payload={"body": "Hi"},
                                  created_at=NIGHT))
    rfm.recompute(db_session, program=program, now=NIGHT)
    db_session.commit()
    user, token = sign_in_as(client, db_session, "admin")
    campaign_id = campaign_id_of(compose(client, token, program))
    audit.record(db_session, actor=user, action="test-event", now=NIGHT)
    db_session.commit()
    customer_id = db_session.scalars(select(Customer.id).where(Customer.name == "Ana Popescu")).one()

    slug = program.slug
    pages = {
        "overview": f"/dashboard/?program={slug}&from=2026-11-20&to=2026-11-25",
        "programme": f"/dashboard/programme?program={slug}",
        "stores": f"/dashboard/stores?program={slug}",
        "store": f"/dashboard/stores/{store.id}?program={slug}",
        "customers": f"/dashboard/customers?program={slug}",
        "customer": f"/dashboard/customers/{customer_id}?program={slug}",
        "import": f"/dashboard/customers/import?program={slug}",
        "segments": f"/dashboard/segments?program={slug}",
        "rfm": f"/dashboard/segments/rfm?program={slug}",
        "campaigns": f"/dashboard/campaigns?program={slug}",
        "campaign": f"/dashboard/campaigns/{campaign_id}",
        "deliveries": f"/dashboard/campaigns/{campaign_id}/deliveries",
        "outbox": f"/dashboard/outbox?program={slug}",
    }
    text = {}
    for name, url in pages.items():
        page = client.get(url)
        assert page.status_code == 200, (name, page.status_code)
        text[name] = shown(page.text)
        # The one UTC on these pages names the nightly job's fixed hour (the same for every programme).
        rest = text[name].replace("every night at 03:00 UTC", "")
        assert "UTC" not in rest, (name, re.findall(r".{40}UTC.{20}", rest))

    assert "2026-11-20 to 2026-11-25 (days in Europe/Chisinau)" in text["overview"]
    assert "Times on this page are in Europe/Chisinau" in text["customer"]
    assert "2026-11-24 00:30" in text["customer"] and "2026-11-23 22:30" not in text["customer"]
    assert "2026-11-24" in text["customers"] and "2026-11-23" not in text["customers"]
    assert "When (Europe/Chisinau)" in text["outbox"] and "2026-11-24 00:30:00" in text["outbox"]
    assert re.search(r"computed on 2026-11-24 00:30 \(Europe/Chisinau\)", text["rfm"])
    assert "Created (Europe/Chisinau)" in text["campaigns"]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d \(Europe/Chisinau\)", text["store"])  # the key's creation
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d \(Europe/Chisinau\)", text["segments"]) or "No segment" in \
        text["segments"]
    # The <time> element carries the exact instant for machines and screen readers' "datetime".
    assert '<time datetime="2026-11-23T22:30:00+00:00">2026-11-24 00:30</time>' in client.get(pages["customer"]).text

    # The admin pages about every programme: UTC, and they say so.
    audit_log = shown(client.get("/dashboard/audit").text)
    assert "When (UTC)" in audit_log and "2026-11-23 22:30:00" in audit_log and "days and times are UTC" in audit_log
    tokens = client.get("/dashboard/tokens")
    assert tokens.status_code == 200
