"""The programme page: what viewers and marketers see, saving settings, the designer (colours, PNG uploads,
the re-sync job and its progress), tiers and bonus rules, and errors beside the fields with what was typed."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.apple_pass import DESIGN_DIR
from app.models import AuditEvent, BonusRule, Card, Job, ProgramImage, Tier
from tests.web.dashboard_client import sign_in_as


def png(width: int = 600, height: int = 300) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 120, 200, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def note(page: str, field_id: str) -> str:
    """The message shown under a field (its error, else its hint)."""
    match = re.search(rf'id="{re.escape(field_id)}-(?:note|error)">([^<]*)<', page)
    assert match, f"no message beside {field_id}"
    return match.group(1)


def value_of(page: str, field_id: str) -> str:
    match = re.search(rf'id="{re.escape(field_id)}"[^>]* value="([^"]*)"', page)
    assert match, f"no field {field_id}"
    return match.group(1)


def audits(db_session: Session, action: str) -> list[AuditEvent]:
    db_session.expire_all()
    return list(db_session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


SETTINGS = {"name": "Bean Club", "point_value": "0.50", "redeem_cap_percent": "30", "tier_window_days": "180",
            "expiry_days": "", "welcome_bonus": "50", "birthday_bonus": "100", "referrer_bonus": "20",
            "referred_bonus": "10", "terms": "Points are personal."}


def test_a_viewer_sees_the_settings_but_no_save_buttons(client: FlaskClient, db_session: Session,
                                                        make_program: Callable[..., Any]) -> None:
    program = make_program(point_value=Decimal("2.00"))
    _, token = sign_in_as(client, db_session, "viewer")
    page = client.get(f"/dashboard/programme?program={program.slug}")
    assert page.status_code == 200
    assert value_of(page.text, "settings-point_value") == "2.00"
    assert "Bronze" in page.text and "Apple Wallet" in page.text and "Google Wallet" in page.text
    assert "Save the settings" not in page.text and "a marketer can change them" in page.text
    response = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                                  **SETTINGS})
    assert response.status_code == 403


def test_a_marketer_saves_the_settings_and_the_change_is_audited(client: FlaskClient, db_session: Session,
                                                                 make_program: Callable[..., Any],
                                                                 make_card: Callable[..., Any]) -> None:
    program = make_program()
    card = make_card(program)
    version = card.version
    user, token = sign_in_as(client, db_session, "marketer")
    response = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                                  **SETTINGS})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/dashboard/programme?program={program.slug}"
    db_session.expire_all()
    assert (program.name, program.point_value, program.redeem_cap_percent) == ("Bean Club", Decimal("0.50"),
                                                                                Decimal("30.00"))
    assert program.expiry_days is None and program.welcome_bonus == 50 and program.terms == "Points are personal."
    [event] = audits(db_session, "program.updated")
    assert event.actor == user.email and event.details["changed"]["point_value"] == ["1.00", "0.50"]
    # the name and terms are on the cards: every pass was re-sent
    assert db_session.get(Card, card.id).version == version + 1  # type: ignore[union-attr]
    page = client.get(response.headers["Location"])
    assert "The programme&#39;s settings are saved." in page.text and "1 of 1 cards" in page.text


def test_settings_errors_are_shown_beside_the_fields_with_what_was_typed(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    bad = {**SETTINGS, "point_value": "0", "redeem_cap_percent": "150", "tier_window_days": "soon", "name": ""}
    response = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                                  **bad})
    assert response.status_code == 422
    page = response.text
    assert note(page, "settings-point_value") == "Input should be greater than 0"
    assert note(page, "settings-redeem_cap_percent") == "Input should be less than or equal to 100"
    assert "valid integer" in note(page, "settings-tier_window_days")
    assert note(page, "settings-name") == "Enter a value"
    assert value_of(page, "settings-redeem_cap_percent") == "150"
    assert value_of(page, "settings-tier_window_days") == "soon"
    assert value_of(page, "settings-welcome_bonus") == "50"  # a valid field keeps what was typed too
    db_session.expire_all()
    assert program.redeem_cap_percent == Decimal("50") and not audits(db_session, "program.updated")


def test_the_largest_purchase_amount_is_a_setting_with_its_errors_beside_it(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    page = client.get(f"/dashboard/programme?program={program.slug}").text
    assert value_of(page, "settings-max_purchase_amount") == "100000.00"
    assert "Largest purchase accepted" in page and "In MDL." in note(page, "settings-max_purchase_amount")
    bad = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                             **SETTINGS, "max_purchase_amount": "0"})
    assert bad.status_code == 422
    assert note(bad.text, "settings-max_purchase_amount") == "Input should be greater than 0"
    saved = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                               **SETTINGS, "max_purchase_amount": "2500.50"})
    assert saved.status_code == 303
    db_session.expire_all()
    assert program.max_purchase_amount == Decimal("2500.50")
    [event] = audits(db_session, "program.updated")
    assert event.details["changed"]["max_purchase_amount"] == ["100000.00", "2500.50"]


def test_numbers_in_digits_other_than_0_to_9_are_refused_beside_the_field(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    bad = {**SETTINGS, "point_value": "٠.٥٠", "max_purchase_amount": "５０００", "welcome_bonus": "٥٠"}
    response = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                                  **bad})
    assert response.status_code == 422
    assert note(response.text, "settings-point_value").startswith("Write the number with the digits 0-9")
    assert note(response.text, "settings-max_purchase_amount").startswith("Write the number with the digits 0-9")
    assert note(response.text, "settings-welcome_bonus") != ""
    assert value_of(response.text, "settings-point_value") == "٠.٥٠"
    tier = client.post("/dashboard/programme/tiers", data={"csrf_token": token, "program": program.slug,
                                                           "name": "Platinum", "qualifying_spend": "٩٠٠٠",
                                                           "earn_percent": "12"})
    assert tier.status_code == 422 and "digits 0-9" in tier.text
    db_session.expire_all()
    assert program.point_value == Decimal("1.00") and len(program.tiers) == 3


def test_the_designer_saves_colours_and_a_logo_and_resends_every_pass(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any],
        make_card: Callable[..., Any]) -> None:
    program = make_program()
    cards = [make_card(program) for _ in range(3)]
    versions = {c.id: c.version for c in cards}
    user, token = sign_in_as(client, db_session, "marketer")
    response = client.post("/dashboard/programme/design", content_type="multipart/form-data", data={
        "csrf_token": token, "program": program.slug, "background_color": "#0a5c36", "foreground_color": "#ffffff",
        "label_color": "#F5D061", "logo_text": "Bean Club", "logo": (io.BytesIO(png()), "logo.png"),
        "strip": (io.BytesIO(b""), "")})
    assert response.status_code == 303, response.text
    db_session.expire_all()
    assert (program.background_color, program.label_color, program.logo_text) == ("#0A5C36", "#F5D061", "Bean Club")
    rows = db_session.scalars(select(ProgramImage).where(ProgramImage.program_id == program.id)).all()
    assert sorted((r.kind, r.scale) for r in rows) == [("logo", 1), ("logo", 2), ("logo", 3)]
    job = db_session.scalar(select(Job).where(Job.program_id == program.id))
    assert job is not None and (job.state, job.done, job.total, job.created_by) == ("done", 3, 3, user.email)
    for card in cards:
        assert db_session.get(Card, card.id).version == versions[card.id] + 1  # type: ignore[union-attr]
    assert audits(db_session, "program.image_uploaded")[0].actor == user.email
    assert audits(db_session, "program.updated")

    progress = client.get(f"/dashboard/programme/jobs/{job.id}")
    assert progress.json == {"id": job.id, "state": "done", "done": 3, "total": 3, "error": None,
                             "finished_at": job.finished_at.isoformat()}  # type: ignore[union-attr]
    # the preview shows the uploaded logo; the strip is still the default one
    logo = client.get(f"/dashboard/programme/images/logo.png?program={program.slug}")
    assert logo.data == next(r.png for r in rows if r.scale == 2)
    strip = client.get(f"/dashboard/programme/images/strip.png?program={program.slug}")
    assert strip.data == (DESIGN_DIR / "strip@2x.png").read_bytes()
    page = client.get(f"/dashboard/programme?program={program.slug}").text
    assert "This programme has its own logo." in page and "Go back to the default logo" in page


def test_a_bad_upload_or_colour_is_refused_beside_its_field_and_nothing_is_saved(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    response = client.post("/dashboard/programme/design", content_type="multipart/form-data", data={
        "csrf_token": token, "program": program.slug, "background_color": "green", "foreground_color": "#FFFFFF",
        "label_color": "#FBBF24", "logo_text": "Typed text", "logo": (io.BytesIO(b"GIF89a not a png"), "logo.png")})
    assert response.status_code == 422
    page = response.text
    assert "not a PNG" in note(page, "design-logo") and "Choose the file again" in note(page, "design-logo")
    assert note(page, "design-background_color") == "Use a colour written as # and six hex digits, like #1F2937"
    assert value_of(page, "design-background_color") == "green"
    assert value_of(page, "design-logo_text") == "Typed text"
    db_session.expire_all()
    assert program.background_color == "#1F2937" and program.logo_text is None
    assert db_session.scalar(select(ProgramImage).where(ProgramImage.program_id == program.id)) is None
    assert db_session.scalar(select(Job).where(Job.program_id == program.id)) is None


def test_tiers_are_added_edited_and_removed(client: FlaskClient, db_session: Session,
                                            make_program: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    program = make_program()
    member = make_card(program)  # on Bronze
    _, token = sign_in_as(client, db_session, "marketer")
    form = {"csrf_token": token, "program": program.slug}

    added = client.post("/dashboard/programme/tiers", data={**form, "name": "Platinum", "qualifying_spend": "20000",
                                                            "earn_percent": "15", "perks": "Free coffee"})
    assert added.status_code == 303
    platinum = db_session.scalar(select(Tier).where(Tier.program_id == program.id, Tier.name == "Platinum"))
    assert platinum is not None and platinum.earn_percent == Decimal("15.00")
    platinum_id = platinum.id

    taken = client.post("/dashboard/programme/tiers", data={**form, "name": "gold", "qualifying_spend": "1",
                                                            "earn_percent": "abc"})
    assert taken.status_code == 422
    assert "valid decimal" in note(taken.text, "tier-new-earn_percent")
    assert value_of(taken.text, "tier-new-name") == "gold"
    duplicate = client.post("/dashboard/programme/tiers", data={**form, "name": "gold", "qualifying_spend": "1",
                                                                "earn_percent": "2"})
    assert duplicate.status_code == 422 and "already a tier named" in note(duplicate.text, "tier-new-name")

    edited = client.post(f"/dashboard/programme/tiers/{platinum.id}", data={
        **form, "name": "Platinum", "qualifying_spend": "25000", "earn_percent": "12", "perks": ""})
    assert edited.status_code == 303
    db_session.expire_all()
    assert platinum.qualifying_spend == Decimal("25000.00") and platinum.perks == ""

    refused = client.post(f"/dashboard/programme/tiers/{member.tier_id}/remove", data=form)
    assert refused.status_code == 303
    assert "a tier with members cannot be removed" in client.get(refused.headers["Location"]).text
    assert db_session.get(Tier, member.tier_id) is not None

    removed = client.post(f"/dashboard/programme/tiers/{platinum.id}/remove", data=form)
    assert removed.status_code == 303
    db_session.expire_all()
    assert db_session.get(Tier, platinum_id) is None
    assert [e.details["name"] for e in audits(db_session, "tier.removed")] == ["Platinum"]
    assert len(audits(db_session, "tier.created")) == 1 and len(audits(db_session, "tier.updated")) == 1


def test_bonus_rules_are_added_edited_and_removed(client: FlaskClient, db_session: Session,
                                                  make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    form = {"csrf_token": token, "program": program.slug}
    bad = client.post("/dashboard/programme/bonus-rules", data={**form, "event_name": "Left a Review!",
                                                                "points": "-5", "limit_per_period": "",
                                                                "period": "day"})
    assert bad.status_code == 422
    assert "should match pattern" in note(bad.text, "rule-new-event_name")
    assert note(bad.text, "rule-new-points") == "Input should be greater than or equal to 0"
    assert value_of(bad.text, "rule-new-event_name") == "Left a Review!"

    assert client.post("/dashboard/programme/bonus-rules", data={**form, "event_name": "review", "points": "25",
                                                                 "limit_per_period": "", "period": "month"}
                       ).status_code == 303
    rule = db_session.scalar(select(BonusRule).where(BonusRule.program_id == program.id))
    assert rule is not None and (rule.points, rule.limit_per_period, rule.period) == (25, None, "month")
    rule_id = rule.id

    assert client.post(f"/dashboard/programme/bonus-rules/{rule.id}", data={
        **form, "event_name": "review", "points": "30", "limit_per_period": "1", "period": "week"}).status_code == 303
    db_session.expire_all()
    assert (rule.points, rule.limit_per_period, rule.period) == (30, 1, "week")

    assert client.post(f"/dashboard/programme/bonus-rules/{rule.id}/remove", data=form).status_code == 303
    db_session.expire_all()
    assert db_session.get(BonusRule, rule_id) is None
    assert [len(audits(db_session, f"bonus_rule.{a}")) for a in ("created", "updated", "removed")] == [1, 1, 1]


def test_the_page_has_no_inline_script_or_style(client: FlaskClient, db_session: Session,
                                                make_program: Callable[..., Any]) -> None:
    program = make_program()
    sign_in_as(client, db_session, "marketer")
    page = client.get(f"/dashboard/programme?program={program.slug}").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert all('src="' in attrs or 'type="application/json"' in attrs for attrs, _ in scripts)
    assert "style=" not in page and "onclick" not in page.lower()
    with client.get("/static/dashboard-programme.js") as script:
        assert script.status_code == 200


def test_the_privacy_policy_link_is_a_setting_checked_beside_its_field(
        client: FlaskClient, db_session: Session, make_program: Callable[..., Any]) -> None:
    program = make_program()
    _, token = sign_in_as(client, db_session, "marketer")
    page = client.get(f"/dashboard/programme?program={program.slug}").text
    assert value_of(page, "settings-privacy_policy_url") == ""
    bad = client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                             **SETTINGS, "privacy_policy_url": "http://bean.example/p"})
    assert bad.status_code == 422
    assert note(bad.text, "settings-privacy_policy_url").startswith("Enter a web address that starts with https://")
    assert value_of(bad.text, "settings-privacy_policy_url") == "http://bean.example/p"
    db_session.expire_all()
    assert program.privacy_policy_url is None and not audits(db_session, "program.updated")
    saved = client.post("/dashboard/programme/settings", data={
        "csrf_token": token, "program": program.slug, **SETTINGS, "privacy_policy_url": " https://bean.example/p "})
    assert saved.status_code == 303
    db_session.expire_all()
    assert program.privacy_policy_url == "https://bean.example/p"
    assert audits(db_session, "program.updated")[0].details["changed"]["privacy_policy_url"] == [
        None, "https://bean.example/p"]
    client.post("/dashboard/programme/settings", data={"csrf_token": token, "program": program.slug,
                                                       **SETTINGS, "privacy_policy_url": ""})
    db_session.expire_all()
    assert program.privacy_policy_url is None  # emptied: no link
