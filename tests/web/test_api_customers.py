"""Customers over the JSON API: search by each key, one customer, the ledger, an adjustment (balance, ledger,
audit, the token's role), the CSV import's report and its refusal as problem+json, and the document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment
from app.models import AuditEvent, Card, Customer, LedgerEntry
from tests.web.api_client import call


@pytest.fixture
def shop(make_program: Callable[..., Any], make_card: Callable[..., Any], db_session: Session) -> dict[str, Any]:
    program = make_program(slug="cafea")
    ana = make_card(program, phone="+37369123456", name="Ana Popescu", balance=40)
    bob = make_card(program, phone="+37368777000", name="Bob Ionescu")
    enrollment.set_consents(db_session, customer=ana.customer, consents={"sms": True}, source="signup", now=utcnow())
    db_session.flush()
    return {"program": program, "ana": ana, "bob": bob}


def test_search_by_each_key(client: FlaskClient, viewer: str, shop: dict[str, Any]) -> None:
    def find(q: str, **extra: Any) -> list[str]:
        response = call(client, "GET", "/customers", viewer, query_string={"program": "cafea", "q": q, **extra})
        assert response.status_code == 200, response.json
        return [item["name"] for item in response.json["items"]]

    assert find("") == ["Bob Ionescu", "Ana Popescu"]
    assert find("+37369123456") == ["Ana Popescu"]
    assert find("777") == ["Bob Ionescu"]
    assert find("ionescu") == ["Bob Ionescu"]
    assert find(shop["ana"].barcode) == ["Ana Popescu"]
    page = call(client, "GET", "/customers", viewer, query_string={"program": "cafea", "per_page": 1}).json
    assert (page["total"], page["next"], len(page["items"])) == (2, 2, 1)
    item = page["items"][0]
    assert item["barcode"] == shop["bob"].barcode and item["tier"] == "Bronze" and item["balance"] == 0
    assert call(client, "GET", "/customers", viewer, query_string={"program": "nope"}).status_code == 404


def test_one_customer_and_their_ledger(client: FlaskClient, viewer: str, shop: dict[str, Any]) -> None:
    ana = shop["ana"]
    body = call(client, "GET", f"/customers/{ana.customer_id}", viewer).json
    assert body["phone"] == "+37369123456" and body["name"] == "Ana Popescu"
    assert [(c["program"], c["barcode"], c["balance"], c["apple_devices"], c["google_object"])
            for c in body["cards"]] == [("cafea", ana.barcode, 40, 0, False)]
    assert [(c["channel"], c["granted"], c["source"]) for c in body["consents"]] == [("sms", True, "signup")]
    ledger = call(client, "GET", f"/customers/{ana.customer_id}/ledger", viewer,
                  query_string={"program": "cafea"}).json
    assert ledger["balance"] == 40 and ledger["total"] == 1
    assert [(e["kind"], e["points"], e["reason"]) for e in ledger["items"]] == [("bonus", 40, "test setup")]
    assert call(client, "GET", "/customers/999999", viewer).status_code == 404


def test_an_adjustment_changes_the_balance_and_is_audited(client: FlaskClient, token: str, viewer: str,
                                                          db_session: Session, shop: dict[str, Any]) -> None:
    ana = shop["ana"]
    path = f"/customers/{ana.customer_id}/adjustments"
    body = {"program": "cafea", "points": 25, "reason": "goodwill: late delivery"}
    assert call(client, "POST", path, viewer, json=body).status_code == 403
    response = call(client, "POST", path, token, json=body)
    assert response.status_code == 201, response.json
    assert response.json["balance"] == 65 and response.json["entry"]["points"] == 25
    db_session.expire_all()
    assert db_session.get(Card, ana.id).balance == 65  # type: ignore[union-attr]
    entry = db_session.get(LedgerEntry, response.json["entry"]["id"])
    assert entry is not None and entry.kind == "adjust" and entry.actor == f"api-token:{token[:10]}"
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.adjust")).one()
    assert event.actor == f"api-token:{token[:10]}" and event.details["reason"] == "goodwill: late delivery"

    for digits in ("٢٥", "２５", "-٢٥"):  # points only in the digits 0-9
        other = call(client, "POST", path, token, json={**body, "points": digits})
        assert other.status_code == 422 and [e["field"] for e in other.json["errors"]] == ["points"]

    too_much = call(client, "POST", path, token, json={**body, "points": -1000})
    assert too_much.status_code == 409 and too_much.mimetype == "application/problem+json"  # the balance's state
    assert too_much.json["errors"] == [{"field": "points", "message": "at most 65 can be taken"}]
    no_reason = call(client, "POST", path, token, json={**body, "reason": ""})
    assert no_reason.status_code == 422 and no_reason.json["errors"][0]["field"] == "reason"


def test_import_answers_202_with_a_job_to_follow(client: FlaskClient, token: str, viewer: str, db_session: Session,
                                                 shop: dict[str, Any]) -> None:
    text = ("phone,name,points,consent_sms\n"
            "+37369000001,New One,15,yes\n"
            "+37369123456,Ana Popescu,,\n"
            "+37369000002,Bad Consent,,sure\n")
    refused = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"}, data=text,
                   content_type="text/csv")
    assert refused.status_code == 202, refused.json
    job = call(client, "GET", refused.headers["Location"].removeprefix("/api/v1"), viewer).json
    assert job["id"] == refused.json["id"] and job["program"] == "cafea" and job["mode"] == "all"
    assert (job["state"], job["rows"], job["report"]["imported"], job["report"]["valid"]) == ("refused", 3, 0, 1)
    assert [(i["line"], i["column"], i["message"]) for i in job["report"]["issues"]] == [
        (3, "phone", "already a member of this programme"),
        (4, "consent_sms", "must be yes or no (or empty: not asked)")]
    assert job["finished_at"] is not None and job["error"] is None
    assert db_session.scalar(select(Customer).where(Customer.phone == "+37369000001")) is None

    partial = call(client, "POST", "/customers/import", token, query_string={"program": "cafea", "mode": "valid"},
                   data=text.encode(), content_type="text/csv")
    assert partial.status_code == 202, partial.json
    assert partial.headers["Location"] == f"/api/v1/customers/imports/{partial.json['id']}"
    done = call(client, "GET", f"/customers/imports/{partial.json['id']}", token).json  # inline: already done
    report = done["report"]
    assert (done["state"], done["done"], done["percent"]) == ("done", 3, 100)
    assert (report["ok"], report["rows"], report["imported"], report["skipped"], report["points"]) == (
        False, 3, 1, 2, 15)
    assert [(i["line"], i["column"]) for i in report["issues"]] == [(3, "phone"), (4, "consent_sms")]
    customer = db_session.scalar(select(Customer).where(Customer.phone == "+37369000001"))
    assert customer is not None and customer.cards[0].balance == 15
    assert db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customers.import")).one().details[
        "imported"] == 1
    assert call(client, "GET", "/customers/imports/999999", viewer).status_code == 404


def test_the_upload_request_itself_imports_nobody(client: FlaskClient, token: str, db_session: Session,
                                                   shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard for "a minute-long request": the request stores the file and queues the job, nothing more
    (with a broker, the job runs in a worker); a member is enrolled only by the job."""
    from app.tasks import imports

    queued: list[int] = []
    monkeypatch.setattr(imports.run_member_import, "delay", queued.append)
    text = "phone\n" + "".join(f"+3736900{n:04d}\n" for n in range(1, 2001))
    accepted = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"}, data=text,
                    content_type="text/csv")
    assert accepted.status_code == 202 and queued == [accepted.json["id"]]
    assert (accepted.json["state"], accepted.json["rows"], accepted.json["done"]) == ("queued", 2000, 0)
    assert db_session.scalar(select(Customer).where(Customer.phone == "+37369000001")) is None


def test_import_limits_and_encoding(client: FlaskClient, token: str, viewer: str, shop: dict[str, Any]) -> None:
    assert call(client, "POST", "/customers/import", viewer, query_string={"program": "cafea"}, data="phone\n",
                content_type="text/csv").status_code == 403
    latin = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"},
                 data="phone,name\n+37369000001,Jos\xe9\n".encode("latin-1"), content_type="text/csv")
    assert latin.status_code == 422 and latin.json["errors"][0]["field"] == "body"
    big = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"},
               data=b"phone\n" + b"+37369000001\n" * 420_000, content_type="text/csv")
    assert big.status_code == 413 and big.mimetype == "application/problem+json"
    # The file as a whole is checked at once: refused with its report, and nothing is stored.
    header = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"},
                  data="phone,colour\n+37369000001,blue\n", content_type="text/csv")
    assert header.status_code == 422 and header.json["errors"][0]["field"] == "line 1: colour"
    assert header.json["report"]["file_errors"][0]["column"] == "colour"
    nul = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"},
               data=b"phone\n+37369\x00000001\n", content_type="text/csv")
    # (a raw text body with a NUL is malformed input, refused at the edge like any other: app/web/input_guard.py)
    assert nul.status_code == 400 and "NUL characters" in nul.json["errors"][0]["message"]
    # Over the app's 64 KiB limit for other bodies, under 5 MB: read and checked (one bad line: nothing imported).
    many = "phone\n" + "".join(f"+3736{n:07d}\n" for n in range(9000, 15000)) + "+3736\n"
    checked = call(client, "POST", "/customers/import", token, query_string={"program": "cafea"}, data=many,
                   content_type="text/csv")
    assert len(many) > 64 * 1024 and checked.status_code == 202
    job = checked.json
    assert (job["state"], job["report"]["valid"]) == ("refused", 6000)
    assert [(i["line"], i["message"]) for i in job["report"]["issues"]] == [
        (6002, "is not a phone number; use the international format, e.g. +37369123456")]


def test_the_export_is_the_csv_the_import_reads(client: FlaskClient, token: str, viewer: str,
                                                 db_session: Session, shop: dict[str, Any],
                                                 make_program: Callable[..., Any]) -> None:
    assert call(client, "GET", "/customers/export.csv", viewer, query_string={"program": "cafea"}).status_code == 403
    exported = call(client, "GET", "/customers/export.csv", token, query_string={"program": "cafea"})
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    lines = exported.text.splitlines()
    assert lines[0].startswith("phone,") and len(lines) == 3
    assert any("'+37369123456" in line and "Ana Popescu" in line and ",40," in line for line in lines[1:])
    assert db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customers.export")).one().actor \
        .startswith("api-token:")
    make_program(slug="other")
    imported = call(client, "POST", "/customers/import", token, query_string={"program": "other"},
                    data=exported.text, headers={"Content-Type": "text/csv"})
    assert imported.status_code == 202 and imported.json["report"]["imported"] == 2, imported.json
    other = call(client, "GET", "/customers", token, query_string={"program": "other", "q": "Ana"}).json
    assert [(m["name"], m["balance"]) for m in other["items"]] == [("Ana Popescu", 40)]


def test_the_document_describes_the_customer_operations(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    paths = spec["paths"]
    assert paths["/api/v1/customers"]["get"]["x-required-role"] == "viewer"
    assert "text/csv" in paths["/api/v1/customers/import"]["post"]["requestBody"]["content"]
    assert set(paths["/api/v1/customers/import"]["post"]["responses"]) >= {"202", "422"}
    accepted = paths["/api/v1/customers/import"]["post"]["responses"]["202"]["content"]["application/json"]
    assert accepted["schema"]["$ref"].endswith("/ImportJobOut")
    assert paths["/api/v1/customers/imports/{import_id}"]["get"]["x-required-role"] == "viewer"
    assert paths["/api/v1/customers/{customer_id}/adjustments"]["post"]["x-required-role"] == "marketer"
    assert "/api/v1/customers/{customer_id}/ledger" in paths
