"""Over the web: POST /api/v1/programs, a programme's phone region on its pages and APIs, closing a store (API and
dashboard) and an admin erasing a customer from the dashboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Card, Consent, Customer, PosCredential, Program, Store
from app.web.auth import KEY_CACHE
from tests.conftest import PosCredentials
from tests.web.api_client import call
from tests.web.dashboard_client import sign_in_as

Factory = Callable[..., Any]
NEW = {"name": "Coffee Corner", "slug": "coffee-corner", "currency": "MDL", "timezone": "Europe/Chisinau",
       "phone_region": "MD", "template": "coffee-stamps"}


# ---------------------------------------------------------------- POST /api/v1/programs


def test_an_admin_token_creates_a_programme_from_a_template(client: FlaskClient, admin: str,
                                                            db_session: Session) -> None:
    response = call(client, "POST", "/programs", admin, json=NEW)
    assert response.status_code == 201, response.text
    body = response.get_json()
    program = db_session.get(Program, body["id"])
    assert program is not None and program.slug == "coffee-corner" and program.kind == "stamps"
    assert body["join_url"] == "https://tallypass.test/join/coffee-corner"
    assert body["poster_url"] == "https://tallypass.test/join/coffee-corner/poster"
    assert (body["kind"], body["phone_region"], body["timezone"]) == ("stamps", "MD", "Europe/Chisinau")
    assert body["background_color"] == program.background_color == "#3B2417"
    # The same programme as GET shows it, and audited with the token.
    got = call(client, "GET", "/programs/coffee-corner", admin).get_json()
    assert {k: v for k, v in body.items() if k not in ("id", "join_url", "poster_url")} == got
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "program.created")).one()
    assert event.target == f"program:{program.id}" and event.actor.startswith("api-token:")


def test_only_an_admin_token_creates_programmes(client: FlaskClient, token: str, db_session: Session) -> None:
    response = call(client, "POST", "/programs", token, json=NEW)
    assert response.status_code == 403
    assert call(client, "POST", "/programs", None, json=NEW).status_code == 401
    assert db_session.scalar(select(Program).where(Program.slug == "coffee-corner")) is None


@pytest.mark.parametrize(("change", "field"), [
    ({"slug": "Coffee Corner"}, "slug"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "DEM"}, "currency"),
    ({"timezone": "Mars/Base"}, "timezone"),
    ({"phone_region": "md"}, "phone_region"),
    ({"kind": "points"}, "template"),  # coffee-stamps is a stamp card
    ({"template": "pizza"}, "template"),
    ({"name": ""}, "name"),
])
def test_bad_fields_are_refused_with_the_field_named(client: FlaskClient, admin: str, db_session: Session,
                                                     change: dict[str, Any], field: str) -> None:
    response = call(client, "POST", "/programs", admin, json={**NEW, **change})
    assert response.status_code == 422, response.text
    assert response.mimetype == "application/problem+json"
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert db_session.scalar(select(func.count()).select_from(Program)) == 0


def test_a_slug_in_use_is_refused(client: FlaskClient, admin: str, make_program: Factory) -> None:
    make_program(slug="coffee-corner")
    response = call(client, "POST", "/programs", admin, json=NEW)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["slug"]


def test_the_phone_region_is_a_setting_of_the_api(client: FlaskClient, token: str, make_program: Factory,
                                                  db_session: Session) -> None:
    program = make_program()
    response = call(client, "PATCH", f"/programs/{program.slug}/settings", token, json={"phone_region": "RO"})
    assert response.status_code == 200 and response.get_json()["program"]["phone_region"] == "RO"
    assert call(client, "PATCH", f"/programs/{program.slug}/settings", token,
                json={"phone_region": "XX"}).status_code == 422
    assert call(client, "PATCH", f"/programs/{program.slug}/settings", token,
                json={"phone_region": None}).get_json()["program"]["phone_region"] is None


# ---------------------------------------------------------------- local numbers with the programme's region


def join(client: FlaskClient, program: Program, phone: str) -> Any:
    page = client.get(f"/join/{program.slug}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post(f"/join/{program.slug}", data={"csrf_token": token, "name": "Ana", "phone": phone})


def test_a_local_number_joins_a_programme_with_a_region_and_is_refused_without(
        client: FlaskClient, make_program: Factory, db_session: Session) -> None:
    moldova, nowhere = make_program(phone_region="MD"), make_program()
    refused = join(client, nowhere, "069 123 457")
    assert refused.status_code == 422 and 'id="phone-error"' in refused.text
    assert db_session.scalar(select(Customer).where(Customer.phone == "+37369123457")) is None
    joined = join(client, moldova, "069 123 457")
    assert joined.status_code == 303, joined.text
    card = db_session.scalars(select(Card).join(Customer).where(Customer.phone == "+37369123457")).one()
    assert card.program_id == moldova.id


def test_the_pos_api_reads_local_numbers_in_the_store_programmes_region(
        make_program: Factory, make_store: Callable[..., PosCredentials], pos_for: Any,
        db_session: Session) -> None:
    moldova, nowhere = make_program(phone_region="MD"), make_program()
    here, there = pos_for(make_store(moldova)), pos_for(make_store(nowhere))
    db_session.commit()
    refused = there.post("/customers", {"phone": "069123457"}, key="a")
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "phone"
    made = here.post("/customers", {"phone": "069123457"}, key="b")
    assert made.status_code == 201, made.text
    assert db_session.get(Customer, made.get_json()["customer_id"]).phone == "+37369123457"


def test_dashboard_search_and_settings_use_the_programmes_region(
        client: FlaskClient, make_program: Factory, make_card: Factory, db_session: Session) -> None:
    program = make_program()
    card = make_card(program, phone="+37369123457", name="Ion Rusu")
    _, token = sign_in_as(client, db_session, "marketer")
    assert "Ion Rusu" not in client.get(f"/dashboard/customers?program={program.slug}&q=069123457").text
    bad = client.post("/dashboard/programme/settings",
                      data={"csrf_token": token, "program": program.slug, "phone_region": "ZZ"})
    assert bad.status_code == 422 and "two-letter code" in bad.text
    saved = client.post("/dashboard/programme/settings",
                        data={"csrf_token": token, "program": program.slug, "phone_region": "md"})
    assert saved.status_code == 303
    db_session.expire_all()
    assert db_session.get(Program, program.id).phone_region == "MD"
    found = client.get(f"/dashboard/customers?program={program.slug}&q=069123457")
    assert "Ion Rusu" in found.text and f"/dashboard/customers/{card.customer_id}" in found.text


# ---------------------------------------------------------------- closing a store


@pytest.fixture
def shop(make_program: Factory, make_store: Callable[..., PosCredentials], db_session: Session) -> PosCredentials:
    creds = make_store(make_program(), name="Old Town", latitude=47.0, longitude=28.8)
    db_session.commit()
    return creds


def test_closing_a_store_over_the_api_revokes_its_keys_and_keeps_it(
        client: FlaskClient, admin: str, token: str, shop: PosCredentials, pos_for: Any,
        make_card: Factory, db_session: Session) -> None:
    card = make_card(shop.store.program)
    pos = pos_for(shop)
    assert pos.post("/purchases", {"receipt_id": "r1", "card": card.barcode, "amount": "100.00"},
                    key="p1").status_code == 201
    assert call(client, "POST", f"/stores/{shop.store.id}/close", token).status_code == 403
    response = call(client, "POST", f"/stores/{shop.store.id}/close", admin)
    assert response.status_code == 200, response.text
    assert response.get_json()["closed_at"] and response.get_json()["live_keys"] == 0
    client.application.extensions[KEY_CACHE].entries.clear()  # as every process does within KEY_CACHE_SECONDS
    refused = pos.post("/purchases", {"receipt_id": "r2", "card": card.barcode, "amount": "100.00"}, key="p2")
    assert refused.status_code == 401 and refused.get_json()["type"].endswith("/unknown-key")
    db_session.expire_all()
    store = db_session.get(Store, shop.store.id)
    assert store is not None and store.closed_at is not None
    assert all(k.revoked_at is not None for k in db_session.scalars(
        select(PosCredential).where(PosCredential.store_id == store.id)))
    assert call(client, "POST", f"/stores/{store.id}/close", admin).status_code == 409
    assert call(client, "POST", f"/stores/{store.id}/keys", admin).status_code == 409
    assert db_session.scalar(select(func.count()).select_from(PosCredential)
                             .where(PosCredential.store_id == store.id)) == 1
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "store-closed")).one()
    assert event.details["revoked_keys"] == [shop.key_id]


def test_a_closed_store_is_no_longer_on_the_pass(shop: PosCredentials, make_card: Factory,
                                                 db_session: Session) -> None:
    from app.db import utcnow
    from app.merchants.stores import close_store
    from app.wallet.apple import pass_content

    card = make_card(shop.store.program)
    assert pass_content(db_session, card, base_url="https://t").locations
    close_store(db_session, store=shop.store, actor="test", now=utcnow())
    assert not pass_content(db_session, card, base_url="https://t").locations


def test_an_admin_closes_a_store_on_its_page_after_confirming(client: FlaskClient, shop: PosCredentials,
                                                              db_session: Session) -> None:
    _, token = sign_in_as(client, db_session, "admin")
    page = client.get(f"/dashboard/stores/{shop.store.id}")
    assert "Close the store" in page.text
    unconfirmed = client.post(f"/dashboard/stores/{shop.store.id}/close", data={"csrf_token": token})
    assert unconfirmed.status_code == 422 and 'id="close-error"' in unconfirmed.text
    db_session.expire_all()
    assert db_session.get(Store, shop.store.id).closed_at is None
    assert client.post(f"/dashboard/stores/{shop.store.id}/close",
                       data={"csrf_token": "wrong", "confirm": "yes"}).status_code in (400, 403)
    done = client.post(f"/dashboard/stores/{shop.store.id}/close", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    page = client.get(f"/dashboard/stores/{shop.store.id}")
    assert 'id="store-closed"' in page.text and "Create a new key" not in page.text
    db_session.expire_all()
    assert db_session.get(Store, shop.store.id).closed_at is not None


def test_a_marketer_cannot_close_a_store(client: FlaskClient, shop: PosCredentials, db_session: Session) -> None:
    _, token = sign_in_as(client, db_session, "marketer")
    response = client.post(f"/dashboard/stores/{shop.store.id}/close", data={"csrf_token": token, "confirm": "yes"})
    assert response.status_code == 403
    db_session.expire_all()
    assert db_session.get(Store, shop.store.id).closed_at is None


# ---------------------------------------------------------------- erasing a customer


def test_an_admin_erases_a_customer_like_their_own_delete_and_it_is_audited(
        client: FlaskClient, make_program: Factory, make_card: Factory, db_session: Session) -> None:
    program = make_program()
    card = make_card(program, phone="+37369000777", name="Maria Ceban", email="maria@example.com",
                     consents={"sms": True})
    db_session.commit()
    admin, token = sign_in_as(client, db_session, "admin")
    url = f"/dashboard/customers/{card.customer_id}?program={program.slug}"
    assert "Erase the customer" in client.get(url).text
    erase = f"/dashboard/customers/{card.customer_id}/erase"
    unconfirmed = client.post(erase, data={"csrf_token": token, "program": program.slug})
    assert unconfirmed.status_code == 422 and 'id="erase-error"' in unconfirmed.text
    db_session.expire_all()
    assert db_session.get(Customer, card.customer_id).phone == "+37369000777"

    done = client.post(erase, data={"csrf_token": token, "program": program.slug, "confirm": "yes"})

    assert done.status_code == 303
    db_session.expire_all()
    customer = db_session.get(Customer, card.customer_id)
    assert (customer.name, customer.phone, customer.email) == ("", None, None)
    assert customer.anonymized_at is not None and db_session.get(Card, card.id).status == "voided"
    assert not any(c.granted for c in db_session.scalars(select(Consent).where(Consent.customer_id == customer.id)))
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.erased")).one()
    assert (event.actor, event.user_id, event.target) == (admin.email, admin.id, f"customer:{customer.id}")
    assert "maria" not in str(event.details).lower()
    assert 'id="erased-note"' in client.get(url).text


def test_a_marketer_cannot_erase_a_customer(client: FlaskClient, make_program: Factory, make_card: Factory,
                                           db_session: Session) -> None:
    program = make_program()
    card = make_card(program, phone="+37369000778")
    db_session.commit()
    _, token = sign_in_as(client, db_session, "marketer")
    assert "Erase the customer" not in client.get(
        f"/dashboard/customers/{card.customer_id}?program={program.slug}").text
    response = client.post(f"/dashboard/customers/{card.customer_id}/erase",
                           data={"csrf_token": token, "program": program.slug, "confirm": "yes"})
    assert response.status_code == 403
    db_session.expire_all()
    assert db_session.get(Customer, card.customer_id).anonymized_at is None
