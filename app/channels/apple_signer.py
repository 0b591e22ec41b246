"""The detached PKCS#7 signature of a pass's ``manifest.json`` (Apple Wallet Developer Guide, "Signing").

Written on ``cryptography`` rather than taken from wallet-py3k, which shells out to ``openssl`` with
the key password on its command line (../shared/reference/apple_wallet.md §2). What Wallet needs:

- DER SignedData over the exact manifest bytes, detached, SHA-256, with signingTime among the signed
  attributes (``cryptography`` adds contentType, messageDigest and signingTime);
- ``Binary``: without it ``cryptography`` MIME-canonicalises ``\\n`` to ``\\r\\n`` before hashing and
  the signature no longer covers the manifest that ships;
- the WWDR intermediate inside the signature beside the Pass Type ID certificate;
- a certificate whose CN is ``Pass Type ID: <passTypeIdentifier>`` and whose OU is the team ID,
  or the phone rejects the pass with no useful message: so we refuse to sign instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from app.channels.dev_credentials import load_certificate, load_private_key

CN_PREFIX = "Pass Type ID: "
_OPTIONS = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]


class SigningError(Exception):
    """The credentials cannot sign this pass; the message says what to fix."""


def _name(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


@dataclass(frozen=True)
class PassSigner:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    wwdr: x509.Certificate

    @classmethod
    def from_files(
        cls, *, certificate: Path, key: Path | None, wwdr: Path, password: bytes | None = None
    ) -> PassSigner:
        """Load the Pass Type ID certificate and key (PEM/DER files, or one ``.p12`` as exported from
        Keychain, given as ``certificate`` with ``key`` None) and the WWDR intermediate (PEM or DER)."""
        try:
            if key is None:
                p12_key, cert, _ = pkcs12.load_key_and_certificates(certificate.read_bytes(), password)
                if p12_key is None or cert is None:
                    raise SigningError(f"{certificate} holds no certificate with its private key")
                private_key = p12_key
            else:
                cert, private_key = load_certificate(certificate), load_private_key(key, password)
            intermediate = load_certificate(wwdr)
        except (OSError, ValueError, TypeError) as exc:
            raise SigningError(f"cannot load the Apple signing credentials: {exc}") from exc
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningError("the pass signing key must be RSA or EC")
        return cls(certificate=cert, key=private_key, wwdr=intermediate)

    def check(self, *, pass_type_id: str, team_id: str, now: dt.datetime | None = None) -> None:
        """:raise SigningError: the certificate is not for this pass type and team, is not issued by
        the WWDR certificate given, is not valid now, or does not belong to the key."""
        cert = self.certificate
        cn, ou = _name(cert.subject, NameOID.COMMON_NAME), _name(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
        if cn != CN_PREFIX + pass_type_id:
            raise SigningError(f"the certificate is for {cn!r}, not {CN_PREFIX + pass_type_id!r}: the pass's "
                               "passTypeIdentifier must match the Pass Type ID certificate")
        if ou != team_id:
            raise SigningError(f"the certificate belongs to team {ou!r}, not {team_id!r}")
        try:
            cert.verify_directly_issued_by(self.wwdr)
        except (ValueError, TypeError, InvalidSignature):
            raise SigningError(f"the certificate is issued by {cert.issuer.rfc4514_string()}, not by the WWDR "
                               f"certificate given ({self.wwdr.subject.rfc4514_string()}); use WWDR G4") from None
        now = now or dt.datetime.now(dt.UTC)
        for what, c in (("Pass Type ID certificate", cert), ("WWDR certificate", self.wwdr)):
            if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
                raise SigningError(f"the {what} is valid only from {c.not_valid_before_utc:%Y-%m-%d} to "
                                   f"{c.not_valid_after_utc:%Y-%m-%d}")
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        if (cert.public_key().public_bytes(serialization.Encoding.DER, public)
                != self.key.public_key().public_bytes(serialization.Encoding.DER, public)):
            raise SigningError("the private key does not belong to the Pass Type ID certificate")

    def expiring(self, *, within: dt.timedelta = dt.timedelta(days=30), now: dt.datetime | None = None) -> list[str]:
        """Warnings for certificates that stop working soon: an expired Pass Type ID certificate stops
        both signing and pushes (renew it yearly); WWDR G4 ends on 2030-12-10."""
        now = now or dt.datetime.now(dt.UTC)
        return [f"the {what} expires on {c.not_valid_after_utc:%Y-%m-%d}; renew it before then"
                for what, c in (("Pass Type ID certificate", self.certificate), ("WWDR certificate", self.wwdr))
                if c.not_valid_after_utc - now <= within]

    def sign(self, manifest: bytes) -> bytes:
        """DER detached signature over exactly ``manifest``."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .add_certificate(self.wwdr)
            .sign(serialization.Encoding.DER, _OPTIONS)
        )
