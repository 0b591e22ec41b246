"""Malformed input never gets a 5xx, on any route: every rule of ``app.url_map``, every method, signed in and
authenticated as its caller must be, gets each kind of malformed input where the app reads input — the query
string, the path, form fields, JSON bodies, raw text bodies and the headers the app uses.

The kinds are the ones an outside review found to give 500 with a traceback: NUL characters (PostgreSQL text
holds none), integers over 4,300 digits (Python refuses to convert longer digit strings), JSON nested ~900
deep (RecursionError), lone surrogates (no UTF-8 for them) and CR/LF where the app builds a header.

The field names come from the code itself (every ``request.args/form`` name and every field of the request
models of ``app.web``), so a new field or route is walked without editing this file."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import BaseModel
from pydantic_settings import BaseSettings
from sqlalchemy.orm import Session

import app.web
from app import signing
from app.models import Campaign, PosCredential, Segment
from app.web.api._models import Out
from tests.web.api_client import api_token
from tests.web.dashboard_client import sign_in_as

WEB = Path(app.web.__file__).parent
HUGE = "9" * 4301  # one digit over Python's int-string limit (sys.get_int_max_str_digits())
NUL = "a\x00b"
SURROGATE_BYTES = "%ED%A0%80"  # U+D800 as it would be UTF-8-encoded: a lone surrogate
CRLF = "/dashboard\r\nSet-Cookie: x=1"
DEEP = 900


def _request_models() -> Iterator[type[BaseModel]]:
    """Every pydantic model of ``app.web`` that describes what a request sends."""
    for module in pkgutil.walk_packages(app.web.__path__, "app.web."):
        for value in vars(importlib.import_module(module.name)).values():
            if (isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
                    and not issubclass(value, Out | BaseSettings) and not value.__name__.endswith("Out")):
                yield value


def _names_read(source: str) -> set[str]:
    """The names the web layer reads with ``<source>.get("name")``, ``<source>.getlist(...)`` or
    ``<source>["name"]`` (source: args, form)."""
    pattern = re.compile(source + r"""(?:\.get(?:list)?\(|\[)\s*f?["']([A-Za-z_]\w*)["']""")
    return {name for path in WEB.rglob("*.py") for name in pattern.findall(path.read_text())}


def _query_names() -> list[str]:
    names = _names_read("args")
    for model in _request_models():
        if model.__name__.endswith("Query"):
            names.update(model.model_fields)
    return sorted(names)


def _body_names() -> list[str]:
    names = _names_read("form") | _names_read("files")
    for model in _request_models():
        names.update(model.model_fields)
    names.update(f"variant_{part}" for part in ("name", "title", "body", "weight"))
    names.update(f"channel_{n}" for n in (1, 2, 3))
    names.update(f"consent_{c}" for c in ("sms", "email", "push", "wallet"))
    names.discard("csrf_token")
    return sorted(names)


QUERY_NAMES = _query_names()
NAMES = _body_names()


@dataclass
class World:
    client: FlaskClient
    csrf: str
    api_token: str
    pos_key: str
    pos_secret: str
    card: Any
    path_values: dict[str, str]


@pytest.fixture
def world(app: Flask, client: FlaskClient, db_session: Session, make_program: Any, make_card: Any,
          make_store: Any) -> World:
    program = make_program(slug="demo")
    card = make_card(program, phone="+37369000001", balance=40)
    creds = make_store(program)
    db_session.flush()
    from app.campaigns import lifecycle
    from app.campaigns.lifecycle import VariantSpec
    from app.db import utcnow
    from app.segments import manage

    segment = manage.create(db_session, program=program, name="All", kind="rules", actor="test", now=utcnow(),
                            tree={"all": []}, rfm_names=None)
    campaign = lifecycle.create(db_session, program=program, name="C", segment=segment, channels=["sms"],
                                variants=[VariantSpec("A", "Hello", "", 1)], holdout_percent=0, max_per_week=None,
                                quiet_start_hour=21, quiet_end_hour=9, geo_store_ids=None, ends_at=None,
                                now=utcnow())
    db_session.commit()
    token = api_token(db_session, "admin")
    _user, form_csrf = sign_in_as(client, db_session, "admin")
    credential = db_session.query(PosCredential).filter_by(key_id=creds.key_id).one()
    settings = app.config["TALLYPASS"]
    ids = {"campaign_id": campaign.id, "customer_id": card.customer_id, "segment_id": segment.id,
           "store_id": creds.store.id, "credential_id": credential.id, "program_id": program.id,
           "tier_id": program.tiers[0].id, "rule_id": 1, "token_id": 1, "job_id": 1}
    assert db_session.get(Campaign, campaign.id) and db_session.get(Segment, segment.id)
    values = {"slug": "demo", "token": card.page_token, "barcode": card.barcode, "kind": "logo",
              "device_id": "device1", "pass_type_id": settings.apple_pass_type_id, "serial": card.serial,
              "digest": "0" * 16, "filename": "app.css", **{k: str(v) for k, v in ids.items()}}
    return World(client=client, csrf=form_csrf, api_token=token, pos_key=creds.key_id, pos_secret=creds.secret,
                 card=card, path_values=values)


def _routes(app: Flask) -> Iterator[tuple[str, str, list[str]]]:
    """``(rule, method, [path argument names])`` of every route but the static files."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, sorted(rule.arguments)


def _path(rule: str, values: dict[str, str], override: dict[str, str] | None = None) -> str:
    def swap(match: re.Match[str]) -> str:
        name = match.group(2)
        if override and name in override:
            return override[name]
        return quote(values.get(name, "1"), safe="")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", swap, rule)


def _headers(world: World, path: str, body: bytes, method: str) -> dict[str, str]:
    """What the route's caller sends: a token, a signature, a CSRF token..."""
    if path.startswith("/api/v1/pos/"):
        headers = {"Tallypass-Key": world.pos_key,
                   "Tallypass-Signature": signing.signature_header(world.pos_secret, body)}
        if method == "POST":
            headers["Idempotency-Key"] = f"k-{hash((path, body)) & 0xFFFFFFFF:x}"
        return headers
    if path.startswith("/api/"):
        return {"Authorization": f"Bearer {world.api_token}"}
    if path.startswith("/passkit/"):
        return {"Authorization": f"ApplePass {world.card.apple_auth_token}"}
    return {"X-CSRF-Token": world.csrf}


def _send(world: World, method: str, path: str, *, query: str = "", body: bytes = b"",
          content_type: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    sent = _headers(world, path, body, method)
    sent.update(headers or {})
    if content_type:
        sent["Content-Type"] = content_type
    response = world.client.open(path + (f"?{query}" if query else ""), method=method, data=body, headers=sent)
    status, text = response.status_code, response.get_data()[:300].decode("utf-8", "replace")
    response.close()
    return status, text


def _form(world: World, pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in
                    [("csrf_token", world.csrf), *pairs]).encode()


def _chunks(names: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(names), size):
        yield names[start:start + size]


BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Over the 64 KiB body limit, a body is refused before it is read (413); 14 values of 4,301 digits fit.
PER_BODY = 14


def _cases(world: World, rule: str, method: str, args: list[str], surface: str
           ) -> Iterator[tuple[str, dict[str, Any]]]:
    path = _path(rule, world.path_values)
    if surface == "query":
        for label, value in (("nul", NUL), ("huge-int", HUGE)):
            yield f"query {label}", {"path": path, "query": "&".join(f"{n}={quote(value)}" for n in QUERY_NAMES)}
        yield "query lone surrogate", {"path": path,
                                       "query": "&".join(f"{n}={SURROGATE_BYTES}" for n in QUERY_NAMES)}
        yield "query next CRLF", {"path": path, "query": "next=" + quote(CRLF)}
    elif surface == "path":
        for arg in args:
            for label, value in (("nul", quote(NUL, safe="")), ("huge-int", HUGE),
                                 ("lone surrogate", SURROGATE_BYTES)):
                yield f"path {arg} {label}", {"path": _path(rule, world.path_values, {arg: value})}
    elif surface == "form" and method in BODY_METHODS:
        form = "application/x-www-form-urlencoded"
        yield "form nul", {"path": path, "body": _form(world, [(n, NUL) for n in NAMES]), "content_type": form}
        for names in _chunks(NAMES, PER_BODY):
            yield "form huge-int", {"path": path, "body": _form(world, [(n, HUGE) for n in names]),
                                    "content_type": form}
        raw = "&".join(f"{n}=x{SURROGATE_BYTES}" for n in NAMES) + f"&csrf_token={world.csrf}"
        yield "form lone surrogate", {"path": path, "body": raw.encode(), "content_type": form}
        yield "form next CRLF", {"path": path, "body": _form(world, [("next", CRLF)]), "content_type": form}
        deep = "[" * DEEP + "]" * DEEP  # fields that hold JSON (a segment's rules)
        for names in _chunks(NAMES, 30):
            yield "form deep JSON", {"path": path, "body": _form(world, [(n, deep) for n in names]),
                                     "content_type": form}
    elif surface == "json" and method in BODY_METHODS:
        js = "application/json"
        deep = "[" * DEEP + "]" * DEEP
        yield "json deep", {"path": path, "body": deep.encode(), "content_type": js}
        for names in _chunks(NAMES, 30):  # 30 fields of 1,800 bytes each stay under the 64 KiB limit
            deep_fields = "{" + ",".join(f'"{n}": {deep}' for n in names) + "}"
            yield "json deep fields", {"path": path, "body": deep_fields.encode(), "content_type": js}
        yield "json nul", {"path": path, "body": json.dumps({n: NUL for n in NAMES}).encode(), "content_type": js}
        yield "json lone surrogate", {"path": path, "content_type": js,
                                      "body": ("{" + ",".join(f'"{n}": "x\\ud800"' for n in NAMES) + "}").encode()}
        for names in _chunks(NAMES, PER_BODY):
            yield "json huge-int", {"path": path, "content_type": js,
                                    "body": ("{" + ",".join(f'"{n}": {HUGE}' for n in names) + "}").encode()}
            yield "json huge-int string", {"path": path, "content_type": js,
                                           "body": json.dumps({n: HUGE for n in names}).encode()}
        csv = "text/csv"
        yield "csv nul", {"path": path, "body": b"phone,name\n+37369000009,a\x00b\n", "content_type": csv}
        yield "csv huge-int", {"path": path, "content_type": csv,
                               "body": ",".join(NAMES).encode() + b"\n" + ",".join([HUGE] * len(NAMES)).encode()}
    elif surface == "headers":
        for label, value in (("nul", NUL), ("huge-int", HUGE)):
            extra = {name: value for name in ("X-Request-ID", "Accept-Language", "If-Modified-Since",
                                              "User-Agent", "X-Twilio-Signature", "Accept")}
            yield f"headers {label}", {"path": path, "headers": extra}
            own = _headers(world, path, b"", method)
            for name in own:
                yield f"header {name} {label}", {"path": path, "headers": {name: value}}


SURFACES = ["query", "path", "form", "json", "headers"]


@pytest.mark.parametrize("surface", SURFACES)
def test_no_route_answers_malformed_input_with_a_server_error(app: Flask, world: World, surface: str) -> None:
    failures: dict[str, str] = {}
    for rule, method, args in _routes(app):
        for label, request in _cases(world, rule, method, args, surface):
            status, text = _send(world, method, **request)
            if status >= 500:
                failures.setdefault(f"{method} {rule} ({label})", f"{status} {text[:80]!r}")
    assert not failures, f"{len(failures)} server error(s):\n" + "\n".join(f"{k}: {v}" for k, v in failures.items())
