"""Stores: the list, a store's details and map coordinates, its POS keys (create, rotate with an overlap,
revoke) and the POS integration guide with copyable signed ``curl`` commands. Viewers look; admins change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, current_app, flash, redirect, request, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.merchants import stores
from app.models import PosCredential, Program, Store
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires
from app.web.dashboard.pages import programme, render, validate_form
from app.web.forms import check_csrf

# How long the old key keeps working after a rotation: (hours, label).
OVERLAPS = ((0, "No overlap: the old key stops now"), (1, "1 hour"), (24, "24 hours (recommended)"),
            (168, "7 days"), (720, "30 days"))
DEFAULT_OVERLAP = 24
EXAMPLE_BARCODE = "1234567890128"
EXAMPLE_RECEIPT = "R-1001"


class StoreForm(BaseModel):
    """The store form as typed; the domain checks ranges, both-or-neither coordinates and the time zone."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    address: str = Field(default="", max_length=255)
    latitude: float | None = None
    longitude: float | None = None
    timezone: str = Field(min_length=1, max_length=64)

    @field_validator("latitude", "longitude", mode="before")
    @classmethod
    def _number(cls, value: Any) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return float(str(value).strip().replace(",", "."))
        except ValueError:
            raise ValueError("Enter a number in decimal degrees, like 47.0105.") from None


def _form_data() -> dict[str, str]:
    return {name: request.form.get(name, "")[:300].replace("\x00", "") for name in stores.STORE_FIELDS}


def _store(store_id: int) -> Store:
    store = get_session().get(Store, store_id)
    if store is None:
        raise NotFound("there is no such store")
    return store


def _programs() -> list[Program]:
    return list(get_session().scalars(select(Program).order_by(Program.name)))


def _credential(store: Store, credential_id: int) -> PosCredential:
    credential = get_session().get(PosCredential, credential_id)
    if credential is None or credential.store_id != store.id:
        raise NotFound("this store has no such POS key")
    return credential


def _secret_key() -> str:
    return current_app.config["SECRET_KEY"]


# ------------------------------------------------------------------------------------------------- the list


@bp.get("/stores", endpoint="stores")
@requires("viewer")
def store_list() -> Response:
    program, programs = programme()
    db = get_session()
    rows = list(db.scalars(select(Store).where(Store.program_id == program.id).order_by(Store.name, Store.id)))
    counts = stores.live_key_counts(db, store_ids=[s.id for s in rows], now=utcnow())
    return render("dashboard/stores.html", program=program, programs=programs, stores=rows, counts=counts)


# ------------------------------------------------------------------------------------------- create / edit


@bp.get("/stores/new")
@requires("admin")
def stores_new() -> Response:
    program, programs = programme()
    return _store_form(program, programs, None, {"timezone": program.timezone}, {}, status=200)


@bp.post("/stores/new")
@requires("admin")
def stores_create() -> Response:
    check_csrf()
    program, programs = programme()
    data = _form_data()
    form, errors = validate_form(StoreForm, data)
    if form is not None:
        db = get_session()
        try:
            store = stores.create_store(db, program=program, actor=current_user() or "dashboard", now=utcnow(),
                                        **form.model_dump())
        except InvalidInput as error:
            errors = {e.field: e.message for e in error.errors}
        else:
            db.commit()
            flash(f"Store “{store.name}” added. Create a POS key for its till below.", "success")
            return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)
    return _store_form(program, programs, None, data, errors, status=422)


@bp.get("/stores/<int:store_id>/edit")
@requires("admin")
def stores_edit(store_id: int) -> Response:
    store = _store(store_id)
    data = {"name": store.name, "address": store.address, "timezone": store.timezone,
            "latitude": "" if store.latitude is None else repr(store.latitude),
            "longitude": "" if store.longitude is None else repr(store.longitude)}
    return _store_form(store.program, _programs(), store, data, {}, status=200)


@bp.post("/stores/<int:store_id>/edit")
@requires("admin")
def stores_update(store_id: int) -> Response:
    check_csrf()
    store = _store(store_id)
    data = _form_data()
    form, errors = validate_form(StoreForm, data)
    if form is not None:
        db = get_session()
        try:
            stores.update_store(db, store=store, changes=form.model_dump(), actor=current_user() or "dashboard",
                                now=utcnow())
        except InvalidInput as error:
            errors = {e.field: e.message for e in error.errors}
        else:
            db.commit()
            flash(f"Store “{store.name}” saved.", "success")
            return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)
    return _store_form(store.program, _programs(), store, data, errors, status=422)


def _store_form(program: Program, programs: list[Program], store: Store | None, data: dict[str, str],
                errors: dict[str, str], *, status: int) -> Response:
    return render("dashboard/store_form.html", status=status, program=program, programs=programs, store=store,
                  form=data, errors=errors, timezones=stores.timezones())


# --------------------------------------------------------------------------------------- a store and its keys


@bp.get("/stores/<int:store_id>")
@requires("viewer")
def stores_show(store_id: int) -> Response:
    return _store_page(_store(store_id))


@bp.post("/stores/<int:store_id>/keys")
@requires("admin")
def stores_key_create(store_id: int) -> Response:
    check_csrf()
    store, db, now = _store(store_id), get_session(), utcnow()
    try:
        issued = stores.issue_credential(db, store=store, secret_key=_secret_key(),
                                         actor=current_user() or "dashboard", now=now)
    except Conflict as error:
        flash(error.detail[:1].upper() + error.detail[1:] + ".", "error")
        return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)
    db.commit()
    # Shown in this answer only (never stored in clear, never in a cookie): a reload will not show it again.
    return _store_page(store, issued=issued, status=201)


@bp.post("/stores/<int:store_id>/keys/<int:credential_id>/rotate")
@requires("admin")
def stores_key_rotate(store_id: int, credential_id: int) -> Response:
    check_csrf()
    store = _store(store_id)
    credential = _credential(store, credential_id)
    raw = request.form.get("overlap_hours", "")
    if not raw.isdigit() or int(raw) not in {hours for hours, _ in OVERLAPS}:
        return _store_page(store, errors={"overlap_hours": "Choose how long the old key keeps working."},
                           status=422)
    db, now = get_session(), utcnow()
    try:
        issued = stores.rotate_credential(db, credential=credential, overlap=timedelta(hours=int(raw)),
                                          secret_key=_secret_key(), actor=current_user() or "dashboard", now=now)
    except Conflict as error:
        flash(error.detail[:1].upper() + error.detail[1:] + ".", "error")
        return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)
    db.commit()
    return _store_page(store, issued=issued, rotated=credential, status=201)


@bp.post("/stores/<int:store_id>/keys/<int:credential_id>/revoke")
@requires("admin")
def stores_key_revoke(store_id: int, credential_id: int) -> Response:
    check_csrf()
    store = _store(store_id)
    credential = _credential(store, credential_id)
    db = get_session()
    stores.revoke_credential(db, key_id=credential.key_id, actor=current_user() or "dashboard", now=utcnow())
    db.commit()
    flash(f"POS key {credential.key_id} revoked: tills signing with it are refused from now on "
          "(within a few seconds).", "success")
    return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)


@bp.post("/stores/<int:store_id>/close")
@requires("admin")
def stores_close(store_id: int) -> Response:
    check_csrf()
    store = _store(store_id)
    if request.form.get("confirm") != "yes":
        return _store_page(store, errors={"confirm": "Tick the box to confirm that this store closes."}, status=422)
    db = get_session()
    try:
        revoked = stores.close_store(db, store=store, actor=current_user() or "dashboard", now=utcnow())
    except Conflict as error:
        flash(error.detail[:1].upper() + error.detail[1:] + ".", "error")
        return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)
    db.commit()
    flash(f"{store.name} is closed; {len(revoked)} POS key{'s' if len(revoked) != 1 else ''} revoked. Its purchases "
          "stay in the reports.", "success")
    return redirect(url_for("dashboard.stores_show", store_id=store.id), code=303)


def _store_page(store: Store, *, issued: stores.IssuedCredential | None = None,
                rotated: PosCredential | None = None, errors: dict[str, str] | None = None,
                status: int = 200) -> Response:
    db, now = get_session(), utcnow()
    keys = stores.credentials(db, store=store)
    states = {key.id: stores.key_state(key, now) for key in keys}
    guide_key = issued.credential if issued else next(
        (k for k in keys if states[k.id] == "live"), next((k for k in keys if states[k.id] == "retiring"), None))
    base = current_app.config["TALLYPASS"].base_url.rstrip("/")
    return render("dashboard/store.html", status=status, program=store.program, programs=_programs(), store=store,
                  keys=keys, states=states, issued=issued, rotated=rotated, errors=errors or {},
                  overlaps=OVERLAPS, default_overlap=DEFAULT_OVERLAP, guide=pos_guide(base, guide_key))


# ------------------------------------------------------------------------------------------ the POS guide


def pos_guide(base_url: str, key: PosCredential | None) -> dict[str, str]:
    """Shell commands that sign and send a purchase and a card lookup exactly as CONTRACTS.md §3 asks:
    ``Tallypass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``."""
    key_id = key.key_id if key is not None else "pk_your_key_id"
    setup = (
        "# Once per shell: this store's key id, and its secret (typed, so it stays out of your history)\n"
        f"KEY_ID='{key_id}'\n"
        "read -rsp 'POS secret: ' SECRET; echo\n"
    )
    purchase = (
        "# The exact bytes you send (put the real card number, receipt id and amount here)\n"
        f"BODY='{{\"receipt_id\":\"{EXAMPLE_RECEIPT}\",\"card\":\"{EXAMPLE_BARCODE}\",\"amount\":\"12.50\"}}'\n"
        "# Sign \"<unix time>.<body>\" with HMAC-SHA256 and the secret, in hex\n"
        "T=$(date +%s)\n"
        "SIG=$(printf '%s.%s' \"$T\" \"$BODY\" | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.*= //')\n"
        f"curl -sS -X POST '{base_url}/api/v1/pos/purchases' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -H \"Tallypass-Key: $KEY_ID\" \\\n"
        "  -H \"Tallypass-Signature: t=$T,v1=$SIG\" \\\n"
        f"  -H 'Idempotency-Key: {EXAMPLE_RECEIPT}' \\\n"
        "  --data-raw \"$BODY\"\n"
    )
    lookup = (
        "# The card number to look up; a GET has an empty body, so sign \"<unix time>.\" alone\n"
        f"CARD='{EXAMPLE_BARCODE}'\n"
        "T=$(date +%s)\n"
        "SIG=$(printf '%s.' \"$T\" | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.*= //')\n"
        f"curl -sS \"{base_url}/api/v1/pos/cards/$CARD\" \\\n"
        "  -H \"Tallypass-Key: $KEY_ID\" \\\n"
        "  -H \"Tallypass-Signature: t=$T,v1=$SIG\"\n"
    )
    return {"key_id": key_id, "has_key": "yes" if key is not None else "", "setup": setup, "purchase": purchase,
            "lookup": lookup, "base_url": base_url}
