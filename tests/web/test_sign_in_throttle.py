"""Dashboard sign-in throttling (issue 17, §3.8): wrong passwords are counted per (client address, account)
with waits that double, and per address across accounts; never per account alone, so a guesser elsewhere
cannot lock the owner out. The answers never tell whether the account exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.merchants.users import create_user
from app.web.ratelimit import SIGN_IN_EXTENSION
from tests.web.dashboard_client import PASSWORD, csrf

ADMIN = "admin@shop.test"
HERS = "198.51.100.7"
ATTACKER = "203.0.113.66"


class Browser:
    """A browser at one client address."""

    def __init__(self, app: Flask, address: str) -> None:
        self.client: FlaskClient = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        return self.client.post("/dashboard/login", data={"csrf_token": csrf(self.client), "email": email,
                                                          "password": password})


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:  # also used by tests/integration/test_ratelimit_outage
    """argon2 with the smallest cost: these tests count tries, not hashing work."""
    from argon2 import PasswordHasher

    from app.merchants import users

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_UNKNOWN", cheap.hash("no account has this password"))


@pytest.fixture
def admin(db_session: Session) -> None:
    create_user(db_session, email=ADMIN, password=PASSWORD, role="admin")
    db_session.commit()


@pytest.fixture
def clock(app: Flask) -> list[float]:
    """The throttle's clock, moved by the test instead of waiting."""
    now = [1_900_000_000.0]
    app.extensions[SIGN_IN_EXTENSION].clock = lambda: now[0]
    return now


def test_an_attackers_failures_elsewhere_do_not_lock_the_admin_out(app: Flask, admin: None) -> None:
    attacker, owner = Browser(app, ATTACKER), Browser(app, HERS)
    statuses = [attacker.sign_in(ADMIN, f"guess {n}").status_code for n in range(50)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # the guesser is held...
    assert owner.sign_in(ADMIN).status_code == 303  # ...and the owner walks in from her own address


def test_the_owners_own_typos_do_not_count_against_her_once_she_is_in(app: Flask, admin: None,
                                                                     make_program: Callable[..., Any]) -> None:
    make_program()
    owner = Browser(app, HERS)
    assert [owner.sign_in(ADMIN, "typo").status_code for _ in range(4)] == [401] * 4
    assert owner.sign_in(ADMIN).status_code == 303
    owner.client.post("/dashboard/logout", data={"csrf_token": csrf(owner.client, "/dashboard/")})
    # A right password cleared her count: four more typos are still free.
    assert [owner.sign_in(ADMIN, "typo").status_code for _ in range(4)] == [401] * 4


def test_one_address_guessing_waits_longer_and_longer(app_with: Callable[..., Flask], admin: None) -> None:
    app = app_with(login_max_wait_seconds=200)
    now = [1_900_000_000.0]
    app.extensions[SIGN_IN_EXTENSION].clock = lambda: now[0]
    guesser = Browser(app, ATTACKER)
    assert [guesser.sign_in(ADMIN, f"guess {n}").status_code for n in range(5)] == [401] * 5
    waits = []
    for n in range(5):
        held = guesser.sign_in(ADMIN, PASSWORD)  # even the right password waits: it would be a free guess
        assert held.status_code == 429
        assert 'id="password-error">Too many wrong passwords for this e-mail address from your network.' in held.text
        waits.append(int(held.headers["Retry-After"]))
        now[0] += waits[-1] - 1
        assert guesser.sign_in(ADMIN, "early").status_code == 429  # a second early is still too early
        now[0] += 1
        assert guesser.sign_in(ADMIN, f"guess {5 + n}").status_code == 401
    assert waits == [30, 60, 120, 200, 200]  # doubling, up to the maximum
    now[0] += 200
    assert guesser.sign_in(ADMIN).status_code == 303


def test_an_unknown_account_is_throttled_alike(app: Flask, admin: None, clock: list[float]) -> None:
    """Same statuses, same words, same wait: the throttle does not tell which accounts exist."""
    guesser = Browser(app, ATTACKER)
    answers = {}
    for email in (ADMIN, "nobody@shop.test"):
        assert [guesser.sign_in(email, "guess").status_code for _ in range(5)] == [401] * 5
        held = guesser.sign_in(email, "guess")
        answers[email] = (held.status_code, held.headers["Retry-After"], held.text.replace(email, "EMAIL"))
    assert answers[ADMIN] == answers["nobody@shop.test"]


def test_spraying_many_accounts_from_one_address_is_limited(app_with: Callable[..., Flask],
                                                            db_session: Session) -> None:
    app = app_with(login_failure_limit="3/hour")
    for n in range(5):
        create_user(db_session, email=f"user{n}@shop.test", password=PASSWORD, role="viewer")
    db_session.commit()
    sprayer = Browser(app, ATTACKER)
    statuses = [sprayer.sign_in(f"user{n}@shop.test", "Summer2026!").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    held = sprayer.sign_in("user4@shop.test", PASSWORD)
    assert held.status_code == 429 and 0 < int(held.headers["Retry-After"]) <= 3600
    assert "Too many failed sign-ins from your network." in held.text
    assert Browser(app, HERS).sign_in("user4@shop.test").status_code == 303  # other addresses are not held


def test_an_ipv6_guesser_cannot_step_to_the_next_address_of_its_network(app: Flask, admin: None,
                                                                         clock: list[float]) -> None:
    statuses = [Browser(app, f"2001:db8:7:1::{n:x}").sign_in(ADMIN, "guess").status_code for n in range(1, 8)]
    assert statuses == [401] * 5 + [429, 429]
    assert Browser(app, "2001:db8:7:2::1").sign_in(ADMIN).status_code == 303  # another /64


def test_the_replaced_setting_is_named_in_a_warning(app_with: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TALLYPASS_LOGIN_RATE_LIMIT", "5/minute")
    with caplog.at_level("WARNING", logger="app.web.ratelimit"):
        app_with()
    assert any("TALLYPASS_LOGIN_RATE_LIMIT is no longer used" in r.getMessage() for r in caplog.records)
