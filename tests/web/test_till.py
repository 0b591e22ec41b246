"""The till (``/till/``): who may use it, the card lookup, the quote, purchases and refunds through the POS
API's services, idempotent per attempt and audited with the cashier; the manifest and the service worker."""

from __future__ import annotations

import io
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import InvalidInput
from app.merchants.stores import close_store
from app.merchants.users import create_user
from app.models import AuditEvent, Card, IdempotencyRecord, LedgerEntry, Purchase, Refund
from tests.web.dashboard_client import PASSWORD, csrf

PROBLEM = "application/problem+json"


class Till:
    """A browser signed in as a till user: the page's CSRF token goes with every JSON call."""

    def __init__(self, client: FlaskClient, store_id: int, token: str) -> None:
        self.client, self.store_id, self.token = client, store_id, token

    def post(self, path: str, body: dict[str, Any], *, language: str = "en", token: str | None = None) -> Any:
        return self.client.post(f"/till/api/{path}", json={"store": self.store_id, **body},
                                headers={"X-CSRF-Token": self.token if token is None else token,
                                         "Accept": "application/json", "Accept-Language": language})


def sign_in(client: FlaskClient, db_session: Session, role: str, stores: list[Any], email: str | None = None) -> Any:
    user = create_user(db_session, email=email or f"{role}@till.test", password=PASSWORD, role=role,
                       store_ids=[s.id for s in stores] if role == "cashier" else ())
    db_session.commit()
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": user.email,
                                                      "password": PASSWORD})
    assert response.status_code == 303, response.text
    return user


def page_token(client: FlaskClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


@pytest.fixture
def shop(make_program: Any, make_store: Any, make_card: Any, db_session: Session) -> dict[str, Any]:
    program = make_program(max_purchase_amount=Decimal("500.00"))  # Bronze 3 %, cap 50 %, 1 point = 1.00
    store = make_store(program, name="Centru").store
    other = make_store(program, name="Botanica").store
    card = make_card(program, balance=40, name="Ana Maria Popescu", phone="+37369555111")
    db_session.commit()
    return {"program": program, "store": store, "other": other, "card": card}


@pytest.fixture
def cashier(client: FlaskClient, db_session: Session, shop: dict[str, Any]) -> Till:
    sign_in(client, db_session, "cashier", [shop["store"]])
    return Till(client, shop["store"].id, page_token(client, "/till/"))


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["type"].endswith("/" + code), body
    return body


def purchases_of(db_session: Session, card: Card) -> list[Purchase]:
    db_session.expire_all()
    return list(db_session.scalars(select(Purchase).where(Purchase.card_id == card.id)))


# ---------------------------------------------------------------- access


def test_anonymous_visitors_go_to_the_sign_in_form_and_anonymous_calls_are_refused(client: FlaskClient) -> None:
    response = client.get("/till/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/login?next=/till/"
    problem(client.post("/till/api/lookup", json={"store": 1, "card": "1"}), 401, "signed-out")


def test_a_viewer_may_not_use_the_till(client: FlaskClient, db_session: Session, shop: dict[str, Any]) -> None:
    sign_in(client, db_session, "viewer", [])
    assert client.get("/till/").status_code == 403
    token = csrf(client, "/dashboard/")
    body = problem(client.post("/till/api/lookup", json={"store": shop["store"].id, "card": shop["card"].barcode},
                               headers={"X-CSRF-Token": token}), 403, "role-too-small")
    assert body["detail"] == "Your account cannot use the till."


def test_a_cashier_serves_only_at_its_own_stores(client: FlaskClient, db_session: Session,
                                                  shop: dict[str, Any]) -> None:
    sign_in(client, db_session, "cashier", [shop["store"]])
    page = client.get("/till/")  # its only store: straight to the till
    assert f'data-store="{shop["store"].id}"' in page.text and "Centru" in page.text
    refused = client.get(f"/till/?store={shop['other'].id}")  # not its store: the choice, with a message
    assert "data-store=" not in refused.text and "You do not serve at this store." in refused.text
    till = Till(client, shop["other"].id, page_token(client, "/till/"))
    body = problem(till.post("lookup", {"card": shop["card"].barcode}), 422, "store-not-allowed")
    assert body["errors"] == [{"field": "store", "message": "You do not serve at this store."}]


def test_a_cashier_at_two_stores_chooses_one(client: FlaskClient, db_session: Session,
                                             shop: dict[str, Any]) -> None:
    sign_in(client, db_session, "cashier", [shop["store"], shop["other"]])
    choice = client.get("/till/")
    assert "Choose your store" in choice.text
    assert re.findall(r'href="/till/\?store=(\d+)"', choice.text) == [str(shop["store"].id), str(shop["other"].id)]
    assert f'data-store="{shop["other"].id}"' in client.get(f"/till/?store={shop['other'].id}").text


@pytest.mark.parametrize("role", ["admin", "marketer"])
def test_an_admin_or_marketer_may_serve_at_any_store(client: FlaskClient, db_session: Session,
                                                     shop: dict[str, Any], role: str) -> None:
    sign_in(client, db_session, role, [])
    token = page_token(client, f"/till/?store={shop['other'].id}")
    found = Till(client, shop["other"].id, token).post("lookup", {"card": shop["card"].barcode})
    assert found.status_code == 200 and found.json["name"] == "Ana P."


def test_calls_without_the_pages_csrf_token_are_refused(cashier: Till, shop: dict[str, Any],
                                                        db_session: Session) -> None:
    attempt = str(uuid.uuid4())
    for token in ("", "forged"):
        problem(cashier.post("purchases", {"card": shop["card"].barcode, "amount": "10.00", "attempt": attempt},
                             token=token), 403, "csrf-failed")
    assert purchases_of(db_session, shop["card"]) == []


# ---------------------------------------------------------------- lookup and quote


def test_lookup_by_card_number_or_phone_shows_name_balance_tier_and_cap(cashier: Till, shop: dict[str, Any],
                                                                       db_session: Session) -> None:
    card = shop["card"]
    by_card = cashier.post("lookup", {"card": card.barcode})
    assert by_card.status_code == 200
    assert by_card.json == {"card": card.barcode, "name": "Ana P.", "kind": "points", "balance": 40,
                            "tier": "Bronze", "cap": "50%"}
    assert cashier.post("lookup", {"phone": "+373 69 555 111"}).json == by_card.json
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "till.lookup")).all()
    assert [(e.actor, e.target, e.details["by"]) for e in events] == [
        ("cashier@till.test", f"card:{card.id}", "card"), ("cashier@till.test", f"card:{card.id}", "phone")]


def test_lookup_with_an_amount_gives_the_most_points_that_may_pay(cashier: Till, shop: dict[str, Any]) -> None:
    found = cashier.post("lookup", {"card": shop["card"].barcode, "amount": "30.00"}).json
    assert found["max_redeemable"] == {"points": 15, "discount": {"value": "15.00", "text": "MDL\u00a015.00"}}
    found = cashier.post("lookup", {"card": shop["card"].barcode, "amount": "200"}).json
    assert found["max_redeemable"]["points"] == 40  # the balance, under the cap of 100


def test_an_unknown_card_is_a_clear_message(cashier: Till) -> None:
    body = problem(cashier.post("lookup", {"card": "1234567890128"}), 404, "card-not-found")
    assert body["detail"] == "No card with this number or phone in this programme."
    body = problem(cashier.post("lookup", {"card": "1234567890128"}, language="ro"), 404, "card-not-found")
    assert body["detail"] != "No card with this number or phone in this programme."  # translated


def test_the_quote_is_what_would_be_recorded_and_writes_nothing(cashier: Till, shop: dict[str, Any],
                                                                db_session: Session) -> None:
    quote = cashier.post("quote", {"card": shop["card"].barcode, "amount": "30.00", "redeem_points": 10})
    assert quote.status_code == 200
    body = quote.json
    assert (body["redeemed"], body["discount"]["value"], body["amount_due"]["value"], body["earned"]) == (
        10, "10.00", "20.00", 0)  # 3 % of 20.00 is 0.60: no whole point
    assert body["card"]["balance"] == 30 and body["max_points"] == 15
    assert purchases_of(db_session, shop["card"]) == []


@pytest.mark.parametrize(("amount", "points", "status", "code", "field", "message"), [
    ("30.00", 16, 422, "over-redemption-cap", "redeem_points", "At most 15 points can pay for this purchase."),
    ("500.01", 0, 422, "amount-over-limit", "amount",
     "This amount is over the most this programme accepts for one purchase."),
    ("12.345", 0, 422, "validation-error", "amount", "Enter an amount, e.g. 12.50 (at most two decimals)."),
    ("-1", 0, 422, "validation-error", "amount", "Enter an amount, e.g. 12.50 (at most two decimals)."),
])
def test_refusals_name_the_field_and_change_nothing(cashier: Till, shop: dict[str, Any], db_session: Session,
                                                    amount: str, points: int, status: int, code: str, field: str,
                                                    message: str) -> None:
    for path, extra in (("quote", {}), ("purchases", {"attempt": str(uuid.uuid4())})):
        body = problem(cashier.post(path, {"card": shop["card"].barcode, "amount": amount, "redeem_points": points,
                                           **extra}), status, code)
        assert {"field": field, "message": message} in body["errors"], body
    assert purchases_of(db_session, shop["card"]) == []
    assert shop["card"].balance == 40


# ---------------------------------------------------------------- purchases


def test_a_purchase_is_recorded_once_per_attempt_and_audited(cashier: Till, shop: dict[str, Any],
                                                             db_session: Session) -> None:
    card, attempt = shop["card"], str(uuid.uuid4())
    payload = {"card": card.barcode, "amount": "100.00", "redeem_points": 20, "attempt": attempt}
    first = cashier.post("purchases", payload)
    assert first.status_code == 201, first.text
    assert first.json["receipt_id"] == f"till-{attempt}"
    assert (first.json["redeemed"], first.json["earned"], first.json["amount_due"]["value"]) == (20, 2, "80.00")
    assert first.json["card"]["balance"] == 22

    for _ in range(2):  # a double tap; a retry after a lost answer
        again = cashier.post("purchases", payload)
        assert again.status_code == 201 and again.json == first.json
        assert again.headers["Idempotent-Replayed"] == "true"

    [purchase] = purchases_of(db_session, card)
    assert (purchase.receipt_id, purchase.store_id, purchase.amount) == (f"till-{attempt}", shop["store"].id,
                                                                         Decimal("100.00"))
    entries = db_session.scalars(select(LedgerEntry).where(LedgerEntry.purchase_id == purchase.id)
                                 .order_by(LedgerEntry.points)).all()
    user_id = db_session.scalar(select(AuditEvent.user_id).where(AuditEvent.action == "till.purchase"))
    assert [(e.kind, e.points, e.actor) for e in entries] == [("redeem", -20, f"user:{user_id}"),
                                                              ("earn", 2, f"user:{user_id}")]
    assert db_session.get(Card, card.id).balance == 22  # type: ignore[union-attr]
    [event] = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "till.purchase")).all()
    assert event.actor == "cashier@till.test" and event.target == f"card:{card.id}"
    assert event.details == {"store": shop["store"].id, "receipt_id": f"till-{attempt}", "amount": "100.00",
                             "redeemed": 20, "earned": 2}


def test_an_attempt_used_for_another_purchase_is_refused(cashier: Till, shop: dict[str, Any],
                                                          db_session: Session) -> None:
    attempt = str(uuid.uuid4())
    assert cashier.post("purchases", {"card": shop["card"].barcode, "amount": "10.00", "attempt": attempt}
                        ).status_code == 201
    body = problem(cashier.post("purchases", {"card": shop["card"].barcode, "amount": "11.00", "attempt": attempt}),
                   409, "idempotency-key-reused")
    assert body["detail"] == "This attempt was already used for something else; start again."
    assert len(purchases_of(db_session, shop["card"])) == 1


def test_a_refusal_is_replayed_to_a_retry_of_the_same_attempt(cashier: Till, shop: dict[str, Any],
                                                              db_session: Session) -> None:
    payload = {"card": shop["card"].barcode, "amount": "10.00", "redeem_points": 6, "attempt": str(uuid.uuid4())}
    first = problem(cashier.post("purchases", payload), 422, "over-redemption-cap")
    again = cashier.post("purchases", payload)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json(force=True) == first
    assert purchases_of(db_session, shop["card"]) == []


def test_a_till_attempt_never_meets_a_pos_idempotency_key(cashier: Till, shop: dict[str, Any], db_session: Session,
                                                          pos_for: Any, make_store: Any) -> None:
    attempt = str(uuid.uuid4())
    assert cashier.post("purchases", {"card": shop["card"].barcode, "amount": "10.00", "attempt": attempt}
                        ).status_code == 201
    [record] = db_session.scalars(select(IdempotencyRecord)).all()
    assert record.key.startswith("till\x1f") and record.key.endswith(attempt)
    assert not record.key.isprintable()  # a POS key must be printable: the two can never be equal


def test_a_refund_by_receipt(cashier: Till, shop: dict[str, Any], db_session: Session) -> None:
    card = shop["card"]
    bought = cashier.post("purchases", {"card": card.barcode, "amount": "200.00", "attempt": str(uuid.uuid4())})
    receipt = bought.json["receipt_id"]
    assert bought.json["earned"] == 6 and bought.json["card"]["balance"] == 46

    attempt = str(uuid.uuid4())
    refunded = cashier.post("refunds", {"receipt_id": receipt, "amount": "100.00", "attempt": attempt})
    assert refunded.status_code == 201, refunded.text
    assert (refunded.json["points_reversed"], refunded.json["card"]["balance"]) == (3, 43)
    assert cashier.post("refunds", {"receipt_id": receipt, "amount": "100.00", "attempt": attempt}).json == \
        refunded.json
    db_session.expire_all()
    [refund] = db_session.scalars(select(Refund)).all()
    assert (refund.refund_id, refund.amount) == (f"till-{attempt}", Decimal("100.00"))
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "till.refund")).one()
    assert event.details["receipt_id"] == receipt and event.actor == "cashier@till.test"

    body = problem(cashier.post("refunds", {"receipt_id": receipt, "amount": "100.01", "attempt": str(uuid.uuid4())}),
                   422, "refund-exceeds-purchase")
    assert body["detail"] == "This refund is more than what is left of the purchase."
    body = problem(cashier.post("refunds", {"receipt_id": "till-nothing", "amount": "1.00",
                                            "attempt": str(uuid.uuid4())}), 404, "receipt-not-found")
    assert body["detail"] == "No purchase with this receipt at this store."
    assert db_session.scalar(select(func.count()).select_from(Refund)) == 1


def test_a_stamp_card_gets_its_stamp(client: FlaskClient, db_session: Session, make_program: Any,
                                     make_store: Any, make_card: Any) -> None:
    program = make_program(kind="stamps", stamps_required=3, stamp_min_amount=Decimal("5.00"),
                           stamp_reward="A free coffee", tiers=[])
    store = make_store(program).store
    card = make_card(program)
    card.stamps = 2
    db_session.commit()
    sign_in(client, db_session, "cashier", [store])
    till = Till(client, store.id, page_token(client, "/till/"))
    found = till.post("lookup", {"card": card.barcode}).json
    assert (found["kind"], found["stamps"], found["stamps_required"]) == ("stamps", 2, 3)
    problem(till.post("quote", {"card": card.barcode, "amount": "6.00", "redeem_points": 1}), 422,
            "redemption-not-allowed")
    quote = till.post("quote", {"card": card.barcode, "amount": "6.00"}).json
    assert (quote["card"]["stamps"], quote["rewards"]) == (0, 1)
    done = till.post("purchases", {"card": card.barcode, "amount": "6.00", "attempt": str(uuid.uuid4())})
    assert done.status_code == 201, done.text
    assert done.json["card"]["stamps"] == 0 and done.json["rewards"][0]["name"] == "A free coffee"


# ---------------------------------------------------------------- the installable app


def test_the_manifest_names_the_app_and_its_icons(client: FlaskClient) -> None:
    response = client.get("/till/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/till/", "/till/", "standalone")
    sizes = {}
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as served:
            image = Image.open(io.BytesIO(served.data))
        assert image.format == "PNG" and f"{image.width}x{image.height}" == icon["sizes"]
        sizes.setdefault(icon["purpose"], set()).add(image.width)
    assert sizes == {"any": {192, 512}, "maskable": {512}}


def test_the_service_worker_and_offline_page_are_served(client: FlaskClient) -> None:
    with client.get("/till/sw.js") as worker:
        assert worker.status_code == 200 and "javascript" in worker.mimetype
        assert "/till/offline" in worker.text and "/till/api/" in worker.text
    page = client.get("/till/offline", headers={"Accept-Language": "ru"})
    assert page.status_code == 200 and 'lang="ru"' in page.text


def test_a_phone_that_is_not_one_is_named(cashier: Till, db_session: Session) -> None:
    body = problem(cashier.post("lookup", {"phone": "12"}), 422, "validation-error")
    assert body["errors"] == [{"field": "phone", "message": "Enter a valid phone number."}]
    assert db_session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "till.lookup")) == 0


def test_a_local_phone_is_read_in_the_region_of_the_stores_programme(cashier: Till, shop: dict[str, Any],
                                                                      db_session: Session) -> None:
    assert problem(cashier.post("lookup", {"phone": "069 555 111"}), 422, "validation-error")["errors"][0][
        "field"] == "phone"  # no region anywhere: a local number cannot be read
    shop["program"].phone_region = "MD"
    db_session.commit()
    assert cashier.post("lookup", {"phone": "069 555 111"}).json["card"] == shop["card"].barcode


def test_closed_stores_serve_no_more_and_take_no_cashier(client: FlaskClient, db_session: Session,
                                                         shop: dict[str, Any]) -> None:
    sign_in(client, db_session, "admin", [])
    token = page_token(client, f"/till/?store={shop['store'].id}")
    close_store(db_session, store=shop["other"], now=utcnow(), actor="test")
    db_session.commit()
    page = client.get("/till/")
    assert "Centru" in page.text and "Botanica" not in page.text
    refused = client.post("/till/api/lookup", json={"store": shop["other"].id, "card": shop["card"].barcode},
                          headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert problem(refused, 422, "store-not-allowed")["errors"] == [{"field": "store",
                                                                      "message": "You do not serve at this store."}]
    with pytest.raises(InvalidInput) as refusal:
        create_user(db_session, email="late@till.test", password=PASSWORD, role="cashier",
                    store_ids=[shop["other"].id])
    assert refusal.value.errors[0].message == "Botanica is closed: a cashier works at open stores"
