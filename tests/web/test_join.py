"""The public sign-up page: a valid form gives a card, every invalid field gets its message beside it and
nothing typed is lost, a known phone must prove itself with a texted code, consent is recorded, CSRF and
the per-address limit hold, and the page speaks English, Russian and Romanian."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Card, ChannelMessage, Consent, Customer, PhoneCheck


@pytest.fixture
def program(make_program: Callable[..., Any]) -> Any:
    return make_program(name="Cafea & Co.", welcome_bonus=50)


def csrf(client: FlaskClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def sign_up(client: FlaskClient, program: Any, **fields: str) -> Any:
    url = f"/join/{program.slug}"
    data = {"csrf_token": csrf(client, url), "name": "Ana Popescu", "phone": "+373 69 123 456", **fields}
    return client.post(url, data=data)


def test_a_valid_sign_up_gives_a_card_and_opens_it(client: FlaskClient, program: Any, db_session: Session) -> None:
    response = sign_up(client, program, email="Ana@Example.com", birthday="1990-05-17", consent_sms="yes",
                       consent_wallet="yes")
    assert response.status_code == 303
    card = db_session.scalars(select(Card).join(Customer).where(Customer.phone == "+37369123456")).one()
    assert response.headers["Location"].endswith(f"/c/{card.page_token}")
    assert card.customer.name == "Ana Popescu" and card.customer.email == "ana@example.com"
    assert card.balance == 50  # the welcome bonus
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert ">50<" in page.text.replace(" ", "")


def test_consent_is_recorded_per_channel_with_its_time(client: FlaskClient, program: Any,
                                                       db_session: Session) -> None:
    sign_up(client, program, consent_sms="yes", consent_push="yes")
    customer = db_session.scalars(select(Customer).where(Customer.phone == "+37369123456")).one()
    consents = {c.channel: c for c in db_session.scalars(select(Consent).where(Consent.customer_id == customer.id))}
    assert {channel: c.granted for channel, c in consents.items()} == {
        "sms": True, "email": False, "push": True, "wallet": False}
    assert all(c.source == "signup" and c.changed_at is not None for c in consents.values())


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": ""}, "name", "Please enter your name."),
    ({"name": "x" * 121}, "name", "Please use at most 120 characters."),
    ({"phone": ""}, "phone", "Please enter your mobile number."),
    ({"phone": "12345"}, "phone", "This is not a valid phone number."),
    ({"email": "not-an-address"}, "email", "This is not a valid e-mail address."),
    ({"birthday": "2999-01-01"}, "birthday", "Please enter a real date of birth."),
    ({"referral_code": "NOPE42"}, "referral_code", "This referral code is not valid."),
])
def test_each_invalid_field_gets_its_message_and_nothing_is_lost(
    client: FlaskClient, program: Any, db_session: Session, fields: dict[str, str], field: str, message: str
) -> None:
    response = sign_up(client, program, **{"email": "kept@example.com", "consent_email": "yes", **fields})
    assert response.status_code == 422
    html = response.text
    assert f'id="{field}-error"' in html and message in html
    assert f'id="{field}" ' in html and 'aria-invalid="true"' in html
    if field != "email":
        assert 'value="kept@example.com"' in html  # what was typed is still there
    assert 'id="consent_email" name="consent_email" value="yes" checked' in html
    assert db_session.scalar(select(Card.id)) is None


def test_a_known_phone_must_prove_itself_with_a_texted_code(client: FlaskClient, program: Any,
                                                            db_session: Session) -> None:
    first = sign_up(client, program)
    card_url = first.headers["Location"]
    again = sign_up(client, program, name="Somebody Else")
    assert again.status_code == 303 and again.headers["Location"].endswith(f"/join/{program.slug}/verify")
    [text] = db_session.scalars(select(ChannelMessage).where(ChannelMessage.channel == "sms")).all()
    assert text.recipient == "+37369123456"
    code = re.search(r"\b(\d{6})\b", text.payload["body"]).group(1)
    token = csrf(client, again.headers["Location"])
    wrong = client.post(again.headers["Location"], data={"csrf_token": token, "code": "000000" if code != "000000"
                                                         else "111111"})
    assert wrong.status_code == 422 and "not right" in wrong.text
    right = client.post(again.headers["Location"], data={"csrf_token": token, "code": code})
    assert right.status_code == 303 and right.headers["Location"] == card_url
    assert db_session.scalars(select(Customer.name)).all() == ["Ana Popescu"]  # nothing was overwritten
    replay = client.post(again.headers["Location"], data={"csrf_token": token, "code": code})
    assert replay.status_code == 422  # a code works once


def test_five_wrong_codes_lock_the_check(client: FlaskClient, program: Any, db_session: Session) -> None:
    sign_up(client, program)
    sign_up(client, program)
    code = re.search(r"\b(\d{6})\b", db_session.scalars(select(ChannelMessage)).all()[-1].payload["body"]).group(1)
    url = f"/join/{program.slug}/verify"
    token = csrf(client, url)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post(url, data={"csrf_token": token, "code": wrong})
    assert client.post(url, data={"csrf_token": token, "code": code}).status_code == 422
    assert db_session.scalar(select(PhoneCheck.attempts)) == 5


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient, program: Any, db_session: Session) -> None:
    response = client.post(f"/join/{program.slug}", data={"name": "A", "phone": "+37369123456"})
    assert response.status_code == 403
    assert db_session.scalar(select(Card.id)) is None


def test_sign_ups_are_limited_per_address(app_with: Callable[..., Flask], program: Any) -> None:
    client = app_with(form_rate_limit="2/minute").test_client()
    statuses = [sign_up(client, program, phone=f"+3736912345{n}").status_code for n in range(3)]
    assert statuses == [303, 303, 429]


def test_behind_a_proxy_each_shopper_has_their_own_limit(app_with: Callable[..., Flask], program: Any) -> None:
    client = app_with(form_rate_limit="1/minute", proxy_hops=1).test_client()
    first = sign_up(client, program, phone="+37369123451")  # csrf() and sign_up share one browser session
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    other = sign_up(client, program, phone="+37369123452")
    again = sign_up(client, program, phone="+37369123453")
    assert (first.status_code, other.status_code, again.status_code) == (303, 303, 429)


@pytest.mark.parametrize(("header", "text"), [
    ("ru-RU,ru;q=0.9", "Получите карту Cafea &amp; Co."),
    ("ro", "Obține cardul Cafea &amp; Co."),
    ("de-DE,de;q=0.9", "Get your Cafea &amp; Co. card"),
])
def test_the_page_speaks_the_browsers_language(client: FlaskClient, program: Any, header: str, text: str) -> None:
    page = client.get(f"/join/{program.slug}", headers={"Accept-Language": header})
    assert text in page.text


def test_the_switcher_wins_and_is_remembered(client: FlaskClient, program: Any) -> None:
    page = client.get(f"/join/{program.slug}?lang=ro", headers={"Accept-Language": "ru"})
    assert "Obține cardul" in page.text and '<html lang="ro">' in page.text
    again = client.get(f"/join/{program.slug}", headers={"Accept-Language": "ru"})
    assert "Obține cardul" in again.text


def test_errors_are_translated(client: FlaskClient, program: Any) -> None:
    url = f"/join/{program.slug}?lang=ru"
    response = client.post(url, data={"csrf_token": csrf(client, url), "name": "", "phone": "+37369123456"})
    assert "Пожалуйста, укажите имя." in response.text


def test_qr_code_and_poster(client: FlaskClient, program: Any) -> None:
    svg = client.get(f"/join/{program.slug}/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.text.lstrip().startswith("<svg")
    poster = client.get(f"/join/{program.slug}/poster")
    assert f"https://tallypass.test/join/{program.slug}" in poster.text
    assert f"/join/{program.slug}/qr.svg" in poster.text


def test_unknown_programme_is_404(client: FlaskClient) -> None:
    assert client.get("/join/no-such-programme").status_code == 404


def test_an_invitation_link_fills_in_the_code_and_the_privacy_policy_is_linked(client: FlaskClient, program: Any,
                                                                              db_session: Session) -> None:
    page = client.get(f"/join/{program.slug}?ref=ab12cd34").text
    assert re.search(r'id="referral_code"[^>]* value="AB12CD34"', page)
    odd = client.get(f"/join/{program.slug}?ref=%22%3E%3Cscript%3E").text  # not a code: not filled in
    assert re.search(r'id="referral_code"[^>]* value=""', odd)
    assert 'id="privacy-policy"' not in page
    program.privacy_policy_url = "https://cafea.example/privacy"
    db_session.flush()
    page = client.get(f"/join/{program.slug}?lang=ro").text
    assert re.search(r'<a id="privacy-policy" href="https://cafea\.example/privacy"[^>]*>Politica de confiden', page)


def test_the_sign_up_page_has_an_icon_and_a_web_app_manifest(client: FlaskClient, program: Any) -> None:
    from io import BytesIO

    from PIL import Image

    def size(path: str) -> tuple[int, int]:
        with client.get(path) as response:  # a static file: closed when read
            assert response.mimetype == "image/png"
            return Image.open(BytesIO(response.data)).size

    page = client.get(f"/join/{program.slug}").text
    assert f'<link rel="manifest" href="/join/{program.slug}/manifest.webmanifest">' in page
    icon = re.search(r'<link rel="icon" href="([^"]+)" sizes="32x32" type="image/png">', page).group(1)
    assert size(icon) == (32, 32)
    manifest = client.get(f"/join/{program.slug}/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    assert manifest.json["start_url"] == f"/join/{program.slug}" and manifest.json["display"] == "standalone"
    for icon in manifest.json["icons"]:
        width, height = (int(n) for n in icon["sizes"].split("x"))
        assert size(icon["src"]) == (width, height)
    assert {icon["sizes"] for icon in manifest.json["icons"]} >= {"192x192", "512x512"}
