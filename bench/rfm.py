"""RFM recompute time for a large programme, against PostgreSQL, with a bare aggregate as reference.

Run from anywhere (PostgreSQL on 127.0.0.1:5432, trust auth, user ``postgres``)::

    .venv/bin/python bench/rfm.py [--customers 1000000] [--purchases 10000000] [--keep] [--json]

What it does:

1. uses the database ``tallypass_bench_rfm`` (``--database-url`` or ``TALLYPASS_BENCH_RFM_DATABASE_URL``
   for another one) as it is when an earlier ``--keep`` run left it with exactly ``--customers`` customers
   and ``--purchases`` purchases; otherwise drops and recreates it, migrates it (``app.migrate.upgrade``)
   and loads, in SQL (``INSERT … SELECT … generate_series``): one programme with 10 stores, the customers
   with one card each, and the purchases over the two years before the load. The load is skewed like a
   real shop: a few customers buy very often and most rarely (the card of a purchase is drawn with
   density ∝ x^(-2/3)), 30 % of the customers stopped buying at some point in the two years, purchases
   get denser towards the present, amounts are mostly small with a long tail, 2 % of purchases are fully
   and 1 % half refunded. While a table is loaded its secondary indexes, unique and foreign keys are
   dropped and then recreated from their own definitions (``pg_get_constraintdef``/``pg_indexes``), which
   is much faster than maintaining them row by row; then ``VACUUM ANALYZE``;
2. resets every customer's RFM columns to NULL (so the timed run writes every scored customer, the
   worst case), ``VACUUM``, and a warm-up ``ANALYZE``;
3. times the **reference** twice and keeps the faster: a bare aggregate of the rows RFM reads,
   ``SELECT customer_id, max(occurred_at), count(*), sum(amount) FROM purchase JOIN card … GROUP BY
   customer_id`` for the programme and the same 365-day window, wrapped in an outer aggregate so that
   the server computes every group but only one row crosses the wire. It is what any RFM has to read
   and group at least;
4. times ``app.segments.rfm.recompute`` in its own transaction, commit included ("first run": every
   scored customer's row is written), then runs it again at the same ``now`` ("second run": nothing
   changes, so nothing is written) and checks both gave the same counts.

The "now" of every run is the moment the data was loaded (kept as the programme's ``created_at``), so a
kept database gives the same scores on every run. The report prints the seconds, the ratio
recompute ÷ reference, and the customers per segment; ``--json`` prints one JSON object instead. The
database is dropped at the end unless ``--keep``.

Goal: the first run under 60 s for 1,000,000 customers and 10,000,000 purchases on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app import migrate  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.models import Program, Store  # noqa: E402
from app.segments import rfm  # noqa: E402

DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tallypass_bench_rfm"
PROGRAM_SLUG = "bench-rfm"
STORES = 10
HISTORY_DAYS = 730
GOAL_SECONDS, GOAL_CUSTOMERS = 60.0, 1_000_000


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- database ---------------------------------------------------------------------------------------------


def database_exists(libpq_url: str) -> bool:
    dbname = conninfo_to_dict(libpq_url)["dbname"]
    with psycopg.connect(make_conninfo(libpq_url, dbname="postgres"), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None


def recreate_database(libpq_url: str) -> None:
    dbname = conninfo_to_dict(libpq_url)["dbname"]
    with psycopg.connect(make_conninfo(libpq_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def drop_database(libpq_url: str) -> None:
    dbname = conninfo_to_dict(libpq_url)["dbname"]
    with psycopg.connect(make_conninfo(libpq_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def loaded_program(libpq_url: str, customers: int, purchases: int) -> int | None:
    """The bench programme's id when the database already holds exactly this data set, else None."""
    if not database_exists(libpq_url):
        return None
    try:
        with psycopg.connect(libpq_url) as conn:
            row = conn.execute("SELECT id FROM program WHERE slug = %s", (PROGRAM_SLUG,)).fetchone()
            if row is None:
                return None
            have_customers = conn.execute("SELECT count(*) FROM customer").fetchone()[0]
            have_cards = conn.execute("SELECT count(*) FROM card WHERE program_id = %s", (row[0],)).fetchone()[0]
            have_purchases = conn.execute("SELECT count(*) FROM purchase").fetchone()[0]
    except psycopg.Error:
        return None
    if (have_customers, have_cards, have_purchases) != (customers, customers, purchases):
        return None
    return int(row[0])


@contextlib.contextmanager
def secondary_keys_dropped(conn: psycopg.Connection, table: str) -> Iterator[None]:
    """Drop the table's unique and foreign keys and its other non-primary indexes; recreate them from
    their own definitions afterwards (one index build and one validating join each, not per row)."""
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
        (table,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND NOT x.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype = 'u')"
        " ORDER BY i.relname",
        (table,),
    ).fetchall()
    for name, _ in constraints:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for _, definition in indexes:
        conn.execute(definition)
    for name, definition in reversed(constraints):  # unique keys before the foreign keys
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
                     + sql.SQL(definition))


_CUSTOMERS = """
INSERT INTO customer (id, name, timezone, locale, referral_code, tags, created_at)
SELECT g, 'Bench ' || g, 'UTC', 'en', 'B' || g, '[]', %(anchor)s - interval '800 days' * (1 - g::float8 / %(n)s)
  FROM generate_series(1, %(n)s) g
"""
_CARDS = """
INSERT INTO card (id, program_id, customer_id, serial, barcode, apple_auth_token, page_token, status, balance,
                  stamps, lifetime_spend, window_spend, offer_text, extra, version, created_at, updated_at)
SELECT g, %(program_id)s, g, md5('s' || g)::uuid::text, 'C' || g, md5('a' || g), md5('p' || g), 'active', 0,
       0, 0, 0, '', '{}', 1, c.created_at, c.created_at
  FROM generate_series(1, %(n)s) g JOIN customer c ON c.id = g
"""
# The card of purchase i: x = random()³ puts the density ∝ x^(-2/3) (customer 0 buys most); multiplying by a
# prime modulo n scatters the heavy buyers over the ids. 30 % of customers (card_id % 10 < 3) stopped
# buying churn_days ago. u^1.5 makes purchases denser towards the present.
_PURCHASES = """
INSERT INTO purchase (store_id, receipt_id, card_id, amount, redeemed_points, discount, amount_due, earned_points,
                      stamped, refunded_amount, occurred_at, created_at)
SELECT store_id, 'R' || i, card_id, amount, 0, 0, amount, 0, false,
       CASE WHEN refund_draw < 0.02 THEN amount WHEN refund_draw < 0.03 THEN round(amount / 2, 2) ELSE 0 END,
       at, at
  FROM (
    SELECT i, store_id, card_id, refund_draw,
           round((3 + 80 * power(amount_draw, 2)
                  + CASE WHEN amount_draw > 0.97 THEN 400 * random() ELSE 0 END)::numeric, 2) AS amount,
           %(anchor)s - interval '1 day' * (churn_days + (%(history)s - churn_days) * power(random(), 1.5)) AS at
      FROM (
        SELECT i, %(first_store)s + i %% %(stores)s AS store_id, card_id, random() AS amount_draw,
               random() AS refund_draw,
               CASE WHEN card_id %% 10 < 3 THEN (card_id * 37) %% 600 ELSE 0 END AS churn_days
          FROM (SELECT i, 1 + (floor(%(n)s * power(random(), 3))::bigint * 7919) %% %(n)s AS card_id
                  FROM generate_series(1, %(p)s) i) drawn
      ) d
  ) x
"""


def load(url: str, libpq_url: str, customers: int, purchases: int) -> int:
    log(f"recreating {conninfo_to_dict(libpq_url)['dbname']} and migrating")
    recreate_database(libpq_url)
    migrate.upgrade(url)
    anchor = datetime.now(UTC).replace(microsecond=0)
    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine) as session, session.begin():
            program = Program(slug=PROGRAM_SLUG, name="Bench RFM", rfm_mode="quintile", rfm_window_days=365,
                              created_at=anchor, updated_at=anchor)
            session.add(program)
            session.flush()
            session.add_all(Store(program_id=program.id, name=f"Store {i + 1}") for i in range(STORES))
            session.flush()
            program_id = program.id
            first_store = session.scalar(select(Store.id).where(Store.program_id == program_id).order_by(Store.id))
    finally:
        engine.dispose()
    params = {"n": customers, "p": purchases, "anchor": anchor, "program_id": program_id,
              "first_store": first_store, "stores": STORES, "history": HISTORY_DAYS}
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SELECT setseed(0.4242)")
        for table, statement, what in (("customer", _CUSTOMERS, f"{customers:,} customers"),
                                       ("card", _CARDS, f"{customers:,} cards"),
                                       ("purchase", _PURCHASES, f"{purchases:,} purchases")):
            started = time.perf_counter()
            with secondary_keys_dropped(conn, table):
                conn.execute(statement, params)
            log(f"loaded {what} in {time.perf_counter() - started:.1f} s (indexes and keys included)")
        for table in ("customer", "card", "purchase"):
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))")
                         .format(sql.Literal(table), sql.Identifier(table)))
        conn.commit()
    vacuum(libpq_url, analyze=True)
    return program_id


def vacuum(libpq_url: str, *, analyze: bool, table: str | None = None) -> None:
    started = time.perf_counter()
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        command = sql.SQL("VACUUM (ANALYZE)" if analyze else "VACUUM")
        conn.execute(command + (sql.SQL(" {}").format(sql.Identifier(table)) if table else sql.SQL("")))
    log(f"{'VACUUM ANALYZE' if analyze else 'VACUUM'} {table or ''} in {time.perf_counter() - started:.1f} s")


def reset_scores(libpq_url: str) -> None:
    with psycopg.connect(libpq_url) as conn:
        cur = conn.execute(
            "UPDATE customer SET rfm_recency = NULL, rfm_frequency = NULL, rfm_monetary = NULL, rfm_segment = NULL"
            " WHERE rfm_recency IS NOT NULL OR rfm_frequency IS NOT NULL OR rfm_monetary IS NOT NULL"
            " OR rfm_segment IS NOT NULL"
        )
        reset = cur.rowcount
    if reset:
        log(f"reset the scores of {reset:,} customers")
        vacuum(libpq_url, analyze=False, table="customer")


# --- measurements -----------------------------------------------------------------------------------------

_REFERENCE = """
SELECT count(*), max(last_at), sum(n), sum(total) FROM (
  SELECT card.customer_id, max(p.occurred_at) AS last_at, count(*) AS n, sum(p.amount) AS total
    FROM purchase p JOIN card ON card.id = p.card_id
   WHERE card.program_id = %(program_id)s AND p.occurred_at >= %(now)s - interval '1 day' * %(days)s
     AND p.occurred_at <= %(now)s
   GROUP BY card.customer_id) per_customer
"""


def reference(libpq_url: str, program_id: int, now: datetime, days: int, *, parallel: bool = True) -> dict[str, Any]:
    with psycopg.connect(libpq_url) as conn:
        if not parallel:
            conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        started = time.perf_counter()
        groups, _, rows, _ = conn.execute(_REFERENCE, {"program_id": program_id, "now": now, "days": days}).fetchone()
        elapsed = time.perf_counter() - started
        conn.rollback()
    return {"seconds": elapsed, "customers": int(groups), "purchases": int(rows)}


def run_recompute(url: str, program_id: int, now: datetime) -> tuple[float, rfm.RfmSummary]:
    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine) as session:
            program = session.get(Program, program_id)
            session.commit()
            started = time.perf_counter()
            with session.begin():
                summary = rfm.recompute(session, program=program, now=now)
            elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    return elapsed, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000, help="customers, one card each (default 1,000,000)")
    ap.add_argument("--purchases", type=int, default=10_000_000, help="purchases over 2 years (default 10,000,000)")
    ap.add_argument("--keep", action="store_true", help="keep the database at the end (the next run reuses it)")
    ap.add_argument("--database-url", default=os.environ.get("TALLYPASS_BENCH_RFM_DATABASE_URL", DEFAULT_DB_URL))
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    if args.customers < 1 or args.purchases < 0:
        ap.error("need --customers ≥ 1 and --purchases ≥ 0")

    libpq_url = args.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    url = libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        program_id = loaded_program(libpq_url, args.customers, args.purchases)
        reused = program_id is not None
        load_s = None
        if program_id is None:
            started = time.perf_counter()
            program_id = load(url, libpq_url, args.customers, args.purchases)
            load_s = time.perf_counter() - started
            log(f"load done in {load_s:.1f} s")
        else:
            log(f"reusing {conninfo_to_dict(libpq_url)['dbname']}: {args.customers:,} customers, "
                f"{args.purchases:,} purchases")
        with psycopg.connect(libpq_url) as conn:
            now, window_days = conn.execute("SELECT created_at, rfm_window_days FROM program WHERE id = %s",
                                            (program_id,)).fetchone()
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('purchase'))").fetchone()[0]
        reset_scores(libpq_url)
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("ANALYZE")
            log(f"warm-up ANALYZE in {time.perf_counter() - started:.1f} s")

        refs = [reference(libpq_url, program_id, now, window_days) for _ in range(2)]
        ref = min(refs, key=lambda r: r["seconds"])
        log(f"reference aggregate: {ref['seconds']:.2f} s ({ref['customers']:,} customers, "
            f"{ref['purchases']:,} purchases in the window)")
        single = min((reference(libpq_url, program_id, now, window_days, parallel=False) for _ in range(2)),
                     key=lambda r: r["seconds"])
        log(f"reference aggregate in one process: {single['seconds']:.2f} s")
        first_s, first = run_recompute(url, program_id, now)
        log(f"recompute, first run: {first_s:.2f} s ({first.changed:,} customers written)")
        second_s, second = run_recompute(url, program_id, now)
        log(f"recompute, second run: {second_s:.2f} s ({second.changed:,} customers written)")
        next_s, next_night = run_recompute(url, program_id, now + timedelta(days=1))
        log(f"recompute, a day later: {next_s:.2f} s ({next_night.changed:,} customers written)")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if not args.keep:
            with contextlib.suppress(psycopg.Error):
                drop_database(libpq_url)

    goal_applies = args.customers >= GOAL_CUSTOMERS
    report = {
        "customers": args.customers,
        "purchases": args.purchases,
        "purchase_table_size": size,
        "reused_database": reused,
        "load_s": round(load_s, 1) if load_s is not None else None,
        "now": now.isoformat(),
        "window_days": window_days,
        "recompute_s": round(first_s, 2),
        "recompute_written": first.changed,
        "second_run_s": round(second_s, 2),
        "second_run_written": second.changed,
        "stable": second.counts == first.counts and second.unscored == first.unscored and second.changed == 0,
        "next_day_s": round(next_s, 2),
        "next_day_written": next_night.changed,
        "reference_s": round(ref["seconds"], 2),
        "reference_runs_s": [round(r["seconds"], 2) for r in refs],
        "reference_one_process_s": round(single["seconds"], 2),
        "ratio": first_s / ref["seconds"] if ref["seconds"] else None,
        "ratio_one_process": first_s / single["seconds"] if single["seconds"] else None,
        "scored": first.scored,
        "unscored": first.unscored,
        "counts": first.counts,
        "cores": os.cpu_count(),
        "goal": {"seconds": GOAL_SECONDS, "customers": GOAL_CUSTOMERS,
                 "met": first_s < GOAL_SECONDS if goal_applies else None},
        "kept": args.keep,
    }
    print_report(report, args.json)
    return 0


def print_report(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(r, default=str))
        return
    goal = r["goal"]
    verdict = {True: "MET", False: "NOT MET", None: f"n/a (needs --customers {goal['customers']:,})"}[goal["met"]]
    width = max(len(name) for name in r["counts"])
    scored = r["scored"] or 1
    lines = [
        f"data            {r['customers']:,} customers, {r['purchases']:,} purchases ({r['purchase_table_size']}),"
        + (" reused" if r["reused_database"] else f" loaded in {r['load_s']} s") + f"; {r['cores']} cores",
        f"recompute       {r['recompute_s']:.2f} s  (first run: {r['recompute_written']:,} customers written)",
        f"second run      {r['second_run_s']:.2f} s  ({r['second_run_written']:,} written; "
        + ("same counts, stable" if r["stable"] else "NOT STABLE") + ")",
        f"a day later     {r['next_day_s']:.2f} s  ({r['next_day_written']:,} written: the nightly case)",
        f"reference       {r['reference_s']:.2f} s  (bare GROUP BY customer over the same window; runs "
        + ", ".join(f"{s:.2f}" for s in r["reference_runs_s"]) + f"); {r['reference_one_process_s']:.2f} s"
        " in one process (no parallel workers, as for any UPDATE)",
        f"ratio           {r['ratio']:.2f}  (first run ÷ reference); {r['ratio_one_process']:.2f} against the"
        " one-process reference" if r["ratio"] else "ratio           n/a",
        f"scored          {r['scored']:,} customers; {r['unscored']:,} without a purchase in the last "
        f"{r['window_days']} days (NULL)",
        *(f"  {name:<{width}}  {count:>9,}  {100 * count / scored:5.1f} %" for name, count in r["counts"].items()),
        f"goal < {goal['seconds']:.0f} s @{goal['customers']:,} customers: {verdict}",
    ]
    print("\n".join(lines))


def _sigterm(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
