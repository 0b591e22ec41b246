"""Set-based writes of many rows (``app.bulk``), on SQLite and on PostgreSQL: each row
gets its own values, rows not named are untouched, and loaded objects agree with the database afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bulk import flush_changed, update_rows, write_objects
from app.database import SESSIONS
from app.models import Customer

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def customers(db_session: Session) -> list[Customer]:
    rows = [Customer(name=f"Ana {n}", referral_code=f"BULK{n}", tags=[], rfm_frequency=n) for n in range(5)]
    db_session.add_all(rows)
    db_session.commit()
    return rows


def _fresh(app: Flask) -> dict[int, Customer]:
    with app.extensions[SESSIONS]() as session:
        return {c.id: c for c in session.scalars(select(Customer))}


def test_each_row_gets_its_own_values_and_the_others_are_untouched(app: Flask, db_session: Session,
                                                                   customers: list[Customer]) -> None:
    a, b, c, untouched = customers[0], customers[1], customers[2], customers[3]
    table = Customer.__table__
    update_rows(db_session, table, {
        a.id: {"name": "Ioana", "anonymized_at": None, "tags": ["vip"], "locale": "ro"},
        b.id: {"name": "Mihai", "anonymized_at": T0, "tags": None, "locale": "ro"},
        c.id: {"name": "Elena", "anonymized_at": T0 + timedelta(hours=1), "tags": [], "locale": "ro"},
    })
    db_session.commit()
    saved = _fresh(app)
    assert [(saved[x.id].name, saved[x.id].anonymized_at, saved[x.id].tags, saved[x.id].locale) for x in (a, b, c)] \
        == [("Ioana", None, ["vip"], "ro"), ("Mihai", T0, None, "ro"), ("Elena", T0 + timedelta(hours=1), [], "ro")]
    assert (saved[untouched.id].name, saved[untouched.id].locale) == ("Ana 3", "en")


def test_an_expression_for_every_row_and_the_new_values_returned(db_session: Session,
                                                                 customers: list[Customer]) -> None:
    table = Customer.__table__
    chosen = customers[1:4]
    returned = update_rows(db_session, table, {x.id: {"rfm_recency": 5} for x in chosen},
                           also={"rfm_frequency": table.c.rfm_frequency + 10}, returning=["rfm_frequency"])
    assert sorted(tuple(r) for r in returned) == sorted((x.id, x.rfm_frequency + 10) for x in chosen)
    returned = update_rows(db_session, table, {x.id: {"rfm_recency": x.id} for x in chosen},  # varying values
                           also={"rfm_frequency": table.c.rfm_frequency + 1}, returning=["rfm_recency"])
    assert sorted(tuple(r) for r in returned) == sorted((x.id, x.id) for x in chosen)
    assert update_rows(db_session, table, {}) == []


def test_loaded_objects_hold_the_written_values_and_nothing_is_left_to_flush(
        app: Flask, db_session: Session, customers: list[Customer]) -> None:
    a, b, c = customers[0], customers[1], customers[2]
    write_objects(db_session, {a: {"name": "Ioana", "locale": "ro"},  # two sets of columns: two statements
                               b: {"name": "Mihai", "locale": "fr"},
                               c: {"rfm_segment": "Champions"}})
    assert (a.name, b.locale, c.rfm_segment) == ("Ioana", "fr", "Champions")
    assert not db_session.dirty  # told as committed: a flush writes nothing over them
    db_session.commit()
    saved = _fresh(app)
    assert [(saved[x.id].name, saved[x.id].locale) for x in (a, b)] == [("Ioana", "ro"), ("Mihai", "fr")]
    assert (saved[c.id].rfm_segment, saved[c.id].name) == ("Champions", "Ana 2")


def test_flush_changed_writes_only_what_changed(app: Flask, db_session: Session, customers: list[Customer]) -> None:
    a, b, c = customers[0], customers[1], customers[2]
    a.name, a.tags = "Ioana", ["vip"]
    b.rfm_segment = "At Risk"
    c.name = c.name  # set to the value it had: not a change
    with app.extensions[SESSIONS]() as other:  # someone else changes c meanwhile; it must not be written over
        other.get(Customer, c.id).locale = "de"
        other.commit()
    flush_changed(db_session, customers)
    assert not any(db_session.is_modified(x) for x in customers)  # a flush has nothing left to write
    db_session.commit()
    saved = _fresh(app)
    assert (saved[a.id].name, saved[a.id].tags, saved[b.id].rfm_segment) == ("Ioana", ["vip"], "At Risk")
    assert (saved[c.id].name, saved[c.id].locale) == ("Ana 2", "de")
