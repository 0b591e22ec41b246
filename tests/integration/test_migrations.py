"""The Alembic migrations (STYLE.md §5): one head; upgrade, downgrade and upgrade again on an empty
database; and the models agree with the migrated schema ("autogenerate finds no diff").

Runs on a fresh SQLite file everywhere, and on a brand-new PostgreSQL database (created and dropped
here) when TALLYPASS_TEST_DATABASE_URL points at PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (every table on Base.metadata)
from app import migrate
from app.db import Base, make_engine

MODEL_TABLES = set(Base.metadata.tables)


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_diff(url: str) -> list[Any]:
    """What ``alembic revision --autogenerate`` would write, as compare_metadata's list of differences."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def assert_upgrade_downgrade_upgrade(url: str) -> None:
    assert table_names(url) == set()

    migrate.upgrade(url)
    tables = table_names(url)
    missing = MODEL_TABLES - tables
    assert not missing, f"tables of Base.metadata not created by the migrations: {sorted(missing)}"
    assert tables - MODEL_TABLES == {"alembic_version"}
    assert current_revision(url) == migrate.heads()[0]

    migrate.downgrade(url, "base")
    assert table_names(url) == {"alembic_version"}
    assert current_revision(url) is None

    migrate.upgrade(url)
    assert table_names(url) >= MODEL_TABLES
    assert current_revision(url) == migrate.heads()[0]


# ---------------------------------------------------------------- the revision graph


def test_single_head() -> None:
    heads = migrate.heads()
    assert len(heads) == 1, f"several migration heads, merge them: {heads}"


def test_every_model_has_a_table() -> None:
    """Guard for the checks below: the models are loaded, so the comparison is not vacuous."""
    assert {"program", "card", "ledger_entry", "pos_credential", "user_account", "outbox_event"} <= MODEL_TABLES


# ---------------------------------------------------------------- SQLite (every backend)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.db'}"


def test_upgrade_downgrade_upgrade_on_sqlite(sqlite_url: str) -> None:
    assert_upgrade_downgrade_upgrade(sqlite_url)


def test_the_comparison_sees_a_missing_schema(sqlite_url: str) -> None:
    """Guard: on an empty database the comparison reports every table, so an empty diff means something."""
    diff = schema_diff(sqlite_url)
    added = {entry[1].name for entry in diff if isinstance(entry, tuple) and entry[0] == "add_table"}
    assert added == MODEL_TABLES


def test_models_match_the_migrations_on_sqlite(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    assert schema_diff(sqlite_url) == []


def test_step_by_step_upgrade_reaches_head_on_sqlite(sqlite_url: str) -> None:
    """Each revision upgrades from its parent: walking one step at a time ends at the same head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    for revision in revisions:
        migrate.upgrade(sqlite_url, revision)
        assert current_revision(sqlite_url) == revision
    for revision in reversed(revisions[:-1]):
        migrate.downgrade(sqlite_url, revision)
        assert current_revision(sqlite_url) == revision
    migrate.downgrade(sqlite_url, "base")
    assert table_names(sqlite_url) == {"alembic_version"}


# ---------------------------------------------------------------- PostgreSQL (a brand-new database)


@pytest.fixture
def postgres_url(database_url: str, is_postgres: bool) -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards."""
    if not is_postgres:
        pytest.skip("needs PostgreSQL (set TALLYPASS_TEST_DATABASE_URL)")
    name = f"tp_mig_{uuid.uuid4().hex[:8]}"
    admin: Engine = create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgres(postgres_url: str) -> None:
    assert_upgrade_downgrade_upgrade(postgres_url)


@pytest.mark.postgres
def test_models_match_the_migrations_on_postgres(postgres_url: str) -> None:
    migrate.upgrade(postgres_url)
    assert schema_diff(postgres_url) == []
