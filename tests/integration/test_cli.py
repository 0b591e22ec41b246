"""Operator commands (CONTRACTS.md §1): ``flask --app app <command>``.

In-process tests use ``app.test_cli_runner()`` on a ``FlaskGroup``, the group behind the real ``flask``
executable (it loads the app and pushes its app context). The ``app`` fixture's session factory is bound
to the test's rolled-back connection, so every command's ``sessions().begin()`` joins it through a savepoint and
``db_session`` sees what the command wrote. The last tests run ``flask`` in real subprocesses against a
fresh SQLite file, as an operator would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.orm import Session

from app.channels.dev_credentials import FILE_NAMES
from app.db import Base
from app.merchants.stores import credential_for
from app.merchants.users import check_password
from app.models import Card, Customer, LedgerEntry, PosCredential, Program, Purchase, Store, User
from tests.integration.test_dev_credentials import CONTRACT_FILES as CONTRACT_CERT_FILES

Factory = Callable[..., Any]
PASSWORD = "long-enough-password"


def run(app: Flask, *args: str, input: str | None = None) -> Result:  # noqa: A002
    """``flask --app app ARGS`` for the test's app, in process."""
    flask = FlaskGroup(load_dotenv=False, set_debug_flag=False)
    return app.test_cli_runner().invoke(cli=flask, args=list(args), input=input)


def one_json_object(stdout: str) -> dict[str, Any]:
    """``--json``: exactly one JSON object on stdout, nothing else."""
    assert stdout.endswith("\n") and stdout.count("\n") == 1, f"expected one line on stdout, got {stdout!r}"
    value = json.loads(stdout)
    assert isinstance(value, dict)
    return value


# ---------------------------------------------------------------- store create


def test_store_create_prints_the_credential_once(app: Flask, db_session: Session, make_program: Factory) -> None:
    program = make_program()

    result = run(app, "store", "create", "Shop", "--lat", "47.0", "--lon", "28.8", "--json")

    assert result.exit_code == 0, result.output
    created = one_json_object(result.stdout)
    assert set(created) == {"id", "key_id", "secret"}
    assert isinstance(created["id"], int)

    store = db_session.get(Store, created["id"])
    assert store is not None
    assert (store.name, store.program_id, store.latitude, store.longitude) == ("Shop", program.id, 47.0, 28.8)
    assert store.timezone == program.timezone

    found, secret = credential_for(db_session, key_id=created["key_id"], secret_key=app.config["SECRET_KEY"])
    assert found.id == store.id
    assert secret == created["secret"]

    stored = db_session.scalars(select(PosCredential).where(PosCredential.key_id == created["key_id"])).one()
    assert stored.store_id == store.id
    assert stored.secret_encrypted != created["secret"].encode()
    assert created["secret"].encode() not in stored.secret_encrypted


def test_store_create_without_json_shows_the_secret_for_humans(
    app: Flask, db_session: Session, make_program: Factory
) -> None:
    make_program()
    result = run(app, "store", "create", "Corner shop")
    assert result.exit_code == 0, result.output
    assert "key_id: pk_" in result.stdout
    assert "secret: sk_" in result.stdout
    assert "shown once" in result.stdout
    store = db_session.scalars(select(Store).where(Store.name == "Corner shop")).one()
    assert store.latitude is None and store.longitude is None


def test_store_create_makes_distinct_credentials(app: Flask, make_program: Factory) -> None:
    make_program()
    first = one_json_object(run(app, "store", "create", "One", "--json").stdout)
    second = one_json_object(run(app, "store", "create", "Two", "--json").stdout)
    assert first["id"] != second["id"]
    assert first["key_id"] != second["key_id"]
    assert first["secret"] != second["secret"]


def test_store_create_without_a_programme_fails(app: Flask, db_session: Session) -> None:
    result = run(app, "store", "create", "Shop", "--json")
    assert result.exit_code != 0
    assert "no programme" in result.stderr
    assert "demo" in result.stderr  # says how to get one
    assert result.stdout == ""
    assert db_session.scalar(select(func.count()).select_from(Store)) == 0


@pytest.mark.parametrize("coordinates", [["--lat", "47.0"], ["--lon", "28.8"]])
def test_store_create_needs_both_coordinates(
    app: Flask, db_session: Session, make_program: Factory, coordinates: list[str]
) -> None:
    make_program()
    result = run(app, "store", "create", "Shop", *coordinates, "--json")
    assert result.exit_code != 0
    assert "--lat" in result.stderr and "--lon" in result.stderr
    assert result.stdout == ""
    assert db_session.scalar(select(func.count()).select_from(Store)) == 0


@pytest.mark.parametrize("coordinates", [["--lat", "91", "--lon", "0"], ["--lat", "0", "--lon", "-181"]])
def test_store_create_refuses_coordinates_out_of_range(
    app: Flask, make_program: Factory, coordinates: list[str]
) -> None:
    make_program()
    result = run(app, "store", "create", "Shop", *coordinates)
    assert result.exit_code != 0
    assert result.stdout == ""


def test_store_create_with_several_programmes_needs_program(
    app: Flask, db_session: Session, make_program: Factory
) -> None:
    make_program()
    second = make_program()

    result = run(app, "store", "create", "Shop", "--json")
    assert result.exit_code != 0
    assert "--program" in result.stderr
    assert db_session.scalar(select(func.count()).select_from(Store)) == 0

    result = run(app, "store", "create", "Shop", "--program", second.slug, "--json")
    assert result.exit_code == 0, result.output
    store = db_session.get(Store, one_json_object(result.stdout)["id"])
    assert store is not None and store.program_id == second.id


def test_store_create_with_an_unknown_programme_fails(app: Flask, make_program: Factory) -> None:
    make_program()
    result = run(app, "store", "create", "Shop", "--program", "no-such-programme", "--json")
    assert result.exit_code != 0
    assert "no-such-programme" in result.stderr


# ---------------------------------------------------------------- user create


def test_user_create_from_stdin(app: Flask, db_session: Session) -> None:
    result = run(
        app, "user", "create", "a@b.co", "--role", "marketer", "--password-stdin", "--json", input=PASSWORD + "\n"
    )

    assert result.exit_code == 0, result.output
    created = one_json_object(result.stdout)
    assert set(created) == {"id", "email", "role", "stores"}
    assert created["email"] == "a@b.co" and created["stores"] == []
    assert created["role"] == "marketer"

    user = db_session.get(User, created["id"])
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert check_password(user, PASSWORD)
    assert not check_password(user, "another-long-password")
    assert not check_password(user, PASSWORD + " ")


def test_a_cashier_is_created_bound_to_its_stores(app: Flask, db_session: Session, make_program: Factory) -> None:
    program = make_program()
    first, second = (run(app, "store", "create", name, "--program", program.slug, "--json") for name in ("A", "B"))
    stores = [one_json_object(result.stdout)["id"] for result in (first, second)]

    result = run(app, "user", "create", "till@b.co", "--role", "cashier", "--store", str(stores[1]), "--store",
                 str(stores[0]), "--password-stdin", "--json", input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    created = one_json_object(result.stdout)
    assert created["role"] == "cashier" and created["stores"] == sorted(stores)
    user = db_session.get(User, created["id"])
    assert user is not None and [store.id for store in user.stores] == sorted(stores)


@pytest.mark.parametrize(("role", "stores", "message"), [
    ("cashier", [], "a cashier works at one store at least"),
    ("cashier", ["999999"], "no store has the id 999999"),
    ("marketer", ["STORE"], "only a cashier is bound to stores"),
])
def test_a_cashier_needs_stores_and_only_a_cashier_has_them(app: Flask, db_session: Session, make_program: Factory,
                                                           role: str, stores: list[str], message: str) -> None:
    program = make_program()
    store = one_json_object(run(app, "store", "create", "A", "--program", program.slug, "--json").stdout)["id"]
    options = [part for value in stores for part in ("--store", str(store) if value == "STORE" else value)]

    result = run(app, "user", "create", "x@b.co", "--role", role, *options, "--password-stdin", "--json",
                 input=PASSWORD + "\n")

    assert result.exit_code != 0 and message in result.stderr
    assert db_session.scalars(select(User).where(User.email == "x@b.co")).first() is None


def test_user_create_from_stdin_with_crlf(app: Flask, db_session: Session) -> None:
    result = run(
        app, "user", "create", "crlf@b.co", "--role", "viewer", "--password-stdin", "--json", input=PASSWORD + "\r\n"
    )
    assert result.exit_code == 0, result.output
    user = db_session.get(User, one_json_object(result.stdout)["id"])
    assert user is not None and check_password(user, PASSWORD)


def test_user_create_from_the_prompt(app: Flask, db_session: Session) -> None:
    result = run(app, "user", "create", "admin@b.co", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "admin@b.co (admin) created" in result.stdout
    assert PASSWORD not in result.output  # hidden input is not echoed
    user = db_session.scalars(select(User).where(User.email == "admin@b.co")).one()
    assert check_password(user, PASSWORD)


def test_user_create_with_a_short_password_fails(app: Flask, db_session: Session) -> None:
    result = run(app, "user", "create", "a@b.co", "--role", "marketer", "--password-stdin", "--json", input="short\n")
    assert result.exit_code != 0
    assert "password" in result.stderr
    assert "at least 10 characters" in result.stderr
    assert result.stdout == ""
    assert db_session.scalar(select(func.count()).select_from(User)) == 0


def test_user_create_with_an_empty_stdin_fails(app: Flask, db_session: Session) -> None:
    result = run(app, "user", "create", "a@b.co", "--role", "viewer", "--password-stdin", input="")
    assert result.exit_code != 0
    assert "password" in result.stderr
    assert db_session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize("second_email", ["a@b.co", "A@B.CO", " a@b.co "])
def test_user_create_with_a_taken_email_fails(app: Flask, db_session: Session, second_email: str) -> None:
    first = run(app, "user", "create", "a@b.co", "--role", "marketer", "--password-stdin", input=PASSWORD + "\n")
    assert first.exit_code == 0, first.output

    again = run(
        app,
        "user",
        "create",
        second_email,
        "--role",
        "admin",
        "--password-stdin",
        "--json",
        input="another-long-password\n",
    )
    assert again.exit_code != 0
    assert "already exists" in again.stderr
    assert again.stdout == ""
    assert db_session.scalar(select(func.count()).select_from(User)) == 1


def test_user_create_refuses_an_unknown_role(app: Flask) -> None:
    result = run(app, "user", "create", "a@b.co", "--role", "owner", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert "owner" in result.stderr


def test_user_create_refuses_a_bad_email(app: Flask) -> None:
    result = run(app, "user", "create", "not-an-email", "--role", "viewer", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert "email" in result.stderr


# ---------------------------------------------------------------- app.cli directly (Flask's testing recipe)


def test_app_cli_group_commands_run_under_the_test_runner(app: Flask, make_program: Factory) -> None:
    """The AppGroup commands (db, store, user) push their own app context."""
    make_program()
    result = app.test_cli_runner().invoke(args=["store", "create", "Shop", "--json"])
    assert result.exit_code == 0, result.output
    assert set(one_json_object(result.stdout)) == {"id", "key_id", "secret"}


@pytest.mark.parametrize("args", [["demo", "--customers", "1"], ["dev-certs", "--out", "{tmp}"]])
def test_every_command_runs_under_the_plain_test_runner(app: Flask, tmp_path: Path, args: list[str]) -> None:
    result = app.test_cli_runner().invoke(args=[a.format(tmp=tmp_path / "certs") for a in args])
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- demo


def test_demo_loads_once_and_keeps_balances_equal_to_the_ledger(app: Flask, db_session: Session) -> None:
    result = run(app, "demo", "--customers", "20")

    assert result.exit_code == 0, result.output
    program = db_session.scalars(select(Program).where(Program.slug == "demo")).one()
    stores = db_session.scalar(select(func.count()).select_from(Store).where(Store.program_id == program.id))
    customers = db_session.scalar(select(func.count()).select_from(Customer))
    cards = db_session.scalar(select(func.count()).select_from(Card).where(Card.program_id == program.id))
    purchases = db_session.scalar(select(func.count()).select_from(Purchase))
    assert customers == cards == 20
    assert stores == 3
    assert purchases > 0
    summary = result.stdout.splitlines()[0]
    assert f"{stores} stores" in summary
    assert f"{customers} customers" in summary
    assert f"{purchases} purchases" in summary
    assert "refunds" in summary
    assert "key_id=pk_" in result.stdout  # a POS key for trying the API at once
    assert db_session.scalar(select(func.count()).select_from(PosCredential)) == 1

    again = run(app, "demo", "--customers", "20")
    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.stdout
    assert db_session.scalar(select(func.count()).select_from(Customer)) == customers
    assert db_session.scalar(select(func.count()).select_from(Purchase)) == purchases
    assert db_session.scalar(select(func.count()).select_from(PosCredential)) == 1

    db_session.expire_all()
    ledger_sum = (
        select(Card.id, Card.balance, func.coalesce(func.sum(LedgerEntry.points), 0))
        .outerjoin(LedgerEntry, LedgerEntry.card_id == Card.id)
        .group_by(Card.id, Card.balance)
    )
    rows = db_session.execute(ledger_sum).all()
    assert len(rows) == 20
    mismatched = [(card_id, balance, total) for card_id, balance, total in rows if balance != total]
    assert not mismatched, f"card balance != ledger sum for (card, balance, sum): {mismatched}"
    assert all(balance >= 0 for _, balance, _ in rows)
    assert any(balance > 0 for _, balance, _ in rows)


# ---------------------------------------------------------------- dev-certs


def test_dev_certs_creates_then_keeps(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "certs"

    first = run(app, "dev-certs", "--out", str(out))

    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert len(lines) == len(FILE_NAMES)
    assert all(line.startswith("created ") for line in lines), lines
    listed = {Path(line.split(maxsplit=1)[1]).name for line in lines}
    assert listed == set(FILE_NAMES)
    assert listed >= CONTRACT_CERT_FILES
    assert {p.name for p in out.iterdir()} == set(FILE_NAMES)
    before = {name: (out / name).read_bytes() for name in FILE_NAMES}

    second = run(app, "dev-certs", "--out", str(out))

    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert len(lines) == len(FILE_NAMES)
    assert all(line.startswith("kept ") for line in lines), lines
    assert {Path(line.split()[1]).name for line in lines} == set(FILE_NAMES)
    assert {name: (out / name).read_bytes() for name in FILE_NAMES} == before


def test_dev_certs_completes_a_partial_directory(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert run(app, "dev-certs", "--out", str(out)).exit_code == 0
    (out / "vapid-private.pem").unlink()

    result = run(app, "dev-certs", "--out", str(out))

    assert result.exit_code == 0, result.output
    status = {Path(line.split()[1]).name: line.split()[0] for line in result.stdout.splitlines()}
    assert status["vapid-private.pem"] == "created"
    assert {name for name, word in status.items() if word == "kept"} == set(FILE_NAMES) - {"vapid-private.pem"}


# ---------------------------------------------------------------- real processes, as an operator runs them


@pytest.fixture
def flask_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m flask --app app ...`` on a fresh SQLite file, with no developer settings."""
    database = tmp_path / "x.db"
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("TALLYPASS_")}
    env.update(TALLYPASS_DATABASE_URL=f"sqlite:///{database}", TALLYPASS_SECRET_KEY="x" * 40)
    env.pop("FLASK_APP", None)

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return flask


def test_operator_workflow_in_real_processes(
    flask_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    upgraded = flask_cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    database = tmp_path / "x.db"
    assert database.is_file()
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables

    without_programme = flask_cli("store", "create", "X", "--json")
    assert without_programme.returncode != 0
    assert "no programme" in without_programme.stderr
    assert without_programme.stdout == ""

    demo = flask_cli("demo", "--customers", "5")
    assert demo.returncode == 0, demo.stderr
    assert "5 customers" in demo.stdout

    created = flask_cli("store", "create", "X", "--json")
    assert created.returncode == 0, created.stderr
    credential = one_json_object(created.stdout)
    assert set(credential) == {"id", "key_id", "secret"}
    assert credential["key_id"].startswith("pk_")

    again = flask_cli("demo", "--customers", "5")
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout

    # Nothing was written next to the database: the configured key is used, no instance/ is made.
    assert not (tmp_path / "instance").exists()


def test_db_upgrade_is_idempotent_in_a_real_process(
    flask_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert flask_cli("db", "upgrade").returncode == 0
    second = flask_cli("db", "upgrade")
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
