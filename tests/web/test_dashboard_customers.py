"""The dashboard's customers pages: search by each key, the profile, a manual adjustment (balance, ledger,
audit), the CSV import with its report, and the export."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment, member_import
from app.models import AuditEvent, Card, Customer, LedgerEntry, MemberImport
from app.web.dashboard.access import RANK
from tests.web.dashboard_client import sign_in_as


@pytest.fixture
def shop(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> dict[str, Any]:
    program = make_program(name="Cafea")
    ana = make_card(program, phone="+37369123456", name="Ana Popescu", balance=40)
    bob = make_card(program, phone="+37368777000", name="Bob Ionescu")
    enrollment.set_consents(db_session, customer=ana.customer, consents={"sms": True, "email": False},
                            source="signup", now=utcnow())
    db_session.flush()
    return {"program": program, "ana": ana, "bob": bob}


def names(page: str) -> list[str]:
    return re.findall(r'/dashboard/customers/\d+\?program=[\w-]+">([^<]+)</a>', page)


def test_search_by_each_key(client: FlaskClient, db_session: Session, shop: dict[str, Any]) -> None:
    sign_in_as(client, db_session, "viewer")
    slug, ana = shop["program"].slug, shop["ana"]

    def find(q: str) -> list[str]:
        response = client.get("/dashboard/customers", query_string={"program": slug, "q": q})
        assert response.status_code == 200
        return names(response.text)

    assert find("") == ["Bob Ionescu", "Ana Popescu"]  # everyone, newest card first
    assert find("+373 69 123 456") == ["Ana Popescu"]  # a full number, as typed
    assert find("123 45") == ["Ana Popescu"]  # part of the digits
    assert find("popESC") == ["Ana Popescu"]  # part of the name, any case
    assert find(ana.barcode) == ["Ana Popescu"]  # the barcode, exactly
    assert find(ana.barcode[:-1]) == []  # ...and only exactly
    assert find("%") == []  # wildcards are just characters
    empty = client.get("/dashboard/customers", query_string={"program": slug, "q": "Zoe"})
    assert "No member of Cafea matches" in empty.text


def test_a_national_number_is_read_in_the_default_region(app_with: Callable[..., Flask], db_session: Session,
                                                          shop: dict[str, Any]) -> None:
    client = app_with(default_phone_region="MD").test_client()
    sign_in_as(client, db_session, "viewer")
    response = client.get("/dashboard/customers", query_string={"program": shop["program"].slug, "q": "069123456"})
    assert names(response.text) == ["Ana Popescu"]


def test_the_profile_shows_card_ledger_consent_and_devices(client: FlaskClient, db_session: Session,
                                                           shop: dict[str, Any]) -> None:
    sign_in_as(client, db_session, "viewer")
    ana = shop["ana"]
    page = client.get(f"/dashboard/customers/{ana.customer_id}", query_string={"program": shop["program"].slug})
    assert page.status_code == 200
    text = page.text
    assert ana.barcode in text and "40 points" in text and "Bronze" in text
    assert re.search(r'data-consent="sms">.*?<td>yes</td>', text, re.S)
    assert re.search(r'data-consent="email">.*?<td>no</td>', text, re.S)
    assert re.search(r'data-consent="push">.*?not asked', text, re.S)
    assert "test setup" in text  # the ledger entry's reason
    assert "Apple Wallet:" in text and "not added" in text
    assert "Adjust points" not in text  # a viewer may not adjust
    other = client.get(f"/dashboard/customers/{ana.customer_id + 1000}", query_string={"program": shop["program"].slug})
    assert other.status_code == 404


def test_a_marketer_adjusts_points_with_a_reason(client: FlaskClient, db_session: Session,
                                                 shop: dict[str, Any]) -> None:
    user, token = sign_in_as(client, db_session, "marketer")
    ana, slug = shop["ana"], shop["program"].slug
    url = f"/dashboard/customers/{ana.customer_id}/adjust"
    response = client.post(url, data={"csrf_token": token, "program": slug, "points": "-15",
                                      "reason": "receipt 1234 counted twice"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/dashboard/customers/{ana.customer_id}?program={slug}"
    db_session.expire_all()
    card = db_session.get(Card, ana.id)
    assert card is not None and card.balance == 25
    entry = db_session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == ana.id)
                               .order_by(LedgerEntry.id.desc())).first()
    assert entry is not None
    assert (entry.kind, entry.points, entry.reason, entry.actor) == ("adjust", -15, "receipt 1234 counted twice",
                                                                     f"user:{user.id}")
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.adjust")).one()
    assert event.user_id == user.id and event.target == f"card:{ana.id}"
    assert event.details["reason"] == "receipt 1234 counted twice" and event.details["points"] == -15
    page = client.get(response.headers["Location"])
    assert "-15 points: the balance is now 25" in page.text and "receipt 1234 counted twice" in page.text


@pytest.mark.parametrize(("points", "reason", "field", "message"), [
    ("10", "  ", "reason", "Say why"),
    ("", "goodwill", "points", "Enter the points"),
    ("ten", "goodwill", "points", "Must be a whole number"),
    ("٢٥", "goodwill", "points", "Must be a whole number"),
    ("0", "goodwill", "points", "Must not be 0"),
    ("-41", "goodwill", "points", "At most 40 can be taken"),
])
def test_a_refused_adjustment_says_why_and_keeps_the_form(client: FlaskClient, db_session: Session,
                                                          shop: dict[str, Any], points: str, reason: str, field: str,
                                                          message: str) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    ana = shop["ana"]
    response = client.post(f"/dashboard/customers/{ana.customer_id}/adjust",
                           data={"csrf_token": token, "program": shop["program"].slug, "points": points,
                                 "reason": reason})
    assert response.status_code == 422
    error = re.search(rf'id="{field}-error">([^<]+)<', response.text)
    assert error and error.group(1).startswith(message), response.text
    assert f'value="{points}"' in response.text  # what was typed is still there
    db_session.expire_all()
    assert db_session.get(Card, ana.id).balance == 40  # type: ignore[union-attr]
    assert db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.adjust")).first() is None


def test_a_viewer_may_not_adjust_import_or_export(client: FlaskClient, db_session: Session,
                                                  shop: dict[str, Any]) -> None:
    _, token = sign_in_as(client, db_session, "viewer")
    ana = shop["ana"]
    assert client.post(f"/dashboard/customers/{ana.customer_id}/adjust",
                       data={"csrf_token": token, "points": "5", "reason": "x"}).status_code == 403
    assert client.get("/dashboard/customers/export.csv").status_code == 403
    assert client.get("/dashboard/customers/import").status_code == 403


def upload(client: FlaskClient, token: str, slug: str, text: str, mode: str = "all") -> Any:
    return client.post(f"/dashboard/customers/import?program={slug}", content_type="multipart/form-data",
                       data={"csrf_token": token, "program": slug, "mode": mode,
                             "file": (io.BytesIO(text.encode()), "members.csv")})


def test_import_reports_problems_line_by_line(client: FlaskClient, db_session: Session,
                                              shop: dict[str, Any]) -> None:
    """The upload is stored as a job and answered at once with a redirect to its page; the job checks the lines
    (inline here: no broker) and the page shows its report."""
    _, token = sign_in_as(client, db_session, "marketer")
    slug = shop["program"].slug
    text = ("phone,name,email,consent_sms\n"
            "+37369000001,New One,new@example.com,yes\n"
            "+37369123456,Ana Popescu,,\n"  # already a member
            "+37369000002,Bad Mail,nope,\n")
    response = upload(client, token, slug, text)
    assert response.status_code == 303 and re.search(r"/dashboard/customers/imports/\d+\?program=", response.headers[
        "Location"])
    page = client.get(response.headers["Location"])
    rows = re.findall(r"<tr data-issue><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page.text)
    assert rows == [("3", "phone", "Already a member of this programme"), ("4", "email", "Is not an e-mail address")]
    assert 'id="import-refused"' in page.text and "nothing was imported" in page.text.lower()
    assert "choose “import the valid lines”" in page.text
    assert 'http-equiv="refresh"' not in page.text  # ended: the page stops reloading
    assert db_session.scalar(select(Customer).where(Customer.phone == "+37369000001")) is None

    response = upload(client, token, slug, text, mode="valid")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "Imported 1 of 3 members" in page.text
    assert re.search(r'id="count-created">1<', page.text) and re.search(r'id="count-skipped">2<', page.text)
    new = db_session.scalar(select(Customer).where(Customer.phone == "+37369000001"))
    assert new is not None and new.name == "New One"
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customers.import")).one()
    assert event.details["imported"] == 1 and event.details["skipped"] == 2
    assert event.details["file"] == "members.csv" and event.user_id is not None
    recent = client.get(f"/dashboard/customers/import?program={slug}").text
    assert "Recent imports" in recent and recent.count("members.csv</a>") == 2


def test_a_valid_import_shows_its_progress_page(client: FlaskClient, db_session: Session,
                                                shop: dict[str, Any]) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    slug = shop["program"].slug
    response = upload(client, token, slug, "\ufeffPhone,Name\n+37369000001,New One\n+37369000002,Two\n")
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert "Imported 2 of 2 members into Cafea. No welcome message was sent." in page.text
    assert '<progress id="import-progress" max="2" value="2"' in page.text
    assert names(client.get(f"/dashboard/customers?program={slug}").text)[:2] == ["Two", "New One"]


def test_an_import_still_running_reloads_its_page_and_says_how_far_it_is(
        client: FlaskClient, db_session: Session, shop: dict[str, Any]) -> None:
    user, _ = sign_in_as(client, db_session, "marketer")
    job = member_import.start(db_session, program=shop["program"], mode="valid", actor=f"user:{user.id}",
                              csv_text="phone\n" + "".join(f"+3736900{n:04d}\n" for n in range(1, 501)),
                              filename="big.csv", now=utcnow())
    job.state, job.done, job.imported, job.checked_at = "importing", 250, 240, utcnow()
    job.invalid_lines, job.issues = 10, [{"line": 7, "column": "phone", "message": "is required"}]
    db_session.commit()
    page = client.get(f"/dashboard/customers/imports/{job.id}")
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in page.text
    assert "Importing…" in page.text and "250 of 500 lines</strong> handled (50 %)" in page.text
    assert '<progress id="import-progress" max="500" value="250"' in page.text
    assert "you can also leave it: the import goes on" in page.text
    assert re.search(r"<tr data-issue><td>7</td><td>phone</td><td>Is required</td>", page.text)
    assert client.get("/dashboard/customers/imports/999999").status_code == 404
    assert db_session.get(MemberImport, job.id).csv  # still there for the worker


def test_an_import_form_without_a_usable_file_is_refused(client: FlaskClient, db_session: Session,
                                                        shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    slug = shop["program"].slug
    response = client.post(f"/dashboard/customers/import?program={slug}", data={"csrf_token": token, "mode": "x"})
    assert response.status_code == 422
    assert "Choose the CSV file to import." in response.text and "Choose whether to import" in response.text

    def send(data: bytes) -> Any:
        return client.post(f"/dashboard/customers/import?program={slug}", content_type="multipart/form-data",
                           data={"csrf_token": token, "mode": "valid", "file": (io.BytesIO(data), "a.csv")})

    latin = send("phone,name\n+37369000001,Jos\xe9\n".encode("latin-1"))
    assert latin.status_code == 422 and "not UTF-8" in latin.text
    assert 'value="valid" checked' in latin.text  # the choice made is kept
    # (Smaller limits than 5 MB, so the test client keeps the bodies in memory.)
    monkeypatch.setattr(member_import, "MAX_BYTES", 1000)
    over = send(b"phone\n" + b"+37369000001\n" * 100)  # over the limit, within the form's margin: read, refused
    assert over.status_code == 422 and "larger than 5 MB" in over.text
    far_over = send(b"phone\n" + b"+37369000001\n" * 6000)  # refused unread
    assert far_over.status_code == 413 and "larger than 5 MB" in far_over.text
    header = send(b"phone,colour\n+37369000001,blue\n")  # the file as a whole is checked before it is stored
    assert header.status_code == 422 and "Unknown column; the columns are" in header.text
    assert db_session.scalar(select(Customer).where(Customer.phone == "+37369000001")) is None
    assert db_session.scalar(select(func.count()).select_from(MemberImport)) == 0


def test_export_is_a_guarded_csv_and_audited(client: FlaskClient, db_session: Session,
                                             shop: dict[str, Any]) -> None:
    user, _ = sign_in_as(client, db_session, "marketer")
    shop["bob"].customer.name = "=1+2"
    db_session.commit()
    response = client.get("/dashboard/customers/export.csv", query_string={"program": shop["program"].slug})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="{shop["program"].slug}-members-')
    lines = response.text.split("\r\n")
    assert lines[0] == "phone,name,email,birthday,points,consent_sms,consent_email,consent_push,consent_wallet"
    assert lines[1] == "'+37369123456,Ana Popescu,,,40,yes,no,,"
    assert lines[2] == "'+37368777000,'=1+2,,,0,,,,"
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customers.export")).one()
    assert event.user_id == user.id and event.target == f"program:{shop['program'].slug}"


@pytest.mark.parametrize("role", ["viewer", "marketer", "admin"])
def test_every_customers_route_answers_each_role(role: str, app: Flask, client: FlaskClient, db_session: Session,
                                                 shop: dict[str, Any]) -> None:
    """As tests/web/test_dashboard.py, for this area's routes alone: the least role, and no 500 on an empty post."""
    _, token = sign_in_as(client, db_session, role)
    routes = [(rule, method) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("dashboard.customers")
              for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    assert len(routes) == 8  # the list, profile, adjust, erase, import (page, upload, job) and export
    for rule, method in routes:
        path = re.sub(r"<int:\w+>", "999999", rule.rule)
        response = client.open(path, method=method, data={"csrf_token": token})
        needed = app.view_functions[rule.endpoint].required_role
        expected = {403} if RANK[role] < RANK[needed] else {200, 303, 404, 422}
        assert response.status_code in expected, (role, method, path, response.status_code)
