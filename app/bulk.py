"""Set-based writes of many rows: one UPDATE for a batch of rows that each get their own values, where the
ORM would flush one UPDATE per object. Campaign sending, the outbox's Google records and ``touch_many``
write their batches through these."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Row, Table, Text, bindparam, cast, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value


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
    ids = sorted(changes)  # batch writers that meet the same rows then tend to lock them in the same order
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
