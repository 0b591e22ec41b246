"""Decimals on the dashboard are plain digits: no page shows "1E+1" for 10 (``Decimal.normalize()``), "10.50" for
10.5 or an exponent anywhere. Every page that shows a stored decimal goes through one helper, the ``decimal``
Jinja filter (app/web/display.py); this guard renders 10, 10.5, 100 and 0.25 in each of them."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Campaign, Program, Tier
from app.web.display import plain_decimal
from tests.web.dashboard_client import sign_in_as
from tests.web.test_dashboard_campaigns import campaign_id_of, compose

EXPONENT = re.compile(r"\b\d+(?:\.\d+)?[eE][+-]?\d+\b")  # a number as "1E+1" (not hex digits inside a word)


class _Shown(HTMLParser):
    """What a user sees or edits: the page's text and the values of its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(value or "" for name, value in attrs if name in ("value", "title", "aria-label"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def shown(html: str) -> str:
    parser = _Shown()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def field_value(html: str, field_id: str) -> str:
    match = re.search(rf'<input id="{re.escape(field_id)}"[^>]*\bvalue="([^"]*)"', html)
    assert match, field_id
    return match.group(1)


@pytest.mark.parametrize(("value", "text"), [
    ("10", "10"), ("1E+1", "10"), ("10.00", "10"), ("10.5", "10.5"), ("10.50", "10.5"), ("100", "100"),
    ("1E+2", "100"), ("0.25", "0.25"), ("2.5E-1", "0.25"), ("0", "0"), ("0.00", "0"), ("-0", "0"),
    ("1E+9", "1000000000"),
])
def test_the_helper_writes_plain_digits(value: str, text: str) -> None:
    assert plain_decimal(Decimal(value)) == text
    assert plain_decimal(None) == ""


@pytest.mark.parametrize(("value", "text"), [("1E+1", "10.00"), ("10.5", "10.50"), ("2.5E-1", "0.25"),
                                             ("1E+5", "100000.00"), ("-0", "0.00")])
def test_money_keeps_its_cents(value: str, text: str) -> None:
    assert plain_decimal(Decimal(value), 2) == text


@pytest.mark.parametrize("holdout", ["10", "10.5", "0.25", "50"])
def test_campaign_pages_show_the_holdout_without_an_exponent(holdout: str, client: FlaskClient, db_session: Session,
                                                             make_program: Callable[..., Any]) -> None:
    program = make_program(name="Cafea", timezone="Europe/Chisinau")
    _, token = sign_in_as(client, db_session, "marketer")
    campaign_id = campaign_id_of(compose(client, token, program, holdout_percent=holdout))
    # What PostgreSQL and SQLite hand back (10.00), and what normalize() made of it (1E+1): both show "10".
    db_session.execute(update(Campaign).where(Campaign.id == campaign_id)
                       .values(holdout_percent=Decimal(holdout).normalize()))
    db_session.commit()
    for url in (f"/dashboard/campaigns/{campaign_id}", f"/dashboard/campaigns/{campaign_id}/edit",
                f"/dashboard/campaigns?program={program.slug}"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert not EXPONENT.search(shown(page.text)), (url, EXPONENT.findall(shown(page.text)))
    page = shown(client.get(f"/dashboard/campaigns/{campaign_id}").text)
    assert f"Holdout {holdout} %" in page
    assert field_value(client.get(f"/dashboard/campaigns/{campaign_id}/edit").text, "holdout_percent") == holdout


def test_the_programme_page_shows_every_decimal_in_plain_digits(client: FlaskClient, db_session: Session,
                                                                make_program: Callable[..., Any]) -> None:
    program = make_program(name="Cafea", tiers=[("Bronze", "0", "0.25"), ("Silver", "1E+3", "10.5"),
                                                ("Gold", "5000.00", "1E+1")])
    db_session.execute(update(Program).where(Program.id == program.id).values(
        point_value=Decimal("2.5E-1"), redeem_cap_percent=Decimal("1E+2"), max_purchase_amount=Decimal("1E+5")))
    db_session.commit()
    sign_in_as(client, db_session, "marketer")
    page = client.get(f"/dashboard/programme?program={program.slug}")
    assert page.status_code == 200
    assert not EXPONENT.search(shown(page.text)), EXPONENT.findall(shown(page.text))
    assert field_value(page.text, "settings-point_value") == "0.25"  # money: two decimals, 0.25 either way
    assert field_value(page.text, "settings-redeem_cap_percent") == "100"
    assert field_value(page.text, "settings-max_purchase_amount") == "100000.00"
    tiers = {t.name: t.id for t in db_session.query(Tier).filter_by(program_id=program.id)}
    assert [field_value(page.text, f"tier-{tiers[name]}-earn_percent") for name in ("Bronze", "Silver", "Gold")] \
        == ["0.25", "10.5", "10"]
    assert field_value(page.text, f"tier-{tiers['Silver']}-qualifying_spend") == "1000.00"
