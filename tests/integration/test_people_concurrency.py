"""Races on people, with real commits on PostgreSQL (skipped on SQLite): two admins demoting each other at the same
moment leave one admin, and one two-factor code sent twice at once signs in once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import func, select

from app.database import SESSIONS
from app.errors import Conflict
from app.merchants import two_factor
from app.merchants.users import change_role, create_user
from app.models import User
from tests.conftest import TEST_SECRET_KEY

pytestmark = pytest.mark.committing
NOW = datetime(2026, 12, 8, 1, 0, 15, tzinfo=UTC)


def _race(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier, results = threading.Barrier(count), [None] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = work(n)
        except Exception as error:  # noqa: BLE001 (the outcome is what the test compares)
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_admins_demoting_each_other_at_once_leave_one_admin(committing_app: Flask) -> None:
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        ids = [create_user(session, email=f"{name}@shop.test", password="correct horse battery", role="admin").id
               for name in ("ana", "bo")]

    def demote(n: int) -> str:
        with factory.begin() as session:
            actor, target = session.get(User, ids[n]), session.get(User, ids[1 - n])
            change_role(session, user=target, role="viewer", now=NOW, actor=actor)
        return "demoted"

    for _ in range(3):
        results = _race(2, demote)
        assert sorted(type(r).__name__ if not isinstance(r, str) else r for r in results) == ["Conflict", "demoted"]
        assert all("last active admin" in r.detail for r in results if isinstance(r, Conflict))
        with factory.begin() as session:
            assert session.scalar(select(func.count()).select_from(User).where(User.role == "admin")) == 1
            for user in session.scalars(select(User)):
                user.role = "admin"  # both admins again for the next round (no guard needed to add admins)


def test_one_code_sent_twice_at_once_signs_in_once(committing_app: Flask) -> None:
    factory = committing_app.extensions[SESSIONS]
    with factory.begin() as session:
        user = create_user(session, email="ana@shop.test", password="correct horse battery", role="admin")
        secret = two_factor.begin(session, user=user, secret_key=TEST_SECRET_KEY)
        two_factor.confirm(session, user=user, code=pyotp.TOTP(secret).at(NOW), now=NOW, secret_key=TEST_SECRET_KEY)
        user_id = user.id
    for step in range(1, 4):
        at = NOW.timestamp() + 30 * step
        code = pyotp.TOTP(secret).at(at)

        def verify(_: int, code: str = code, at: float = at) -> str | None:
            with factory.begin() as session:
                return two_factor.verify(session, user=session.get(User, user_id), code=code,
                                         now=datetime.fromtimestamp(at, UTC), secret_key=TEST_SECRET_KEY)

        assert sorted(map(str, _race(4, verify))) == ["None", "None", "None", "totp"]
