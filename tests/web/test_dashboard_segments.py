"""The segments area of the dashboard: the list with counts, the builder (save with errors beside the rows,
the live count that matches ``rules.count``), RFM and imported-list segments, delete refused while a campaign
uses the segment, and the RFM view with its recompute button."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import AuditEvent, Campaign, Customer, Purchase, Segment, SegmentMember
from app.segments import rules
from app.segments.rfm import SEGMENT_NAMES
from app.web.display import local_time
from tests.web.dashboard_client import csrf, sign_in_as

BALANCE_20 = {"all": [{"field": "balance", "op": "gte", "value": 20}]}


@pytest.fixture
def shop(make_program: Callable[..., Any], make_card: Callable[..., Any], make_store: Callable[..., Any],
         db_session: Session) -> dict[str, Any]:
    program = make_program(name="Cafea", slug="cafea")
    store = make_store(program, name="Centru").store
    cards = [make_card(program, balance=balance, phone=f"+3736900000{n}", email=f"c{n}@shop.test")
             for n, balance in enumerate([5, 20, 30, 50])]
    db_session.commit()
    return {"program": program, "store": store, "cards": cards}


def builder_data(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="builder-data">(.*?)</script>', page, re.S)
    assert match, page
    return json.loads(match.group(1))


def count_live(client: FlaskClient, token: str, slug: str, tree: Any) -> Any:
    return client.post("/dashboard/segments/count", json={"program": slug, "rules": tree},
                       headers={"X-CSRF-Token": token, "Accept": "application/json"})


def test_the_builder_offers_only_what_the_compiler_supports(client: FlaskClient, db_session: Session,
                                                             shop: dict[str, Any]) -> None:
    sign_in_as(client, db_session, "marketer")
    page = client.get("/dashboard/segments/new?program=cafea")
    assert page.status_code == 200
    data = builder_data(page.text)
    fields = {f["name"]: f for f in data["catalog"]["fields"]}
    assert set(fields) == set(rules.FIELDS)
    for name, spec in rules.FIELDS.items():
        assert [op["value"] for op in fields[name]["ops"]] == list(spec.ops)
    assert fields["near_store"]["stores"] and fields["visits"]["days"] and not fields["balance"]["days"]
    options = data["catalog"]["options"]
    assert [o["label"] for o in options["tier"]] == ["Bronze", "Silver", "Gold"]
    assert options["store"] == [{"value": shop["store"].id, "label": "Centru"}]
    assert "Champions" in [o["value"] for o in options["rfm"]]
    assert data["count_url"] == "/dashboard/segments/count" and data["editable"] is True
    # The stable hooks a browser test uses.
    for hook in ('id="name"', 'id="builder"', 'id="segment-count"', "data-count=", 'id="rules"',
                 'id="save-segment"', "dashboard-segments.js"):
        assert hook in page.text


def test_the_live_count_matches_rules_count_and_names_the_wrong_row(client: FlaskClient, db_session: Session,
                                                                     shop: dict[str, Any]) -> None:
    _user, token = sign_in_as(client, db_session, "viewer")  # a count changes nothing: viewers may ask
    program = shop["program"]
    trees = [BALANCE_20, {"any": [{"field": "balance", "op": "lt", "value": 10},
                                  {"all": [{"field": "balance", "op": "between", "value": [25, 60]}]}]},
             {"not": {"any": [{"field": "tier", "op": "eq", "value": "Bronze"}]}}, {"all": []}]
    for tree in trees:
        answer = count_live(client, token, "cafea", tree)
        assert answer.status_code == 200, answer.text
        assert answer.json == {"count": rules.count(db_session, tree=tree, program_id=program.id, now=utcnow())}
    assert count_live(client, token, "cafea", BALANCE_20).json == {"count": 3}

    bad = count_live(client, token, "cafea", {"all": [BALANCE_20["all"][0],
                                                      {"any": [{"field": "balance", "op": "gte", "value": "lots"}]}]})
    assert bad.status_code == 422
    assert list(bad.json["errors"]) == ["rules.all.1.any.0.value"]
    assert "whole number" in bad.json["errors"]["rules.all.1.any.0.value"]
    assert count_live(client, token, "nope", BALANCE_20).status_code == 404
    assert count_live(client, token, "cafea", {"all": [{"field": "tag", "op": "has", "value": "a\x00b"}]}
                      ).status_code == 422
    refused = client.post("/dashboard/segments/count", json={"program": "cafea", "rules": BALANCE_20},
                          headers={"Accept": "application/json"})
    assert refused.status_code == 403  # no CSRF header


def test_saving_a_rule_segment_re_renders_with_errors_and_keeps_the_input(client: FlaskClient, db_session: Session,
                                                                          shop: dict[str, Any]) -> None:
    user, token = sign_in_as(client, db_session, "marketer")
    typed = json.dumps({"all": [{"field": "balance", "op": "gte", "value": 20},
                                {"field": "birthday_month", "op": "eq", "value": 13}]})
    response = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea",
                                                            "kind": "rules", "name": "", "rules": typed})
    assert response.status_code == 422
    assert 'id="name-error">Give the segment a name.' in response.text
    data = builder_data(response.text)
    assert list(data["errors"]) == ["name", "rules.all.1.value"]
    assert "month number" in data["errors"]["rules.all.1.value"]
    assert json.loads(re.search(r'<textarea id="rules"[^>]*>(.*?)</textarea>', response.text, re.S)
                      .group(1).replace("&#34;", '"')) == json.loads(typed)
    not_json = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea",
                                                            "kind": "rules", "name": "X", "rules": "{all"})
    assert not_json.status_code == 422 and 'id="rules-error"' in not_json.text and "not valid JSON" in not_json.text
    assert db_session.scalars(select(Segment)).all() == []

    saved = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea", "kind": "rules",
                                                         "name": " Big spenders ", "rules": json.dumps(BALANCE_20)})
    assert saved.status_code == 303 and saved.headers["Location"] == "/dashboard/segments?program=cafea"
    segment = db_session.scalars(select(Segment)).one()
    assert (segment.name, segment.kind, segment.definition) == ("Big spenders", "rules", BALANCE_20)
    listing = client.get(saved.headers["Location"])
    assert "Segment “Big spenders” saved." in listing.text
    assert re.search(r'<td data-count="3">3</td>', listing.text)

    again = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea", "kind": "rules",
                                                         "name": "big SPENDERS", "rules": "{}"})
    assert again.status_code == 422 and "Another segment of this programme has this name." in again.text

    # Editing: a bad tree is refused and nothing changes; a good one is saved and audited.
    bad = client.post(f"/dashboard/segments/{segment.id}", data={
        "csrf_token": token, "name": "Renamed", "rules": json.dumps({"all": [{"field": "shoe_size", "op": "eq",
                                                                               "value": 42}]})})
    assert bad.status_code == 422 and "rules.all.0.field" in builder_data(bad.text)["errors"]
    db_session.expire_all()
    assert db_session.get(Segment, segment.id).name == "Big spenders"
    good = client.post(f"/dashboard/segments/{segment.id}", data={
        "csrf_token": token, "name": "Richer", "rules": json.dumps({"all": [{"field": "balance", "op": "gte",
                                                                              "value": 40}]})})
    assert good.status_code == 303
    db_session.expire_all()
    assert db_session.get(Segment, segment.id).definition["all"][0]["value"] == 40
    assert [(e.action, e.actor) for e in db_session.scalars(select(AuditEvent).where(
        AuditEvent.action.like("segment.%")).order_by(AuditEvent.id))] == [
        ("segment.create", user.email), ("segment.update", user.email)]


def test_a_viewer_sees_segments_but_cannot_change_them(client: FlaskClient, db_session: Session,
                                                       shop: dict[str, Any]) -> None:
    segment = Segment(program_id=shop["program"].id, name="Rich", kind="rules", definition=BALANCE_20)
    db_session.add(segment)
    db_session.commit()
    _user, token = sign_in_as(client, db_session, "viewer")
    page = client.get(f"/dashboard/segments/{segment.id}")
    assert page.status_code == 200 and builder_data(page.text)["editable"] is False
    assert 'id="save-segment"' not in page.text and 'id="delete-segment"' not in page.text
    assert "New segment from rules" not in client.get("/dashboard/segments").text
    assert client.post(f"/dashboard/segments/{segment.id}/delete", data={"csrf_token": token}).status_code == 403


def test_delete_is_refused_while_a_campaign_uses_the_segment(client: FlaskClient, db_session: Session,
                                                            shop: dict[str, Any]) -> None:
    segment = Segment(program_id=shop["program"].id, name="Rich", kind="rules", definition=BALANCE_20)
    db_session.add(segment)
    db_session.flush()
    campaign = Campaign(program_id=shop["program"].id, name="Autumn offer", segment_id=segment.id,
                        state="scheduled", channels=["sms"])
    db_session.add(campaign)
    db_session.commit()
    segment_id, campaign_id = segment.id, campaign.id
    _user, token = sign_in_as(client, db_session, "marketer")
    page = client.get(f"/dashboard/segments/{segment_id}")
    assert "Autumn offer" in page.text and 'id="delete-segment"' not in page.text
    refused = client.post(f"/dashboard/segments/{segment_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 303
    shown = client.get(refused.headers["Location"]).text
    assert "cannot be deleted while a campaign uses it: “Autumn offer” (scheduled)" in shown
    assert db_session.get(Segment, segment_id) is not None

    campaign.state = "finished"
    db_session.commit()
    deleted = client.post(f"/dashboard/segments/{segment_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303 and deleted.headers["Location"] == "/dashboard/segments?program=cafea"
    db_session.expire_all()
    assert db_session.get(Segment, segment_id) is None
    assert db_session.get(Campaign, campaign_id).segment_id is None  # the finished campaign keeps its results
    assert "Segment “Rich” deleted." in client.get(deleted.headers["Location"]).text


def test_rfm_and_imported_list_segments(client: FlaskClient, db_session: Session, shop: dict[str, Any]) -> None:
    _user, token = sign_in_as(client, db_session, "marketer")
    customers = [card.customer for card in shop["cards"]]
    customers[0].rfm_segment = "Champions"
    customers[1].rfm_segment = "At Risk"
    db_session.commit()
    none = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea", "kind": "rfm",
                                                        "name": "Best"})
    assert none.status_code == 422 and 'id="segments-error">Choose at least one RFM segment.' in none.text
    made = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea", "kind": "rfm",
                                                        "name": "Best", "segments": ["At Risk", "Champions"]})
    assert made.status_code == 303
    rfm_segment = db_session.scalars(select(Segment).where(Segment.kind == "rfm")).one()
    assert rfm_segment.definition == {"segments": ["Champions", "At Risk"]}
    assert rules.count(db_session, segment=rfm_segment, now=utcnow()) == 2

    made = client.post("/dashboard/segments/new", data={"csrf_token": token, "program": "cafea",
                                                        "kind": "static", "name": "Fair visitors"})
    static = db_session.scalars(select(Segment).where(Segment.kind == "static")).one()
    assert made.status_code == 303 and made.headers["Location"] == f"/dashboard/segments/{static.id}"
    empty = client.post(f"/dashboard/segments/{static.id}/import", data={"csrf_token": token},
                        content_type="multipart/form-data")
    assert empty.status_code == 422 and 'id="file-error"' in empty.text
    csv = "phone,name\n+37369000001,Ana\n+37369999999,Nobody\nhello,World\n"
    imported = client.post(f"/dashboard/segments/{static.id}/import", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(csv.encode()), "fair.csv")})
    assert imported.status_code == 200, imported.text
    assert 'data-added="1"' in imported.text and "+37369999999" in imported.text and "hello" in imported.text
    assert db_session.scalars(select(SegmentMember.customer_id)).all() == [customers[1].id]


def test_the_rfm_view_counts_customers_per_segment_and_recomputes(client: FlaskClient, db_session: Session,
                                                                  shop: dict[str, Any]) -> None:
    customers: list[Customer] = [card.customer for card in shop["cards"]]
    for customer, name in zip(customers, ["Champions", "Champions", "Hibernating", None], strict=True):
        customer.rfm_segment = name
    db_session.commit()
    sign_in_as(client, db_session, "viewer", email="v@shop.test")
    page = client.get("/dashboard/segments/rfm?program=cafea")
    assert page.status_code == 200
    assert '<td data-rfm="Champions">2</td>' in page.text and '<td data-rfm="Hibernating">1</td>' in page.text
    assert '<td data-rfm="">1</td>' in page.text  # not scored
    chart = json.loads(re.search(r'id="rfm-chart-data">(.*?)</script>', page.text).group(1))
    assert chart["labels"] == list(SEGMENT_NAMES) and chart["values"][0] == 2 and sum(chart["values"]) == 3
    assert "quintiles" in page.text and 'id="recompute-rfm"' not in page.text
    assert "The scores have not been computed yet." in page.text

    client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})
    user, token = sign_in_as(client, db_session, "marketer")
    # One purchase yesterday: after a recompute only that customer is scored (alone, the best: a Champion).
    card = shop["cards"][2]
    db_session.add(Purchase(card_id=card.id, store_id=shop["store"].id, amount=Decimal("10.00"),
                            amount_due=Decimal("10.00"), occurred_at=utcnow() - timedelta(days=1), receipt_id="p-1"))
    db_session.commit()
    done = client.post("/dashboard/segments/rfm/recompute", data={"csrf_token": token, "program": "cafea"})
    assert done.status_code == 303 and done.headers["Location"] == "/dashboard/segments/rfm?program=cafea"
    after = client.get(done.headers["Location"]).text
    assert "RFM scores recomputed." in after
    db_session.expire_all()
    computed = shop["program"].rfm_computed_at
    assert computed is not None and utcnow() - computed < timedelta(minutes=1)
    assert f"These scores were computed on {local_time(computed, shop['program'])}." in after  # its zone, labelled
    assert '<td data-rfm="">3</td>' in after and '<td data-rfm="Champions">1</td>' in after
    assert '<td data-rfm="Hibernating">0</td>' in after
    assert f"by {user.email}" in after
