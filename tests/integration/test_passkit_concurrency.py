"""Phones registering at the same moment, with real commits on PostgreSQL (skipped on SQLite).

Wallet retries and re-registers freely, so the same registration often arrives twice at once, and a
device registers several passes in parallel. Registration must stay one row per (device, card) and
answer 201 exactly once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.database import SESSIONS
from app.loyalty import enrollment
from app.models import AppleDevice, AppleRegistration, Card, Program
from tests.conftest import seed_committed_shop

pytestmark = pytest.mark.committing

PASS_TYPE = "pass.dev.tallypass.loyalty"


def test_simultaneous_registrations_make_one_row_each(committing_app):
    factory = committing_app.extensions[SESSIONS]
    shop = seed_committed_shop(factory, slug="reg", earn_percent="3", balance=0, phone="+37369555100")
    with factory.begin() as session:
        program = session.get(Program, session.get(Card, shop["card_id"]).program_id)
        for n in range(3):
            enrollment.enrol(session, program=program, phone=f"+3736955520{n}")
    with factory() as session:
        cards = [(c.serial, c.apple_auth_token) for c in session.scalars(select(Card).order_by(Card.id))]

    devices = [f"device{n:026d}" for n in range(3)]
    attempts = [(device, serial, token) for device in devices for serial, token in cards] * 3  # each thrice
    barrier = threading.Barrier(12)

    def register(attempt):
        device, serial, token = attempt
        barrier.wait()
        response = committing_app.test_client().post(
            f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}/{serial}",
            json={"pushToken": f"{devices.index(device):02d}" * 32}, headers={"Authorization": f"ApplePass {token}"})
        return device, serial, response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(register, attempts))

    assert {status for _, _, status in results} == {200, 201}
    for device in devices:
        for serial, _ in cards:
            statuses = sorted(s for d, c, s in results if d == device and c == serial)
            assert statuses == [200, 200, 201], (device, serial, statuses)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(AppleDevice)) == len(devices)
        assert session.scalar(select(func.count()).select_from(AppleRegistration)) == len(devices) * len(cards)
