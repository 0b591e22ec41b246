"""A campaign to 100,000 customers through real Celery workers, with 1 and then 2 workers, against the
local stand-ins of APNs (HTTP/2, certificate auth) and a web-push service that decrypts every message;
the bare web-push encryption rate of one process is the reference.

Run from anywhere (PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, as for the tests)::

    .venv/bin/python bench/campaign.py [--customers 100000] [--workers 1,2] [--json]

What it does:

1. drops and recreates the database ``tallypass_bench_campaign`` (``--database-url``), migrates it and
   loads in SQL one programme and the customers with a card each: half have the card in Apple Wallet
   (wallet consent, a device registered for the card), half subscribed to web push in a browser (push
   consent, a subscription made at the push stand-in, with its own P-256 key and auth secret); every card
   has its Google Wallet object row as enrolment leaves it without Google credentials (outbox mode: the
   card's changes are recorded in the outbox table as the PATCH calls they would be);
2. starts the stand-ins in this process (their threads are all it does while the workers run): the fake
   APNs of ``tests/fakes/apns_h2.py``, which checks the client certificate against the dev-certs
   root, and the push service of ``tests/fakes/push_service.py``, which checks each VAPID JWT and
   decrypts each aes128gcm body (RFC 8291) as a browser would;
3. for each worker count: creates a campaign over ``wallet`` then ``push`` (quiet hours off), starts that
   many ``celery worker --pool solo`` processes on Redis (``--broker``), sends ``start_campaign`` and
   times until every delivery is sent and every outbox event (the pass updates' APNs pushes) is
   handled; then checks one delivery per customer, one APNs push per device and one decrypted push
   per browser for that campaign;
4. times the **reference**: one process encrypting the same notification for the browsers' keys with
   the app's own aes128gcm code (``app.channels.webpush``), the cheapest part of a web push that no
   sender can skip. The report prints deliveries/s and the ratio deliveries/s ÷ encryptions/s.

Goal: the 100,000-customer campaign in under 60 s on two cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import exists, func, select  # noqa: E402

from app import create_app, migrate  # noqa: E402
from app.campaigns import lifecycle  # noqa: E402
from app.campaigns.lifecycle import VariantSpec  # noqa: E402
from app.channels import dev_credentials  # noqa: E402
from app.channels.registry import EXTENSION as CHANNELS  # noqa: E402
from app.channels.webpush import SubscriptionInfo, _encrypt  # noqa: E402
from app.database import SESSIONS  # noqa: E402
from app.db import make_engine, make_session_factory  # noqa: E402
from app.models import Campaign, Delivery, OutboxEvent, Program, Tier  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.tasks import outbox as outbox_tasks  # noqa: E402
from bench.pos import cpu_by_role  # noqa: E402
from bench.rfm import drop_database, recreate_database  # noqa: E402
from tests.fakes.apns_h2 import FakeApns  # noqa: E402
from tests.fakes.push_service import FakePushService  # noqa: E402

DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tallypass_bench_campaign"
DEFAULT_BROKER = "redis://127.0.0.1:6379/12"
GOAL_SECONDS, GOAL_CUSTOMERS = 60.0, 100_000
BODY = "Hi {{ first_name }}, you have {{ balance }} points: double points this weekend"
SECRET = "bench-secret-key-that-is-long-enough-for-anything-0123456789"  # noqa: S105 (a throwaway database)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def load(url: str, libpq_url: str, customers: int, push: FakePushService) -> int:
    recreate_database(libpq_url)
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        factory = make_session_factory(engine)
        with factory.begin() as session:
            program = Program(slug="bench-campaign", name="Cafea")
            session.add(program)
            session.flush()
            session.add(Tier(program_id=program.id, name="Member", qualifying_spend=0, earn_percent=5))
            program_id = program.id
    finally:
        engine.dispose()
    half = customers // 2
    started = time.perf_counter()
    with psycopg.connect(libpq_url) as conn:
        params = {"n": customers, "half": half, "program_id": program_id}
        conn.execute("""INSERT INTO customer (id, name, timezone, locale, referral_code, tags, created_at)
                        SELECT g, 'Ana' || g || ' Popescu', 'UTC', 'en', 'B' || g, '[]', now()
                          FROM generate_series(1, %(n)s) g""", params)
        conn.execute("""INSERT INTO card (id, program_id, customer_id, serial, barcode, apple_auth_token, page_token,
                                          status, balance, stamps, lifetime_spend, window_spend, offer_text, extra,
                                          version, created_at, updated_at)
                        SELECT g, %(program_id)s, g, md5('s' || g)::uuid::text, 'C' || g, md5('a' || g),
                               md5('p' || g), 'active', g %% 500, 0, 0, 0, '', '{}', 1, now(), now()
                          FROM generate_series(1, %(n)s) g""", params)
        # Each card's Google Wallet object as enrolment leaves it when Google has no credentials (outbox mode):
        # the row exists and the outbox holds its insert; a change to the card then records a PATCH.
        conn.execute("""INSERT INTO google_object (card_id, object_id, synced_version, synced_at, notifications)
                        SELECT id, %(issuer)s || '.' || serial, 1, now(), '[]' FROM card""",
                     {"issuer": Settings(_env_file=None).google_issuer_id})  # type: ignore[call-arg]
        conn.execute("""INSERT INTO consent (customer_id, channel, granted, source, changed_at)
                        SELECT g, CASE WHEN g <= %(half)s THEN 'wallet' ELSE 'push' END, true, 'bench', now()
                          FROM generate_series(1, %(n)s) g""", params)
        conn.execute("""INSERT INTO apple_device (id, library_id, push_token, created_at, updated_at)
                        SELECT g, 'device' || g, lpad(to_hex(g), 64, '0'), now(), now()
                          FROM generate_series(1, %(half)s) g""", params)
        conn.execute("""INSERT INTO apple_registration (device_id, card_id, created_at)
                        SELECT g, g, now() FROM generate_series(1, %(half)s) g""", params)
        rows = io.StringIO()
        for customer_id in range(half + 1, customers + 1):
            sub = push.new_subscription()
            rows.write(f"{customer_id}\t{sub['endpoint']}\t{sub['p256dh']}\t{sub['auth']}\n")
        with conn.cursor().copy("COPY web_push_subscription (customer_id, endpoint, p256dh, auth, created_at, "
                                "failures) FROM STDIN") as copy:
            for line in rows.getvalue().splitlines():
                copy.write(line + "\t" + datetime.now(UTC).isoformat() + "\t0\n")
        for table in ("customer", "card", "apple_device"):
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({name}, 'id'), (SELECT max(id) FROM {table}))")
                         .format(name=sql.Literal(table), table=sql.Identifier(table)))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    log(f"loaded {customers:,} customers ({half:,} with Apple Wallet, {customers - half:,} with web push) "
        f"in {time.perf_counter() - started:.1f} s")
    return program_id


def reference(push: FakePushService, seconds: float = 5.0) -> float:
    """Encryptions per second in one process: the app's aes128gcm over a fresh ECDH key per message."""
    subs = [push.new_subscription() for _ in range(200)]
    infos = [SubscriptionInfo(endpoint=s["endpoint"], p256dh=s["p256dh"], auth=s["auth"]) for s in subs]
    payload = json.dumps({"title": "Cafea", "body": "Hi Ana, you have 120 points: double points this weekend",
                          "tag": "campaign-1", "url": None}).encode()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for info in infos:
            _encrypt(info, payload)
        done += len(infos)
    return done / (time.perf_counter() - started)


def run_campaign(app: Any, env: dict[str, str], program_id: int, workers: int, customers: int,
                 apns: FakeApns, push: FakePushService, logs: Path) -> dict[str, Any]:
    from app.tasks.campaigns import start_campaign

    factory = app.extensions[SESSIONS]
    with factory.begin() as session:
        program = session.get(Program, program_id)
        campaign = lifecycle.create(session, program=program, name=f"Weekend x{workers}", channels=["wallet", "push"],
                                    quiet_start_hour=0, quiet_end_hour=0, variants=[VariantSpec("A", BODY)],
                                    now=datetime.now(UTC))
        campaign_id = campaign.id
    apns_before, push_before = len(apns.requests), sum(len(v) for v in push.received.values())
    procs = []
    for n in range(workers):
        with (logs / f"worker-{workers}-{n}.log").open("wb") as err:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "app.celery_app", "worker", "--pool", "solo",
                 "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                 "-n", f"bench{workers}-{n}@%h"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err))
    try:
        time.sleep(3)  # the workers connect to Redis and PostgreSQL (not timed)
        roles = {f"worker {n}": proc.pid for n, proc in enumerate(procs)}
        cpu_before = cpu_by_role(roles)
        started, sent_at = time.perf_counter(), None
        with app.app_context():
            start_campaign.delay(campaign_id)
        while True:
            time.sleep(0.5)
            with factory() as session:  # two cheap reads: the bench must not load the database it measures
                state = session.scalar(select(Campaign.state).where(Campaign.id == campaign_id))
                pending = session.scalar(select(exists().where(OutboxEvent.processed_at.is_(None))))
            if sent_at is None and state not in ("draft", "scheduled", "running"):
                sent_at = time.perf_counter() - started  # every delivery sent; APNs pushes may still be going
            if state not in ("draft", "scheduled", "running") and not pending:
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker died; see {logs}")
        elapsed = time.perf_counter() - started
        cpu_after = cpu_by_role(roles)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    with factory() as session:
        statuses = dict(session.execute(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
                                        .group_by(Delivery.status)).all())
        channels = dict(session.execute(select(Delivery.channel, func.count())
                                        .where(Delivery.campaign_id == campaign_id).group_by(Delivery.channel)).all())
    apns_tokens = Counter(r.token for r in apns.requests[apns_before:])
    pushes = sum(len(v) for v in push.received.values()) - push_before
    used = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
    cpu = {"workers": sum(v for k, v in used.items() if k.startswith("worker")), "postgres": used.get("postgres", 0.0),
           "stand-ins (bench process)": used.get("bench client", 0.0)}
    return {"cpu_ms_per_delivery": {role: round(1000 * v / customers, 3) for role, v in cpu.items()},
            "cpu_seconds": {role: round(v, 1) for role, v in cpu.items()},
            "workers": workers, "seconds": round(elapsed, 2), "deliveries_per_s": round(customers / elapsed),
            "all_sent_seconds": round(sent_at or elapsed, 2),
            "state": state, "statuses": statuses, "channels": channels,
            "apns_pushes": sum(apns_tokens.values()), "apns_devices": len(apns_tokens), "web_pushes": pushes,
            "ok": statuses == {"sent": customers} and len(apns_tokens) == customers // 2
            and pushes == customers - customers // 2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=GOAL_CUSTOMERS)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    ap.add_argument("--database-url", default=os.environ.get("TALLYPASS_BENCH_CAMPAIGN_DATABASE_URL", DEFAULT_DB_URL))
    ap.add_argument("--broker", default=DEFAULT_BROKER)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    libpq_url = args.database_url
    url = Settings(_env_file=None, database_url=libpq_url).database_url  # type: ignore[call-arg]
    certs = Path(tempfile.mkdtemp(prefix="tallypass-bench-"))
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    dev_credentials.write_dev_credentials(certs, pass_type_id=defaults.apple_pass_type_id,
                                          team_id=defaults.apple_team_id)
    import redis

    redis.Redis.from_url(args.broker).flushdb()
    results: dict[str, Any] = {"customers": args.customers, "database": conninfo_to_dict(libpq_url)["dbname"]}
    with FakeApns(client_ca=[certs / "root-ca.pem", certs / "wwdr.pem"]) as apns, \
            FakePushService(http2=True) as push:
        program_id = load(url, libpq_url, args.customers, push)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, env="testing", database_url=url, broker_url=args.broker, secret_key=SECRET,
            base_url="https://tallypass.test", apns_url=apns.url, apns_ca_file=apns.ca_file,
            apple_pass_cert=certs / "pass-cert.pem", apple_pass_key=certs / "pass-key.pem",
            apple_wwdr_cert=certs / "wwdr.pem", vapid_private_key=certs / "vapid-private.pem",
            vapid_subject="mailto:ops@tallypass.test", log_level="WARNING")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TALLYPASS_")}, **settings.environment(),
               "SSL_CERT_FILE": str(push.ca_file)}  # the workers trust the push stand-in's certificate
        app = create_app(settings)
        engine = make_engine(url, pool_size=2)
        app.extensions[SESSIONS] = make_session_factory(engine, dispatch=outbox_tasks.dispatch_events)
        results["runs"] = []
        for workers in (int(w) for w in args.workers.split(",")):
            log(f"campaign with {workers} worker(s)")
            run = run_campaign(app, env, program_id, workers, args.customers, apns, push, certs)
            log(f"  {run['seconds']} s, {run['deliveries_per_s']:,} deliveries/s, ok={run['ok']}")
            results["runs"].append(run)
        log("reference: bare web-push encryption in one process")
        results["reference_encryptions_per_s"] = round(reference(push))
        engine.dispose()
        app.extensions[CHANNELS].close()
    for run in results["runs"]:
        run["ratio_to_reference"] = round(run["deliveries_per_s"] / results["reference_encryptions_per_s"], 3)
    results["goal"] = f"{GOAL_CUSTOMERS:,} customers in under {GOAL_SECONDS:.0f} s"
    if not args.keep:
        drop_database(libpq_url)
    if args.json:
        print(json.dumps(results))
    else:
        print(f"campaign to {args.customers:,} customers (half Apple Wallet, half web push)")
        for run in results["runs"]:
            print(f"  {run['workers']} worker(s): {run['seconds']:7.2f} s (all sent at {run['all_sent_seconds']:.1f} s)"
                  f"  {run['deliveries_per_s']:>7,} deliveries/s"
                  f"  ratio {run['ratio_to_reference']:.3f}  APNs pushes {run['apns_pushes']:,} to "
                  f"{run['apns_devices']:,} devices, web pushes {run['web_pushes']:,}  ok={run['ok']}")
            print("      CPU per delivery: " + ", ".join(f"{role} {ms:.3f} ms" for role, ms in
                                                         run["cpu_ms_per_delivery"].items()))
        print(f"  reference: {results['reference_encryptions_per_s']:,} web-push encryptions/s in one process")
        print(f"  goal: {results['goal']}")
    return 0 if all(run["ok"] for run in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
