"""The overview's RFM chart: the demo scores RFM as it loads (so `make run` shows a filled chart at once), and a
programme with no scores yet shows a clear empty state with "Compute now" instead of an empty chart."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.loyalty import ledger
from app.models import Customer, Program
from tests.integration.test_cli import run
from tests.web.dashboard_client import sign_in_as


def chart_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))


def test_the_demo_scores_rfm_so_the_overview_chart_is_filled(app: Flask, client: FlaskClient,
                                                            db_session: Session) -> None:
    result = run(app, "demo", "--customers", "30")
    assert result.exit_code == 0, result.output
    program = db_session.scalars(select(Program).where(Program.slug == "demo")).one()
    assert program.rfm_computed_at is not None
    scored = db_session.scalar(select(func.count()).select_from(Customer).where(Customer.rfm_segment.is_not(None)))
    assert scored and scored > 0

    sign_in_as(client, db_session, "viewer")
    page = client.get("/dashboard/?program=demo")
    assert page.status_code == 200
    data = chart_data(page.text)
    assert sum(data["rfm_counts"]) == scored
    assert 'id="chart-rfm"' in page.text and 'id="rfm-empty"' not in page.text


def test_no_scores_yet_shows_an_empty_state_and_compute_now_fills_it(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any], make_card: Callable[..., Any],
        make_store: Callable[..., Any]) -> None:
    program = make_program(name="Cafea", timezone="Europe/Chisinau")
    store = make_store(program).store
    for n in range(3):
        card = make_card(program)
        ledger.record_purchase(db_session, store=store, card=card, receipt_id=f"r{n}", amount=Decimal("100"))
    db_session.commit()
    _, token = sign_in_as(client, db_session, "marketer")

    page = client.get(f"/dashboard/?program={program.slug}").text
    assert 'id="chart-rfm"' not in page
    empty = re.search(r'<div class="chart-empty" id="rfm-empty">(.*?)</div>', page, re.S)
    assert empty, page
    text = " ".join(re.sub(r"<[^>]+>", "", empty.group(1)).split())
    assert text.startswith("No RFM scores yet: they are computed every night at 03:00 UTC.")
    assert 'id="rfm-compute-now"' in empty.group(1) and "Compute now" in text

    computed = client.post("/dashboard/segments/rfm/recompute",
                           data={"csrf_token": token, "program": program.slug, "back": "overview"})
    assert computed.status_code == 303
    assert computed.headers["Location"] == f"/dashboard/?program={program.slug}"
    page = client.get(computed.headers["Location"]).text
    assert 'id="rfm-empty"' not in page and 'id="chart-rfm"' in page
    assert sum(chart_data(page)["rfm_counts"]) == 3


def test_a_viewer_sees_the_empty_state_without_the_button(client: FlaskClient, db_session: Session,
                                                          make_program: Callable[..., Any]) -> None:
    program = make_program()
    db_session.commit()
    sign_in_as(client, db_session, "viewer")
    page = client.get(f"/dashboard/?program={program.slug}").text
    assert 'id="rfm-empty"' in page and "No RFM scores yet" in page and 'id="rfm-compute-now"' not in page
