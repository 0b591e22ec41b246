"""The ``.pkpass`` a customer downloads: Apple's package rules (../shared/reference/apple_wallet.md §1, §6.2),
a signature that verifies with ``openssl cms`` over the manifest, and content taken from the card."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.channels import dev_credentials as dc
from app.channels.apple_pass import DESIGN_DIR, MIME_TYPE, PassCache, PassDesign, parse_strings
from app.channels.registry import EXTENSION as CHANNELS
from app.loyalty import ledger

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
REQUIRED_KEYS = {"formatVersion", "passTypeIdentifier", "serialNumber", "teamIdentifier", "organizationName",
                 "description"}
BARCODE_FORMATS = {"PKBarcodeFormatQR", "PKBarcodeFormatPDF417", "PKBarcodeFormatAztec", "PKBarcodeFormatCode128"}


def download(client: FlaskClient, card: Any) -> Any:
    return client.get(f"/c/{card.page_token}/apple.pkpass")


def unpack(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def fields(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for group in document["storeCard"].values() for f in group}


def openssl_verify(tmp_path: Path, certs: Path, signature: bytes, manifest: bytes) -> subprocess.CompletedProcess[str]:
    (tmp_path / "signature").write_bytes(signature)
    (tmp_path / "manifest.json").write_bytes(manifest)
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "signature", "-content", "manifest.json",
         "-CAfile", str(certs / dc.ROOT_CA), "-purpose", "any", "-out", "/dev/null"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )


@pytest.fixture
def shop(make_program: Callable[..., Any], make_store: Callable[..., Any], make_card: Callable[..., Any],
         db_session: Session) -> dict[str, Any]:
    program = make_program(name="Café Lumière", terms="Points last a year.", background_color="#0F766E")
    home = make_store(program, "Centru", latitude=47.0245, longitude=28.8323, address="Str. Ștefan cel Mare 1").store
    for i in range(12):  # more stores than a pass may carry, spread ever further from home
        make_store(program, f"Far {i}", latitude=47.0245 + 0.05 * (i + 1), longitude=28.8323)
    make_store(program, "No coordinates")
    card = make_card(program, balance=120, name="Ana Popescu")
    card.customer.home_store_id = home.id
    card.customer.locale = "ro"
    db_session.flush()
    return {"program": program, "card": card, "home": home}


@needs_openssl
def test_the_pass_is_a_valid_signed_package(client: FlaskClient, shop: dict[str, Any], apple_certs: Path,
                                            tmp_path: Path) -> None:
    response = download(client, shop["card"])
    assert response.status_code == 200
    assert response.mimetype == MIME_TYPE
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Last-Modified"]
    files = unpack(response.data)
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None  # every CRC checks out
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    if shutil.which("unzip"):
        (tmp_path / "card.pkpass").write_bytes(response.data)
        listing = subprocess.run(["unzip", "-t", "card.pkpass"], cwd=tmp_path, capture_output=True, text=True)
        assert listing.returncode == 0, listing.stdout + listing.stderr

    assert all("/" not in name or name.split("/")[0].endswith(".lproj") for name in files)
    assert {"icon.png", "icon@2x.png", "icon@3x.png", "pass.json", "manifest.json", "signature"} <= set(files)
    assert {"en.lproj/pass.strings", "ru.lproj/pass.strings", "ro.lproj/pass.strings"} <= set(files)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name  # noqa: S324

    assert openssl_verify(tmp_path, apple_certs, files["signature"], files["manifest.json"]).returncode == 0
    tampered = files["manifest.json"].replace(b'"pass.json":"', b'"pass.json":"0')
    assert openssl_verify(tmp_path, apple_certs, files["signature"], tampered).returncode != 0


def test_pass_json_follows_apples_rules(client: FlaskClient, shop: dict[str, Any], apple_certs: Path) -> None:
    document = json.loads(unpack(download(client, shop["card"]).data)["pass.json"])
    card = shop["card"]
    assert set(document) >= REQUIRED_KEYS
    assert document["formatVersion"] == 1
    assert "storeCard" in document
    cert = x509.load_pem_x509_certificate((apple_certs / dc.PASS_CERT).read_bytes())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert cn == f"Pass Type ID: {document['passTypeIdentifier']}"
    assert ou == document["teamIdentifier"]
    assert document["serialNumber"] == card.serial
    assert document["webServiceURL"] == "https://tallypass.test/passkit"
    assert document["authenticationToken"] == card.apple_auth_token
    assert len(document["authenticationToken"]) >= 16
    assert document["backgroundColor"] == "rgb(15, 118, 110)"
    assert document["organizationName"] == "Café Lumière"

    keys = [f["key"] for group in document["storeCard"].values() for f in group]
    assert len(keys) == len(set(keys))
    [barcode] = document["barcodes"]
    assert barcode["format"] in BARCODE_FORMATS and barcode["format"] == "PKBarcodeFormatQR"
    assert barcode["message"] == barcode["altText"] == card.barcode
    assert "barcode" not in document  # the deprecated singular key


def test_pass_shows_the_card(client: FlaskClient, shop: dict[str, Any], db_session: Session) -> None:
    card = shop["card"]
    card.offer_text = "Double points on Fridays"
    db_session.flush()
    files = unpack(download(client, card).data)
    document = json.loads(files["pass.json"])
    by_key = fields(document)
    header = document["storeCard"]["headerFields"]
    assert [f["key"] for f in header] == ["balance"]
    assert by_key["balance"]["value"] == 120
    # pass.json reads as English as it stands; Wallet looks its texts up in the phone's language.
    assert by_key["balance"]["label"] == "Points"
    assert by_key["balance"]["changeMessage"] == "Your balance is now %@ points"
    russian = parse_strings(files["ru.lproj/pass.strings"].decode("utf-16"))
    assert russian["Points"] == "Баллы"
    assert russian["Your balance is now %@ points"].count("%@") == 1
    assert by_key["member"]["value"] == "Ana Popescu"
    assert by_key["tier"]["value"] == "Bronze"
    assert by_key["offer"] == {"key": "offer", "label": "Offer", "changeMessage": "%@",
                               "value": "Double points on Fridays"}
    assert by_key["terms"]["value"] == "Points last a year."
    assert by_key["offer"] in document["storeCard"]["backFields"]
    assert by_key["terms"] in document["storeCard"]["backFields"]
    assert by_key["card_page"]["value"] == f"https://tallypass.test/c/{card.page_token}"


def test_locations_are_the_ten_stores_nearest_home(client: FlaskClient, shop: dict[str, Any]) -> None:
    document = json.loads(unpack(download(client, shop["card"]).data)["pass.json"])
    locations = document["locations"]
    assert len(locations) == 10
    assert locations[0]["latitude"] == pytest.approx(47.0245)  # home first
    latitudes = [loc["latitude"] for loc in locations]
    assert latitudes == sorted(latitudes)  # then ever further away; the two farthest are left out
    assert max(latitudes) == pytest.approx(47.0245 + 0.05 * 9)
    assert locations[0]["relevantText"].startswith("Centru")
    assert "cardul" in locations[0]["relevantText"]  # the customer reads Romanian


def test_stamp_cards_show_stamps(client: FlaskClient, make_program: Callable[..., Any],
                                 make_card: Callable[..., Any]) -> None:
    program = make_program(kind="stamps", stamps_required=8, stamp_reward="A free coffee")
    card = make_card(program)
    balance = fields(json.loads(unpack(download(client, card).data)["pass.json"]))["balance"]
    assert balance["value"] == "0 / 8"
    assert balance["label"] == "Stamps" and balance["changeMessage"] == "You now have %@ stamps"


def test_same_version_same_bytes_new_version_new_balance(client: FlaskClient, app: Flask, shop: dict[str, Any],
                                                          db_session: Session) -> None:
    card = shop["card"]
    first = download(client, card).data
    assert download(client, card).data == first  # signed once; the second download is the cached package
    ledger.grant_bonus(db_session, card=card, points=30, reason="review")
    db_session.flush()
    second = unpack(download(client, card).data)
    assert fields(json.loads(second["pass.json"]))["balance"]["value"] == 150
    assert app.extensions[CHANNELS].apple().passes.cache.builds == 2


def test_a_changed_design_is_not_served_from_the_cache(client: FlaskClient, shop: dict[str, Any],
                                                       db_session: Session) -> None:
    first = download(client, shop["card"]).data
    shop["program"].terms = "New terms."
    db_session.flush()
    document = json.loads(unpack(download(client, shop["card"]).data)["pass.json"])
    assert fields(document)["terms"]["value"] == "New terms."
    assert download(client, shop["card"]).data != first


def test_unknown_link_is_404(client: FlaskClient) -> None:
    response = client.get("/c/not-a-token/apple.pkpass")
    assert response.status_code == 404


def test_no_apple_credentials_is_a_clear_503(app_with: Callable[..., Flask], shop: dict[str, Any]) -> None:
    bare = app_with(apple_pass_cert=None, apple_pass_key=None)
    page = download(bare.test_client(), shop["card"])  # a phone's browser gets a page saying so
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert "Apple Wallet passes are not set up on this server" in page.text
    api = bare.test_client().get(f"/c/{shop['card'].page_token}/apple.pkpass", headers={"Accept": "application/json"})
    assert api.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert "Apple Wallet" in api.json["detail"]


def test_a_certificate_for_another_pass_type_is_refused(app_with: Callable[..., Flask], shop: dict[str, Any],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    wrong = app_with(apple_pass_type_id="pass.com.other.brand")
    response = download(wrong.test_client(), shop["card"])
    assert response.status_code == 503
    assert "pass.com.other.brand" not in response.text  # details go to the log, not the public
    assert any("pass.com.other.brand" in r.getMessage() for r in caplog.records)


def test_cache_keeps_one_build_per_key_and_drops_old_versions() -> None:
    cache = PassCache(max_entries=3)
    built: list[tuple[str, int, str]] = []

    def builder(key: tuple[str, int, str]) -> Callable[[], bytes]:
        return lambda: built.append(key) or repr(key).encode()

    for key in [("a", 1, "x"), ("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z"), ("c", 1, "w"), ("d", 1, "v")]:
        assert cache.get_or_build(key, builder(key)) == repr(key).encode()
    assert built == [("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z"), ("c", 1, "w"), ("d", 1, "v")]
    assert ("a", 1, "x") not in cache._items  # superseded by version 2
    assert len(cache._items) == 3  # the least recently used went when the fourth arrived


def test_design_strings_are_packed_as_utf16_keyed_by_the_english_text() -> None:
    design = PassDesign.load()
    for language in ("en", "ru", "ro"):
        data = design.files[f"{language}.lproj/pass.strings"]
        assert data.startswith(b"\xff\xfe")
        strings = parse_strings(data.decode("utf-16"))
        assert set(strings) == set(design.english.values())
    assert parse_strings(design.files["ro.lproj/pass.strings"].decode("utf-16"))["Points"] == "Puncte"
    texts = {field.get(attribute) for group in design.template["storeCard"].values() for field in group
             for attribute in ("label", "changeMessage")}
    assert texts - {None, "%@"} <= set(design.english.values())  # no symbolic key left in pass.json


def test_an_incomplete_translation_is_refused_at_start(tmp_path: Path) -> None:
    shutil.copytree(DESIGN_DIR, tmp_path / "design")
    ro = tmp_path / "design" / "ro.lproj" / "pass.strings"
    ro.write_text("\n".join(line for line in ro.read_text("utf-8").splitlines() if "tier_label" not in line), "utf-8")
    with pytest.raises(ValueError, match="tier_label"):
        PassDesign.load(tmp_path / "design")

