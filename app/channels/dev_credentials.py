"""Stand-in credentials for development and tests (``flask --app app dev-certs``, CONTRACTS.md §1).

This module creates a small, self-contained credential set so that Tallypass can run end to end
without an Apple Developer account, a Google Cloud project or a web-push key:

- ``root-ca.pem`` (+ ``root-ca-key.pem``): a self-signed CA standing in for *Apple Root CA*;
- ``wwdr.pem`` (+ ``wwdr-key.pem``): an intermediate CA standing in for *Apple WWDR G4*;
- ``pass-cert.pem`` + ``pass-key.pem``: a "Pass Type ID" certificate laid out like Apple's
  (``UID=<pass type id>``, ``CN=Pass Type ID: <pass type id>``, ``OU=<team id>``), issued by the WWDR
  stand-in; it signs ``.pkpass`` files and is the TLS client certificate for APNs;
- ``apns-auth-key.p8``: an ES256 (EC P-256) key like Apple's ``AuthKey_<KEY ID>.p8``;
- ``google-service-account.json``: an RSA key in Google's service-account key-file layout;
- ``vapid-private.pem``: an EC P-256 key for web push (VAPID).

The two CA keys have no real-world counterpart (nobody gets Apple's CA keys); they are kept only so a
partly deleted directory can be completed with certificates that still chain to the same root.

**None of this is Apple's or Google's.** The chain ends at a root that only this directory trusts:
Apple Wallet on a real iPhone rejects passes signed with it, APNs rejects the certificate and the
token key, and Google rejects the service account. Use them with the outbox, fakes and local test
servers; see ``certs.example/README.md`` for obtaining the real credentials.

No Flask here: plain functions on ``cryptography`` and the standard library.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "APNS_AUTH_KEY",
    "FILE_NAMES",
    "GOOGLE_SERVICE_ACCOUNT",
    "PASS_CERT",
    "PASS_KEY",
    "ROOT_CA",
    "ROOT_CA_KEY",
    "VAPID_PRIVATE_KEY",
    "WWDR_CERT",
    "WWDR_KEY",
    "is_stand_in",
    "is_stand_in_project",
    "load_certificate",
    "load_private_key",
    "write_dev_credentials",
]

ROOT_CA = "root-ca.pem"
ROOT_CA_KEY = "root-ca-key.pem"
WWDR_CERT = "wwdr.pem"
WWDR_KEY = "wwdr-key.pem"
PASS_CERT = "pass-cert.pem"  # noqa: S105 (a file name)
PASS_KEY = "pass-key.pem"  # noqa: S105 (a file name)
APNS_AUTH_KEY = "apns-auth-key.p8"
GOOGLE_SERVICE_ACCOUNT = "google-service-account.json"
VAPID_PRIVATE_KEY = "vapid-private.pem"

# Order of the returned mapping (and of the CLI's output).
FILE_NAMES = (
    ROOT_CA,
    ROOT_CA_KEY,
    WWDR_CERT,
    WWDR_KEY,
    PASS_CERT,
    PASS_KEY,
    APNS_AUTH_KEY,
    GOOGLE_SERVICE_ACCOUNT,
    VAPID_PRIVATE_KEY,
)
_SECRET_FILES = {ROOT_CA_KEY, WWDR_KEY, PASS_KEY, APNS_AUTH_KEY, GOOGLE_SERVICE_ACCOUNT, VAPID_PRIVATE_KEY}

_ORGANIZATION = "Tallypass development"
_ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tallypass Dev Certification Authority"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tallypass Dev Root CA (stand-in for Apple Root CA)"),
    ]
)
_WWDR_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tallypass Dev WWDR (stand-in for Apple WWDR G4)"),
    ]
)

_CA_VALIDITY = dt.timedelta(days=3652)  # ten years
_PASS_VALIDITY = dt.timedelta(days=365)  # Apple's Pass Type ID certificates last a year, too
_BACKDATE = dt.timedelta(hours=1)  # tolerate small clock skew between machines

_GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
_GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
_GOOGLE_ROBOT_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/"
_GOOGLE_SA_DOMAIN = ".iam.gserviceaccount.com"
_GOOGLE_DEV_PROJECT = "tallypass-dev"


# --------------------------------------------------------------------------------------------------
# Loading helpers (also used for the real credentials)


def load_certificate(path: str | Path) -> x509.Certificate:
    """Read one X.509 certificate, PEM or DER (Apple's downloads, e.g. ``AppleWWDRCAG4.cer``, are DER)."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def is_stand_in(cert: x509.Certificate) -> bool:
    """True for a certificate issued by the ``dev-certs`` chain, which no Apple server accepts."""
    issuer_orgs = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(attr.value == _ORGANIZATION for attr in issuer_orgs)


def is_stand_in_project(project_id: str) -> bool:
    """True for the service account ``dev-certs`` writes, which Google does not know."""
    return project_id == _GOOGLE_DEV_PROJECT


def load_private_key(path: str | Path, password: bytes | None = None) -> PrivateKeyTypes:
    """Read a private key, PEM or DER (PKCS#8, PKCS#1 or SEC1), decrypting it with ``password`` if given."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, password=password)
    return serialization.load_der_private_key(data, password=password)


# --------------------------------------------------------------------------------------------------
# Writing


def write_dev_credentials(
    out_dir: str | Path,
    *,
    pass_type_id: str,
    team_id: str,
    google_client_email: str = "tallypass-dev@tallypass-dev.iam.gserviceaccount.com",
) -> dict[str, bool]:
    """Create stand-in credentials under out_dir; never overwrite existing files.

    Returns {path-as-string: True if created now, False if it already existed}, in ``FILE_NAMES`` order.

    A partly filled directory is completed consistently: a missing certificate is issued by the
    certificate (and key) already there, and for a key already there. Raises ``RuntimeError``, before
    writing anything, when that is impossible without a chain that does not verify (a certificate
    whose issuer certificate is missing, an issuer whose key is missing or does not match, a pass
    certificate without its key). Raises ``ValueError`` on an empty pass type id, team id or e-mail.
    """
    if not pass_type_id.strip() or not team_id.strip():
        raise ValueError("pass_type_id and team_id must not be empty")
    if "@" not in google_client_email:
        raise ValueError(f"google_client_email is not an e-mail address: {google_client_email!r}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = {name: out / name for name in FILE_NAMES}
    exists = {name: os.path.lexists(p) for name, p in path.items()}
    created = dict.fromkeys(FILE_NAMES, False)

    def problem(message: str) -> RuntimeError:
        return RuntimeError(
            f"{out}: inconsistent development credentials: {message}. Nothing was written. Move the "
            f"directory aside (or delete the certificates and keys named here) and run "
            f"`flask --app app dev-certs` again."
        )

    # ---- plan: check everything before the first write -----------------------------------------
    if exists[WWDR_CERT] and not exists[ROOT_CA]:
        raise problem(f"{WWDR_CERT} exists but {ROOT_CA} (its issuer) is missing")
    if exists[PASS_CERT] and not exists[WWDR_CERT]:
        raise problem(f"{PASS_CERT} exists but {WWDR_CERT} (its issuer) is missing")
    if exists[PASS_CERT] and not exists[PASS_KEY]:
        raise problem(f"{PASS_CERT} exists but {PASS_KEY} is missing; a new key would not match it")

    root_cert = load_certificate(path[ROOT_CA]) if exists[ROOT_CA] else None
    wwdr_cert = load_certificate(path[WWDR_CERT]) if exists[WWDR_CERT] else None
    root_key = wwdr_key = None
    if not exists[WWDR_CERT]:
        root_key = _existing_key(path[ROOT_CA_KEY]) if exists[ROOT_CA_KEY] else None
        if root_cert is not None:
            if root_key is None:
                raise problem(f"{WWDR_CERT} must be issued but {ROOT_CA_KEY} is missing")
            if not _key_matches(root_cert, root_key):
                raise problem(f"{ROOT_CA_KEY} is not the key of {ROOT_CA}")
    if not exists[PASS_CERT] and wwdr_cert is not None:
        if not exists[WWDR_KEY]:
            raise problem(f"{PASS_CERT} must be issued but {WWDR_KEY} is missing")
        wwdr_key = _existing_key(path[WWDR_KEY])
        if not _key_matches(wwdr_cert, wwdr_key):
            raise problem(f"{WWDR_KEY} is not the key of {WWDR_CERT}")
        assert root_cert is not None  # checked above: wwdr.pem implies root-ca.pem
        try:
            wwdr_cert.verify_directly_issued_by(root_cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise problem(f"{WWDR_CERT} was not issued by {ROOT_CA}") from exc
    # A pass key without its certificate gets a new certificate for that key.
    pass_key = _existing_key(path[PASS_KEY]) if not exists[PASS_CERT] and exists[PASS_KEY] else None

    # ---- generate and write --------------------------------------------------------------------
    now = dt.datetime.now(dt.UTC)

    def write(name: str, data: bytes) -> None:
        _write_new(path[name], data, secret=name in _SECRET_FILES)
        created[name] = True

    if root_cert is None:
        if root_key is None:
            root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write(ROOT_CA_KEY, _key_pem(root_key))
        root_cert = _build_root(root_key, now)
        write(ROOT_CA, root_cert.public_bytes(serialization.Encoding.PEM))

    if wwdr_cert is None:
        assert root_key is not None
        wwdr_key = _existing_key(path[WWDR_KEY]) if exists[WWDR_KEY] else None
        if wwdr_key is None:
            wwdr_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write(WWDR_KEY, _key_pem(wwdr_key))
        wwdr_cert = _build_wwdr(wwdr_key, root_cert, root_key, now)
        write(WWDR_CERT, wwdr_cert.public_bytes(serialization.Encoding.PEM))

    if not exists[PASS_CERT]:
        assert wwdr_key is not None
        if pass_key is None:
            pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write(PASS_KEY, _key_pem(pass_key))
        pass_cert = _build_pass_cert(pass_key, wwdr_cert, wwdr_key, now, pass_type_id=pass_type_id, team_id=team_id)
        write(PASS_CERT, pass_cert.public_bytes(serialization.Encoding.PEM))

    if not exists[APNS_AUTH_KEY]:
        write(APNS_AUTH_KEY, _key_pem(ec.generate_private_key(ec.SECP256R1())))

    if not exists[GOOGLE_SERVICE_ACCOUNT]:
        write(GOOGLE_SERVICE_ACCOUNT, _google_key_file(google_client_email))

    if not exists[VAPID_PRIVATE_KEY]:
        write(VAPID_PRIVATE_KEY, _key_pem(ec.generate_private_key(ec.SECP256R1())))

    return {str(path[name]): created[name] for name in FILE_NAMES}


# --------------------------------------------------------------------------------------------------
# Internals


def _write_new(path: Path, data: bytes, *, secret: bool) -> None:
    """Create ``path`` exclusively (never replacing anything); secrets get mode 0o600."""
    mode = 0o600 if secret else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, mode)
    try:
        if secret and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # independent of the umask
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
    finally:
        if fd != -1:
            os.close(fd)


def _key_pem(key: PrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``), the form Apple's .p8 and Google's JSON use."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _existing_key(path: Path) -> CertificateIssuerPrivateKeyTypes:
    key = load_private_key(path)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{path}: expected an RSA or EC private key, found {type(key).__name__}")
    return key


def _key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: dt.datetime, lifetime: dt.timedelta):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _build_root(key: CertificateIssuerPrivateKeyTypes, now: dt.datetime) -> x509.Certificate:
    return (
        _builder(_ROOT_NAME, _ROOT_NAME, key.public_key(), now, _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .sign(key, hashes.SHA256())
    )


def _build_wwdr(
    key: CertificateIssuerPrivateKeyTypes,
    root_cert: x509.Certificate,
    root_key: CertificateIssuerPrivateKeyTypes,
    now: dt.datetime,
) -> x509.Certificate:
    # Never outlive the issuer: a chain with an expired root does not verify.
    lifetime = min(_CA_VALIDITY, root_cert.not_valid_after_utc - now)
    return (
        _builder(_WWDR_NAME, root_cert.subject, key.public_key(), now, lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_authority_key_id(root_cert), critical=False)
        .sign(root_key, hashes.SHA256())
    )


def _build_pass_cert(
    key: CertificateIssuerPrivateKeyTypes,
    wwdr_cert: x509.Certificate,
    wwdr_key: CertificateIssuerPrivateKeyTypes,
    now: dt.datetime,
    *,
    pass_type_id: str,
    team_id: str,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, pass_type_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    lifetime = min(_PASS_VALIDITY, wwdr_cert.not_valid_after_utc - now)
    return (
        _builder(subject, wwdr_cert.subject, key.public_key(), now, lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # APNs takes this certificate as the TLS client certificate.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_authority_key_id(wwdr_cert), critical=False)
        .sign(wwdr_key, hashes.SHA256())
    )


def _google_key_file(client_email: str) -> bytes:
    """A service-account key file in the layout the Google Cloud console downloads."""
    domain = client_email.rpartition("@")[2]
    project_id = domain.removesuffix(_GOOGLE_SA_DOMAIN) if domain.endswith(_GOOGLE_SA_DOMAIN) else _GOOGLE_DEV_PROJECT
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": _key_pem(key).decode("ascii"),
        "client_email": client_email,
        "client_id": str(10**20 + secrets.randbelow(9 * 10**20)),  # 21 digits, like Google's
        "auth_uri": _GOOGLE_AUTH_URI,
        "token_uri": _GOOGLE_TOKEN_URI,
        "auth_provider_x509_cert_url": _GOOGLE_CERTS_URL,
        "client_x509_cert_url": _GOOGLE_ROBOT_CERTS_URL + quote(client_email, safe=""),
        "universe_domain": "googleapis.com",
    }
    return (json.dumps(info, indent=2) + "\n").encode("utf-8")
