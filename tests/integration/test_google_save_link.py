"""The customer's "Save to Google Wallet" link: a save JWT Google accepts (RS256 by the service account,
``aud`` google, ``typ`` savetowallet; ../shared/reference/google_wallet.md §2), never longer than 1800
characters, with the class and object inside until Google has them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.channels.google_wallet import MAX_SAVE_JWT, SAVE_URL_PREFIX, ServiceAccount
from app.db import utcnow
from app.models import GoogleClass, GoogleObject

ISSUER = "3388000000000000000"


@pytest.fixture
def account(apple_certs: Path) -> ServiceAccount:
    return ServiceAccount.from_file(apple_certs / "google-service-account.json")


def follow(client: FlaskClient, card: Any) -> str:
    response = client.get(f"/c/{card.page_token}/google")
    assert response.status_code == 302, response.data
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["Location"]


def decode(url: str, account: ServiceAccount) -> dict[str, Any]:
    assert url.startswith(SAVE_URL_PREFIX)
    token = url.removeprefix(SAVE_URL_PREFIX)
    assert len(token) <= MAX_SAVE_JWT
    assert jwt.get_unverified_header(token)["kid"] == account.private_key_id
    return jwt.decode(token, account.private_key.public_key(), algorithms=["RS256"], audience="google")


def test_link_carries_class_and_object_until_google_has_them(client: FlaskClient, account: ServiceAccount,
                                                              make_program: Callable[..., Any],
                                                              make_card: Callable[..., Any]) -> None:
    card = make_card(make_program(name="Cafea & Co."), balance=77, name="Ana Popescu")
    claims = decode(follow(client, card), account)
    assert claims["iss"] == account.client_email
    assert claims["typ"] == "savetowallet"
    assert claims["origins"] == ["https://tallypass.test"]
    assert isinstance(claims["iat"], int) and "exp" not in claims
    [google_class] = claims["payload"]["loyaltyClasses"]
    [google_object] = claims["payload"]["loyaltyObjects"]
    assert google_class["id"] == f"{ISSUER}.{card.program.slug}"
    assert google_class["reviewStatus"] == "UNDER_REVIEW"
    assert google_class["programLogo"]["sourceUri"]["uri"] == "https://tallypass.test/media/program-logo.png"
    assert google_object["id"] == f"{ISSUER}.{card.serial}"
    assert google_object["classId"] == google_class["id"]
    assert google_object["loyaltyPoints"] == {"label": "Points", "balance": {"int": 77}}
    assert google_object["barcode"] == {"type": "QR_CODE", "value": card.barcode, "alternateText": card.barcode}
    assert google_object["accountName"] == "Ana Popescu"
    assert google_object["state"] == "ACTIVE"


def test_link_is_id_only_once_google_has_the_object(client: FlaskClient, account: ServiceAccount,
                                                    make_program: Callable[..., Any], make_card: Callable[..., Any],
                                                    db_session: Session) -> None:
    card = make_card(make_program())
    db_session.add(GoogleClass(program_id=card.program_id, class_id=f"{ISSUER}.{card.program.slug}",
                               inserted_at=utcnow()))
    db_session.add(GoogleObject(card_id=card.id, object_id=f"{ISSUER}.{card.serial}", synced_version=card.version,
                                inserted_at=utcnow(), notifications=[]))
    db_session.flush()
    claims = decode(follow(client, card), account)
    assert claims["payload"] == {"loyaltyObjects": [{"id": f"{ISSUER}.{card.serial}",
                                                     "classId": f"{ISSUER}.{card.program.slug}"}]}


def test_link_carries_the_object_alone_when_google_has_the_class(
    client: FlaskClient, account: ServiceAccount, make_program: Callable[..., Any], make_card: Callable[..., Any],
    db_session: Session
) -> None:
    card = make_card(make_program(), balance=5)
    db_session.add(GoogleClass(program_id=card.program_id, class_id=f"{ISSUER}.{card.program.slug}",
                               inserted_at=utcnow()))
    db_session.flush()
    payload = decode(follow(client, card), account)["payload"]
    assert set(payload) == {"loyaltyObjects"}
    assert payload["loyaltyObjects"][0]["loyaltyPoints"]["balance"] == {"int": 5}


def test_link_stays_under_the_limit_with_long_names_and_many_stores(
    client: FlaskClient, account: ServiceAccount, make_program: Callable[..., Any], make_store: Callable[..., Any],
    make_card: Callable[..., Any]
) -> None:
    program = make_program(name="Ș" * 120, logo_text="Î" * 60, terms="T" * 5000)
    for n in range(30):
        make_store(program, f"Magazinul numărul {n} din strada foarte lungă", latitude=47 + n / 100, longitude=28.8)
    card = make_card(program, balance=9_999_999, name="Ă" * 120)
    url = follow(client, card)
    claims = decode(url, account)  # checks the 1800-character limit
    assert claims["payload"]["loyaltyClasses"][0]["programName"].startswith("Ș" * 20)  # the class keeps it whole
    assert claims["payload"]["loyaltyObjects"][0]["loyaltyPoints"]["balance"] == {"int": 9_999_999}


def test_no_service_account_is_a_503(app_with: Callable[..., Flask], make_program: Callable[..., Any],
                                     make_card: Callable[..., Any]) -> None:
    card = make_card(make_program())
    response = app_with(google_service_account=None).test_client().get(f"/c/{card.page_token}/google")
    assert response.status_code == 503
    assert "Google Wallet is not set up" in response.text


def test_the_logo_google_fetches_is_served(client: FlaskClient) -> None:
    response = client.get("/media/program-logo.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")
