"""The stores pages: the list, creating and editing a store with errors beside the fields, POS keys (the
secret shown once; rotate with an overlap; revoke), and the integration guide's curl commands, run for real
with bash and openssl and sent to the POS API."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, PosCredential, Store
from tests.conftest import PosCredentials
from tests.web.dashboard_client import csrf, sign_in_as


@pytest.fixture
def program(make_program: Callable[..., Any]) -> Any:
    return make_program(welcome_bonus=0, timezone="Europe/Chisinau")


@pytest.fixture
def creds(program: Any, make_store: Callable[..., PosCredentials], db_session: Session) -> PosCredentials:
    made = make_store(program, name="Centru", address="str. Pușkin 1", latitude=47.0105, longitude=28.8638)
    db_session.commit()
    return made


def _actions(db_session: Session) -> list[str]:
    db_session.expire_all()
    return [e.action for e in db_session.scalars(select(AuditEvent).order_by(AuditEvent.id)) if e.action != "login"]


def _secret_on(page: str) -> str:
    match = re.search(r'id="new-secret">([^<]+)<', page)
    assert match, page
    return html.unescape(match.group(1))


def test_the_list_shows_each_store_with_its_coordinates_and_live_keys(client: FlaskClient, db_session: Session,
                                                                      program: Any, creds: PosCredentials,
                                                                      make_program: Callable[..., Any]) -> None:
    make_program(name="Another", slug="another")
    sign_in_as(client, db_session, "viewer")
    page = client.get(f"/dashboard/stores?program={program.slug}")
    assert page.status_code == 200
    assert "Centru" in page.text and "47.01050, 28.86380" in page.text and "Europe/Chisinau" in page.text
    assert f'data-live-keys="{creds.store.id}">1<' in page.text
    assert "Add a store" not in page.text  # viewers look; admins change
    other = client.get("/dashboard/stores?program=another")
    assert "Centru" not in other.text and "No stores yet" in other.text


def test_an_admin_adds_a_store_and_mistakes_are_shown_beside_the_fields(client: FlaskClient, db_session: Session,
                                                                         program: Any) -> None:
    _, token = sign_in_as(client, db_session, "admin")
    form = client.get(f"/dashboard/stores/new?program={program.slug}")
    assert form.status_code == 200 and 'value="Europe/Chisinau"' in form.text  # the programme's zone by default
    bad = client.post(f"/dashboard/stores/new?program={program.slug}", data={
        "csrf_token": token, "name": "Botanica", "address": "bd. Dacia 5", "latitude": "95", "longitude": "",
        "timezone": "Europe/Chisinaux"})
    assert bad.status_code == 422
    assert 'id="latitude-error">Latitude is between -90 and 90.' in bad.text
    assert 'id="longitude-error">Give both latitude and longitude, or neither.' in bad.text
    assert 'id="timezone-error">Choose an IANA time zone' in bad.text
    assert 'value="Botanica"' in bad.text and 'value="bd. Dacia 5"' in bad.text and 'value="95"' in bad.text
    words = client.post(f"/dashboard/stores/new?program={program.slug}", data={
        "csrf_token": token, "name": "", "latitude": "north", "longitude": "28.8", "timezone": "UTC"})
    assert words.status_code == 422 and 'id="latitude-error">Enter a number in decimal degrees' in words.text
    assert 'id="name-error"' in words.text
    assert db_session.scalars(select(Store)).first() is None

    good = client.post(f"/dashboard/stores/new?program={program.slug}", data={
        "csrf_token": token, "name": "Botanica", "address": "bd. Dacia 5", "latitude": "46,9897",
        "longitude": "28.8577", "timezone": "Europe/Chisinau"})
    assert good.status_code == 303
    store = db_session.scalars(select(Store)).one()
    assert (store.latitude, store.longitude, store.program_id) == (46.9897, 28.8577, program.id)
    assert good.headers["Location"] == f"/dashboard/stores/{store.id}"
    shown = client.get(good.headers["Location"])
    assert "Botanica" in shown.text and "no POS key yet" in shown.text
    assert _actions(db_session) == ["store-created"]


def test_an_admin_edits_a_store_and_the_change_is_audited(client: FlaskClient, db_session: Session,
                                                          creds: PosCredentials) -> None:
    _, token = sign_in_as(client, db_session, "admin")
    url = f"/dashboard/stores/{creds.store.id}/edit"
    assert 'value="47.0105"' in client.get(url).text
    bad = client.post(url, data={"csrf_token": token, "name": "Centru 2", "latitude": "47", "longitude": "200",
                                 "timezone": "UTC"})
    assert bad.status_code == 422 and 'id="longitude-error">Longitude is between -180 and 180.' in bad.text
    assert 'value="Centru 2"' in bad.text
    done = client.post(url, data={"csrf_token": token, "name": "Centru 2", "address": "", "latitude": "",
                                  "longitude": "", "timezone": "Europe/Chisinau"})
    assert done.status_code == 303
    db_session.expire_all()
    store = db_session.get(Store, creds.store.id)
    assert (store.name, store.latitude, store.address) == ("Centru 2", None, "")
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "store-updated")).one()
    assert event.actor == "admin@shop.test" and event.details["name"] == ["Centru", "Centru 2"]


def test_a_viewer_and_a_marketer_may_not_touch_keys(client: FlaskClient, db_session: Session,
                                                    creds: PosCredentials) -> None:
    for role in ("viewer", "marketer"):
        other = client.application.test_client()
        _, token = sign_in_as(other, db_session, role)
        page = other.get(f"/dashboard/stores/{creds.store.id}")
        assert page.status_code == 200 and creds.key_id in page.text and "Create a new key" not in page.text
        assert other.post(f"/dashboard/stores/{creds.store.id}/keys", data={"csrf_token": token}).status_code == 403
    assert len(db_session.scalars(select(PosCredential)).all()) == 1


def test_a_new_key_secret_is_shown_once_and_works_at_the_pos_api(client: FlaskClient, db_session: Session,
                                                                 program: Any, creds: PosCredentials,
                                                                 make_card: Callable[..., Any],
                                                                 pos_for: Callable[..., Any]) -> None:
    card = make_card(program)
    db_session.commit()
    _, token = sign_in_as(client, db_session, "admin")
    created = client.post(f"/dashboard/stores/{creds.store.id}/keys", data={"csrf_token": token})
    assert created.status_code == 201
    secret = _secret_on(created.text)
    key_id = re.search(r'id="new-key-id">([^<]+)<', created.text).group(1)
    assert secret.startswith("sk_") and "only time the secret is shown" in created.text
    again = client.get(f"/dashboard/stores/{creds.store.id}")
    assert secret not in again.text and key_id in again.text
    stored = db_session.scalars(select(PosCredential).where(PosCredential.key_id == key_id)).one()
    assert secret.encode() not in stored.secret_encrypted
    assert pos_for(PosCredentials(creds.store, key_id, secret)).get(f"/cards/{card.barcode}").status_code == 200
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "pos-key-created")).one()
    assert event.details == {"key_id": key_id} and event.actor == "admin@shop.test"


def test_rotating_keeps_the_old_key_for_the_chosen_overlap_and_revoking_stops_it(
        client: FlaskClient, db_session: Session, program: Any, creds: PosCredentials, make_card: Callable[..., Any],
        pos_for: Callable[..., Any], app_with: Callable[..., Any]) -> None:
    card = make_card(program)
    db_session.commit()
    _, token = sign_in_as(client, db_session, "admin")
    old = db_session.scalars(select(PosCredential)).one()
    base = f"/dashboard/stores/{creds.store.id}/keys/{old.id}"
    bad = client.post(f"{base}/rotate", data={"csrf_token": token, "overlap_hours": "5000"})
    assert bad.status_code == 422 and 'id="overlap-error"' in bad.text
    rotated = client.post(f"{base}/rotate", data={"csrf_token": token, "overlap_hours": "168"})
    assert rotated.status_code == 201
    assert "Key rotated" in rotated.text
    assert f"The old key <code>{creds.key_id}</code> keeps working until" in rotated.text
    new_key = re.search(r'id="new-key-id">([^<]+)<', rotated.text).group(1)
    new = PosCredentials(creds.store, new_key, _secret_on(rotated.text))
    db_session.expire_all()
    old = db_session.get(PosCredential, old.id)
    assert old.revoked_at is not None and (old.revoked_at - old.created_at).days >= 6
    page = client.get(f"/dashboard/stores/{creds.store.id}")
    assert "works until" in page.text
    assert pos_for(creds).get(f"/cards/{card.barcode}").status_code == 200  # during the overlap
    assert pos_for(new).get(f"/cards/{card.barcode}").status_code == 200

    new_row = db_session.scalars(select(PosCredential).where(PosCredential.key_id == new_key)).one()
    revoked = client.post(f"/dashboard/stores/{creds.store.id}/keys/{new_row.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert f"POS key {new_key} revoked" in client.get(revoked.headers["Location"]).text
    fresh = app_with().test_client()  # another web process: the key is not in its few-second cache
    response = fresh.get(f"/api/v1/pos/cards/{card.barcode}", headers=pos_for(new).headers(b""))
    assert response.status_code == 401
    assert _actions(db_session) == ["pos-key-rotated", "pos-key-revoked"]
    rotate_again = client.post(f"/dashboard/stores/{creds.store.id}/keys/{new_row.id}/rotate",
                               data={"csrf_token": token, "overlap_hours": "24"})
    assert rotate_again.status_code == 303
    assert "already revoked" in client.get(rotate_again.headers["Location"]).text


def _guide_blocks(page: str) -> dict[str, str]:
    return {name: html.unescape(text) for name, text in
            re.findall(r'<pre class="copy" id="guide-(\w+)">(.*?)</pre>', page, flags=re.S)}


CAPTURE = 'curl() { printf "CURL\\0"; for a in "$@"; do printf "%s\\0" "$a"; done; }\n'


def _run(script: str, secret: str) -> list[str]:
    """Run the guide's commands with bash and openssl; ``curl`` records its arguments instead of sending."""
    done = subprocess.run(["bash", "-c", CAPTURE + script], input=secret + "\n", capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, timeout=30, check=True)
    return done.stdout.split("CURL\0", 1)[1].split("\0")[:-1]


def _send(client: FlaskClient, args: list[str], base_url: str) -> Any:
    method, headers, body, url = "GET", {}, None, None
    pairs = iter(args[1:] if args[0] == "-sS" else args)
    for arg in pairs:
        if arg == "-X":
            method = next(pairs)
        elif arg == "-H":
            name, _, value = next(pairs).partition(": ")
            headers[name] = value
        elif arg == "--data-raw":
            body = next(pairs)
        else:
            url = arg
    assert url and url.startswith(base_url), args
    return client.open(url.removeprefix(base_url), method=method, headers=headers,
                       data=body.encode() if body is not None else None)


@pytest.mark.skipif(not (shutil.which("bash") and shutil.which("openssl")), reason="needs bash and openssl")
def test_the_guides_curl_commands_sign_requests_the_pos_api_accepts(
        client: FlaskClient, db_session: Session, program: Any, creds: PosCredentials, make_card: Callable[..., Any],
        app: Any) -> None:
    card = make_card(program, balance=0)
    db_session.commit()
    sign_in_as(client, db_session, "viewer")
    page = client.get(f"/dashboard/stores/{creds.store.id}")
    blocks = _guide_blocks(page.text)
    assert set(blocks) == {"setup", "purchase", "lookup"}
    assert f"KEY_ID='{creds.key_id}'" in blocks["setup"] and creds.secret not in page.text
    base_url = app.config["TALLYPASS"].base_url
    pos = app.test_client()

    # As a developer would: paste the setup, then the purchase with a real card number.
    purchase = blocks["purchase"].replace("1234567890128", card.barcode).replace('"12.50"', '"200.00"')
    answer = _send(pos, _run(blocks["setup"] + purchase, creds.secret), base_url)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.json["card"]["barcode"] == card.barcode and answer.json["earned"] == 6  # Bronze: 3 %

    lookup = blocks["lookup"].replace("1234567890128", card.barcode)
    found = _send(pos, _run(blocks["setup"] + lookup, creds.secret), base_url)
    assert found.status_code == 200 and found.json["balance"] == answer.json["card"]["balance"]

    wrong = _send(app.test_client(), _run(blocks["setup"] + lookup, "sk_not-the-secret"), base_url)
    assert wrong.status_code == 401  # the signature really depends on the secret


def test_csrf_is_required_to_create_a_key(client: FlaskClient, db_session: Session, creds: PosCredentials) -> None:
    sign_in_as(client, db_session, "admin")
    assert client.post(f"/dashboard/stores/{creds.store.id}/keys", data={"csrf_token": "forged"}).status_code == 403
    assert client.post(f"/dashboard/stores/{creds.store.id}/keys",
                       data={"csrf_token": csrf(client, "/dashboard/")}).status_code == 201
