"""APNs pushes per second through one ApnsClient, against the local HTTP/2 stand-in.

What it does:

1. writes stand-in credentials (``app.channels.dev_credentials``) into a temporary directory;
2. starts the fake APNs (``tests/fakes/apns_h2.py``) with certificate auth: the client presents the Pass
   Type ID certificate, verified against the dev root and WWDR stand-in. By default the fake runs in its
   own process, so that it does not compete with the client for the interpreter lock and the figure is
   the client's; ``--fake-in-process`` runs it in a thread of this process instead (as the tests do);
3. builds one ``ApnsClient``, pushes one token to open the connection (not counted), then ``--pushes``
   tokens in a single ``push()`` call, then as many again in ``push()`` calls of ``--batch`` tokens;
4. prints pushes/s, elapsed time, the client's CPU time per push, how many were SENT, and how many TCP
   connections the fake accepted over the whole run (the client should open exactly one).

``run(n, ...)`` returns the same figures as a dict, for other bench scripts. Progress goes to stderr, the
report to stdout (one JSON object with ``--json``). Exit status 0 when every push was SENT over one
connection, 1 otherwise, 2 when the fake did not start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.channels import dev_credentials as dc
from app.channels.apns import ApnsClient, ApnsConfig, PushOutcome

ROOT = Path(__file__).resolve().parents[1]
PASS_TYPE, TEAM = "pass.bench.tallypass", "BENCHTEAM1"


class SetupError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class _FakeProcess:
    """The fake in a child process (``python -m tests.fakes.apns_h2``), asked for its counters on stdin."""

    def __init__(self, client_ca: list[Path]) -> None:
        args = [sys.executable, "-m", "tests.fakes.apns_h2"]
        for ca in client_ca:
            args += ["--client-ca", str(ca)]
        self._proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.close()
            raise SetupError("the fake APNs process exited before printing its address")
        info = json.loads(line)
        self.url, self.ca_file = info["url"], Path(info["ca_file"])

    def stats(self) -> dict[str, int]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _measure(client: ApnsClient, tokens: list[str], batch: int | None) -> dict[str, Any]:
    chunks = [tokens] if batch is None else [tokens[i:i + batch] for i in range(0, len(tokens), batch)]
    outcomes: Counter[str] = Counter()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for chunk in chunks:
        outcomes.update(r.outcome.value for r in client.push(chunk))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "calls": len(chunks),
        "elapsed_s": round(elapsed, 3),
        "rate": len(tokens) / elapsed if elapsed else 0.0,
        "cpu_us_per_push": cpu / len(tokens) * 1e6,
        "sent": outcomes[PushOutcome.SENT.value],
        "outcomes": dict(outcomes),
    }


def run(n: int = 10_000, *, batch: int = 100, concurrency: int = 100, fake_in_process: bool = False) -> dict:
    """Push ``n`` tokens in one call and ``n`` more in calls of ``batch`` through one client; the figures."""
    with tempfile.TemporaryDirectory(prefix="tallypass-bench-apns-") as tmp:
        certs = Path(tmp)
        dc.write_dev_credentials(certs, pass_type_id=PASS_TYPE, team_id=TEAM)
        client_ca = [certs / dc.ROOT_CA, certs / dc.WWDR_CERT]
        if fake_in_process:
            if str(ROOT) not in sys.path:
                sys.path.insert(0, str(ROOT))
            from tests.fakes.apns_h2 import FakeApns

            fake_cm: Any = FakeApns(client_ca=client_ca)
            fake = fake_cm.__enter__()

            def stats() -> dict[str, int]:
                return {"connections": fake.connections, "handshake_failures": fake.handshake_failures,
                        "requests": len(fake.requests)}

            stop: Callable[[], None] = lambda: fake_cm.__exit__(None, None, None)  # noqa: E731
        else:
            fake = _FakeProcess(client_ca)
            stats, stop = fake.stats, fake.close
        try:
            config = ApnsConfig(
                base_url=fake.url,
                topic=PASS_TYPE,
                certificate=dc.load_certificate(certs / dc.PASS_CERT),
                private_key=dc.load_private_key(certs / dc.PASS_KEY),
                ca_file=fake.ca_file,
                concurrency=concurrency,
            )
            with ApnsClient(config) as client:
                warm = client.push([f"{0:064x}"])[0]
                if warm.outcome is not PushOutcome.SENT:
                    raise SetupError(f"the warm-up push was not sent: {warm}")
                log(f"{n} pushes in one push() call")
                single = _measure(client, [f"{i:064x}" for i in range(1, n + 1)], None)
                log(f"{n} pushes in push() calls of {batch}")
                batched = _measure(client, [f"{i:064x}" for i in range(n + 1, 2 * n + 1)], batch)
            seen = stats()
        finally:
            stop()
    return {
        "pushes": n,
        "batch": batch,
        "concurrency": concurrency,
        "fake": "thread" if fake_in_process else "process",
        "cores": os.cpu_count(),
        "single_call": single,
        "batched": batched,
        "connections": seen["connections"],
        "handshake_failures": seen["handshake_failures"],
        "requests_seen": seen["requests"],
    }


def print_report(r: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(r))
        return
    where = "its own process" if r["fake"] == "process" else "a thread of the client's process"
    lines = [
        f"fake APNs in {where}, certificate auth, concurrency {r['concurrency']}, {r['cores']} cores",
        f"{'':22}{'pushes/s':>10}{'elapsed s':>11}{'cpu µs/push':>13}{'sent':>8}",
    ]
    for label, key in (("1 push() call", "single_call"), (f"{r['batched']['calls']} calls of {r['batch']}", "batched")):
        m = r[key]
        lines.append(f"{label:22}{m['rate']:>10.0f}{m['elapsed_s']:>11.2f}{m['cpu_us_per_push']:>13.0f}"
                     f"{m['sent']:>8}")
    lines.append(f"TCP connections the fake accepted: {r['connections']}  (handshake failures"
                 f" {r['handshake_failures']}; requests {r['requests_seen']}, including 1 warm-up push)")
    for key in ("single_call", "batched"):
        others = {k: v for k, v in r[key]["outcomes"].items() if k != PushOutcome.SENT.value}
        if others:
            lines.append(f"not sent ({key}): {others}")
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pushes", type=int, default=10_000, help="tokens per phase (default 10000)")
    ap.add_argument("--batch", type=int, default=100, help="tokens per push() call in the second phase (default 100)")
    ap.add_argument("--concurrency", type=int, default=100, help="ApnsConfig.concurrency (default 100)")
    ap.add_argument("--fake-in-process", action="store_true", help="run the fake in a thread of this process")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    if args.pushes < 1 or args.batch < 1 or args.concurrency < 1:
        ap.error("--pushes, --batch and --concurrency must be positive")
    try:
        report = run(args.pushes, batch=args.batch, concurrency=args.concurrency,
                     fake_in_process=args.fake_in_process)
    except SetupError as exc:
        log(f"setup failed: {exc}")
        return 2
    print_report(report, args.json)
    ok = report["connections"] == 1 and all(report[k]["sent"] == args.pushes for k in ("single_call", "batched"))
    return 0 if ok else 1


def _sigterm(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
