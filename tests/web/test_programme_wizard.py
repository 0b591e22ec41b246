"""The dashboard's "New programme" wizard: admins only, nothing created until the last step is confirmed, every
mistake beside its field (on the step that holds it), and it ends on the programme page with the join URL and
the poster link."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.merchants.users import create_user
from app.models import AuditEvent, Program, User
from tests.web.dashboard_client import PASSWORD, csrf

WIZARD = "/dashboard/programmes/new"

Factory = Callable[..., Any]

GOOD = {"name": "Luna Fashion", "slug": "luna-fashion", "currency": "EUR", "timezone": "Europe/Bucharest",
        "phone_region": "RO", "kind": "points", "template": "retail-cashback",
        "welcome_bonus": "75", "birthday_bonus": "100", "referrer_bonus": "100", "referred_bonus": "50",
        "redeem_cap_percent": "30", "expiry_days": "365",
        "tier-0-name": "Bronze", "tier-0-qualifying_spend": "0", "tier-0-earn_percent": "3",
        "tier-1-name": "Gold", "tier-1-qualifying_spend": "2000", "tier-1-earn_percent": "10",
        "background_color": "#1E3A8A", "foreground_color": "#FFFFFF", "label_color": "#BFDBFE", "logo_text": "Luna"}


def sign_in_as(client: FlaskClient, db_session: Session, role: str) -> tuple[User, str]:
    """Signed in with a new account of ``role`` while there may be no programme yet; a CSRF token for forms."""
    user = create_user(db_session, email=f"{role}@shop.test", password=PASSWORD, role=role)
    db_session.commit()
    assert client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": user.email,
                                                 "password": PASSWORD}).status_code == 303
    return user, csrf(client, WIZARD if role == "admin" else "/dashboard/")


def programmes(db_session: Session) -> int:
    return db_session.scalar(select(func.count()).select_from(Program)) or 0


def test_the_wizard_creates_the_programme_at_the_end_and_opens_its_page(client: FlaskClient,
                                                                         db_session: Session) -> None:
    admin, token = sign_in_as(client, db_session, "admin")
    page = client.get("/dashboard/programmes/new?template=retail-cashback")
    assert page.status_code == 200
    assert 'value="Platinum"' in page.text and 'value="#1E3A8A"' in page.text  # the template fills the steps
    assert "apple-card" in page.text and "google-card" in page.text  # the preview

    done = client.post("/dashboard/programmes/new", data={"csrf_token": token, **GOOD})

    assert done.status_code == 303, done.text
    assert done.headers["Location"].endswith("/dashboard/programme?program=luna-fashion")
    program = db_session.scalars(select(Program).where(Program.slug == "luna-fashion")).one()
    assert (program.kind, program.currency, program.timezone, program.phone_region) == (
        "points", "EUR", "Europe/Bucharest", "RO")
    assert (program.welcome_bonus, program.redeem_cap_percent, program.logo_text) == (75, Decimal("30"), "Luna")
    assert [(t.name, t.earn_percent) for t in program.tiers] == [("Bronze", Decimal("3")), ("Gold", Decimal("10"))]
    created = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "program.created")).one()
    assert created.user_id == admin.id
    shown = client.get(done.headers["Location"])
    assert 'id="join-url"' in shown.text and "https://tallypass.test/join/luna-fashion" in shown.text
    assert 'href="https://tallypass.test/join/luna-fashion/poster"' in shown.text
    assert client.get("/join/luna-fashion").status_code == 200


def test_mistakes_show_beside_their_fields_on_their_step_and_nothing_is_created(client: FlaskClient,
                                                                                db_session: Session) -> None:
    _, token = sign_in_as(client, db_session, "admin")
    bad = {**GOOD, "slug": "Luna Fashion", "currency": "EURO", "background_color": "navy",
           "tier-1-earn_percent": "lots", "kind": "stamps"}
    response = client.post("/dashboard/programmes/new", data={"csrf_token": token, **bad})
    assert response.status_code == 422
    noted = set(re.findall(r'class="dash-error" id="([^"]+)-note"', response.text))
    assert {"slug", "currency", "template", "background_color", "tier-1-earn_percent"} <= noted
    assert 'data-first-step="basics"' in response.text
    assert 'value="Luna Fashion"' in response.text and 'value="lots"' in response.text  # nothing typed is lost
    assert programmes(db_session) == 0
    only_design = client.post("/dashboard/programmes/new",
                              data={"csrf_token": token, **GOOD, "label_color": "#12"})
    assert only_design.status_code == 422 and 'data-first-step="design"' in only_design.text
    assert programmes(db_session) == 0


def test_only_admins_use_the_wizard_and_forms_need_their_csrf_token(client: FlaskClient, db_session: Session,
                                                                    make_program: Factory) -> None:
    make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    assert client.get("/dashboard/programmes/new").status_code == 403
    assert client.post("/dashboard/programmes/new", data={"csrf_token": token, **GOOD}).status_code == 403
    other = client.application.test_client()
    sign_in_as(other, db_session, "admin")
    assert other.post("/dashboard/programmes/new", data={"csrf_token": "forged", **GOOD}).status_code in (400, 403)
    assert programmes(db_session) == 1


def test_an_admin_with_no_programme_is_led_to_the_wizard(client: FlaskClient, db_session: Session,
                                                         make_program: Factory) -> None:
    sign_in_as(client, db_session, "admin")
    response = client.get("/dashboard/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard/programmes/new")
    make_program()
    page = client.get("/dashboard/")
    assert page.status_code == 200 and 'id="new-programme"' in page.text
