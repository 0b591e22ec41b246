"""Passes built and signed per second on one core, against two references in the same run.

Run from the repository root::

    .venv/bin/pip install -e '.[bench]'      # wallet-py3k 0.0.4, the reference (make bench-pkpass does this)
    .venv/bin/python bench/pkpass.py [--seconds 5] [--pushes 10000] [--json]

What it measures, in one process pinned to one CPU, in ten alternating turns per contender (the
median turn counts, so the machine's noise hits every contender alike):

1. **tallypass**: ``PassFactory.build`` for a new card version each time (never a cache hit): pass.json
   from the card's content, manifest, PKCS#7 signature, zip. The same pass design as production.
2. **wallet-py3k 0.0.4**: the equivalent store card (same fields, barcode, locations, images and
   strings) through ``Pass.create``, which signs by running ``openssl smime`` in a subprocess.
3. **bare sign**: ``cryptography``'s ``PKCS7SignatureBuilder.sign`` alone over a manifest of the same
   size: the lower bound on the cost of a pass, since every pass needs one signature.
4. **cache hit**: ``PassFactory.build`` for a version already built (what a phone re-downloading gets).

Goals (issue 3): tallypass ≥ 10 × wallet-py3k, and ≥ 60 % of the bare sign rate.
Then, unless ``--pushes 0``: that many APNs pushes to the local HTTP/2 fake (``bench/apns.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs7  # noqa: E402

from app.channels import dev_credentials as dc  # noqa: E402
from app.channels.apple_pass import DESIGN_DIR, Location, PassContent, PassDesign, PassFactory  # noqa: E402
from app.channels.apple_signer import PassSigner  # noqa: E402

PASS_TYPE, TEAM = "pass.bench.tallypass", "BENCHTEAM1"
KEY_PASSWORD = "bench-key-password"  # noqa: S105 (a throwaway key made for this run)


def rate(fn: Callable[[int], Any], seconds: float, *, min_runs: int = 3, start: int = 0) -> tuple[float, int]:
    """Calls per second of ``fn(i)`` over about ``seconds``."""
    runs, began = 0, time.perf_counter()
    while True:
        fn(start + runs)
        runs += 1
        elapsed = time.perf_counter() - began
        if elapsed >= seconds and runs >= min_runs:
            return runs / elapsed, runs


def interleaved(contenders: dict[str, Callable[[int], Any]], seconds: float, rounds: int = 10) -> dict[str, float]:
    """Median rate of each contender over ``rounds`` short turns taken in alternation, so that a noisy
    neighbour on the machine slows every contender alike and their ratio stays meaningful."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    done: dict[str, int] = dict.fromkeys(contenders, 0)
    for fn in contenders.values():
        fn(-1)  # warm-up
    for _ in range(rounds):
        for name, fn in contenders.items():
            per_second, runs = rate(fn, seconds / rounds, start=done[name])
            samples[name].append(per_second)
            done[name] += runs
    return {name: statistics.median(values) for name, values in samples.items()}


def content(i: int) -> PassContent:
    return PassContent(
        serial=f"5f0c7f3e-0000-4000-8000-{i % 10**12:012d}", version=i + 2, authentication_token="t" * 43,
        web_service_url="https://loyalty.example.com/passkit", barcode=f"TP{i:010d}",
        organization_name="Café Lumière", description="Café Lumière loyalty card", logo_text="Café Lumière",
        background_color="#0F766E", foreground_color="#FFFFFF", label_color="#FBBF24",
        member_name="Ana Popescu", balance=1000 + i, tier="Silver", tier_perks="5 % back on everything",
        offer="Double points on Fridays", terms="Points expire after a year.",
        card_page_url="https://loyalty.example.com/c/abc", stores="Centru: Str. Ștefan cel Mare 1",
        locations=tuple(Location(47.0 + k / 100, 28.8, f"Store {k} is nearby") for k in range(10)),
    )


def wallet_py3k_builder(certs: Path, design: PassDesign) -> Callable[[int], bytes] | None:
    try:
        from wallet.models import Barcode, BarcodeFormat, Pass, StoreCard
        from wallet.models import Location as WLocation
    except ImportError:
        return None
    encrypted_key = certs / "pass-key-encrypted.pem"
    key = dc.load_private_key(certs / dc.PASS_KEY)
    encrypted_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode())))

    def build(i: int) -> bytes:
        c = content(max(i, 0))
        card = StoreCard()
        text = design.english
        card.addHeaderField("balance", c.balance, text["balance_label"])
        card.headerFields[-1].changeMessage = text["balance_change"]
        card.addSecondaryField("member", c.member_name, text["member_label"])
        card.addSecondaryField("tier", c.tier, text["tier_label"])
        for key_name, value in (("offer", c.offer), ("perks", c.tier_perks), ("card_number", c.barcode),
                                ("card_page", c.card_page_url), ("stores", c.stores), ("terms", c.terms)):
            card.addBackField(key_name, value, text[f"{key_name}_label"])
        p = Pass(card, passTypeIdentifier=PASS_TYPE, organizationName=c.organization_name, teamIdentifier=TEAM)
        p.serialNumber, p.description, p.logoText = c.serial, c.description, c.logo_text
        p.backgroundColor, p.foregroundColor, p.labelColor = "rgb(15, 118, 110)", "rgb(255, 255, 255)", \
            "rgb(251, 191, 36)"
        p.barcode = Barcode(message=c.barcode, format=BarcodeFormat.QR, altText=c.barcode)
        p.webServiceURL, p.authenticationToken = c.web_service_url, c.authentication_token
        p.locations = [WLocation(loc.latitude, loc.longitude) for loc in c.locations]
        for name, data in design.files.items():
            p._files[name] = data
        return p.create(str(certs / dc.PASS_CERT), str(encrypted_key), str(certs / dc.WWDR_CERT),
                        KEY_PASSWORD).getvalue()

    return build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per contender")
    parser.add_argument("--pushes", type=int, default=10_000, help="APNs pushes to the local fake (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})  # one core; the openssl children of wallet-py3k inherit it
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp)
        dc.write_dev_credentials(certs, pass_type_id=PASS_TYPE, team_id=TEAM)
        signer = PassSigner.from_files(certificate=certs / dc.PASS_CERT, key=certs / dc.PASS_KEY,
                                       wwdr=certs / dc.WWDR_CERT)
        signer.check(pass_type_id=PASS_TYPE, team_id=TEAM)
        design = PassDesign.load(DESIGN_DIR)
        factory = PassFactory(signer=signer, pass_type_id=PASS_TYPE, team_id=TEAM, design=design)
        pass_size = len(factory.build(content(0)).data)
        manifest = json.dumps({name: "0" * 40 for name in [*design.files, "pass.json"]}).encode()

        results: dict[str, Any] = {"cpu": cpu, "pass_bytes": pass_size}
        contenders: dict[str, Callable[[int], Any]] = {
            "tallypass": lambda i: factory.build(content(i + 10)),  # a new version each call: never cached
            "bare_sign": lambda _i: (
                pkcs7.PKCS7SignatureBuilder().set_data(manifest)
                .add_signer(signer.certificate, signer.key, hashes.SHA256()).add_certificate(signer.wwdr)
                .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
            ),
            "cache_hit": lambda _i: factory.build(content(0)),
        }
        reference = wallet_py3k_builder(certs, design)
        if reference:
            contenders["wallet_py3k"] = reference
        results.update(interleaved(contenders, args.seconds))
        results.setdefault("wallet_py3k", None)

    if args.pushes:
        sys.path.insert(0, str(ROOT / "bench"))
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # the fake server needs its own CPU
        import apns as apns_bench  # bench/apns.py

        results["apns"] = apns_bench.run(args.pushes)

    ours, bare, ref = results["tallypass"], results["bare_sign"], results["wallet_py3k"]
    results["vs_wallet_py3k"] = ours / ref if ref else None
    results["vs_bare_sign"] = ours / bare
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"pass size {pass_size / 1024:.0f} KiB, one core (cpu {cpu})")
    print(f"{'contender':<28}{'passes/s':>12}")
    print(f"{'tallypass (build + sign)':<28}{ours:>12.1f}")
    print(f"{'bare cryptography sign':<28}{bare:>12.1f}")
    print(f"{'wallet-py3k 0.0.4':<28}{(f'{ref:.1f}' if ref else 'not installed'):>12}")
    print(f"{'tallypass cache hit':<28}{results['cache_hit']:>12.0f}")
    if ref:
        print(f"tallypass / wallet-py3k = {ours / ref:.1f}x   (goal >= 10x)")
    print(f"tallypass / bare sign   = {ours / bare:.0%}   (goal >= 60%)")
    if "apns" in results:
        a = results["apns"]
        one, batched = a["single_call"], a["batched"]
        print(f"APNs to the local fake: {a['pushes']} pushes, {a['connections']} connection(s)")
        print(f"  one push() call      {one['rate']:8.0f} pushes/s  {one['cpu_us_per_push'] / 1000:.2f} ms CPU/push  "
              f"sent {one['sent']}")
        print(f"  calls of {a['batch']:<12}{batched['rate']:8.0f} pushes/s  "
              f"{batched['cpu_us_per_push'] / 1000:.2f} ms CPU/push  sent {batched['sent']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
