"""Throughput and latency of signed POS purchases, against a real gunicorn + PostgreSQL.

Run from anywhere (PostgreSQL on 127.0.0.1:5432, trust auth, user ``postgres``)::

    .venv/bin/python bench/pos.py [--clients 16] [--seconds 20] [--workers N] [--threads 8] [--cards 200]
                                  [--broker redis://127.0.0.1:6379/14] [--json]

What it does, every run from scratch:

1. drops and recreates the database ``tallypass_bench`` (``--database-url`` or
   ``TALLYPASS_BENCH_DATABASE_URL`` to use another one);
2. prepares it with the project CLI: ``db upgrade``, ``demo``, ``store create "Bench store" --json``
   (the POS credential);
3. starts ``gunicorn -k gthread -w N --threads T`` on a free port (as ``make serve`` does: the threaded
   worker keeps client connections alive, the sync worker closes one per request), waits for ``/healthz``;
4. enrols ``--cards`` customers through ``POST /api/v1/pos/customers``;
5. runs ``--clients`` threads, each with its own keep-alive ``httpx.Client``, sending HMAC-signed
   ``POST /api/v1/pos/purchases`` for 2 s of warm-up (not counted) and then ``--seconds``;
   about one request in five also redeems a point on a card that has one;
   the CPU time gunicorn, the Celery worker, PostgreSQL and the client itself used in the measured
   window is read from ``/proc`` and reported per purchase, to show where a purchase's cost goes;
6. stops gunicorn, checks ``card.balance == sum(ledger_entry.points)`` and no negative balance;
7. measures the **reference**: the same number of threads, each with its own autocommit psycopg
   connection, inserting one row per statement into a plain table ``bench_ref``. That is one committed
   transaction per row on this machine's PostgreSQL, the bare cost a purchase (which also commits at
   least once, plus HTTP, signing, rules and several rows) cannot beat. The ratio
   purchases/s ÷ inserts/s says how much of the database's commit capacity the service achieves.

Latency percentiles are over the 201 responses of the measured window. Progress goes to stderr, the
report to stdout (one JSON object with ``--json``). Exit status is 0 when the run completed, whatever
the figures; 2 when the setup failed (the service's output is shown).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import secrets
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tallypass_bench"
WARMUP_S = 2.0
GOAL_RATE, GOAL_P99_MS, GOAL_CLIENTS = 300.0, 50.0, 16
ALPHABET = string.ascii_letters + string.digits


class SetupError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n·p/100), at least 1
    return sorted_values[int(rank) - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- database ---------------------------------------------------------------------------------------------


def recreate_database(libpq_url: str) -> None:
    dbname = conninfo_to_dict(libpq_url)["dbname"]
    with psycopg.connect(make_conninfo(libpq_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def verify_ledger(libpq_url: str, store_id: object) -> dict:
    """Cheap invariant check after the run: balance == sum(points), nothing negative."""
    with psycopg.connect(libpq_url) as conn:
        bad = conn.execute(
            "SELECT c.id, c.balance, COALESCE(SUM(l.points), 0) FROM card c"
            " LEFT JOIN ledger_entry l ON l.card_id = c.id GROUP BY c.id, c.balance"
            " HAVING c.balance <> COALESCE(SUM(l.points), 0) OR c.balance < 0 ORDER BY c.id"
        ).fetchall()
        cards = conn.execute("SELECT count(*) FROM card").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM ledger_entry").fetchone()[0]
        purchases = conn.execute("SELECT count(*) FROM purchase WHERE store_id = %s", (store_id,))
        purchases = purchases.fetchone()[0]
    return {
        "ok": not bad,
        "cards": cards,
        "ledger_entries": entries,
        "bench_store_purchases": purchases,
        "offending": [{"card_id": r[0], "balance": r[1], "ledger_sum": int(r[2])} for r in bad[:20]],
    }


def reference_inserts(libpq_url: str, clients: int, seconds: float) -> dict:
    """One autocommit single-row INSERT per statement, ``clients`` connections in parallel."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_ref (id bigserial PRIMARY KEY, card text,"
            " amount numeric(12,2), created_at timestamptz DEFAULT now())"
        )
    start_evt = threading.Event()

    def worker(i: int) -> list[float]:
        lat, rng = [], random.Random(i)
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            start_evt.wait(timeout=30)
            end = time.perf_counter() + seconds
            while (t0 := time.perf_counter()) < end:
                conn.execute(
                    "INSERT INTO bench_ref (card, amount) VALUES (%s, %s)",
                    (f"REF{rng.randrange(10**6):06d}", Decimal(rng.randint(500, 30000)) / 100),
                )
                lat.append(time.perf_counter() - t0)
        return lat

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(worker, i) for i in range(clients)]
        time.sleep(0.5)  # let every thread connect first
        t_start = time.perf_counter()
        start_evt.set()
        lats = sorted(x for f in futures for x in f.result())
        elapsed = time.perf_counter() - t_start
    return {
        "seconds": round(elapsed, 2),
        "inserts": len(lats),
        "rate": len(lats) / elapsed,
        "p50_ms": pct(lats, 50) * 1000,
        "p99_ms": pct(lats, 99) * 1000,
    }


# --- the service ------------------------------------------------------------------------------------------


def flask(env: dict, *args: str) -> str:
    cmd = [str(VENV_BIN / "flask"), "--app", "app", *args]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise SetupError(f"`flask {' '.join(args)}` exited {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res.stdout


def wait_healthy(proc: subprocess.Popen, base_url: str, logfile: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"gunicorn exited with {proc.returncode}\n{tail(logfile)}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SetupError(f"/healthz did not answer 200 within {timeout:.0f} s\n{tail(logfile)}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Signer:
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id, self.secret = key_id, secret.encode()

    def post(self, client: httpx.Client, path: str, payload: dict) -> httpx.Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        t = int(time.time())
        v1 = hmac.new(self.secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "Tallypass-Key": self.key_id,
            "Tallypass-Signature": f"t={t},v1={v1}",
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        return client.post(path, content=body, headers=headers)


def enrol(signer: Signer, base_url: str, n: int, threads: int) -> dict[str, int]:
    """Create n customers; return {barcode: balance}."""

    def one(client: httpx.Client, i: int) -> tuple[int, str, int]:
        # +373 69 9xxxxx: Moldovan mobile numbers outside the demo's +373 69 000xxx
        phone = f"+37369{900000 + i:06d}"
        r = signer.post(client, "/api/v1/pos/customers", {"phone": phone, "name": f"Bench {i}"})
        if r.status_code not in (200, 201):
            raise SetupError(f"enrolment {i}: HTTP {r.status_code}: {r.text[:500]}")
        card = r.json()["card"]
        return r.status_code, card["barcode"], int(card.get("balance") or 0)

    with httpx.Client(base_url=base_url, timeout=30) as client, ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda i: one(client, i), range(n)))
    created = sum(1 for status, _, _ in results if status == 201)
    log(f"enrolled {len(results)} cards ({created} new, {len(results) - created} already existed)")
    return {barcode: balance for _, barcode, balance in results}


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_role(roles: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each role's process tree (root pid and its descendants), plus every
    PostgreSQL backend and the bench client itself. Linux /proc only; empty elsewhere."""
    if not Path("/proc/self/stat").exists():
        return {}
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                pid = int(entry.name)
                names[pid] = stat[stat.index("(") + 1:stat.rindex(")")]
                parent[pid] = int(stat.rpartition(")")[2].split()[1])

    def tree(root: int) -> list[int]:
        return [pid for pid in parent if pid == root or _descends(pid, root, parent)]

    out = {role: sum(_proc_cpu(pid) for pid in tree(root)) for role, root in roles.items()}
    out["postgres"] = sum(_proc_cpu(pid) for pid, name in names.items() if name.startswith("postgres"))
    out["bench client"] = sum(os.times()[:2])
    return out


def _descends(pid: int, root: int, parent: dict[int, int]) -> bool:
    while pid > 1:
        pid = parent.get(pid, 0)
        if pid == root:
            return True
    return False


def drive(signer: Signer, base_url: str, balances: dict[str, int], clients: int, seconds: float,
          roles: dict[str, int] | None = None) -> dict:
    """The load phase: ``clients`` threads posting purchases; only the window after warm-up counts.
    With ``roles`` (name → pid), the CPU each used during the measured window is reported too."""
    barcodes = list(balances)
    run = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    statuses: Counter = Counter()
    samples: list[str] = []
    measure_start = time.perf_counter() + WARMUP_S
    measure_end = measure_start + seconds
    halt = threading.Event()  # set on Ctrl-C so the threads stop at once

    def worker(i: int) -> tuple[list[float], Counter]:
        rng, lat, local, n = random.Random(f"{run}-{i}"), [], Counter(), 0
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while (t0 := time.perf_counter()) < measure_end and not halt.is_set():
                n += 1
                card = rng.choice(barcodes)
                cents = rng.randint(500, 30000)
                amount = f"{cents // 100}.{cents % 100:02d}"
                payload = {"receipt_id": f"b{run}-{i}-{n}", "card": card, "amount": amount}
                redeem = rng.random() < 0.2 and balances.get(card, 0) >= 1
                if redeem:
                    payload["redeem_points"] = 1
                try:
                    r = signer.post(client, "/api/v1/pos/purchases", payload)
                    code, text = r.status_code, r.text
                except httpx.HTTPError as exc:
                    code, text = f"exc:{type(exc).__name__}", str(exc)
                dt = time.perf_counter() - t0
                if code == 201:
                    local["created"] += 1  # incl. warm-up, to compare with the database
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        balances[card] = int(r.json()["card"]["balance"])
                if t0 < measure_start:
                    continue
                if code == 201:
                    local["ok"] += 1
                    if redeem:
                        local["redeemed"] += 1
                    lat.append(dt)
                elif code == 422 and redeem:
                    local["redeem_422"] += 1
                else:
                    local[code] += 1
                    with lock:
                        if len(samples) < 5:
                            samples.append(f"{code} {payload}: {text[:300]}")
        return lat, local

    cpu: dict[str, list[float]] = {}

    def meter() -> None:
        for at in (measure_start, measure_end):
            if halt.wait(max(0.0, at - time.perf_counter())):
                return
            for role, used in cpu_by_role(roles or {}).items():
                cpu.setdefault(role, []).append(used)

    sampler = threading.Thread(target=meter, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(clients) as pool:
        try:
            results = list(pool.map(worker, range(clients)))
        except BaseException:
            halt.set()
            raise
    sampler.join(timeout=5)
    elapsed = max(time.perf_counter(), measure_end) - measure_start
    lats = sorted(x for lat, _ in results for x in lat)
    for _, local in results:
        statuses.update(local)
    ok = statuses.pop("ok", 0)
    redeemed = statuses.pop("redeemed", 0)
    redeem_422 = statuses.pop("redeem_422", 0)
    created = statuses.pop("created", 0)
    return {
        "duration_s": round(elapsed, 2),
        "purchases_ok": ok,
        "redeemed": redeemed,
        "redeem_rejected_422": redeem_422,
        "rate": ok / elapsed,
        "p50_ms": pct(lats, 50) * 1000,
        "p90_ms": pct(lats, 90) * 1000,
        "p99_ms": pct(lats, 99) * 1000,
        "max_ms": (lats[-1] if lats else 0) * 1000,
        "errors": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "error_samples": samples,
        "created_total": created,
        # CPU ms per measured purchase, by role (only roles sampled at both ends of the window)
        "cpu_ms_per_purchase": {role: round(1000 * (b - a) / ok, 2) for role, (a, b) in
                                ((r, v) for r, v in cpu.items() if len(v) == 2)} if ok else {},
    }


# --- main -------------------------------------------------------------------------------------------------


def drain_outbox(libpq_url: str, worker: subprocess.Popen[bytes], timeout: float = 120.0) -> dict[str, float]:
    """Wait for the worker to process every outbox event, then stop it; how long the backlog took."""
    started = time.perf_counter()
    pending = -1
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        while time.perf_counter() - started < timeout:
            pending = conn.execute("SELECT count(*) FROM outbox_event WHERE processed_at IS NULL").fetchone()[0]
            if pending == 0:
                break
            time.sleep(0.2)
        total = conn.execute("SELECT count(*) FROM outbox_event").fetchone()[0]
    stop(worker)
    return {"events": total, "unprocessed": pending, "drain_s": round(time.perf_counter() - started, 2)}


def main() -> int:
    cores = os.cpu_count() or 2
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16, help="concurrent POS clients (default 16)")
    ap.add_argument("--seconds", type=float, default=20, help="measured duration (default 20)")
    ap.add_argument("--workers", type=int, default=cores, help="gunicorn worker processes (default: one per core)")
    ap.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (default 8)")
    ap.add_argument("--cards", type=int, default=200, help="customers to enrol (default 200)")
    ap.add_argument("--database-url", default=os.environ.get("TALLYPASS_BENCH_DATABASE_URL", DEFAULT_DB_URL))
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--broker", default="", help="Celery broker URL (e.g. redis://127.0.0.1:6379/14): the outbox "
                    "tasks then go to one Celery worker started beside gunicorn, as in production; "
                    "default: no broker, tasks run inline in the web process")
    args = ap.parse_args()
    if not (1 <= args.cards <= 99_999 and args.clients >= 1 and args.seconds > 0 and args.workers >= 1
            and args.threads >= 1):
        ap.error("need 1 ≤ --cards ≤ 99999 and positive --clients, --seconds, --workers, --threads")

    libpq_url = args.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TALLYPASS_DATABASE_URL": libpq_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "TALLYPASS_SECRET_KEY": "".join(secrets.choice(ALPHABET) for _ in range(48)),
        "TALLYPASS_BROKER_URL": args.broker,
        "TALLYPASS_POS_RATE_LIMIT": "1000000/second",  # one bench key carries every till's load
        "TALLYPASS_BASE_URL": base_url,
    }
    proc = None
    worker = None
    fd, name = tempfile.mkstemp(prefix="tallypass-bench-", suffix=".log")
    os.close(fd)
    logfile = Path(name)
    try:
        log(f"recreating {conninfo_to_dict(libpq_url)['dbname']}")
        recreate_database(libpq_url)
        if args.broker:
            import redis  # installed with celery[redis]

            redis.Redis.from_url(args.broker).flushdb()  # messages of an earlier run name other rows
        flask(env, "db", "upgrade")
        demo_out = flask(env, "demo").strip().splitlines()
        log("demo: " + (demo_out[0] if demo_out else "(no output)"))  # later lines hold a POS secret
        store_out = flask(env, "store", "create", "Bench store", "--json")
        try:
            store = json.loads(store_out)
        except json.JSONDecodeError as exc:
            raise SetupError(f"`store create --json` printed no single JSON object: {store_out!r}") from exc
        signer = Signer(store["key_id"], store["secret"])

        log(f"starting gunicorn -w {args.workers} --threads {args.threads} on {base_url} (log: {logfile})")
        with logfile.open("wb") as out:
            proc = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-k", "gthread", "-w", str(args.workers), "--threads", str(args.threads),
                 "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        wait_healthy(proc, base_url, logfile)
        if args.broker:
            log(f"starting one Celery worker on {args.broker}")
            worker = subprocess.Popen(
                [str(VENV_BIN / "celery"), "-A", "app.celery_app", "worker", "--pool", "solo", "--loglevel",
                 "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        log(f"enrolling {args.cards} customers")
        balances = enrol(signer, base_url, args.cards, min(args.clients, 16))
        log(f"load: {args.clients} clients, {WARMUP_S:.0f} s warm-up + {args.seconds:g} s")
        roles = {"gunicorn": proc.pid, **({"celery worker": worker.pid} if worker is not None else {})}
        load = drive(signer, base_url, balances, args.clients, args.seconds, roles)
    except SetupError as exc:
        log(f"setup failed: {exc}\n(gunicorn log, if it started: {logfile})")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        logfile.unlink(missing_ok=True)
        return 130
    finally:
        stop(proc)
    backlog = None
    if worker is not None:
        backlog = drain_outbox(libpq_url, worker)
    if any(str(k).startswith("5") for k in load["errors"]):
        log(f"5xx seen; gunicorn log kept at {logfile}, its tail:\n" + tail(logfile))
    else:
        logfile.unlink(missing_ok=True)

    log("verifying ledger")
    check = verify_ledger(libpq_url, store["id"])
    ref_s = min(10.0, args.seconds)
    log(f"reference: {args.clients} connections, single-row autocommit inserts for {ref_s:g} s")
    ref = reference_inserts(libpq_url, args.clients, ref_s)
    goal = load["rate"] >= GOAL_RATE and load["p99_ms"] < GOAL_P99_MS
    report = {
        "clients": args.clients,
        "workers": args.workers,
        "threads": args.threads,
        "cards": len(balances),
        **load,
        "reference": ref,
        "ratio": load["rate"] / ref["rate"] if ref["rate"] else None,
        "ledger_check": check,
        "broker": args.broker or None,
        "outbox": backlog,
        "goal": {"rate": GOAL_RATE, "p99_ms": GOAL_P99_MS, "clients": GOAL_CLIENTS,
                 "met": goal if args.clients == GOAL_CLIENTS else None},
    }
    print_report(report, args.json)
    return 0


def print_report(r: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(r, default=str))
        return
    ref, chk, goal = r["reference"], r["ledger_check"], r["goal"]
    errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
    ratio = f"{r['ratio']:.3f}" if r["ratio"] else "n/a"
    ledger = "OK" if chk["ok"] else f"FAILED {chk['offending']}"
    verdict = {True: "MET", False: "NOT MET", None: f"n/a (needs --clients {goal['clients']})"}[goal["met"]]
    lines = [
        f"clients {r['clients']}, gunicorn {r['workers']} workers × {r['threads']} threads, cards {r['cards']},"
        f" measured {r['duration_s']} s",
        f"purchases ok    {r['purchases_ok']}  ({r['redeemed']} redeeming a point,"
        f" {r['redeem_rejected_422']} redemptions refused with 422)",
        f"throughput      {r['rate']:.1f} purchases/s",
        f"latency ms      p50 {r['p50_ms']:.1f}  p90 {r['p90_ms']:.1f}  p99 {r['p99_ms']:.1f}"
        f"  max {r['max_ms']:.1f}",
        f"errors          {errors}",
        "cpu per purchase " + (", ".join(f"{role} {ms:.2f} ms" for role, ms in r["cpu_ms_per_purchase"].items())
                               or "n/a") + f"  (machine: {os.cpu_count()} cores)",
        *(f"  e.g. {sample}" for sample in r["error_samples"]),
        f"reference       {ref['rate']:.1f} inserts/s  (p50 {ref['p50_ms']:.2f} ms,"
        f" p99 {ref['p99_ms']:.2f} ms; {ref['inserts']} rows in {ref['seconds']} s)",
        f"ratio           {ratio}  (purchases/s ÷ inserts/s)",
        f"ledger check    {ledger}  ({chk['cards']} cards, {chk['ledger_entries']} entries; bench store"
        f" has {chk['bench_store_purchases']} purchases, {r['created_total']} answered 201)",
        f"goal ≥{goal['rate']:.0f}/s and p99 <{goal['p99_ms']:.0f} ms @{goal['clients']} clients: {verdict}",
    ]
    if r.get("outbox"):
        box = r["outbox"]
        lines.insert(-1, f"outbox          broker {r['broker']}: {box['events']} events, {box['unprocessed']} left "
                         f"unprocessed, backlog drained {box['drain_s']} s after the load")
    else:
        lines.insert(-1, "outbox          no broker: each purchase's outbox task ran inline in the web process")
    print("\n".join(lines))


def _sigterm(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)  # `kill` cleans up like Ctrl-C: gunicorn is stopped
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
