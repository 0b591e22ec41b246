"""Security headers on every kind of response (issue 17, §3.8): a Content Security Policy with no inline
scripts and ``frame-ancestors 'none'`` on every page a shopper or a marketer sees (the card page holds the
delete form), per-response nonces for the few inline ``<style>`` elements, and HSTS in production only.

Two guards keep inline code from coming back: every template is read for inline scripts, event-handler
attributes, ``style`` attributes and ``<style>`` elements without the nonce, and every page these tests
render is parsed for the same (with the nonce of its own response)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.web.dashboard_client import sign_in_as

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
DIRECTIVES = ("default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'",
              "form-action 'self'", "frame-ancestors 'none'")


def policy_of(response: Any) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part for part in (p.strip() for p in header.split(";")) if part}


def assert_strict(response: Any, what: str) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    for directive in DIRECTIVES:
        assert directive in policy, (what, directive, policy)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (what, policy)
    assert response.headers["X-Frame-Options"] == "DENY", what
    assert response.headers["X-Content-Type-Options"] == "nosniff", what
    assert "Strict-Transport-Security" not in response.headers, what  # not outside production


class InlineCode(HTMLParser):
    """What a page holds that the policy would block, given the response's nonce."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__()
        self.nonce, self.problems = nonce, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:...>")
        if tag == "script" and "src" not in values and values.get("type") != "application/json":
            self.problems.append("inline <script>")
        if tag == "style" and (self.nonce is None or values.get("nonce") != self.nonce):
            self.problems.append("<style> without this response's nonce")


def assert_no_blocked_inline_code(response: Any, what: str) -> None:
    match = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    parser = InlineCode(match.group(1) if match else None)
    parser.feed(response.get_data(as_text=True))
    assert not parser.problems, (what, parser.problems)


def test_no_template_holds_inline_code_the_policy_would_block() -> None:
    rules = {
        "an event-handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
        "a style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
        "an inline script": re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
        "a <style> without the nonce": re.compile(r"<style(?![^>]*nonce=\"\{\{ csp_nonce\(\) \}\}\")[^>]*>", re.I),
        "a javascript: URL": re.compile(r"javascript:", re.I),
    }
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 20
    found = [f"{path.relative_to(TEMPLATES)}: {what}" for path in templates for what, rule in rules.items()
             if rule.search(path.read_text())]
    assert not found, found


@pytest.fixture
def shop(make_program: Callable[..., Any], make_store: Callable[..., Any], make_card: Callable[..., Any],
         db_session: Session) -> Any:
    program = make_program(slug="cafea", name="Cafea & Co.", background_color="#0F766E")
    make_store(program)
    card = make_card(program, name="Ana Popescu", balance=40)
    card.window_spend = card.window_spend + 250  # a quarter of the way to Silver: the progress bar shows
    db_session.flush()
    return card


def test_every_customer_page_and_api_answer_carries_the_policy(client: FlaskClient, shop: Any) -> None:
    token = shop.page_token
    pages = {
        "join form": client.get("/join/cafea"),
        "join form with errors": client.post("/join/cafea", data={}),
        "join poster": client.get("/join/cafea/poster"),
        "card page": client.get(f"/c/{token}"),
        "card page, after a change": client.get(f"/c/{token}?notice=saved"),
        "unknown card (error page)": client.get("/c/no-such-card"),
        "unknown page (error page)": client.get("/nowhere"),
        "dashboard sign-in": client.get("/dashboard/login"),
    }
    for what, response in pages.items():
        assert response.mimetype == "text/html", what
        assert_strict(response, what)
        assert_no_blocked_inline_code(response, what)
    others = {
        "QR code": client.get("/join/cafea/qr.svg"),
        "service worker": client.get("/sw.js"),
        "customer data": client.get(f"/c/{token}/data.json"),
        "POS API": client.get("/api/v1/pos/cards/x"),
        "marketer API": client.get("/api/v1/customers"),
        "PassKit": client.post("/passkit/v1/log", json={"logs": []}),
        "health": client.get("/healthz"),
        "static file": client.get("/static/card.js"),
    }
    for what, response in others.items():
        assert_strict(response, what)
        response.close()  # the file behind a static response


def test_every_dashboard_page_carries_the_policy_and_no_blocked_code(app: Flask, client: FlaskClient, shop: Any,
                                                                      db_session: Session) -> None:
    from tests.web.test_dashboard import dashboard_routes

    sign_in_as(client, db_session, "admin")
    pages = [(path, endpoint) for method, path, endpoint in dashboard_routes(app) if method == "GET"]
    assert len(pages) > 20
    for path, endpoint in pages:
        response = client.get(path + ("?program=cafea" if "?" not in path else ""))
        if response.mimetype != "text/html":
            continue  # CSV exports, JSON for the page's scripts
        assert_strict(response, endpoint)
        assert_no_blocked_inline_code(response, endpoint)


def test_inline_styles_carry_a_fresh_nonce_for_each_response(client: FlaskClient, shop: Any) -> None:
    nonces = []
    for _ in range(2):
        response = client.get(f"/c/{shop.page_token}")
        nonce = re.search(r"'nonce-([^']+)'", policy_of(response)["style-src"]).group(1)
        styles = re.findall(r'<style nonce="([^"]+)">([^<]*)</style>', response.text)
        assert [n for n, _ in styles] == [nonce, nonce], styles  # the programme's colours, the progress bar
        assert "--brand: #0F766E" in styles[0][1] and "width: 25%" in styles[1][1]
        nonces.append(nonce)
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 22
    # A page without inline styles names no nonce.
    assert "nonce" not in client.get("/dashboard/login").headers["Content-Security-Policy"]


def test_hsts_only_in_production(app_with: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    from app import log

    monkeypatch.setattr(log, "configure_logging", lambda level: None)  # leave the test run's logging alone
    for env, max_age, expected in (("production", 31_536_000, "max-age=31536000"),
                                   ("production", 600, "max-age=600"), ("development", 31_536_000, None)):
        client = app_with(env=env, hsts_max_age=max_age).test_client()
        for url in ("/dashboard/login", "/join/none", "/api/v1/pos/cards/x"):
            response = client.get(url, base_url="https://tallypass.test")
            assert response.headers.get("Strict-Transport-Security") == expected, (env, url)
