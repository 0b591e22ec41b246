"""Programmes from nothing: the templates, ``create_program`` (a message per field, nothing made on an error),
``flask program create|templates`` and ``flask demo --remove``."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import app.models  # noqa: F401  (every table on Base.metadata)
from app.db import Base
from app.demo import DEMO_SLUG, load_demo
from app.errors import InvalidInput
from app.loyalty.program_creation import create_program, suggest_slug
from app.loyalty.program_templates import TEMPLATES
from app.models import AuditEvent, BonusRule, Card, Customer, OutboxEvent, Program, Purchase, Store, Tier
from tests.integration.test_cli import one_json_object, run

Factory = Callable[..., Any]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #RRGGBB colours."""
    def luminance(colour: str) -> float:
        def channel(c: int) -> float:
            s = c / 255
            return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
        r, g, b_ = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b_)
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def make(db_session: Session, **fields: Any) -> Program:
    values = {"name": "Café Luna", "slug": "cafe-luna", "currency": "MDL", "timezone": "Europe/Chisinau",
              "phone_region": "MD", **fields}
    return create_program(db_session, **values)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_each_template_fills_rules_tiers_bonus_rules_and_a_readable_design(db_session: Session, name: str) -> None:
    template = TEMPLATES[name]
    program = make(db_session, slug=f"t-{name}", template=name, actor="cli")
    db_session.expire_all()
    program = db_session.get(Program, program.id)
    assert program.kind == template.kind and program.phone_region == "MD" and program.currency == "MDL"
    for column, value in {**template.settings, **template.design}.items():
        assert getattr(program, column) == value, column
    assert [(t.name, t.qualifying_spend, t.earn_percent) for t in program.tiers] == [
        (t.name, t.qualifying_spend, t.earn_percent) for t in template.tiers]
    assert sorted((r.event_name, r.points) for r in program.bonus_rules) == sorted(
        (r.event_name, r.points) for r in template.bonus_rules)
    # WCAG AA for normal text: the card's text and labels on its background.
    assert contrast(program.foreground_color, program.background_color) >= 4.5
    assert contrast(program.label_color, program.background_color) >= 4.5
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.target == f"program:{program.id}")).one()
    assert event.action == "program.created" and event.details["template"] == name
    assert db_session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "program.changed")) >= 1


def test_the_templates_merchants_recognise() -> None:
    coffee, cashback, salon = TEMPLATES["coffee-stamps"], TEMPLATES["retail-cashback"], TEMPLATES["beauty-salon"]
    assert coffee.kind == "stamps" and coffee.settings["stamps_required"] == 9  # the 10th coffee free
    assert [t.earn_percent for t in cashback.tiers][0] == Decimal("3")
    assert [t.earn_percent for t in cashback.tiers][-1] == Decimal("10")
    assert salon.settings["birthday_bonus"] > 0
    assert TEMPLATES["cafe-points"].kind == "points"


def test_without_a_template_a_points_programme_earns_on_a_base_tier(db_session: Session) -> None:
    program = make(db_session, phone_region=None)
    assert program.kind == "points" and program.phone_region is None
    assert [(t.name, t.earn_percent) for t in program.tiers] == [("Member", Decimal("5"))]
    stamps = make(db_session, slug="stamps", kind="stamps")
    assert stamps.stamps_required == 10 and stamps.tiers == []


def test_every_wrong_field_gets_its_message_and_nothing_is_created(db_session: Session) -> None:
    before = db_session.scalar(select(func.count()).select_from(Program))
    with pytest.raises(InvalidInput) as error:
        make(db_session, name=" ", slug="Bad_Slug", currency="XYZ", timezone="Mars/Olympus", phone_region="ZZ",
             kind="stars", template="pizza")
    fields = {e.field for e in error.value.errors}
    assert fields == {"name", "slug", "currency", "timezone", "phone_region", "kind", "template"}
    assert db_session.scalar(select(func.count()).select_from(Program)) == before


def test_withdrawn_currencies_are_refused_and_codes_are_read_in_any_case(db_session: Session) -> None:
    with pytest.raises(InvalidInput) as error:
        make(db_session, currency="DEM")  # the Deutsche Mark: ISO 4217 once, legal tender nowhere now
    assert [e.field for e in error.value.errors] == ["currency"]
    program = make(db_session, currency="eur", phone_region="ro")
    assert (program.currency, program.phone_region) == ("EUR", "RO")


def test_a_slug_in_use_and_a_template_of_the_other_kind_are_refused(db_session: Session) -> None:
    make(db_session)
    with pytest.raises(InvalidInput) as error:
        make(db_session, name="Another")
    assert [(e.field, "taken" in e.message) for e in error.value.errors] == [("slug", True)]
    with pytest.raises(InvalidInput) as error:
        make(db_session, slug="other", kind="points", template="coffee-stamps")
    assert [e.field for e in error.value.errors] == ["template"]
    assert make(db_session, slug="other", template="coffee-stamps").kind == "stamps"  # the template implies it


def test_slugs_are_suggested_from_names() -> None:
    assert suggest_slug("Café Luna & Co.") == "cafe-luna-co"
    assert suggest_slug("Кафе") == ""


# ---------------------------------------------------------------- the command


def test_program_create_prints_one_json_object_with_its_public_urls(app: Flask, db_session: Session) -> None:
    result = run(app, "program", "create", "Beauty Bar", "--slug", "beauty-bar", "--currency", "RON",
                 "--timezone", "Europe/Bucharest", "--phone-region", "RO", "--template", "beauty-salon", "--json")
    assert result.exit_code == 0, result.output
    out = one_json_object(result.stdout)
    program = db_session.get(Program, out["id"])
    assert program is not None and program.slug == out["slug"] == "beauty-bar" and program.kind == "points"
    assert out["join_url"] == "https://tallypass.test/join/beauty-bar"
    assert out["poster_url"] == "https://tallypass.test/join/beauty-bar/poster"
    assert program.birthday_bonus == 200 and program.phone_region == "RO"
    assert app.test_client().get("/join/beauty-bar").status_code == 200


def test_program_create_without_json_prints_a_summary(app: Flask, db_session: Session) -> None:
    result = run(app, "program", "create", "Beans", "--slug", "beans", "--currency", "EUR", "--timezone", "UTC",
                 "--phone-region", "DE", "--kind", "stamps")
    assert result.exit_code == 0, result.output
    assert "programme" in result.stdout and "https://tallypass.test/join/beans/poster" in result.stdout
    assert db_session.scalar(select(Program.kind).where(Program.slug == "beans")) == "stamps"


def test_program_create_refuses_bad_fields_on_stderr(app: Flask, db_session: Session) -> None:
    result = run(app, "program", "create", "Beans", "--slug", "Beans!", "--currency", "EURO", "--timezone", "UTC",
                 "--phone-region", "MD", "--kind", "points", "--json")
    assert result.exit_code != 0 and result.stdout == ""
    assert "slug:" in result.stderr and "currency:" in result.stderr
    assert db_session.scalar(select(Program).where(Program.name == "Beans")) is None


def test_program_templates_lists_every_template(app: Flask) -> None:
    result = run(app, "program", "templates")
    assert result.exit_code == 0 and all(name in result.stdout for name in TEMPLATES)
    listed = json.loads(run(app, "program", "templates", "--json").stdout)
    assert [t["name"] for t in listed["templates"]] == list(TEMPLATES)


# ---------------------------------------------------------------- demo --remove


def referring_rows(db_session: Session, ids: dict[str, set[int]]) -> list[str]:
    """Every row of any table whose foreign key points at one of ``ids`` (per referred table)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            wanted = ids.get(fk.column.table.name)
            if not wanted:
                continue
            n = db_session.scalar(select(func.count()).select_from(table).where(fk.parent.in_(wanted)))
            if n:
                found.append(f"{table.name}.{fk.parent.name}: {n}")
    return found


def test_demo_remove_leaves_no_row_of_the_demo_and_another_programme_untouched(
        app: Flask, db_session: Session, make_program: Factory, make_store: Any, make_card: Factory) -> None:
    other = make_program(slug="mine")
    shop = make_store(other, name="Mine")
    mine = make_card(other, phone="+37369999001", balance=30)
    summary = load_demo(db_session, customers=12)
    demo = summary.program
    demo_id = demo.id
    shared = db_session.get(Customer, mine.customer_id)  # a customer of both keeps their other card
    from app.loyalty import enrollment
    enrollment.enrol(db_session, program=demo, phone=shared.phone, name=shared.name)
    db_session.flush()
    ids = {
        "program": {demo.id},
        "store": set(db_session.scalars(select(Store.id).where(Store.program_id == demo.id))),
        "card": set(db_session.scalars(select(Card.id).where(Card.program_id == demo.id))),
        "tier": set(db_session.scalars(select(Tier.id).where(Tier.program_id == demo.id))),
        "bonus_rule": set(db_session.scalars(select(BonusRule.id).where(BonusRule.program_id == demo.id))),
        "purchase": set(db_session.scalars(select(Purchase.id).join(Card).where(Card.program_id == demo.id))),
    }
    ids["customer"] = set(db_session.scalars(select(Card.customer_id).where(Card.id.in_(ids["card"])))) - {
        shared.id}
    assert referring_rows(db_session, ids) and summary.purchases > 0  # there is something to remove
    kept = {table.name: db_session.scalar(select(func.count()).select_from(table).where(fk.parent == other.id))
            for table in Base.metadata.sorted_tables for fk in table.foreign_keys
            if fk.column.table.name == "program"}
    before_mine = (mine.balance, mine.version)
    from app.db import utcnow
    from app.merchants import audit
    audit.record(db_session, actor="cli", action="customers.export", now=utcnow(), target=f"program:{DEMO_SLUG}")

    result = run(app, "demo", "--remove")

    assert result.exit_code == 0, result.output
    assert "removed" in result.stdout
    db_session.expire_all()
    assert db_session.scalar(select(Program).where(Program.slug == DEMO_SLUG)) is None
    for name, wanted in ids.items():
        table = Base.metadata.tables[name]
        assert not db_session.scalar(select(func.count()).select_from(table).where(table.c.id.in_(wanted))), name
    assert referring_rows(db_session, ids) == []
    targets = [f"program:{demo_id}", f"program:{DEMO_SLUG}"] + [f"{kind}:{i}" for kind in ("store", "card", "customer")
                                        for i in ids[kind]]
    assert not db_session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.target.in_(targets)))
    payloads = [e.payload for e in db_session.scalars(select(OutboxEvent))]
    assert not [p for p in payloads if p.get("program_id") == demo_id or p.get("card_id") in ids["card"]
                or p.get("customer_id") in ids["customer"]]
    # The other programme, its store, card and the shared customer are as they were.
    assert {table.name: db_session.scalar(select(func.count()).select_from(table).where(fk.parent == other.id))
            for table in Base.metadata.sorted_tables for fk in table.foreign_keys
            if fk.column.table.name == "program"} == kept
    assert db_session.get(Store, shop.store.id) is not None
    mine = db_session.get(Card, mine.id)
    assert (mine.balance, mine.version) == before_mine and db_session.get(Customer, shared.id) is not None
    removal = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "program.removed")).one()
    assert removal.details["slug"] == DEMO_SLUG and removal.target is None

    again = run(app, "demo", "--remove")
    assert again.exit_code == 0 and "nothing removed" in again.stdout


def test_make_runs_demo_if_empty_stays_away_once_a_programme_of_ones_own_exists(
        app: Flask, db_session: Session, make_program: Factory) -> None:
    make_program(slug="mine")
    result = run(app, "demo", "--if-empty", "--customers", "3")
    assert result.exit_code == 0 and "not loaded" in result.stdout
    assert db_session.scalar(select(Program).where(Program.slug == DEMO_SLUG)) is None
