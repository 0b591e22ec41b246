"""POS keys: a rotation keeps the old key working for the overlap and refuses it after, at the POS API;
revocation, scheduled or not; store fields validated; every change audited (without the secret)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, InvalidInput, Unauthorized
from app.merchants import stores
from app.models import AuditEvent, PosCredential
from tests.conftest import TEST_SECRET_KEY, PosCredentials


@pytest.fixture
def program(make_program: Callable[..., Any]) -> Any:
    return make_program(welcome_bonus=0)


@pytest.fixture
def creds(program: Any, make_store: Callable[..., PosCredentials]) -> PosCredentials:
    return make_store(program, name="Centru")


def _credential(db_session: Session, key_id: str) -> PosCredential:
    return db_session.scalars(select(PosCredential).where(PosCredential.key_id == key_id)).one()


def test_the_old_key_works_during_the_overlap_and_is_refused_after_it_at_the_pos_api(
        creds: PosCredentials, program: Any, make_card: Callable[..., Any], pos_for: Callable[..., Any],
        db_session: Session) -> None:
    card = make_card(program)
    old = _credential(db_session, creds.key_id)
    issued = stores.rotate_credential(db_session, credential=old, overlap=timedelta(hours=24),
                                      secret_key=TEST_SECRET_KEY, actor="test", now=utcnow())
    db_session.commit()
    new = PosCredentials(creds.store, issued.credential.key_id, issued.secret)
    assert pos_for(creds).get(f"/cards/{card.barcode}").status_code == 200  # still inside the overlap
    assert pos_for(new).get(f"/cards/{card.barcode}").status_code == 200
    # A rotation whose 24 h overlap ended an hour ago (a key not yet in this process's few-second key cache).
    other = stores.issue_credential(db_session, store=creds.store, secret_key=TEST_SECRET_KEY)
    ended = stores.rotate_credential(db_session, credential=other.credential, overlap=timedelta(hours=24),
                                     secret_key=TEST_SECRET_KEY, actor="test", now=utcnow() - timedelta(hours=25))
    db_session.commit()
    refused = pos_for(PosCredentials(creds.store, other.credential.key_id, other.secret)).get(f"/cards/{card.barcode}")
    assert refused.status_code == 401 and refused.json["type"].endswith("/unknown-key")
    successor = PosCredentials(creds.store, ended.credential.key_id, ended.secret)
    assert pos_for(successor).get(f"/cards/{card.barcode}").status_code == 200


def test_a_scheduled_revocation_is_honoured_to_the_second(creds: PosCredentials, db_session: Session) -> None:
    now = utcnow()
    old = _credential(db_session, creds.key_id)
    stores.rotate_credential(db_session, credential=old, overlap=timedelta(days=7), secret_key=TEST_SECRET_KEY,
                             actor="test", now=now)
    ends = now + timedelta(days=7)
    assert old.revoked_at == ends and stores.key_state(old, now) == "retiring"
    store, secret = stores.credential_for(db_session, key_id=creds.key_id, secret_key=TEST_SECRET_KEY,
                                          now=ends - timedelta(seconds=1))
    assert store.id == creds.store.id and secret == creds.secret
    with pytest.raises(Unauthorized):
        stores.credential_for(db_session, key_id=creds.key_id, secret_key=TEST_SECRET_KEY, now=ends)
    assert stores.key_state(old, ends) == "revoked"


def test_rotating_again_keeps_the_earlier_end_and_revoking_brings_it_forward(creds: PosCredentials,
                                                                          db_session: Session) -> None:
    now = utcnow()
    old = _credential(db_session, creds.key_id)
    stores.rotate_credential(db_session, credential=old, overlap=timedelta(hours=1), secret_key=TEST_SECRET_KEY,
                             actor="test", now=now)
    stores.rotate_credential(db_session, credential=old, overlap=timedelta(days=7), secret_key=TEST_SECRET_KEY,
                             actor="test", now=now)
    assert old.revoked_at == now + timedelta(hours=1)  # a second rotation does not extend the old key's life
    stores.revoke_credential(db_session, key_id=creds.key_id, actor="test", now=now)
    assert old.revoked_at == now
    with pytest.raises(Conflict):
        stores.rotate_credential(db_session, credential=old, overlap=timedelta(hours=1),
                                 secret_key=TEST_SECRET_KEY, actor="test", now=now)
    with pytest.raises(InvalidInput):
        stores.rotate_credential(db_session, credential=_credential(db_session, creds.key_id),
                                 overlap=timedelta(days=31), secret_key=TEST_SECRET_KEY, actor="test", now=now)
    # Three keys were issued by the two rotations and the fixture; the rotations' keys are still live.
    assert stores.live_key_counts(db_session, store_ids=[creds.store.id], now=now) == {creds.store.id: 2}


def test_key_changes_are_audited_without_the_secret(creds: PosCredentials, db_session: Session) -> None:
    now = utcnow()
    issued = stores.issue_credential(db_session, store=creds.store, secret_key=TEST_SECRET_KEY, actor="ops@shop.test",
                                     now=now)
    rotated = stores.rotate_credential(db_session, credential=issued.credential, overlap=timedelta(hours=24),
                                       secret_key=TEST_SECRET_KEY, actor="ops@shop.test", now=now)
    stores.revoke_credential(db_session, key_id=rotated.credential.key_id, actor="ops@shop.test", now=now)
    events = list(db_session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.action, e.actor, e.target) for e in events] == [
        ("pos-key-created", "ops@shop.test", f"store:{creds.store.id}"),
        ("pos-key-rotated", "ops@shop.test", f"store:{creds.store.id}"),
        ("pos-key-revoked", "ops@shop.test", f"store:{creds.store.id}"),
    ]
    assert events[1].details["old_key_id"] == issued.credential.key_id
    assert events[1].details["new_key_id"] == rotated.credential.key_id
    for event in events:
        assert issued.secret not in str(event.details) and rotated.secret not in str(event.details)


def test_store_fields_are_checked(program: Any, creds: PosCredentials, db_session: Session) -> None:
    with pytest.raises(InvalidInput) as bad:
        stores.create_store(db_session, program=program, name=" ", latitude=91.0, longitude=None,
                            timezone="Mars/Olympus")
    fields = {e.field for e in bad.value.errors}
    assert fields == {"name", "latitude", "longitude", "timezone"}
    with pytest.raises(InvalidInput):
        stores.update_store(db_session, store=creds.store, changes={"longitude": float("nan")}, actor="t",
                            now=utcnow())
    stores.update_store(db_session, store=creds.store, changes={"latitude": 47.0105, "longitude": 28.8638,
                                                                "timezone": "Europe/Chisinau"}, actor="t",
                        now=utcnow())
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "store-updated")).one()
    assert event.details["timezone"][1] == "Europe/Chisinau" and event.details["latitude"] == [None, 47.0105]
