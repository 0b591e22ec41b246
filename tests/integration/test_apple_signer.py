"""The pass signature, checked the way Wallet would: ``openssl cms -verify -binary`` against the root,
over the exact manifest bytes (../shared/reference/apple_wallet.md §2.1 and §6)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, NoEncryption, pkcs12

from app.channels import dev_credentials as dc
from app.channels.apple_signer import PassSigner, SigningError

PASS_TYPE, TEAM = "pass.test.tallypass", "TEAMTEST01"
# newlines and non-ASCII on purpose: a CRLF-canonicalising signer would sign other bytes
MANIFEST = b'{\n  "icon.png": "0a4d55a8d778e5022fab701977c5d840bbc486d0",\n  "pass.json": "\xc8\x99"\n}\n'

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    dc.write_dev_credentials(out, pass_type_id=PASS_TYPE, team_id=TEAM)
    return out


@pytest.fixture(scope="module")
def signer(certs: Path) -> PassSigner:
    return PassSigner.from_files(certificate=certs / dc.PASS_CERT, key=certs / dc.PASS_KEY, wwdr=certs / dc.WWDR_CERT)


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)


def _verify(tmp_path: Path, certs: Path, signature: bytes, manifest: bytes) -> subprocess.CompletedProcess[str]:
    (tmp_path / "signature").write_bytes(signature)
    (tmp_path / "manifest.json").write_bytes(manifest)
    return _openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", "signature", "-content", "manifest.json",
                    "-CAfile", str(certs / dc.ROOT_CA), "-purpose", "any", "-out", "/dev/null", cwd=tmp_path)


@needs_openssl
def test_signature_verifies_over_the_exact_manifest_bytes(tmp_path: Path, certs: Path, signer: PassSigner) -> None:
    signer.check(pass_type_id=PASS_TYPE, team_id=TEAM)
    signature = signer.sign(MANIFEST)
    ok = _verify(tmp_path, certs, signature, MANIFEST)
    assert ok.returncode == 0, ok.stderr
    tampered = _verify(tmp_path, certs, signature, MANIFEST.replace(b"0a4d", b"0a4e"))
    assert tampered.returncode != 0


@needs_openssl
def test_signature_is_detached_sha256_with_signing_time_and_both_certificates(
    tmp_path: Path, signer: PassSigner
) -> None:
    (tmp_path / "signature").write_bytes(signer.sign(MANIFEST))
    printed = _openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "signature", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout
    assert "eContent: <ABSENT>" in text  # detached
    assert "signingTime" in text and "messageDigest" in text
    assert "sha256" in text
    certs = _openssl("pkcs7", "-inform", "DER", "-in", "signature", "-print_certs", "-noout", cwd=tmp_path)
    subjects = [line for line in certs.stdout.splitlines() if line.startswith("subject=")]
    assert len(subjects) == 2
    assert any(f"Pass Type ID: {PASS_TYPE}" in s for s in subjects)
    assert any("OU = G4" in s and "WWDR" in s for s in subjects)  # the stand-in WWDR G4


@needs_openssl
def test_a_p12_exported_from_keychain_signs_too(tmp_path: Path, certs: Path, signer: PassSigner) -> None:
    p12 = tmp_path / "pass.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"tallypass", signer.key, signer.certificate, None, BestAvailableEncryption(b"s3cret")))
    loaded = PassSigner.from_files(certificate=p12, key=None, wwdr=certs / dc.WWDR_CERT, password=b"s3cret")
    loaded.check(pass_type_id=PASS_TYPE, team_id=TEAM)
    assert _verify(tmp_path, certs, loaded.sign(MANIFEST), MANIFEST).returncode == 0


@pytest.mark.parametrize(
    ("pass_type_id", "team_id", "message"),
    [("pass.other.id", TEAM, "passTypeIdentifier must match"), (PASS_TYPE, "OTHERTEAM1", "belongs to team")],
)
def test_refuses_to_sign_for_another_pass_type_or_team(signer: PassSigner, pass_type_id: str, team_id: str,
                                                       message: str) -> None:
    with pytest.raises(SigningError, match=message):
        signer.check(pass_type_id=pass_type_id, team_id=team_id)


def test_refuses_a_key_of_another_certificate_a_foreign_wwdr_and_an_expired_certificate(
    tmp_path: Path, certs: Path, signer: PassSigner
) -> None:
    other = tmp_path / "other"
    dc.write_dev_credentials(other, pass_type_id=PASS_TYPE, team_id=TEAM)
    wrong_key = PassSigner(certificate=signer.certificate, key=dc.load_private_key(other / dc.PASS_KEY),
                           wwdr=signer.wwdr)
    with pytest.raises(SigningError, match="does not belong"):
        wrong_key.check(pass_type_id=PASS_TYPE, team_id=TEAM)
    foreign_wwdr = PassSigner(certificate=signer.certificate, key=signer.key,
                              wwdr=dc.load_certificate(other / dc.WWDR_CERT))
    with pytest.raises(SigningError, match="use WWDR G4"):
        foreign_wwdr.check(pass_type_id=PASS_TYPE, team_id=TEAM)
    with pytest.raises(SigningError, match="valid only from"):
        signer.check(pass_type_id=PASS_TYPE, team_id=TEAM, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=400))


def test_unreadable_credentials_get_a_clear_error(tmp_path: Path, certs: Path) -> None:
    with pytest.raises(SigningError, match="cannot load"):
        PassSigner.from_files(certificate=tmp_path / "missing.pem", key=certs / dc.PASS_KEY, wwdr=certs / dc.WWDR_CERT)
    p12 = tmp_path / "nokey.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"x", None, dc.load_certificate(certs / dc.PASS_CERT), None, NoEncryption()))
    with pytest.raises(SigningError, match="no certificate with its private key"):
        PassSigner.from_files(certificate=p12, key=None, wwdr=certs / dc.WWDR_CERT)


def test_expiring_certificates_are_announced(signer: PassSigner) -> None:
    assert signer.expiring() == []
    soon = signer.certificate.not_valid_after_utc - dt.timedelta(days=10)
    [warning] = signer.expiring(now=soon)
    assert warning.startswith("the Pass Type ID certificate expires on ")
