"""Google Wallet object PATCHes per second through one GoogleWalletClient, against the local stand-in, and
"Add to Google Wallet" links signed per second.

What it does:

1. makes a throwaway 2048-bit RSA service-account key (Google's key size);
2. starts the fake Google Wallet API and token endpoint (``tests/fakes/google_wallet_api.py``) over real HTTP on
   127.0.0.1. By default the fake runs in its own process, so that it does not compete with the client for
   the interpreter lock and the figures are the client's; ``--fake-in-process`` runs it in a thread of this
   process instead (as the tests do). The fake checks every request and its own answer against Google's
   discovery document, as strictly as Google (about 0.3 ms of the fake's CPU per PATCH, measured on the
   shared 2-core machine): another reason to keep it out of the client's process;
3. builds ONE ``GoogleWalletClient`` (its own ``httpx.Client``: HTTP/2 to Google, HTTP/1.1 keep-alive to the
   fake), fetches the access token and inserts a class and one loyalty object per thread (not counted);
4. for each thread count of ``--threads`` (default 1, 4, 16): every thread PATCHes the ``loyaltyPoints`` of its
   own object in a loop, 0.5 s of warm-up and then ``--seconds``, all through the same client; it reports
   PATCHes/s, latency p50/p99, the client's CPU time per PATCH, failures, and how many TCP connections the
   fake has accepted so far (with HTTP/1.1 at most one per concurrent thread: connections are reused);
5. signs save links on one thread: ``save_url(save_jwt(...))`` of a skinny payload (the object's id only,
   reference §2), next to the bare RS256 signature (``cryptography``) of an input of the same size, the lower
   bound of what a link costs; ``--seconds`` each, in ten alternating turns whose medians count (as
   bench/pkpass.py does, so machine noise hits both alike); and prints the JWT length of a skinny, an object-only
   and a fat (class + object) payload against the 1800-character limit.

``run(...)`` returns the figures as a dict. Progress goes to stderr, the report to stdout (one JSON object with
``--json``). Exit status 0 when every PATCH succeeded and the client never held more connections than
threads, 1 otherwise, 2 when the setup failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.channels.google_wallet import (
    MAX_SAVE_JWT,
    GoogleWalletClient,
    GoogleWalletConfig,
    GoogleWalletError,
    ServiceAccount,
    save_jwt,
    save_url,
)

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "3388000000012345678"
EMAIL = "tallypass-bench@tallypass-bench.iam.gserviceaccount.com"
KEY_ID = "bench0000000000000000000000000000000000"
CLASS_ID = f"{ISSUER}.bench_rewards"
ORIGINS = ["https://shop.example"]
WARMUP_S = 0.5


class SetupError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))]


def a_class() -> dict[str, Any]:
    return {
        "id": CLASS_ID, "issuerName": "Bench Co", "programName": "Bench Rewards", "reviewStatus": "UNDER_REVIEW",
        "programLogo": {"sourceUri": {"uri": "https://cdn.example.com/logo.png"},
                        "contentDescription": {"defaultValue": {"language": "en-US", "value": "Logo"}}},
        "hexBackgroundColor": "#4285f4",
    }


def an_object(n: int) -> dict[str, Any]:
    return {
        "id": f"{ISSUER}.bench-{n:04d}", "classId": CLASS_ID, "state": "ACTIVE", "accountId": f"{n:04d}",
        "accountName": "Bench Member", "loyaltyPoints": {"label": "Points", "balance": {"int": 0}},
        "barcode": {"type": "QR_CODE", "value": f"{n:012d}", "alternateText": f"{n:012d}"},
    }


# -------------------------------------------------------------------------------- the fake


class _FakeProcess:
    """The fake in a child process (``python -m tests.fakes.google_wallet_api``), asked for counters on stdin."""

    def __init__(self, public_pem: Path) -> None:
        args = [sys.executable, "-m", "tests.fakes.google_wallet_api", "--public-key", str(public_pem),
                "--client-email", EMAIL, "--issuer-id", ISSUER, "--key-id", KEY_ID]
        self._proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.close()
            raise SetupError("the fake Google Wallet process exited before printing its address")
        info = json.loads(line)
        self.api_url, self.token_url = info["api_url"], info["token_url"]

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


@contextlib.contextmanager
def _fake(key: rsa.RSAPrivateKey, in_process: bool) -> Iterator[tuple[str, str, Callable[[], dict[str, int]]]]:
    """(api_url, token_url, stats) of a running fake."""
    if in_process:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.fakes.google_wallet_api import FakeGoogleWallet

        with FakeGoogleWallet(key, EMAIL, ISSUER, key_id=KEY_ID) as google:

            def stats() -> dict[str, int]:
                return {"connections": google.connections, "requests": len(google.requests),
                        "classes": len(google.classes), "objects": len(google.objects)}

            yield google.api_url, google.token_url, stats
        return
    with tempfile.TemporaryDirectory(prefix="tallypass-bench-google-") as tmp:
        pem = Path(tmp) / "public.pem"
        pem.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ))
        fake = _FakeProcess(pem)
        try:
            yield fake.api_url, fake.token_url, fake.stats
        finally:
            fake.close()


# -------------------------------------------------------------------------------- measurements


def _patch_phase(client: GoogleWalletClient, threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` threads PATCH their own object for WARMUP_S (not counted), then for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []
    start_line = threading.Barrier(threads + 1)
    measuring, stop = threading.Event(), threading.Event()

    def worker(n: int) -> None:
        object_id, balance, mine = f"{ISSUER}.bench-{n:04d}", 0, latencies[n]
        start_line.wait()
        while not stop.is_set():
            balance += 1
            body = {"loyaltyPoints": {"label": "Points", "balance": {"int": balance}}}
            t0 = time.perf_counter()
            try:
                client.patch("loyaltyObject", object_id, body)
            except GoogleWalletError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if measuring.is_set():
                mine.append(time.perf_counter() - t0)

    pool = [threading.Thread(target=worker, args=(n,), name=f"bench-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    start_line.wait()
    time.sleep(WARMUP_S)
    measuring.set()
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in pool:
        thread.join()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0  # includes the last requests in flight
    done = sorted(x for per_thread in latencies for x in per_thread)
    return {
        "threads": threads,
        "patches": len(done),
        "elapsed_s": round(elapsed, 3),
        "rate": len(done) / elapsed if elapsed else 0.0,
        "p50_ms": pct(done, 50) * 1000,
        "p99_ms": pct(done, 99) * 1000,
        "cpu_us_per_patch": cpu / len(done) * 1e6 if done else 0.0,
        "failures": len(failures),
        "failure_example": failures[0] if failures else None,
    }


def _interleaved(contenders: dict[str, Callable[[], object]], seconds: float, rounds: int = 10) -> dict[str, float]:
    """Median calls per second of each contender over ``rounds`` short turns taken in alternation (as in
    bench/pkpass.py), so that a noisy neighbour on the machine slows every contender alike."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in contenders.items():
            runs, began = 0, time.perf_counter()
            while True:
                fn()
                runs += 1
                elapsed = time.perf_counter() - began
                if elapsed >= seconds / rounds and runs >= 3:
                    break
            samples[name].append(runs / elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


def _save_links(account: ServiceAccount, seconds: float) -> dict[str, Any]:
    """``seconds`` for each: a whole save link, and the bare RS256 signature of a signing input of its size."""
    skinny = {"loyaltyObjects": [{"id": f"{ISSUER}.bench-0000"}]}
    token = save_jwt(account, skinny, origins=ORIGINS)
    signing_input = token.rsplit(".", 1)[0].encode()
    key = account.private_key
    rates = _interleaved({
        "link": lambda: save_url(save_jwt(account, skinny, origins=ORIGINS)),
        "bare": lambda: key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()),
    }, seconds)
    object_only = {"loyaltyObjects": [an_object(0)]}
    fat = {"loyaltyClasses": [a_class()], "loyaltyObjects": [an_object(0)]}
    lengths = {name: len(save_jwt(account, payload, origins=ORIGINS))
               for name, payload in (("skinny", skinny), ("object_only", object_only), ("fat", fat))}
    return {
        "rate": rates["link"],
        "bare_sign_rate": rates["bare"],
        "share_of_bare": rates["link"] / rates["bare"] if rates["bare"] else 0.0,
        "jwt_lengths": lengths,
        "max_save_jwt": MAX_SAVE_JWT,
    }


def run(
    threads: tuple[int, ...] = (1, 4, 16), *, seconds: float = 3.0, fake_in_process: bool = False,
    sign_seconds: float | None = None,
) -> dict:
    """PATCH loyalty objects from each number of ``threads`` through one client, then sign save links."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = ServiceAccount(client_email=EMAIL, private_key=key, private_key_id=KEY_ID, project_id="bench")
    phases: list[dict[str, Any]] = []
    with _fake(key, fake_in_process) as (api_url, token_url, stats):
        config = GoogleWalletConfig(api_url=api_url, token_url=token_url, account=account, max_attempts=1)
        with GoogleWalletClient(config) as client:
            try:
                client.access_token()
                client.insert_or_patch("loyaltyClass", a_class())
                for n in range(max(threads)):
                    client.insert_or_patch("loyaltyObject", an_object(n))
            except GoogleWalletError as exc:
                raise SetupError(f"preparing the class and objects failed: {exc}") from exc
            for count in threads:
                log(f"{count} thread(s): {WARMUP_S} s warm-up, then {seconds} s of PATCHes")
                phase = _patch_phase(client, count, seconds)
                phase["connections_so_far"] = stats()["connections"]
                phases.append(phase)
        seen = stats()
    log(f"save links and the bare RS256 sign: {sign_seconds or seconds} s each, in 10 alternating turns")
    links = _save_links(account, sign_seconds or seconds)
    return {
        "fake": "thread" if fake_in_process else "process",
        "cores": os.cpu_count(),
        "seconds": seconds,
        "phases": phases,
        "connections": seen["connections"],
        "requests_seen": seen["requests"],
        "save_links": links,
    }


def print_report(r: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(r))
        return
    where = "its own process" if r["fake"] == "process" else "a thread of the client's process"
    lines = [
        f"fake Google Wallet in {where}, HTTP/1.1 keep-alive, one GoogleWalletClient, {r['cores']} cores,"
        f" {r['seconds']} s per row",
        f"{'threads':>8}{'PATCH/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cpu µs/PATCH':>14}{'failed':>8}{'connections':>13}",
    ]
    for p in r["phases"]:
        lines.append(f"{p['threads']:>8}{p['rate']:>10.0f}{p['p50_ms']:>9.2f}{p['p99_ms']:>9.2f}"
                     f"{p['cpu_us_per_patch']:>14.0f}{p['failures']:>8}{p['connections_so_far']:>13}")
    lines.append(f"TCP connections the fake accepted over the run: {r['connections']} (requests {r['requests_seen']},"
                 " including the token request, the class and one object per thread)")
    for p in r["phases"]:
        if p["failure_example"]:
            lines.append(f"failed ({p['threads']} threads): {p['failure_example']}")
    s = r["save_links"]
    lengths = ", ".join(f"{k} {v}" for k, v in s["jwt_lengths"].items())
    lines += [
        f"{'save links':<26}{'per s':>10}",
        f"{'save_url(save_jwt(skinny))':<26}{s['rate']:>10.0f}",
        f"{'bare RS256 sign':<26}{s['bare_sign_rate']:>10.0f}   links at {s['share_of_bare']:.0%} of the bare rate",
        f"JWT characters: {lengths} (links break above {s['max_save_jwt']})",
    ]
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,4,16", help="comma-separated thread counts (default 1,4,16)")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured seconds per thread count (default 3)")
    ap.add_argument("--fake-in-process", action="store_true", help="run the fake in a thread of this process")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    try:
        threads = tuple(int(t) for t in args.threads.split(","))
    except ValueError:
        ap.error("--threads must be comma-separated integers, e.g. 1,4,16")
    if not threads or min(threads) < 1 or args.seconds <= 0:
        ap.error("--threads must be positive and --seconds greater than 0")
    try:
        report = run(threads, seconds=args.seconds, fake_in_process=args.fake_in_process)
    except SetupError as exc:
        log(f"setup failed: {exc}")
        return 2
    print_report(report, args.json)
    ok = all(p["failures"] == 0 for p in report["phases"]) and report["connections"] <= max(threads)
    return 0 if ok else 1


def _sigterm(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
