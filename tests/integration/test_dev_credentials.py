"""`dev-certs`: stand-in Apple/Google/VAPID credentials (CONTRACTS.md §1)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
import subprocess
import time
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.channels.dev_credentials import (
    APNS_AUTH_KEY,
    FILE_NAMES,
    GOOGLE_SERVICE_ACCOUNT,
    PASS_CERT,
    PASS_KEY,
    ROOT_CA,
    VAPID_PRIVATE_KEY,
    WWDR_CERT,
    load_certificate,
    load_private_key,
    write_dev_credentials,
)

PASS_TYPE_ID = "pass.com.example.tallypass-test"
TEAM_ID = "ABCDE12345"
CLIENT_EMAIL = "wallet-test@tallypass-test.iam.gserviceaccount.com"
CONTRACT_FILES = {
    "root-ca.pem",
    "wwdr.pem",
    "pass-cert.pem",
    "pass-key.pem",
    "apns-auth-key.p8",
    "google-service-account.json",
    "vapid-private.pem",
}
GOOGLE_KEYS = {
    "type",
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
    "universe_domain",
}


def _write(out: Path) -> dict[str, bool]:
    return write_dev_credentials(out, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, google_client_email=CLIENT_EMAIL)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _one(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    (attr,) = name.get_attributes_for_oid(oid)
    return attr.value


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated directory shared by the read-only checks (RSA key generation is not free)."""
    out = tmp_path_factory.mktemp("certs")
    _write(out)
    return out


def test_first_call_creates_every_file(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "certs"  # created when missing
    result = _write(out)
    assert result == {str(out / name): True for name in FILE_NAMES}
    assert {p.name for p in out.iterdir()} >= CONTRACT_FILES
    assert all((out / name).stat().st_size > 0 for name in FILE_NAMES)


def test_second_call_keeps_everything(tmp_path: Path) -> None:
    _write(tmp_path)
    before = _snapshot(tmp_path)
    result = write_dev_credentials(tmp_path, pass_type_id="pass.other.id", team_id="OTHER00000")
    assert result == {str(tmp_path / name): False for name in FILE_NAMES}
    assert _snapshot(tmp_path) == before


def test_missing_pass_cert_and_key_are_reissued_by_existing_wwdr(tmp_path: Path) -> None:
    _write(tmp_path)
    before = _snapshot(tmp_path)
    (tmp_path / PASS_CERT).unlink()
    (tmp_path / PASS_KEY).unlink()

    result = _write(tmp_path)

    assert {Path(p).name for p, created in result.items() if created} == {PASS_CERT, PASS_KEY}
    after = _snapshot(tmp_path)
    assert {name for name in after if after[name] != before[name]} == {PASS_CERT, PASS_KEY}
    new_cert = load_certificate(tmp_path / PASS_CERT)
    new_cert.verify_directly_issued_by(load_certificate(tmp_path / WWDR_CERT))
    assert _spki(new_cert.public_key()) == _spki(load_private_key(tmp_path / PASS_KEY).public_key())


def test_chain_pass_wwdr_root_verifies(certs: Path) -> None:
    root = load_certificate(certs / ROOT_CA)
    wwdr = load_certificate(certs / WWDR_CERT)
    leaf = load_certificate(certs / PASS_CERT)

    leaf.verify_directly_issued_by(wwdr)
    wwdr.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)

    root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    wwdr_bc = wwdr.extensions.get_extension_for_class(x509.BasicConstraints).value
    leaf_bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert root_bc.ca and wwdr_bc.ca and wwdr_bc.path_length == 0 and not leaf_bc.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert wwdr.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert "stand-in" in _one(wwdr.subject, NameOID.COMMON_NAME)
    assert "stand-in" in _one(root.subject, NameOID.COMMON_NAME)

    now = dt.datetime.now(dt.UTC)
    for cert in (root, wwdr, leaf):
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert root.not_valid_after_utc - root.not_valid_before_utc >= dt.timedelta(days=3650)


def test_pass_certificate_identity_and_usage(certs: Path) -> None:
    leaf = load_certificate(certs / PASS_CERT)
    assert _one(leaf.subject, NameOID.COMMON_NAME) == f"Pass Type ID: {PASS_TYPE_ID}"
    assert _one(leaf.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == TEAM_ID
    assert _one(leaf.subject, NameOID.USER_ID) == PASS_TYPE_ID
    assert _one(leaf.subject, NameOID.ORGANIZATION_NAME) == "Tallypass development"
    assert _one(leaf.subject, NameOID.COUNTRY_NAME) == "US"

    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature

    key = load_private_key(certs / PASS_KEY)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert _spki(key.public_key()) == _spki(leaf.public_key())
    pem = (certs / PASS_KEY).read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # unencrypted PKCS#8


def test_private_key_files_are_owner_only(certs: Path) -> None:
    for name in (PASS_KEY, APNS_AUTH_KEY, GOOGLE_SERVICE_ACCOUNT, VAPID_PRIVATE_KEY, "root-ca-key.pem", "wwdr-key.pem"):
        assert stat.S_IMODE((certs / name).stat().st_mode) == 0o600, name


def test_google_service_account_key_file(certs: Path) -> None:
    info = json.loads((certs / GOOGLE_SERVICE_ACCOUNT).read_text())
    assert set(info) >= GOOGLE_KEYS
    assert info["type"] == "service_account"
    assert info["client_email"] == CLIENT_EMAIL
    assert info["project_id"] == "tallypass-test"
    int(info["private_key_id"], 16)  # hex
    assert info["client_id"].isdigit()
    assert info["token_uri"] == "https://oauth2.googleapis.com/token"

    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    now = int(time.time())
    token = jwt.encode(
        {"iss": info["client_email"], "aud": "google", "typ": "savetowallet", "iat": now},
        info["private_key"],
        algorithm="RS256",
        headers={"kid": info["private_key_id"]},
    )
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="google")
    assert claims["iss"] == CLIENT_EMAIL
    assert jwt.get_unverified_header(token)["kid"] == info["private_key_id"]


def test_apns_auth_key_signs_es256(certs: Path) -> None:
    pem = (certs / APNS_AUTH_KEY).read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(certs / APNS_AUTH_KEY)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    token = jwt.encode({"iss": TEAM_ID, "iat": int(time.time())}, pem, algorithm="ES256", headers={"kid": "KEY1234567"})
    assert jwt.decode(token, key.public_key(), algorithms=["ES256"])["iss"] == TEAM_ID
    assert jwt.get_unverified_header(token)["kid"] == "KEY1234567"


def test_vapid_key_is_p256(certs: Path) -> None:
    assert (certs / VAPID_PRIVATE_KEY).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(certs / VAPID_PRIVATE_KEY)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)


def test_wwdr_without_root_is_refused(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / ROOT_CA).unlink()
    (tmp_path / PASS_CERT).unlink()
    (tmp_path / PASS_KEY).unlink()
    before = _snapshot(tmp_path)

    with pytest.raises(RuntimeError, match=r"wwdr\.pem.*root-ca\.pem"):
        _write(tmp_path)
    assert _snapshot(tmp_path) == before  # nothing regenerated, nothing added


def test_load_certificate_reads_der(tmp_path: Path, certs: Path) -> None:
    cert = load_certificate(certs / WWDR_CERT)
    der = tmp_path / "AppleWWDRCAG4.cer"
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    assert load_certificate(der) == cert


def test_openssl_verifies_the_chain(certs: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not on PATH")
    result = subprocess.run(
        [openssl, "verify", "-CAfile", ROOT_CA, "-untrusted", WWDR_CERT, PASS_CERT],
        cwd=certs,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{PASS_CERT}: OK"
