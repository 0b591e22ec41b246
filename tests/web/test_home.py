"""``/`` is a small landing page, not a 404: what this server is, the way to one's card or a new one, and a
sign-in link for shop staff; in the visitor's language; it lists no programme and needs no database."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient


def links(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]+)"', html)


def test_the_landing_page_leads_staff_to_the_dashboard_and_lists_no_programme(
        client: FlaskClient, make_program: Callable[..., Any]) -> None:
    make_program(slug="secret-cafe", name="Secret Café")
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "<h1>Loyalty cards</h1>" in page.text
    assert re.search(r'<a href="/dashboard/" id="sign-in">Sign in to the dashboard</a>', page.text)
    assert "/join/" not in page.text and "secret-cafe" not in page.text and "Secret Café" not in page.text
    assert [href for href in links(page.text) if not href.startswith("?lang=")] == ["/dashboard/"]
    assert "Content-Security-Policy" in page.headers
    assert client.get("/dashboard/", follow_redirects=False).status_code in (302, 303)  # the link leads to sign-in


def test_the_landing_page_speaks_the_visitors_language(app: Flask, client: FlaskClient) -> None:
    russian = client.get("/?lang=ru").text
    assert '<html lang="ru">' in russian and "Карты лояльности" in russian and "Войти в панель управления" in russian
    romanian = app.test_client().get("/", headers={"Accept-Language": "ro-MD,ro;q=0.9"}).text
    assert "Carduri de fidelitate" in romanian and "Intră în panoul de administrare" in romanian


def test_the_landing_page_answers_without_the_database(client: FlaskClient, monkeypatch: Any) -> None:
    import app.database as database

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the landing page must not open a database session")

    monkeypatch.setattr(database, "get_session", down)
    assert client.get("/").status_code == 200
