"""The public sign-up (CONTRACTS.md §5): ``/join/<program-slug>``, its QR code and a counter poster.

A new phone gets a card at once and lands on its card page. A phone we already know gets its card
back only after the one-time code we text to it comes back (``/join/<slug>/verify``), so nobody can
open someone else's card by typing their number.
"""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

import segno
from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import NotFound, RuleViolation
from app.loyalty import enrollment, phone_checks
from app.models import CONSENT_CHANNELS, Customer, Program
from app.phones import normalise_phone, region_for
from app.web.forms import check_csrf, limit_ip

bp = Blueprint("join", __name__, url_prefix="/join")

PENDING = "phone_check"  # session key: the PhoneCheck id awaiting its code
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _program(slug: str) -> Program:
    program = get_session().scalar(select(Program).where(Program.slug == slug))
    if program is None:
        raise NotFound("there is no such loyalty programme")
    return program


def join_url(program: Program, *, ref: str | None = None) -> str:
    """The public address of the programme's sign-up page; with ``ref``, a friend's invitation that fills in
    their referral code."""
    path = url_for("join.form", slug=program.slug, **({"ref": ref} if ref else {}))
    return current_app.config["TALLYPASS"].base_url.rstrip("/") + path


def icons() -> list[dict[str, str]]:
    """The customer pages' home-screen icons (PNG), for their web-app manifests."""
    return [{"src": url_for("static", filename=f"icons/icon-{size}.png"), "sizes": f"{size}x{size}",
             "type": "image/png", "purpose": "any"} for size in (192, 512)]


def consent_texts() -> dict[str, str]:
    return {
        "sms": _("Send me offers and news by SMS."),
        "email": _("Send me offers and news by e-mail."),
        "push": _("Send me notifications in this browser."),
        "wallet": _("Show offers on my card in Apple Wallet or Google Wallet."),
    }


def validate(form: dict[str, str], region: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The cleaned fields and, per field, a message to show beside it."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    name = form.get("name", "").strip()
    if not name:
        errors["name"] = _("Please enter your name.")
    elif len(name) > 120:
        errors["name"] = _("Please use at most 120 characters.")
    values["name"] = name
    phone = form.get("phone", "").strip()
    try:
        values["phone"] = normalise_phone(phone, region) if phone else None
        if not phone:
            errors["phone"] = _("Please enter your mobile number.")
    except ValueError:
        errors["phone"] = _("This is not a valid phone number. Use the international format, e.g. +373 69 123 456.")
    email = form.get("email", "").strip().lower()
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        errors["email"] = _("This is not a valid e-mail address.")
    values["email"] = email or None
    birthday = form.get("birthday", "").strip()
    values["birthday"] = None
    if birthday:
        try:
            values["birthday"] = date.fromisoformat(birthday)
            if not date(1900, 1, 1) <= values["birthday"] <= date.today():
                raise ValueError
        except ValueError:
            errors["birthday"] = _("Please enter a real date of birth.")
    values["referral_code"] = form.get("referral_code", "").strip().upper()[:16] or None
    values["consents"] = {channel: form.get(f"consent_{channel}") == "yes" for channel in CONSENT_CHANNELS}
    return values, errors


def _render_form(program: Program, form: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    html = render_template("join/form.html", program=program, form=form, errors=errors, consents=consent_texts())
    return Response(html, status=status)


@bp.get("/<slug>")
def form(slug: str) -> Response:
    """The sign-up form; ``?ref=CODE`` (a friend's invitation from their card page) fills in the code."""
    ref = request.args.get("ref", "").strip().upper()[:16]
    return _render_form(_program(slug), {"referral_code": ref} if ref.isalnum() else {}, {})


@bp.post("/<slug>")
def submit(slug: str) -> Response:
    program = _program(slug)
    check_csrf()
    limit_ip("join")
    settings = current_app.config["TALLYPASS"]
    values, errors = validate(request.form.to_dict(), region_for(program.phone_region, settings.default_phone_region))
    if errors:
        return _render_form(program, request.form.to_dict(), errors, status=422)
    db = get_session()
    now = utcnow()
    if db.scalar(select(Customer.id).where(Customer.phone == values["phone"])) is not None:
        return _send_code(program, values["phone"])
    try:
        enrolment = enrollment.enrol(db, program=program, phone=values["phone"], name=values["name"],
                                     email=values["email"], birthday=values["birthday"],
                                     consents=values["consents"], referral_code=values["referral_code"],
                                     source="signup", now=now)
    except RuleViolation as exc:  # an unknown referral code: say so beside the field
        field = exc.errors[0].field if exc.errors else "referral_code"
        message = _("This referral code is not valid.") if field == "referral_code" else exc.detail
        return _render_form(program, request.form.to_dict(), {field: message}, status=422)
    enrolment.card.customer.locale = _current_language()
    db.commit()
    return redirect(url_for("card.page", token=enrolment.card.page_token), code=303)


def _current_language() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "en")


def _send_code(program: Program, phone: str) -> Response:
    """The number is known: text it a code, and ask for it."""
    from app.web.messaging import send_text

    db = get_session()
    secret = current_app.config["SECRET_KEY"]
    check, code = phone_checks.start(db, program=program, phone=phone, secret_key=secret, now=utcnow())
    send_text(db, to=phone, body=_("Your %(programme)s code: %(code)s", programme=program.name, code=code))
    db.commit()
    session[PENDING] = check.id
    return redirect(url_for("join.verify", slug=program.slug), code=303)


@bp.route("/<slug>/verify", methods=["GET", "POST"])
def verify(slug: str) -> Response:
    program = _program(slug)
    error = None
    if request.method == "POST":
        check_csrf()
        limit_ip("verify")
        db = get_session()
        now = utcnow()
        check = phone_checks.verify(db, check_id=session.get(PENDING, 0), code=request.form.get("code", ""),
                                    secret_key=current_app.config["SECRET_KEY"], now=now)
        if check is not None and check.program_id == program.id:
            enrolment = enrollment.enrol(db, program=program, phone=check.phone, source="signup", now=now)
            db.commit()
            session.pop(PENDING, None)
            return redirect(url_for("card.page", token=enrolment.card.page_token), code=303)
        db.commit()  # the attempt counts
        error = _("This code is not right, or it has expired.")
    status = 422 if error else 200
    return Response(render_template("join/verify.html", program=program, error=error), status=status)


@bp.get("/<slug>/manifest.webmanifest")
def manifest(slug: str) -> Response:
    """The sign-up page as a home-screen app (its icons; it opens on the sign-up page)."""
    program = _program(slug)
    start = url_for("join.form", slug=program.slug)
    body = {"name": program.name, "short_name": program.name[:30], "start_url": start, "scope": start,
            "display": "standalone", "background_color": "#ffffff", "theme_color": program.background_color,
            "icons": icons()}
    response = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/<slug>/qr.svg")
def qr(slug: str) -> Response:
    program = _program(slug)
    url = join_url(program)
    svg = io.BytesIO()  # a standalone SVG document: with its namespace, or browsers show a broken image
    segno.make(url, error="m").save(svg, kind="svg", xmldecl=False, scale=8, border=2, dark="#111827",
                                    light="#ffffff")
    response = Response(svg.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/<slug>/poster")
def poster(slug: str) -> Response:
    program = _program(slug)
    url = join_url(program)
    return Response(render_template("join/poster.html", program=program, url=url))
