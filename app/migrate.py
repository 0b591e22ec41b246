"""Alembic, driven from code: ``flask --app app db upgrade`` and the tests use the same entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str | None = None, *, connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(database_url: str | None = None, revision: str = "head", *, connection: Any = None) -> None:
    command.upgrade(alembic_config(database_url, connection=connection), revision)


def downgrade(database_url: str | None = None, revision: str = "base", *, connection: Any = None) -> None:
    command.downgrade(alembic_config(database_url, connection=connection), revision)


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())
