"""Typed settings from the ``TALLYPASS_`` environment (CONTRACTS.md §2, STYLE.md rule 6).

Every test starts from an environment without ``TALLYPASS_*`` variables and never reads a ``.env``
file, so a developer's own configuration cannot leak in.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from app import create_app
from app.settings import (
    MIN_SECRET_KEY_BITS,
    MIN_SECRET_KEY_LENGTH,
    ConfigurationError,
    Settings,
    secret_key_strength,
    weak_key_problem,
)

PG_URL = "postgresql+psycopg://tallypass:pw@db.example.com:5432/tallypass"
STRONG_KEY = secrets.token_urlsafe(36)  # 48 characters
assert len(STRONG_KEY) == 48


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TALLYPASS_"):
            monkeypatch.delenv(name)
    # Relative defaults (instance/, .env) resolve inside the test's own directory.
    monkeypatch.chdir(tmp_path)


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# ---------------------------------------------------------------- defaults and the environment


def test_contract_defaults() -> None:
    settings = make()
    assert settings.env == "development"
    assert settings.database_url == "sqlite:///instance/tallypass.db"
    assert settings.broker_url == ""
    assert settings.base_url == "http://127.0.0.1:5000"
    assert settings.secret_key is None
    assert settings.apns_url == "https://api.push.apple.com"
    assert settings.apns_auth == "certificate"
    assert settings.google_api_url == "https://walletobjects.googleapis.com/walletobjects/v1"
    assert settings.google_token_url == "https://oauth2.googleapis.com/token"
    assert settings.sms_provider == "outbox"
    assert settings.is_sqlite


def test_reads_tallypass_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYPASS_BASE_URL", "https://loyalty.example.com/")
    monkeypatch.setenv("TALLYPASS_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("TALLYPASS_DATABASE_URL", "sqlite:////srv/tallypass/db.sqlite")
    monkeypatch.setenv("TALLYPASS_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("TALLYPASS_APPLE_TEAM_ID", "ABCDE12345")
    monkeypatch.setenv("TALLYPASS_APNS_AUTH", "token")
    monkeypatch.setenv("TALLYPASS_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("TALLYPASS_DB_POOL_SIZE", "25")

    settings = make()

    assert settings.base_url == "https://loyalty.example.com"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == "sqlite:////srv/tallypass/db.sqlite"
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == STRONG_KEY
    assert settings.apple_team_id == "ABCDE12345"
    assert settings.apns_auth == "token"
    assert settings.sms_provider == "twilio"
    assert settings.db_pool_size == 25


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_URL", "https://wrong.example.com")
    monkeypatch.setenv("DATABASE_URL", "postgresql://wrong/db")
    settings = make()
    assert settings.base_url == "http://127.0.0.1:5000"
    assert settings.database_url == "sqlite:///instance/tallypass.db"


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYPASS_BROKER_URL", "redis://from-env:6379/0")
    assert make(broker_url="redis://explicit:6379/1").broker_url == "redis://explicit:6379/1"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://loyalty.example.com/", "https://loyalty.example.com"),
        ("https://loyalty.example.com//", "https://loyalty.example.com"),
        ("https://example.com/tallypass/", "https://example.com/tallypass"),
        ("https://loyalty.example.com", "https://loyalty.example.com"),
    ],
)
def test_base_url_loses_trailing_slashes(given: str, expected: str) -> None:
    assert make(base_url=given).base_url == expected


def test_secret_key_is_masked_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYPASS_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("TALLYPASS_SMS_AUTH_TOKEN", "twilio-token-value")
    settings = make()
    assert STRONG_KEY not in repr(settings)
    assert "twilio-token-value" not in repr(settings)


@pytest.mark.parametrize("name", ["TALLYPASS_ENV", "TALLYPASS_APNS_AUTH", "TALLYPASS_SMS_PROVIDER"])
def test_unknown_choice_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv(name, "something-else")
    with pytest.raises(ValidationError):
        make()


@pytest.mark.parametrize("size", ["0", "201", "many"])
def test_pool_size_is_bounded(monkeypatch: pytest.MonkeyPatch, size: str) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("TALLYPASS_DB_POOL_SIZE", size)
    with pytest.raises(ValidationError):
        make()


# ---------------------------------------------------------------- database URLs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/tp", "postgresql+psycopg://u:p@db:5432/tp"),
        ("postgresql://u:p@db:5432/tp", "postgresql+psycopg://u:p@db:5432/tp"),
        ("postgresql://postgres@127.0.0.1/test", "postgresql+psycopg://postgres@127.0.0.1/test"),
        ("postgresql+psycopg://u@db/tp", "postgresql+psycopg://u@db/tp"),
        ("postgresql+psycopg2://u@db/tp", "postgresql+psycopg2://u@db/tp"),
        ("sqlite:///instance/tallypass.db", "sqlite:///instance/tallypass.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_postgres_urls_use_psycopg3(given: str, expected: str) -> None:
    assert make(database_url=given).database_url == expected


def test_postgres_url_from_the_environment_uses_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYPASS_DATABASE_URL", "postgres://u:p@db/tp")
    settings = make()
    assert settings.database_url == "postgresql+psycopg://u:p@db/tp"
    assert not settings.is_sqlite


# ---------------------------------------------------------------- production refuses development defaults


def test_production_without_secret_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY"):
        make(env="production", database_url=PG_URL)


def test_production_with_empty_secret_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY"):
        make(env="production", database_url=PG_URL, secret_key="")


def test_production_with_short_secret_key_is_refused() -> None:
    short = secrets.token_urlsafe(64)[: MIN_SECRET_KEY_LENGTH - 1]
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY") as excinfo:
        make(env="production", database_url=PG_URL, secret_key=short)
    assert str(MIN_SECRET_KEY_LENGTH) in str(excinfo.value)
    assert short not in str(excinfo.value)  # the message never echoes the secret


@pytest.mark.parametrize("key", ["changeme", "CHANGEME", "dev", "development", "secret", "test", "Secret"])
def test_production_with_development_keys_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY"):
        make(env="production", database_url=PG_URL, secret_key=key)


@pytest.mark.parametrize("key", ["changeme" * 4, "changeme-changeme-changeme-changeme"])
def test_production_with_padded_placeholder_keys_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY"):
        make(env="production", database_url=PG_URL, secret_key=key)


# Keys of 32+ characters, free of placeholder words, that the old check (length, 12 distinct characters) let
# through: sequences, repeats, keyboard walks, words and dates.
LOW_ENTROPY_KEYS = [
    "abcdefghijklmnopqrstuvwxyz012345",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
    "abcdefghijklmnopqrstuvwxyz012345abcdefghijklmnopqrstuvwxyz012345",
    "aaaabbbbccccddddeeeeffffgggghhhhiiiijjjjkkkkllll",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbb",
    "0123456789abcdef0123456789abcdef",
    "qwertyuiopasdfghjklzxcvbnm123456",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,",
    "ThisIsMyVeryLongProductionKey2024!",
    "correct horse battery staple and more words",
    "2024-01-01 2024-02-02 2024-03-03 2024-04-04",
    "Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3",
    "tallypass-loyalty-cards-production-key",
    "a" * 80 + secrets.token_urlsafe(48),  # only the first 72 characters are judged
]
STRONG_KEYS = [
    # Fixed values, each printed once by the generator beside it (used nowhere else).
    "Y4rL76kDgjmE-l2YWSAJxBkEkMzdYQN5ZyOf-6yCJK-rVDImlydAzq7mtveRctM_",  # token_urlsafe(48)
    "1978a9953d8fe44086d3bab0844213ae46e31d58cee6d7c6094b24d72be41285",  # token_hex(32)
    "2W7vn-Xr8Q1nsc3LKfZw5C_wg8W-6BT4w4BPf_rm5ig",  # token_urlsafe(32)
    "45x1qfPQLRtMi9Xgm2R+plGuPdBgza6SOXkHrpxWlKc=",  # base64 of 32 random bytes (openssl rand -base64 32)
    "7z%_07p97v$#v=@bzjp0yvuxpem5)jw3k5ct(ybq25tknx#qra",  # get_random_secret_key() as Django makes it (50 characters)
]
GENERATED_KEYS = [
    *(secrets.token_urlsafe(48) for _ in range(20)),
    *(secrets.token_hex(32) for _ in range(20)),
    *(secrets.token_urlsafe(32) for _ in range(20)),
]


@pytest.mark.parametrize("key", LOW_ENTROPY_KEYS)
def test_production_refuses_a_low_entropy_key(key: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        make(env="production", database_url=PG_URL, secret_key=key, base_url="https://loyalty.example.com")
    message = str(refused.value)
    assert "TALLYPASS_SECRET_KEY is too easy to guess: about " in message
    assert f"{MIN_SECRET_KEY_BITS} bits" in message
    assert "secrets.token_urlsafe(48)" in message  # how to make a good one
    assert key not in message and key[:16] not in message  # never echoes the secret


@pytest.mark.parametrize("key", STRONG_KEYS)
def test_production_accepts_random_keys(key: str) -> None:
    settings = make(env="production", database_url=PG_URL, secret_key=key, base_url="https://loyalty.example.com")
    assert settings.resolved_secret_key() == key


def test_production_accepts_freshly_generated_keys() -> None:
    """The recipes the message and the docs give, freshly drawn: none may be refused (over 3,000 draws the
    weakest token_urlsafe(32) estimated 136 bits, token_hex(32) 196)."""
    for key in GENERATED_KEYS:
        assert weak_key_problem(key) is None, secret_key_strength(key)


def test_the_estimate_names_what_makes_a_key_weak() -> None:
    bits, found = secret_key_strength("abcdefghijklmnopqrstuvwxyz012345")
    assert bits < 40 and found == {"sequence"}
    with pytest.raises(ConfigurationError, match=r"holds a sequence such as abc or 123\)"):
        make(env="production", database_url=PG_URL, secret_key="abcdefghijklmnopqrstuvwxyz012345")
    with pytest.raises(ConfigurationError, match=r"holds repeated characters"):
        make(env="production", database_url=PG_URL, secret_key="aaaabbbbccccddddeeeeffffgggghhhhiiiijjjjkkkkllll")


def test_a_random_key_of_32_characters_is_below_the_bar() -> None:
    """zxcvbn counts 3.3 bits per random character whatever the alphabet, so 32 characters estimate ~105 bits;
    the message then says how to make a longer one (this documents the choice; README and docs say it too)."""
    bits, _ = secret_key_strength("kzN3Vq9xLmP2wR7tY5uB8eC4hJ6gF1dS")
    assert 95 < bits < MIN_SECRET_KEY_BITS
    assert weak_key_problem("kzN3Vq9xLmP2wR7tY5uB8eC4hJ6gF1dS") == "is too easy to guess: about 106 bits"


def test_development_and_testing_do_not_judge_the_key() -> None:
    assert make(env="development", secret_key="abcdefghijklmnopqrstuvwxyz012345").secret_key is not None
    assert make(env="testing", secret_key="short").secret_key is not None


@pytest.mark.parametrize("url", ["sqlite:///instance/tallypass.db", "sqlite:////srv/tallypass.db", "sqlite://"])
def test_production_on_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        make(env="production", database_url=url, secret_key=STRONG_KEY)


def test_production_on_the_default_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TALLYPASS_DATABASE_URL.*PostgreSQL"):
        make(env="production", secret_key=STRONG_KEY)


def test_production_without_an_https_base_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TALLYPASS_BASE_URL.*https"):
        make(env="production", database_url=PG_URL, secret_key=STRONG_KEY)
    with pytest.raises(ConfigurationError, match="TALLYPASS_BASE_URL.*https"):
        make(env="production", database_url=PG_URL, secret_key=STRONG_KEY, base_url="http://loyalty.example.com")


def test_production_with_random_key_and_postgres_is_accepted() -> None:
    settings = make(env="production", database_url=PG_URL, secret_key=STRONG_KEY,
                    base_url="https://loyalty.example.com/")
    assert settings.base_url == "https://loyalty.example.com"
    assert settings.env == "production"
    assert settings.resolved_secret_key() == STRONG_KEY
    assert not settings.is_sqlite


def test_production_accepts_a_plain_postgres_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYPASS_ENV", "production")
    monkeypatch.setenv("TALLYPASS_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("TALLYPASS_DATABASE_URL", "postgres://tallypass@db/tallypass")
    monkeypatch.setenv("TALLYPASS_BASE_URL", "https://loyalty.example.com")
    settings = make()
    assert settings.database_url == "postgresql+psycopg://tallypass@db/tallypass"


def test_production_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYPASS_ENV", "production")
    monkeypatch.setenv("TALLYPASS_DATABASE_URL", PG_URL)
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY"):
        make()


@pytest.mark.parametrize("env", ["development", "testing"])
def test_development_and_testing_accept_weak_settings(env: str) -> None:
    settings = make(env=env, secret_key="dev")
    assert settings.is_sqlite
    assert settings.resolved_secret_key() == "dev"


def test_create_app_is_not_reached_with_a_bad_production_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``create_app()`` builds its Settings from the environment; a bad production setup stops there,
    before anything (a generated key, a database file, logging) is set up."""
    monkeypatch.setenv("TALLYPASS_ENV", "production")
    monkeypatch.setenv("TALLYPASS_SECRET_KEY", "changeme")
    with pytest.raises(ConfigurationError, match="TALLYPASS_SECRET_KEY"):
        create_app()
    monkeypatch.setenv("TALLYPASS_SECRET_KEY", STRONG_KEY)
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        create_app()
    assert not (tmp_path / "instance").exists()


def test_bad_production_settings_never_exist_to_pass_to_create_app() -> None:
    settings = None
    with pytest.raises(ConfigurationError):
        settings = make(env="production")
    assert settings is None


# ---------------------------------------------------------------- the development secret key


def test_development_generates_a_secret_key_once(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "secret_key"
    assert not path.exists()

    first = make().resolved_secret_key()

    assert path.is_file()
    assert path.read_text().strip() == first
    assert len(first) >= MIN_SECRET_KEY_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    second = make().resolved_secret_key()
    assert second == first
    assert make().resolved_secret_key() == first
    assert path.read_text().strip() == first


def test_generated_keys_differ_between_instance_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    key_a = make().resolved_secret_key()
    monkeypatch.chdir(tmp_path / "b")
    key_b = make().resolved_secret_key()
    assert key_a != key_b


def test_existing_instance_key_is_reused(tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "secret_key").write_text("kept-from-an-earlier-run-0123456789abcdef\n")
    assert make().resolved_secret_key() == "kept-from-an-earlier-run-0123456789abcdef"


def test_configured_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    assert make(secret_key=STRONG_KEY).resolved_secret_key() == STRONG_KEY
    assert not (tmp_path / "instance").exists()


def test_create_app_uses_the_generated_key(tmp_path: Path) -> None:
    settings = make(env="testing", database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    app = create_app(settings)
    key = (tmp_path / "instance" / "secret_key").read_text().strip()
    assert app.config["SECRET_KEY"] == key
    assert app.config["TALLYPASS"] is settings
    app.extensions["tallypass.engine"].dispose()


def test_empty_instance_key_file_is_not_used_as_the_key(tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "secret_key").write_text("")
    assert len(make().resolved_secret_key()) >= MIN_SECRET_KEY_LENGTH


def test_the_environment_of_a_child_process_gives_the_same_settings(monkeypatch) -> None:
    from pathlib import Path

    from app.settings import Settings

    parent = Settings(_env_file=None, env="testing", secret_key="s" * 40, campaign_lease_seconds=5,
                      apns_ca_file=Path("certs/apns-ca.pem"), sms_provider="twilio", sms_auth_token="token-1234")
    for name, value in parent.environment().items():
        monkeypatch.setenv(name, value)
    child = Settings(_env_file=None)
    assert child == parent
    assert child.sms_auth_token is not None and child.sms_auth_token.get_secret_value() == "token-1234"
