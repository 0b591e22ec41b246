"""Schemathesis over the marketer API: every check, the examples, coverage, fuzzing and stateful phases, with
a fixed seed, against the app served over real HTTP on a local port.

Used by ``tests/web/test_openapi.py`` (a bounded run per seed inside ``make test``) and by ``make fuzz-api``
(the same run, longer). The app commits for real, as in production (``committing_app``: PostgreSQL, tables
emptied afterwards): a run of thousands of requests inside one rolled-back test transaction would keep
every lock they took and exhaust PostgreSQL's lock table. It is served by werkzeug's single-threaded server
in a thread of the test process. Real HTTP rather than schemathesis's in-process WSGI transport: that
transport passes socket options (``max_redirects``) to werkzeug when the ``ignored_auth`` check re-sends a
request without credentials, and fails; over HTTP the run is also the one an integrator's CLI run makes.

Why a test inside ``make test`` rather than a CI step of its own: the run needs what the suite's fixtures
already build (a migrated PostgreSQL database, committed data and an API token, tables emptied afterwards),
and schemathesis 4's CLI takes a URL only, so a separate step would need its own server process, seeding
and clean-up. Bounded to under a minute per seed (api_fuzz.with_rule_trees says what the bounded run leaves
to ``make fuzz-api``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import schemathesis
from flask import Flask
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from werkzeug.serving import WSGIRequestHandler, make_server

PHASES = ("examples", "coverage", "fuzzing", "stateful")
SEEDS = (7, 42, 1234)


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> bytes | None:
    """A CSV file is text. A value of another JSON type (an object, a number: what the negative phases send
    to say "wrong type") has no CSV form, and written out as its JSON text it would be a valid file again
    ("{}" is a one-column CSV): it is sent as no body at all, which is what such a request amounts to."""
    del ctx
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else None


def seed_world(app: Flask) -> dict[str, Any]:
    """What the API is run against, committed: a programme ``demo`` with a card, a store with a POS key and
    coordinates, a draft campaign, and an admin API token (``token``)."""
    from app.campaigns import lifecycle
    from app.campaigns.lifecycle import VariantSpec
    from app.database import SESSIONS
    from app.db import utcnow
    from app.loyalty import enrollment, ledger
    from app.merchants import tokens
    from app.merchants.stores import create_store, issue_credential
    from app.models import Program, Tier

    with app.extensions[SESSIONS].begin() as session:
        program = Program(slug="demo", name="Demo", currency="MDL", point_value=Decimal("1.00"),
                          redeem_cap_percent=Decimal("50"), expiry_days=365)
        session.add(program)
        session.flush()
        session.add_all([Tier(program_id=program.id, name="Bronze", qualifying_spend=Decimal("0"),
                              earn_percent=Decimal("3")),
                         Tier(program_id=program.id, name="Gold", qualifying_spend=Decimal("5000"),
                              earn_percent=Decimal("10"))])
        store = create_store(session, program=program, name="Centru", latitude=47.0, longitude=28.8)
        key = issue_credential(session, store=store, secret_key=app.config["SECRET_KEY"])
        card = enrollment.enrol(session, program=program, phone="+37369000001", name="Ana Pop").card
        ledger.grant_bonus(session, card=card, points=40, reason="start")
        campaign = lifecycle.create(session, program=program, name="Spring", channels=["sms"],
                                    variants=[VariantSpec("A", "Hello {{ first_name }}")], now=utcnow())
        _row, token = tokens.issue(session, name="fuzz", role="admin", now=utcnow())
        return {"program": program.slug, "customer": card.customer_id, "store": store.id,
                "key": key.credential.key_id, "campaign": campaign.id, "token": token}


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Thousands of requests: the findings say which ones matter."""


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` on ``http://127.0.0.1:<free port>`` for the duration of the block."""
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@dataclass
class Finding:
    phase: str
    operation: str
    title: str
    message: str
    curl: str

    def __str__(self) -> str:
        return f"[{self.phase}] {self.operation}: {self.title}\n{self.message}\n{self.curl}"


@dataclass
class Report:
    seed: int
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    scenarios: dict[str, int] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.findings and not self.errors

    def summary(self) -> str:
        lines = [f"seed {self.seed}: {len(self.findings)} finding(s), {len(self.errors)} error(s); "
                 f"scenarios per phase {self.scenarios}; phases {self.phases}"]
        lines += [str(f) for f in self.findings] + self.errors
        return "\n\n".join(lines)


# What schemathesis expects of a request its generator thinks valid (its default), and, for an operation whose
# document lists rules JSON Schema cannot state (x-rules: a template that must parse, names that must differ),
# also 422: the refusal those rules document.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in document["paths"].values() for op in item.values() if isinstance(op, dict)]


def with_rules(document: dict[str, Any]) -> list[str]:
    """The operationIds whose document lists ``x-rules``."""
    return sorted(op["operationId"] for op in _operations(document) if op.get("x-rules"))


def with_rule_trees(document: dict[str, Any]) -> list[str]:
    """The operationIds whose body holds a segment's rule tree (``RuleNode``, 40 shapes of condition, nested):
    the coverage phase, which walks every shape with every boundary value, sends some 5,000 requests for each,
    about half a minute. The bounded run leaves those to fuzzing and the stateful phase; ``make fuzz-api``
    covers them too."""
    schemas = document["components"]["schemas"]

    def names(node: Any, seen: set[str]) -> set[str]:
        for ref in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(node)):
            if ref not in seen:
                seen.add(ref)
                names(schemas[ref], seen)
        return seen

    return sorted(op["operationId"] for op in _operations(document)
                  if "RuleNode" in names(op.get("requestBody", {}), set()))


def config(*, base_url: str, token: str, seed: int, max_examples: int, max_steps: int, document: dict[str, Any],
           max_time: int | None = None, cover_trees: bool = False) -> SchemathesisConfig:
    phase = {"enabled": True}
    ruled, trees = with_rules(document), ([] if cover_trees else with_rule_trees(document))
    rules_apply = {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}}
    operations = [{"include-operation-id": [o for o in ruled if o not in trees], "checks": rules_apply}]
    if trees:
        operations.append({"include-operation-id": trees, "phases": {"coverage": {"enabled": False}},
                           **({"checks": rules_apply} if set(trees) <= set(ruled) else {})})
    return SchemathesisConfig.from_dict({
        "seed": seed,
        "workers": 1,  # one request at a time: the seeds replay the same run
        "base-url": base_url,
        "headers": {"Authorization": f"Bearer {token}"},
        "request-timeout": 30,
        "generation": {"max-examples": max_examples, "database": "none"},
        "checks": {"enabled": True},  # all of them
        "phases": {"examples": phase, "coverage": phase, "fuzzing": phase,
                   "stateful": {"enabled": True, "max-steps": max_steps}},
        "warnings": False,
        "cache": {"enabled": False},
        "operations": operations,
        **({"max-time": max_time} if max_time else {}),
    })


def run(app: Flask, *, token: str, seed: int, max_examples: int = 10, max_steps: int = 10,
        max_time: int | None = None, cover_trees: bool = False, progress: bool = False) -> Report:
    """One schemathesis run over the API; every distinct failure (operation × kind) once."""
    report = Report(seed=seed)
    seen: set[tuple[str, str, str]] = set()
    document = app.test_client().get("/api/v1/openapi.json").json
    with served(app) as base_url:
        cfg = config(base_url=base_url, token=token, seed=seed, max_examples=max_examples, max_steps=max_steps,
                     document=document, max_time=max_time, cover_trees=cover_trees)
        schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json", config=cfg)
        started = time.monotonic()
        for event in from_schema(schema).execute():
            if progress and isinstance(event, events.ScenarioFinished | events.PhaseFinished):
                label = getattr(event, "label", None) or getattr(event, "phase", "")
                print(f"{time.monotonic() - started:7.1f}s {type(event).__name__} {label}", flush=True)  # noqa: T201
            if isinstance(event, events.ScenarioFinished):
                report.scenarios[event.phase.value] = report.scenarios.get(event.phase.value, 0) + 1
                for nodes in event.recorder.checks.values():
                    for node in nodes:
                        info = node.failure_info
                        if info is None:
                            continue
                        failure = info.failure
                        key = (failure.operation or "", failure.title, type(failure).__name__)
                        if key in seen:
                            continue
                        seen.add(key)
                        report.findings.append(Finding(phase=event.phase.value, operation=failure.operation or "",
                                                       title=failure.title, message=failure.message[:1500],
                                                       curl=info.code_sample[:1500]))
            elif isinstance(event, events.PhaseFinished):
                report.phases[event.phase.name.value] = event.status.value
            elif isinstance(event, events.NonFatalError):
                report.errors.append(f"[{event.phase}] {event.label}: {event.info.title}: {event.info.message[:1500]}")
            elif isinstance(event, events.FatalError):
                report.errors.append(f"fatal: {event.exception!r}")
    return report

