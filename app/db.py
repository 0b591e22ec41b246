"""Engine, session factory and the declarative base.

Plain SQLAlchemy (not Flask-SQLAlchemy) so requests, Celery tasks, CLI commands and benchmarks share
one session factory. The entrypoint owns the transaction: services flush, the caller commits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    exc,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def count_rows(session: Session, query: Select[Any]) -> int:
    """How many rows ``query`` gives (for paging: its ORDER BY is dropped)."""
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def utcnow() -> datetime:
    return datetime.now(UTC)


PING_AFTER_IDLE_SECONDS = 10.0


def make_engine(url: str, *, pool_size: int = 10, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that sat idle, without a round trip per request.

    ``pool_pre_ping`` would ping on every checkout: a tenth of the POS API's CPU under load. A
    connection returned less than ``idle_seconds`` ago is trusted; an older one is pinged and, if dead,
    replaced before the request sees it. A server that dies under load fails the requests that were
    using it, and SQLAlchemy then discards every pooled connection it opened before the failure."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return  # new (just connected) or recently used
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise exc.DisconnectionError("an idle pooled connection is gone")  # the pool reconnects


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself, so SAVEPOINTs work (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite). IMMEDIATE takes the write lock up front: the
    # development server's concurrent writers then wait instead of failing with "database is locked".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(
    bind: Any, *, dispatch: Callable[[list[int]], None] | None = None, **options: Any
) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (views serialise after committing).

    ``dispatch`` receives the ids of outbox events once the transaction that wrote them has
    committed (see ``app.outbox``)."""
    from app import outbox  # local import: outbox imports the models, which import this module

    factory = sessionmaker(bind=bind, expire_on_commit=False, info={"outbox_dispatch": dispatch}, **options)
    outbox.install(factory)
    return factory


def update_rows(session: Session, table: Table, changes: Mapping[int, Mapping[str, Any]], *,
                also: Mapping[str, Any] | None = None, returning: Sequence[str] = ()) -> list[Row[Any]]:
    """Write many rows' own new values (``changes``: id → {column: value}, the same columns for every row)
    in one statement, plus ``also`` (SQL expressions for every row, like ``version + 1``); returns ``id``
    and the ``returning`` columns of the rows written.

    Values shared by every row are plain parameters; on PostgreSQL the rest travel as one array per column,
    joined on ``id`` (``UPDATE … FROM unnest(:ids, :col, …) AS v(id, col, …)``): the statement's text does
    not depend on the number of rows, so it is compiled and planned once. Per-object ORM flushes and
    executemany run one UPDATE per row (a ``VALUES`` list was five times dearer than arrays to build). SQLite
    has no arrays; there it is an executemany of the same UPDATE."""
    if not changes:
        return []
    ids = list(changes)
    names = list(changes[ids[0]])
    shared = {n: changes[ids[0]][n] for n in names if all(changes[i][n] == changes[ids[0]][n] for i in ids[1:])}
    varying = [n for n in names if n not in shared]
    shared.update(also or {})
    out = [table.c.id, *(table.c[n] for n in returning)]
    options = {"synchronize_session": False}  # Core rows; callers tell loaded objects themselves
    if not varying or session.get_bind().dialect.name == "postgresql":
        if not varying:
            stmt = update(table).where(table.c.id.in_(ids)).values(**shared)
        else:
            columns = ["id", *varying]
            data = func.unnest(*(_array(n, table.c[n].type, [i if n == "id" else changes[i][n] for i in ids])
                                 for n in columns)).table_valued(*columns).render_derived(name="v")
            stmt = update(table).where(table.c.id == data.c.id).values(
                **shared, **{n: cast(data.c[n], JSON) if _is_json(table.c[n].type) else data.c[n] for n in varying})
        if returning:
            return list(session.execute(stmt.returning(*out), execution_options=options).all())
        session.execute(stmt, execution_options=options)
        return []
    stmt = update(table).where(table.c.id == bindparam("_id")).values(
        **shared, **{n: bindparam(f"_{n}", type_=table.c[n].type) for n in varying})
    session.execute(stmt, [{"_id": i, **{f"_{n}": changes[i][n] for n in varying}} for i in ids],
                    execution_options=options)
    return list(session.execute(select(*out).where(table.c.id.in_(ids))).all()) if returning else []


def _is_json(type_: Any) -> bool:
    return isinstance(type_, JSON)


def _array(name: str, type_: Any, items: list[Any]) -> Any:
    """One column's values as an array parameter. JSON values go as text (an array of JSON lists would be
    read as a two-dimensional array), ``None`` as JSON ``null`` like the ORM writes it."""
    if _is_json(type_):
        return bindparam(f"v_{name}", [json.dumps(item) for item in items], type_=postgresql.ARRAY(Text))
    return bindparam(f"v_{name}", items, type_=postgresql.ARRAY(type_))


def write_objects(session: Session, changes: Mapping[Any, Mapping[str, Any]]) -> None:
    """``update_rows`` for loaded ORM objects of one mapped class (``changes``: object → new values): one
    statement per set of columns changed, after which the objects hold the values as committed, so
    nothing is left for a flush to write again."""
    groups: dict[tuple[str, ...], dict[Any, Mapping[str, Any]]] = {}
    for obj, new in changes.items():
        groups.setdefault(tuple(sorted(new)), {})[obj] = new
    for group in groups.values():
        table = type(next(iter(group))).__table__
        with session.no_autoflush:  # a flush now would write these objects' changes one row at a time
            update_rows(session, table, {obj.id: new for obj, new in group.items()})
        for obj, new in group.items():
            for name, value in new.items():
                set_committed_value(obj, name, value)


def flush_changed(session: Session, objects: Iterable[Any]) -> None:
    """Write the changed columns of many loaded ORM objects of one class set-based (``write_objects``)
    instead of one UPDATE per object at the next flush: for batches that change the same few columns on
    each object. Objects without changes are left alone."""
    changes: dict[Any, dict[str, Any]] = {}
    for obj in objects:
        state = instance_state(obj)
        if not state.persistent or not state.committed_state:
            continue
        new = {key: getattr(obj, key) for key in state.committed_state
               if key in state.mapper.columns and state.attrs[key].history.has_changes()}
        if new:
            changes[obj] = new
    write_objects(session, changes)
