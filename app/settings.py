"""Typed configuration from the ``TALLYPASS_`` environment (CONTRACTS.md §2).

Development defaults live under ``instance/``; production refuses to start on them.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INSTANCE_DIR = Path("instance")
DEV_CERTS_DIR = INSTANCE_DIR / "certs"
# Placeholders that must never protect a production deployment, even padded to length: a key holding one was
# most likely copied from an example.
_PLACEHOLDER_WORDS = ("changeme", "change-me", "secret", "password", "development", "example", "insecure")
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128
KEY_RECIPE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


class ConfigurationError(RuntimeError):
    """The service cannot start with this configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TALLYPASS_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "testing"] = "development"
    database_url: str = "sqlite:///instance/tallypass.db"
    broker_url: str = ""
    # Where Celery beat keeps its schedule (when each periodic job last ran); a shelve file, so the files
    # beside it may get .db/.dat/.dir suffixes. Under instance/, which git ignores, never the repository root.
    beat_schedule_file: str = "instance/celerybeat-schedule"
    base_url: str = "http://127.0.0.1:5000"
    secret_key: SecretStr | None = None
    log_level: str = "INFO"
    # Region used to read phone numbers written without a leading "+" (ISO 3166 alpha-2), e.g. "MD".
    default_phone_region: str | None = None
    # Database connection pool per process (web and worker).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Seconds one SQL statement of a web request may run on PostgreSQL before it is cancelled (the caller gets
    # 503); 0 leaves the server's own statement_timeout. Above the heaviest single web statement measured at
    # 1M customers (~40 s), below the 60 s after which proxies give up (docs/operations.md).
    db_statement_timeout: float = Field(default=50.0, ge=0, le=3600)
    # The same for Celery tasks and CLI commands (an audience, RFM or import at a million customers runs for
    # minutes); 0, the default, leaves the server's own statement_timeout (normally none).
    db_worker_statement_timeout: float = Field(default=0.0, ge=0, le=86400)
    # Requests per POS key (a "limits" string such as "50/second" or "20/second;600/minute"); counted in
    # Redis when the broker is Redis (shared by every process), else in each process's memory.
    pos_rate_limit: str = "50/second"
    # Reverse proxies in front of the service that set X-Forwarded-For/-Proto/-Host (0: none). Without
    # it, behind a proxy every shopper has the proxy's address (one shared sign-up limit).
    proxy_hops: int = Field(default=0, ge=0, le=5)
    # How long a campaign sender holds the deliveries it claimed; a crashed worker's are sent after that.
    campaign_lease_seconds: int = Field(default=300, ge=5, le=3600)
    # Public, unauthenticated posts per client address: sign-up, one-time codes, Wallet device logs (each
    # counted on its own); sign-in posts too.
    form_rate_limit: str = "10/minute;60/hour"
    # Failed POS authentications (bad signature, unknown key) per client address, after which that address's
    # failures get 429; correctly signed requests from the same address are never held by it.
    pos_auth_failure_limit: str = "30/minute;300/hour"
    # Dashboard sign-in (docs/rate-limits-and-headers.md): wrong passwords for one account from one address
    # before that address must wait (30 s, doubling each further failure, up to the maximum); a right password
    # clears the count. Nothing is counted per account alone, so a guesser cannot lock the owner out.
    login_free_failures: int = Field(default=5, ge=1, le=100)
    login_max_wait_seconds: int = Field(default=900, ge=30, le=86_400)
    # Wrong passwords from one address across all accounts (password spraying).
    login_failure_limit: str = "20/hour;100/day"
    # Strict-Transport-Security max-age sent in production (0 tells browsers to forget an earlier policy).
    hsts_max_age: int = Field(default=31_536_000, ge=0, le=63_072_000)
    # A dashboard session ends after this many minutes without a request, and this many hours after signing in
    # whatever the activity (NIST SP 800-63B, AAL2: 30 minutes idle, 12 hours in all).
    dashboard_idle_minutes: int = Field(default=30, ge=5, le=24 * 60)
    dashboard_session_hours: int = Field(default=12, ge=1, le=30 * 24)

    apple_pass_type_id: str = "pass.dev.tallypass.loyalty"  # noqa: S105 (an identifier)
    apple_team_id: str = "TALLYDEV01"
    apple_pass_cert: Path | None = None
    apple_pass_key: Path | None = None
    apple_pass_key_password: SecretStr | None = None
    apple_wwdr_cert: Path | None = None
    apns_url: str = "https://api.push.apple.com"
    apns_ca_file: Path | None = None
    apns_auth: Literal["certificate", "token"] = "certificate"
    apns_key_id: str | None = None
    apns_auth_key: Path | None = None

    google_issuer_id: str = "3388000000000000000"
    google_service_account: Path | None = None
    google_origins: str = ""
    google_api_url: str = "https://walletobjects.googleapis.com/walletobjects/v1"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)

    vapid_private_key: Path | None = None
    vapid_subject: str = "mailto:admin@localhost"

    sms_provider: Literal["outbox", "twilio"] = "outbox"
    sms_api_url: str = "https://api.twilio.com"
    sms_account_sid: str | None = None
    sms_auth_token: SecretStr | None = None
    sms_from: str | None = None

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        """Plain ``postgresql://`` URLs use psycopg 3, the driver we ship."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("pos_rate_limit", "form_rate_limit", "pos_auth_failure_limit", "login_failure_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A ``limits`` string such as "10/minute;60/hour"."""
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as \"10/minute\" or \"20/second;600/minute\""
                             ) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        if self.env != "production":
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if problem := weak_key_problem(key):
            raise ConfigurationError(f"TALLYPASS_SECRET_KEY {problem}; production needs a random value of at "
                                     f"least {MIN_SECRET_KEY_LENGTH} characters and {MIN_SECRET_KEY_BITS} bits. "
                                     f"Generate one with: {KEY_RECIPE}")
        if self.database_url.startswith("sqlite"):
            raise ConfigurationError("production needs TALLYPASS_DATABASE_URL pointing at PostgreSQL")
        if not self.base_url.startswith("https://"):
            raise ConfigurationError("TALLYPASS_BASE_URL must be the service's public https:// URL in production: "
                                     "it goes into every pass, and Wallet calls only an https webServiceURL")
        return self

    def credential_file(self, configured: Path | None, name: str) -> Path | None:
        """A credential file: the configured path, else in development the ``dev-certs`` file of that name
        under ``instance/certs/`` when it exists (certs.example/README.md), else None."""
        if configured is not None:
            return configured
        fallback = DEV_CERTS_DIR / name
        return fallback if self.env == "development" and fallback.is_file() else None

    def environment(self) -> dict[str, str]:
        """These settings as ``TALLYPASS_*`` variables, for a child process (a worker started by a test or a
        benchmark) that must run with the same configuration. Holds the secrets: never log it."""
        env = {}
        for name, value in self.model_dump().items():
            if value is not None:
                env[f"TALLYPASS_{name.upper()}"] = str(value.get_secret_value() if isinstance(value, SecretStr)
                                                      else value)
        return env

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The configured key, or in development one generated once into ``instance/secret_key``."""
        if self.secret_key:
            return self.secret_key.get_secret_value()
        path = INSTANCE_DIR / "secret_key"
        if path.exists() and (existing := path.read_text().strip()):
            return existing
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Write then rename, so a crash never leaves an empty key behind.
        fd, tmp = tempfile.mkstemp(dir=INSTANCE_DIR, prefix=".secret_key.")
        with os.fdopen(fd, "w") as handle:  # mkstemp creates the file with mode 0o600
            handle.write(key)
        os.replace(tmp, path)
        return key


# What zxcvbn's patterns are called in a message (result["sequence"][i]["pattern"]).
_PATTERNS = {"sequence": "a sequence such as abc or 123", "repeat": "repeated characters",
             "spatial": "a keyboard pattern", "dictionary": "words or common passwords", "date": "a date",
             "regex": "a recent year"}
ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input (its cost grows with the length)


def secret_key_strength(key: str) -> tuple[float, set[str]]:
    """How many bits of guessing the key's first 72 characters resist, and the patterns found in them, by zxcvbn
    (Dropbox's estimator, kept up in the ``zxcvbn`` package). It finds sequences, repeats, keyboard walks,
    dictionary words and dates, and scores what is left as random characters, each as log2(10) = 3.3 bits
    whatever the alphabet: 128 bits takes about 39 random characters, so ``token_urlsafe(32)`` (43 characters)
    and longer pass and 32-character random keys do not. The check this replaces (a length and 12 distinct
    characters) passed ``abcdefghijklmnopqrstuvwxyz012345``; so would the size of the alphabet times the length."""
    from zxcvbn import zxcvbn  # here: only production checks a key, and loading its word lists takes 0.1 s

    result = zxcvbn(key[:ZXCVBN_MAX_LENGTH])
    return float(result["guesses_log10"]) * math.log2(10), {match["pattern"] for match in result["sequence"]}


def weak_key_problem(key: str) -> str | None:
    """Why ``key`` is too weak to protect production (sessions, CSRF, the sealed POS secrets), or None. The
    message never quotes the key."""
    if not key:
        return "is not set"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"has only {len(key)} characters"
    lowered = key.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return "contains a placeholder word (an example value copied unchanged?)"
    bits, found = secret_key_strength(key)
    if bits >= MIN_SECRET_KEY_BITS:
        return None
    patterns = [label for pattern, label in _PATTERNS.items() if pattern in found]
    because = f" (it holds {' and '.join(patterns)})" if patterns else ""
    return f"is too easy to guess: about {bits:.0f} bits{because}"
