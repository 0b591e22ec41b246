"""Campaigns in the dashboard: composing (errors beside fields, nothing typed lost), the live preview, sending
after a confirmation and the progress reaching 100 %, results, the delivery log and "retry failed", the outbox."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment
from app.models import AuditEvent, Campaign, ChannelMessage, Delivery, Segment, WebPushSubscription
from tests.fakes.push_service import FakePushService
from tests.web.dashboard_client import sign_in_as


@pytest.fixture
def push() -> Iterator[FakePushService]:
    with FakePushService() as service:
        yield service


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> Any:
    """Three customers: two agreed to SMS (one with a balance of 30), one did not."""
    program = make_program(name="Cafea & Co.", timezone="Europe/Chisinau")
    for n, consents in enumerate([{"sms": True}, {"sms": True}, {}]):
        card = make_card(program, balance=10 * (n + 1), name=f"Client {n}", phone=f"+3736911000{n}")
        enrollment.set_consents(db_session, customer=card.customer, consents=consents, source="test", now=utcnow())
    db_session.flush()
    return program


def compose(client: FlaskClient, token: str, program: Any, **changes: Any) -> Any:
    data: dict[str, Any] = {
        "csrf_token": token, "program": program.slug, "name": "Autumn", "segment_id": "",
        "channel_1": "sms", "channel_2": "", "channel_3": "",
        "variant_name": ["A", "B"], "variant_title": ["", ""],
        "variant_body": ["Hi {{ first_name }}, you have {{ balance }} points", "Hello {{ name }}"],
        "variant_weight": ["1", "1"], "holdout_percent": "0", "max_per_week": "", "quiet_start_hour": "0",
        "quiet_end_hour": "0", "ends_at": "",
    }
    data.update(changes)
    return client.post("/dashboard/campaigns/new", data=data)


def campaign_id_of(response: Any) -> int:
    assert response.status_code == 303, response.text
    match = re.search(r"/dashboard/campaigns/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def send_now(client: FlaskClient, token: str, campaign_id: int) -> Any:
    confirm = client.get(f"/dashboard/campaigns/{campaign_id}/send")
    assert confirm.status_code == 200 and 'id="confirm-send"' in confirm.text
    return client.post(f"/dashboard/campaigns/{campaign_id}/send", data={"csrf_token": token})


def test_the_composer_explains_each_mistake_beside_its_field_and_keeps_what_was_typed(
        client: FlaskClient, db_session: Session, program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    page = client.get(f"/dashboard/campaigns/new?program={program.slug}")
    assert page.status_code == 200 and 'id="composer"' in page.text

    bad = compose(client, token, program, name="  ", channel_1="", holdout_percent="lots",
                  variant_body=["Hi {{ first_name }} — typed with care", ""])
    assert bad.status_code == 422
    assert 'id="name-error">This cannot be empty.' in bad.text
    assert 'id="channels-error">Choose at least one.' in bad.text
    assert 'id="holdout_percent-error"' in bad.text and 'value="lots"' in bad.text
    assert 'id="variants-1-body-error">This cannot be empty.' in bad.text
    assert "Hi {{ first_name }} — typed with care</textarea>" in bad.text

    unknown = compose(client, token, program, variant_body=["Hi {{ oops }}", "Hello"], holdout_percent="12.5")
    assert unknown.status_code == 422
    assert re.search(r'id="variants-0-body-error">Unknown variable\(s\) oops', unknown.text)
    assert 'value="12.5"' in unknown.text and "Hi {{ oops }}</textarea>" in unknown.text
    assert db_session.scalar(select(Campaign).where(Campaign.automation.is_(None))) is None


def test_a_draft_is_saved_audited_and_edited(client: FlaskClient, db_session: Session, program: Any) -> None:
    user, token = sign_in_as(client, db_session, "marketer")
    campaign_id = campaign_id_of(compose(client, token, program, holdout_percent="10"))
    page = client.get(f"/dashboard/campaigns/{campaign_id}")
    assert "Autumn" in page.text and 'id="send-button"' in page.text and 'id="edit-button"' in page.text

    edit = client.get(f"/dashboard/campaigns/{campaign_id}/edit")
    assert edit.status_code == 200 and 'value="10"' in edit.text and "Hello {{ name }}</textarea>" in edit.text
    changed = client.post(f"/dashboard/campaigns/{campaign_id}/edit", data={
        "csrf_token": token, "name": "Autumn v2", "segment_id": "", "channel_1": "push", "channel_2": "sms",
        "variant_name": ["B", "A"], "variant_title": ["", ""], "variant_body": ["Swapped", "Names"],
        "variant_weight": ["3", "1"], "holdout_percent": "0", "quiet_start_hour": "21", "quiet_end_hour": "9"})
    assert changed.status_code == 303
    db_session.expire_all()
    campaign = db_session.get(Campaign, campaign_id)
    assert (campaign.name, campaign.channels) == ("Autumn v2", ["push", "sms"])
    assert [(v.name, v.body, v.weight) for v in campaign.variants] == [("B", "Swapped", 3), ("A", "Names", 1)]
    actions = [(e.action, e.actor) for e in db_session.scalars(select(AuditEvent).where(
        AuditEvent.target == f"campaign:{campaign_id}").order_by(AuditEvent.id))]
    assert actions == [("campaign-created", user.email), ("campaign-edited", user.email)]


def test_the_preview_renders_each_variant_per_channel_with_warnings(client: FlaskClient, db_session: Session,
                                                                    program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    body = {"program": program.slug, "segment_id": None, "channels": ["wallet", "sms"], "variants": [
        {"name": "A", "title": "Hi", "body": "Hi {{ first_name }}, {{ balance }} points"},
        {"name": "B", "title": "", "body": "x" * 600},
        {"name": "C", "title": "", "body": "{{ nope }}"}]}
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}
    response = client.post("/dashboard/campaigns/preview", json=body, headers=headers)
    assert response.status_code == 200
    a, b, c = response.json["variants"]
    assert response.json["sample"] == "Client 0"
    assert [ch["channel"] for ch in a["channels"]] == ["apple", "google", "sms"]
    sms = a["channels"][2]
    assert sms["body"] == "Hi Client, 10 points" and sms["parts"] == 1 and sms["warning"] is None
    assert a["channels"][1]["title"] == "Hi" and a["channels"][0]["title"] == "Cafea & Co."
    long_sms = b["channels"][2]
    assert long_sms["parts"] == 4 and long_sms["warning"] == "4 SMS parts; at most 3"
    assert b["channels"][0]["warning"].startswith("600 characters") and len(b["channels"][0]["body"]) == 255
    assert c["error"].startswith("unknown variable(s) nope") and c["channels"] == []

    assert client.post("/dashboard/campaigns/preview", json=body).status_code == 403  # no CSRF header
    empty = client.post("/dashboard/campaigns/preview", json={"program": program.slug, "variants": []},
                        headers=headers)
    assert empty.status_code == 422 and "variants" in empty.json["errors"]


def test_send_now_after_confirming_the_audience_reaches_100_percent(client: FlaskClient, db_session: Session,
                                                                    program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    segment = Segment(program_id=program.id, name="Over 15 points", kind="rules",
                      definition={"all": [{"field": "balance", "op": "gte", "value": 15}]})
    db_session.add(segment)
    db_session.commit()
    campaign_id = campaign_id_of(compose(client, token, program, segment_id=str(segment.id)))
    confirm = client.get(f"/dashboard/campaigns/{campaign_id}/send")
    assert 'id="audience-count" data-count="2"' in confirm.text and "Over 15 points" in confirm.text

    sent = send_now(client, token, campaign_id)
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/dashboard/campaigns/{campaign_id}")
    progress = client.get(f"/dashboard/campaigns/{campaign_id}/progress").json
    assert progress["state"] == "finished" and progress["percent"] == 100 and progress["audience_size"] == 2
    assert progress["counts"]["sent"] == 1 and progress["counts"]["skipped"] == 1  # Client 2 gave no consent
    page = client.get(f"/dashboard/campaigns/{campaign_id}")
    assert 'data-percent="100"' in page.text and "Sending “Autumn” to 2 customers." in page.text
    assert 'id="send-button"' not in page.text
    texts = [m.payload["body"] for m in db_session.scalars(select(ChannelMessage).where(
        ChannelMessage.channel == "sms", ChannelMessage.recipient == "+37369110001"))]
    assert [t for t in texts if not t.startswith("Welcome")] in (["Hi Client, you have 20 points"], ["Hello Client 1"])
    # Sending twice is refused, and the page says why.
    again = client.get(f"/dashboard/campaigns/{campaign_id}/send")
    assert again.status_code == 303


def test_results_show_counts_per_status_channel_and_variant(client: FlaskClient, db_session: Session,
                                                            program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    campaign_id = campaign_id_of(compose(client, token, program))
    assert "Nothing to show yet" in client.get(f"/dashboard/campaigns/{campaign_id}/results").text
    send_now(client, token, campaign_id)
    page = client.get(f"/dashboard/campaigns/{campaign_id}/results")
    assert page.status_code == 200
    statuses = dict(re.findall(r'<tr data-status="(\w+)"><td><a [^>]+>\w+</a></td><td>(\d+)</td>', page.text))
    assert statuses == {"sent": "2", "skipped": "1"}
    assert re.search(r'<tr data-channel="sms"><td>SMS</td><td>2</td>', page.text)
    variants = dict(re.findall(r'<tr data-variant="(\w+)"><td>\w+</td><td>(\d+)</td>', page.text))
    assert sum(int(n) for n in variants.values()) == 2
    assert "no holdout" in page.text and 'id="results-data"' in page.text


def test_the_delivery_log_filters_and_retries_failed(client: FlaskClient, db_session: Session,
                                                      program: Any) -> None:
    user, token = sign_in_as(client, db_session, "marketer")
    campaign_id = campaign_id_of(compose(client, token, program))
    send_now(client, token, campaign_id)
    log = client.get(f"/dashboard/campaigns/{campaign_id}/deliveries")
    assert log.text.count('data-delivery-id="') == 3
    sent = client.get(f"/dashboard/campaigns/{campaign_id}/deliveries?status=sent")
    assert sent.text.count('data-status="sent"') == 2 and 'data-status="skipped"' not in sent.text
    by_phone = client.get(f"/dashboard/campaigns/{campaign_id}/deliveries?phone=691 1000 2")
    assert by_phone.text.count('data-delivery-id="') == 1 and "Client 2" in by_phone.text
    none = client.get(f"/dashboard/campaigns/{campaign_id}/deliveries?channel=push")
    assert 'id="no-deliveries"' in none.text and "No delivery matches" in none.text
    assert 'id="retry-failed"' not in log.text  # nothing to send again: no choice offered

    db_session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.status == "sent")
                       .values(status="failed", error="sms failed: 30003"))
    db_session.commit()
    failed = client.get(f"/dashboard/campaigns/{campaign_id}/deliveries?status=failed")
    assert failed.text.count('data-status="failed"') == 2 and "sms failed: 30003" in failed.text
    assert "Send the failed ones again (2)" in failed.text
    retried = client.post(f"/dashboard/campaigns/{campaign_id}/retry", data={"csrf_token": token,
                                                                            "deliveries": "failed"})
    assert retried.status_code == 303
    after = client.get(retried.headers["Location"])
    assert "2 failed deliveries are queued again" in after.text
    db_session.expire_all()
    statuses = sorted(d.status for d in db_session.scalars(select(Delivery).where(
        Delivery.campaign_id == campaign_id)))
    assert statuses == ["sent", "sent", "skipped"]  # sent again, inline (Celery is eager in tests)
    assert db_session.get(Campaign, campaign_id).state == "finished"
    assert db_session.scalar(select(AuditEvent).where(AuditEvent.action == "campaign-retry")).details == {
        "deliveries": "failed", "retried": 2}


def test_retrying_failed_deliveries_leaves_the_interrupted_ones_and_says_what_each_choice_means(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any],
        make_card: Callable[..., Any], push: FakePushService) -> None:
    """A worker killed mid-batch leaves web pushes and texts "interrupted": they may have arrived (in a
    worker-kill test all 200 such web pushes had). "Retry failed" must not send them again; resending them
    is a separate choice, worded as such, that resends the web pushes (same Topic and tag, so a copy replaces
    the first) and never the texts."""
    program = make_program(name="Cafea & Co.")
    _, token = sign_in_as(client, db_session, "marketer")
    rows = {}
    for n, (channel, status, reason) in enumerate([("sms", "failed", None), ("push", "failed", "interrupted"),
                                                   ("sms", "failed", "interrupted"), ("sms", "sent", None)]):
        card = make_card(program, name=f"Client {n}", phone=f"+3736912000{n}")
        enrollment.set_consents(db_session, customer=card.customer, consents={channel: True}, source="test",
                                now=utcnow())
        if channel == "push":
            browser = push.new_subscription()
            db_session.add(WebPushSubscription(customer_id=card.customer_id, **browser))
        rows[n] = (card, channel, status, reason)
    db_session.flush()
    campaign_id = campaign_id_of(compose(client, token, program, channel_1="push", channel_2="sms"))
    campaign = db_session.get(Campaign, campaign_id)
    campaign.state, campaign.started_at, campaign.finished_at = "finished", utcnow(), utcnow()
    for card, channel, status, reason in rows.values():
        db_session.add(Delivery(campaign_id=campaign_id, customer_id=card.customer_id, card_id=card.id,
                                variant_id=campaign.variants[0].id, channel=channel, status=status, reason=reason,
                                attempts=1, error="the worker stopped" if reason else None))
    db_session.commit()

    log = client.get(f"/dashboard/campaigns/{campaign_id}/deliveries")
    assert "Send the failed ones again (1)" in log.text
    assert "certainly did not reach the customer" in log.text
    assert "Resend the interrupted web pushes (1)" in log.text
    assert "may already have arrived" in log.text and "a copy still waiting for the phone" in log.text
    assert re.search(r'id="retry-kept">1 text message may also have gone out, and is never sent again', log.text)

    def statuses() -> list[tuple[str | None, str, str | None]]:
        db_session.expire_all()
        found = db_session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id))
        return [(d.channel, d.status, d.reason) for d in found]

    retried = client.post(f"/dashboard/campaigns/{campaign_id}/retry", data={"csrf_token": token,
                                                                            "deliveries": "failed"})
    assert "1 failed delivery is queued again" in client.get(retried.headers["Location"]).text
    assert statuses() == [("sms", "sent", None), ("push", "failed", "interrupted"), ("sms", "failed", "interrupted"),
                          ("sms", "sent", None)]

    retried = client.post(f"/dashboard/campaigns/{campaign_id}/retry", data={"csrf_token": token,
                                                                            "deliveries": "interrupted"})
    flashed = client.get(retried.headers["Location"]).text
    assert "1 interrupted delivery is queued again on the same channel" in flashed
    assert "1 text message is in doubt and was not resent" in flashed
    assert statuses() == [("sms", "sent", None), ("push", "sent", None), ("sms", "failed", "interrupted"),
                          ("sms", "sent", None)]
    texts = db_session.scalars(select(ChannelMessage.recipient).where(ChannelMessage.channel == "sms")).all()
    assert sorted(texts) == [rows[0][0].customer.phone]  # the one certainly failed; never the one in doubt
    [resent] = push.messages(browser["endpoint"])
    assert json.loads(resent["plaintext"])["tag"] == f"campaign-{campaign_id}" and len(resent["topic"]) == 32

    unclear = client.post(f"/dashboard/campaigns/{campaign_id}/retry", data={"csrf_token": token})
    assert "Choose which deliveries to send again" in client.get(unclear.headers["Location"]).text


def test_schedule_reads_the_programmes_time_zone(client: FlaskClient, db_session: Session, program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    campaign_id = campaign_id_of(compose(client, token, program))
    past = client.post(f"/dashboard/campaigns/{campaign_id}/schedule",
                       data={"csrf_token": token, "scheduled_at": "2020-01-01T10:00"})
    assert past.status_code == 422 and 'id="scheduled_at-error">Choose a time in the future.' in past.text
    assert 'value="2020-01-01T10:00"' in past.text
    garbled = client.post(f"/dashboard/campaigns/{campaign_id}/schedule",
                          data={"csrf_token": token, "scheduled_at": "soon"})
    assert garbled.status_code == 422 and 'id="scheduled_at-error"' in garbled.text
    year = utcnow().year + 1
    ok = client.post(f"/dashboard/campaigns/{campaign_id}/schedule",
                     data={"csrf_token": token, "scheduled_at": f"{year}-07-01T10:00"})
    assert ok.status_code == 303
    db_session.expire_all()
    campaign = db_session.get(Campaign, campaign_id)
    assert campaign.state == "scheduled"
    assert campaign.scheduled_at == datetime(year, 7, 1, 7, 0, tzinfo=UTC)  # 10:00 in Chisinau (UTC+3, summer)


def test_pause_resume_and_cancel(client: FlaskClient, db_session: Session, program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    campaign_id = campaign_id_of(compose(client, token, program))
    campaign = db_session.get(Campaign, campaign_id)
    campaign.state, campaign.started_at = "running", utcnow() - timedelta(minutes=1)
    db_session.commit()
    assert 'id="pause-button"' in client.get(f"/dashboard/campaigns/{campaign_id}").text
    assert client.post(f"/dashboard/campaigns/{campaign_id}/pause", data={"csrf_token": token}).status_code == 303
    db_session.expire_all()
    assert db_session.get(Campaign, campaign_id).state == "paused"
    page = client.get(f"/dashboard/campaigns/{campaign_id}")
    assert 'id="resume-button"' in page.text and "Paused: paused by a marketer" in page.text
    assert client.post(f"/dashboard/campaigns/{campaign_id}/cancel", data={"csrf_token": token}).status_code == 303
    db_session.expire_all()
    assert db_session.get(Campaign, campaign_id).state == "cancelled"
    refused = client.post(f"/dashboard/campaigns/{campaign_id}/resume", data={"csrf_token": token})
    assert refused.status_code == 409 and "cancelled" in refused.text  # a state conflict


def test_a_viewer_sees_campaigns_but_cannot_change_them(client: FlaskClient, db_session: Session,
                                                       program: Any) -> None:
    campaign = Campaign(program_id=program.id, name="Read only", channels=["sms"])
    db_session.add(campaign)
    db_session.commit()
    _, token = sign_in_as(client, db_session, "viewer")
    listing = client.get(f"/dashboard/campaigns?program={program.slug}")
    assert "Read only" in listing.text and 'id="new-campaign"' not in listing.text
    page = client.get(f"/dashboard/campaigns/{campaign.id}")
    assert page.status_code == 200 and 'id="send-button"' not in page.text
    assert client.post(f"/dashboard/campaigns/{campaign.id}/send", data={"csrf_token": token}).status_code == 403
    assert client.get("/dashboard/outbox").status_code == 403


def test_the_list_is_empty_with_a_next_step_then_lists_campaigns(client: FlaskClient, db_session: Session,
                                                                 program: Any) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    empty = client.get(f"/dashboard/campaigns?program={program.slug}")
    assert "has no campaign yet" in empty.text and "Write the first one" in empty.text
    campaign_id = campaign_id_of(compose(client, token, program))
    send_now(client, token, campaign_id)
    listing = client.get(f"/dashboard/campaigns?program={program.slug}")
    row = re.search(rf'<tr data-campaign-id="{campaign_id}">(.*?)</tr>', listing.text, re.S).group(1)
    assert "Autumn" in row and "finished" in row and "Everyone" in row and "<td>2</td>" in row
    assert "Autumn" not in client.get(f"/dashboard/campaigns?program={program.slug}&state=draft").text


def test_the_outbox_shows_recorded_messages_newest_first(client: FlaskClient, db_session: Session,
                                                         program: Any) -> None:
    now = utcnow()
    db_session.commit()  # the enrolments' events are dispatched (pass updates recorded in the outbox)...
    db_session.execute(delete(ChannelMessage))  # ...and left out of this test
    db_session.add_all([
        ChannelMessage(channel="sms", recipient="+37369110000", payload={"from": "Shop", "body": "First text"},
                       created_at=now - timedelta(minutes=5)),
        ChannelMessage(channel="sms", recipient="+37369110001", payload={"from": "Shop", "body": "Second <b>text"},
                       created_at=now),
        ChannelMessage(channel="web_push", recipient="https://push.example/…abc", payload={"body": {"title": "T"}},
                       created_at=now - timedelta(minutes=1)),
    ])
    db_session.commit()
    _, _token = sign_in_as(client, db_session, "marketer")
    page = client.get("/dashboard/outbox")
    assert page.status_code == 200
    assert page.text.index("Second &lt;b&gt;text") < page.text.index("First text")  # newest first, escaped
    assert page.text.count('data-channel="') == 3 and "&#34;title&#34;: &#34;T&#34;" in page.text
    sms_only = client.get("/dashboard/outbox?channel=sms")
    assert sms_only.text.count('data-channel="sms"') == 2 and 'data-channel="web_push"' not in sms_only.text
    assert "No Apple push" in client.get("/dashboard/outbox?channel=apns").text
