"""Stores over the API: list, create, read, update; their POS keys (admin): list, create, rotate with an
overlap, revoke. A key's secret is in the answer that creates it and never again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from flask import current_app
from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import func, select

from app.database import get_session
from app.db import utcnow
from app.errors import FieldError, InvalidInput
from app.field_types import line, optional_line
from app.merchants import stores
from app.models import PosCredential, Store
from app.web.api import api_actor, bp, get_or_404, program_by_slug
from app.web.api._models import In, Out, ProgramSlug, TimeZoneName
from app.web.api.openapi import operation

TAG = "stores"
MAX_PER_PAGE = 100
# Coordinates come in pairs: both numbers, or both null (JSON Schema: dependentRequired, and if/then on types).
PAIRED = {
    "dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]},
    "allOf": [{"if": {"required": [a], "properties": {a: {"type": kind}}},
               "then": {"properties": {b: {"type": kind}}}}
              for a, b in (("latitude", "longitude"), ("longitude", "latitude")) for kind in ("number", "null")],
}
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class _Paired(In):
    model_config = ConfigDict(json_schema_extra=PAIRED)

    @model_validator(mode="after")
    def _both_or_neither(self) -> Any:
        given = self.model_fields_set & {"latitude", "longitude"}
        if len(given) == 1 or (given and (self.latitude is None) != (self.longitude is None)):  # type: ignore[attr-defined]
            missing = "longitude" if "latitude" in given and self.latitude is not None else "latitude"  # type: ignore[attr-defined]
            raise InvalidInput("send both coordinates, or null for both",
                               errors=[FieldError(missing, "give both latitude and longitude, or null for both")])
        return self


class StoreIn(_Paired):
    program: ProgramSlug
    name: line(120)  # type: ignore[valid-type]
    address: optional_line(255) = ""  # type: ignore[valid-type]
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimeZoneName | None = Field(default=None, description="Default: the programme's.")


class StorePatch(_Paired):
    """Only the fields sent change; send both coordinates, or null for both to clear them. A null name, address
    or time zone leaves it as it is."""

    name: line(120) | None = None  # type: ignore[valid-type]
    address: optional_line(255) | None = None  # type: ignore[valid-type]
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimeZoneName | None = None


class StoresQuery(In):
    program: ProgramSlug
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=MAX_PER_PAGE)


class RotateIn(In):
    overlap_hours: int = Field(default=24, ge=0, le=720,
                               description="How long the old key keeps working (0: it stops now; at most 30 days).")


class StoreOut(Out):
    """A store."""

    id: int
    program: str
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    timezone: str
    live_keys: int
    closed_at: datetime | None = Field(description="When the store closed (its POS keys were revoked then); "
                                                   "null: open.")


class StoreListOut(Out):
    """A page of a programme's stores, by name."""

    items: list[StoreOut]
    page: int
    per_page: int
    total: int
    next: int | None


class KeyOut(Out):
    """A POS key (never its secret). ``revoked_at`` in the future: a rotation's overlap, the key works until then."""

    key_id: str
    created_at: datetime
    revoked_at: datetime | None
    state: str = Field(description="live, retiring (revocation scheduled) or revoked")


class KeyListOut(Out):
    """A store's POS keys, newest first."""

    items: list[KeyOut]


class IssuedKeyOut(Out):
    """A new POS key with its secret: shown in this answer only. After a rotation, ``replaced`` is the old key."""

    key_id: str
    secret: str
    created_at: datetime
    replaced: KeyOut | None = None


def _store_out(store: Store, live: int) -> StoreOut:
    return StoreOut(id=store.id, program=store.program.slug, name=store.name, address=store.address,
                    latitude=store.latitude, longitude=store.longitude, timezone=store.timezone, live_keys=live,
                    closed_at=store.closed_at)


def _one(store: Store) -> StoreOut:
    counts = stores.live_key_counts(get_session(), store_ids=[store.id], now=utcnow())
    return _store_out(store, counts.get(store.id, 0))


def _key_out(key: PosCredential, now: datetime) -> KeyOut:
    return KeyOut(key_id=key.key_id, created_at=key.created_at, revoked_at=key.revoked_at,
                  state=stores.key_state(key, now))


def _store(store_id: int) -> Store:
    return get_or_404(Store, store_id, "store")


def _key(store: Store, key_id: str) -> PosCredential:
    return stores.store_credential(get_session(), store=store, key_id=key_id)


@bp.get("/stores")
@operation(summary="A programme's stores", tag=TAG, query=StoresQuery, responses={200: StoreListOut})
def list_stores(query: StoresQuery) -> StoreListOut:
    program, db = program_by_slug(query.program), get_session()
    where = Store.program_id == program.id
    total = db.scalar(select(func.count()).select_from(Store).where(where)) or 0
    rows = list(db.scalars(select(Store).where(where).order_by(Store.name, Store.id)
                           .offset((query.page - 1) * query.per_page).limit(query.per_page)))
    counts = stores.live_key_counts(db, store_ids=[s.id for s in rows], now=utcnow())
    more = query.page * query.per_page < total
    return StoreListOut(items=[_store_out(s, counts.get(s.id, 0)) for s in rows], page=query.page,
                        per_page=query.per_page, total=total, next=query.page + 1 if more else None)


@bp.post("/stores")
@operation(summary="Create a store", tag=TAG, body=StoreIn, responses={201: StoreOut}, role="admin")
def create_store(body: StoreIn) -> tuple[StoreOut, int]:
    program, db = program_by_slug(body.program), get_session()
    store = stores.create_store(db, program=program, name=body.name, address=body.address, latitude=body.latitude,
                                longitude=body.longitude, timezone=body.timezone, actor=api_actor(), now=utcnow())
    out = _one(store)
    db.commit()
    return out, 201


@bp.get("/stores/<int:store_id>")
@operation(summary="A store", tag=TAG, responses={200: StoreOut})
def get_store(store_id: int) -> StoreOut:
    return _one(_store(store_id))


@bp.patch("/stores/<int:store_id>")
@operation(summary="Change a store's name, address, coordinates or time zone", tag=TAG, body=StorePatch,
           responses={200: StoreOut}, role="admin")
def update_store(store_id: int, body: StorePatch) -> StoreOut:
    store, db = _store(store_id), get_session()
    changes = body.model_dump(include=body.model_fields_set)
    for required in ("name", "timezone", "address"):
        if changes.get(required, "") is None:
            changes.pop(required)  # null means "unchanged" for fields a store always has
    stores.update_store(db, store=store, changes=changes, actor=api_actor(), now=utcnow())
    out = _one(store)
    db.commit()
    return out


@bp.post("/stores/<int:store_id>/close")
@operation(summary="Close a store: kept for history, every POS key revoked now, no new key", tag=TAG,
           responses={200: StoreOut}, role="admin", problems={409: "The store is already closed."})
def close_store(store_id: int) -> StoreOut:
    store, db = _store(store_id), get_session()
    stores.close_store(db, store=store, actor=api_actor(), now=utcnow())
    out = _one(store)
    db.commit()
    return out


@bp.get("/stores/<int:store_id>/keys")
@operation(summary="A store's POS keys (never their secrets)", tag=TAG, responses={200: KeyListOut}, role="admin")
def list_keys(store_id: int) -> KeyListOut:
    store, now = _store(store_id), utcnow()
    return KeyListOut(items=[_key_out(k, now) for k in stores.credentials(get_session(), store=store)])


@bp.post("/stores/<int:store_id>/keys")
@operation(summary="Create a POS key; its secret is in this answer only", tag=TAG, responses={201: IssuedKeyOut},
           role="admin", problems={409: "The store is closed."})
def create_key(store_id: int) -> tuple[IssuedKeyOut, int]:
    store, db, now = _store(store_id), get_session(), utcnow()
    issued = stores.issue_credential(db, store=store, secret_key=current_app.config["SECRET_KEY"], actor=api_actor(),
                                     now=now)
    out = IssuedKeyOut(key_id=issued.credential.key_id, secret=issued.secret, created_at=issued.credential.created_at)
    db.commit()
    return out, 201


@bp.post("/stores/<int:store_id>/keys/<key_id>/rotate")
@operation(summary="Rotate a POS key: a new key now, the old one refused after the overlap", tag=TAG,
           body=RotateIn, responses={201: IssuedKeyOut}, role="admin")
def rotate_key(store_id: int, key_id: str, body: RotateIn) -> tuple[IssuedKeyOut, int]:
    store, db, now = _store(store_id), get_session(), utcnow()
    old = _key(store, key_id)
    issued = stores.rotate_credential(db, credential=old, overlap=timedelta(hours=body.overlap_hours),
                                      secret_key=current_app.config["SECRET_KEY"], actor=api_actor(), now=now)
    out = IssuedKeyOut(key_id=issued.credential.key_id, secret=issued.secret, created_at=issued.credential.created_at,
                       replaced=_key_out(old, now))
    db.commit()
    return out, 201


@bp.post("/stores/<int:store_id>/keys/<key_id>/revoke")
@operation(summary="Revoke a POS key now", tag=TAG, responses={200: KeyOut}, role="admin")
def revoke_key(store_id: int, key_id: str) -> KeyOut:
    store, db, now = _store(store_id), get_session(), utcnow()
    key = stores.revoke_credential(db, key_id=_key(store, key_id).key_id, actor=api_actor(), now=now)
    out = _key_out(key, now)
    db.commit()
    return out
