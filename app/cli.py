"""Operator commands (CONTRACTS.md §1): ``flask --app app <command>``. Commands that create something
accept ``--json`` and then print exactly one JSON object on stdout. Each command owns its transaction."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import migrate
from app.database import sessions
from app.errors import AppError
from app.models import Program, User

db_cli = AppGroup("db", help="Database schema (Alembic).")
store_cli = AppGroup("store", help="Stores and their POS credentials.")
user_cli = AppGroup("user", help="Dashboard users.")
token_cli = AppGroup("token", help="Bearer tokens for the JSON API.")
program_cli = AppGroup("program", help="Loyalty programmes.")


def init_app(app: Flask) -> None:
    for group in (db_cli, store_cli, user_cli, token_cli, program_cli):
        app.cli.add_command(group)
    app.cli.add_command(demo)
    app.cli.add_command(dev_certs)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _problems(error: AppError) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in error.errors) or error.detail


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate TALLYPASS_DATABASE_URL to REVISION (default: the latest schema)."""
    migrate.upgrade(current_app.config["TALLYPASS"].database_url, revision)
    click.echo(f"database at {revision}", err=True)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate back to REVISION ("base" empties the database)."""
    migrate.downgrade(current_app.config["TALLYPASS"].database_url, revision)


@click.command("demo")
@with_appcontext
@click.option("--customers", default=300, show_default=True, help="How many demo customers to create.")
@click.option("--remove", is_flag=True,
              help="Remove the demo programme and everything it made (customers, cards, stores, campaigns…).")
@click.option("--if-empty", is_flag=True,
              help="Load it only while no programme of your own exists (what `make run` does).")
def demo(customers: int, remove: bool, if_empty: bool) -> None:
    """Idempotently load the demo programme, stores and customers with purchase history (or remove it)."""
    from sqlalchemy import select

    from app.demo import DEMO_SLUG, load_demo, remove_demo
    from app.merchants.stores import issue_credential
    from app.models import Card
    from app.wallet.links import card_links

    base = current_app.config["TALLYPASS"].base_url
    if remove:
        with sessions().begin() as session:
            removed = remove_demo(session, actor="cli")
        if removed is None:
            click.echo("no demo programme; nothing removed")
        else:
            click.echo("demo programme removed: " + ", ".join(f"{n} {table}" for table, n in removed.items() if n))
        return
    with sessions().begin() as session:
        if if_empty and session.scalar(select(Program.id).where(Program.slug != DEMO_SLUG).limit(1)) is not None:
            click.echo("a programme of your own exists; the demo is not loaded")
            return
        summary = load_demo(session, customers=customers)
        sample = session.scalar(select(Card).where(Card.program_id == summary.program.id).order_by(Card.id))
        sample_pass = card_links(sample, base)["apple_pass"] if sample else None
        if not summary.created:
            click.echo(f"demo programme '{summary.program.slug}' already loaded; nothing changed")
            if sample_pass:
                click.echo(f"a demo card's Apple Wallet pass: {sample_pass}")
            return
        credential = issue_credential(session, store=summary.stores[0],
                                      secret_key=current_app.config["SECRET_KEY"])
    click.echo(f"demo programme '{summary.program.name}' ({summary.program.slug}): "
               f"{len(summary.stores)} stores, {summary.customers} customers, "
               f"{summary.purchases} purchases, {summary.refunds} refunds")
    click.echo(f"POS key for store '{summary.stores[0].name}': key_id={credential.credential.key_id} "
               f"secret={credential.secret}  (shown once)")
    click.echo(f"health: {base}/healthz   POS API: {base}/api/v1/pos/")
    click.echo(f"sign-up page: {base}/join/{summary.program.slug}   counter poster: "
               f"{base}/join/{summary.program.slug}/poster")
    if sample_pass:
        click.echo(f"a demo card's page: {sample_pass.removesuffix('/apple.pkpass')}")
        click.echo(f"a demo card's Apple Wallet pass: {sample_pass}")


@store_cli.command("create")
@click.argument("name")
@click.option("--lat", type=click.FloatRange(-90, 90), help="Latitude of the store.")
@click.option("--lon", type=click.FloatRange(-180, 180), help="Longitude of the store.")
@click.option("--address", default="", help="Street address.")
@click.option("--timezone", "tz", default=None, help="IANA time zone (default: the programme's).")
@click.option("--program", "program_slug", default=None, help="Programme slug (needed when there are several).")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "key_id", "secret"} as JSON.')
def store_create(name: str, lat: float | None, lon: float | None, address: str, tz: str | None,
                 program_slug: str | None, as_json: bool) -> None:
    """Create a store and its first POS credential. The secret is shown once."""
    from app.merchants.stores import create_store, issue_credential

    if (lat is None) != (lon is None):
        _fail("give both --lat and --lon, or neither")
    with sessions().begin() as session:
        stmt = select(Program)
        if program_slug:
            stmt = stmt.where(Program.slug == program_slug)
        programs = session.scalars(stmt.limit(2)).all()
        if not programs:
            _fail(f"no programme {program_slug!r}" if program_slug
                  else "no programme yet: run `flask --app app demo` or create one first")
        if len(programs) > 1:
            _fail("several programmes exist: choose one with --program SLUG")
        try:
            store = create_store(session, program=programs[0], name=name, latitude=lat, longitude=lon,
                                 address=address, timezone=tz)
        except AppError as exc:
            _fail(_problems(exc))
        issued = issue_credential(session, store=store, secret_key=current_app.config["SECRET_KEY"])
        result = {"id": store.id, "key_id": issued.credential.key_id, "secret": issued.secret}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"store {result['id']} '{name}' created\n  key_id: {result['key_id']}\n"
                   f"  secret: {result['secret']}  (shown once; store it in the POS now)")


@user_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "marketer", "viewer", "cashier"]), required=True)
@click.option("--store", "store_ids", type=int, multiple=True,
              help="A store a cashier works at (repeat for several; a cashier needs one at least).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "email", "role", "stores"} as JSON.')
def user_create(email: str, role: str, store_ids: tuple[int, ...], password_stdin: bool, as_json: bool) -> None:
    """Create a user of the dashboard, or a cashier of the till; the password comes from a prompt or standard
    input."""
    from app.merchants.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with sessions().begin() as session:
            user = create_user(session, email=email, password=password, role=role, store_ids=store_ids)
            result = {"id": user.id, "email": user.email, "role": user.role,
                      "stores": [store.id for store in user.stores]}
    except AppError as exc:
        _fail(_problems(exc))
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"user {result['email']} ({result['role']}) created")


def _user_named(session: Session, email: str) -> User:
    """:raise click.ClickException: no user has this e-mail address."""
    from app.merchants.users import find_user

    user = find_user(session, email=email)
    if user is None:
        raise click.ClickException(f"no user has the e-mail address {email.strip().lower()!r} "
                                   "(see `flask --app app user list`)")
    return user


@user_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(email: str, password_stdin: bool) -> None:
    """Give a user a new password; every session they hold ends. (Also finishes an invitation not used yet.)"""
    from app.db import utcnow
    from app.merchants.users import set_password

    with sessions().begin() as session:
        _user_named(session, email)  # before asking for a password
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        with sessions().begin() as session:
            user = _user_named(session, email)
            ended = set_password(session, user=user, password=password, now=utcnow(), actor="cli")
            shown = user.email
    except AppError as exc:
        _fail(_problems(exc))
    click.echo(f"password of {shown} changed; {ended} session{'s' if ended != 1 else ''} ended")


@user_cli.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: they cannot sign in, and every session they hold ends now."""
    from app.db import utcnow
    from app.merchants.users import disable_user

    try:
        with sessions().begin() as session:
            user = _user_named(session, email)
            ended = disable_user(session, user=user, now=utcnow(), actor="cli")
            shown = user.email
    except AppError as exc:
        _fail(exc.detail)
    click.echo(f"user {shown} disabled; {ended} session{'s' if ended != 1 else ''} ended")


@user_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"users": [...]} as JSON.')
def user_list(as_json: bool) -> None:
    """Every user: e-mail, role, stores (of a cashier), state, two-factor, last sign-in."""
    from app.merchants.users import all_users

    with sessions().begin() as session:
        rows = [{"id": user.id, "email": user.email, "role": user.role,
                 "stores": [store.id for store in user.stores], "active": user.is_active,
                 "invitation_pending": user.invitation_pending, "two_factor": user.two_factor,
                 "last_sign_in": user.last_login_at.isoformat() if user.last_login_at else None,
                 "created_at": user.created_at.isoformat()} for user in all_users(session)]
    if as_json:
        click.echo(json.dumps({"users": rows}))
        return
    if not rows:
        click.echo("no users yet: create one with `flask --app app user create EMAIL --role admin`")
    for row in rows:
        state = "disabled" if not row["active"] else "invited" if row["invitation_pending"] else "active"
        stores = f" stores {','.join(map(str, row['stores']))}" if row["stores"] else ""
        click.echo(f"{row['id']:>5}  {row['email']}  {row['role']}{stores}  {state}"
                   f"{'  2fa' if row['two_factor'] else ''}  last sign-in {row['last_sign_in'] or 'never'}")


@program_cli.command("create")
@click.argument("name")
@click.option("--slug", required=True, help="The programme's short name in its URLs (/join/SLUG).")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. EUR, MDL, USD.")
@click.option("--timezone", "tz", required=True, help="IANA time zone, e.g. Europe/Chisinau.")
@click.option("--phone-region", default=None,
              help="Two-letter country whose local numbers (069 123 457) the programme's pages read, e.g. MD.")
@click.option("--kind", type=click.Choice(["points", "stamps"]), default=None,
              help="The card kind (default: the template's, else points).")
@click.option("--template", default=None, help="Start from a template (see `program templates`).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"id", "slug", "name", "kind", "join_url", "poster_url", ...} as JSON.')
def program_create(name: str, slug: str, currency: str, tz: str, phone_region: str | None, kind: str | None,
                   template: str | None, as_json: bool) -> None:
    """Create a loyalty programme, optionally from a template; everything stays editable in the dashboard."""
    from app.loyalty.program_creation import create_program
    from app.wallet.links import program_links

    base = current_app.config["TALLYPASS"].base_url
    try:
        with sessions().begin() as session:
            program = create_program(session, name=name, slug=slug, currency=currency, timezone=tz,
                                     phone_region=phone_region, kind=kind, template=template, actor="cli")
            result = {"id": program.id, "slug": program.slug, "name": program.name, "kind": program.kind,
                      "currency": program.currency, "timezone": program.timezone,
                      "phone_region": program.phone_region, "template": template,
                      "tiers": [tier.name for tier in program.tiers], **program_links(program.slug, base)}
    except AppError as exc:
        _fail(_problems(exc))
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"programme {result['id']} '{result['name']}' ({result['slug']}, {result['kind']}, "
                   f"{result['currency']}) created\n  sign-up page:   {result['join_url']}\n"
                   f"  counter poster: {result['poster_url']}\n"
                   f"  next: `flask --app app store create NAME --program {result['slug']}`, then the dashboard's "
                   "programme page to adjust rules, tiers and the card design")


@program_cli.command("templates")
@click.option("--json", "as_json", is_flag=True, help="Print the templates with their rules as one JSON object.")
def program_templates(as_json: bool) -> None:
    """The templates `program create --template` accepts."""
    from app.loyalty.program_templates import TEMPLATES

    if as_json:
        click.echo(json.dumps({"templates": [t.as_dict() for t in TEMPLATES.values()]}))
        return
    for template in TEMPLATES.values():
        click.echo(f"{template.name:<16} {template.kind:<7} {template.title}: {template.description}")


@click.command("dev-certs")
@with_appcontext
@click.option("--out", "out_dir", default="instance/certs", show_default=True, type=click.Path(file_okay=False))
def dev_certs(out_dir: str) -> None:
    """Generate stand-in Apple/Google/VAPID credentials for development and tests (never overwrites)."""
    from app.channels.dev_credentials import write_dev_credentials

    settings = current_app.config["TALLYPASS"]
    written = write_dev_credentials(out_dir, pass_type_id=settings.apple_pass_type_id,
                                    team_id=settings.apple_team_id)
    for path, created in written.items():
        click.echo(f"{'created' if created else 'kept   '} {path}")


@token_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "marketer", "viewer"]), default="marketer", show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "name", "role", "token"} as JSON.')
def token_create(name: str, role: str, as_json: bool) -> None:
    """A bearer token for /api/v1 (shown once; only its hash is stored)."""
    from app.db import utcnow
    from app.merchants import tokens

    with sessions().begin() as session:
        row, token = tokens.issue(session, name=name, role=role, now=utcnow())
        result = {"id": row.id, "name": row.name, "role": row.role, "token": token}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"token for {name} ({role}): {token}  (shown once)")
