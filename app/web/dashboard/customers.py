"""Customers: find a member (phone, name or barcode), their profile (card, ledger, purchases, consent,
devices, RFM), a manual points adjustment with a reason, and the CSV import and export of members."""

from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Response, current_app, flash, redirect, request, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import Conflict, NotFound, RuleViolation
from app.loyalty import customers as members
from app.loyalty import ledger, member_import
from app.merchants import audit
from app.models import CONSENT_CHANNELS, Card, Consent, Customer, MemberImport, Program
from app.phones import normalise_phone, region_for
from app.web import downloads
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires
from app.web.dashboard.pages import PAGE_SIZE, page_number, programme, render, validate_form
from app.web.forms import check_csrf

log = logging.getLogger(__name__)

MAX_QUERY = 100
MAX_ADJUST = 1_000_000
UPLOAD_MARGIN = 64 * 1024  # the form's other fields and the multipart framing around the file
RECENT_IMPORTS = 5  # listed on the import page
IMPORT_REFRESH_SECONDS = 2  # an import's page reloads itself this often while the import runs
IMPORT_STATE_WORDS = {"queued": "Waiting for a worker", "checking": "Checking every line",
                      "importing": "Importing", "done": "Done", "refused": "Nothing was imported",
                      "failed": "Stopped"}
Mode = Literal["all", "valid"]


def region(program: Program) -> str | None:
    """Where local numbers typed on this programme's pages are read: its own region, else the server's default."""
    return region_for(program.phone_region, current_app.config["TALLYPASS"].default_phone_region)


def phone_of(text: str, program: Program) -> str | None:
    """The search text read as a phone number (E.164), when it looks like one."""
    if not text or any(ch.isalpha() for ch in text) or sum(ch.isdigit() for ch in text) < 6:
        return None
    try:
        return normalise_phone(text, region(program))
    except ValueError:
        return None


def pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


class AdjustForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    points: int = Field(ge=-MAX_ADJUST, le=MAX_ADJUST)
    reason: str = Field(min_length=1, max_length=255)

    @field_validator("points", mode="before")
    @classmethod
    def _points(cls, value: Any) -> Any:
        text = str(value).strip().replace(" ", "")
        if not text:
            raise ValueError("enter the points to add (e.g. 50) or take away (e.g. -50)")
        if not text.lstrip("+-").isdigit() or not text.isascii():
            raise ValueError("must be a whole number, e.g. 50 or -50")
        if int(text) == 0:
            raise ValueError("must not be 0")
        return int(text)

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> Any:
        if not str(value).strip():
            raise ValueError("say why, e.g. 'receipt 1234 was not scanned'; customers may ask")
        return value


# ------------------------------------------------------------------------------------------- search


@bp.get("/customers")
@requires("viewer")
def customers() -> Response:
    program, programs = programme()
    q = request.args.get("q", "").strip()[:MAX_QUERY]
    page = page_number()
    cards, total = members.search(get_session(), program_id=program.id, text=q, phone=phone_of(q, program), page=page,
                                  per_page=PAGE_SIZE)
    return render("dashboard/customers.html", program=program, programs=programs, q=q, cards=cards, total=total,
                  page=page, pages=pages(total))


# ------------------------------------------------------------------------------------------- profile


def _member(program: Program, customer_id: int) -> tuple[Customer, Card]:
    """:raise NotFound: no such customer, or no card of theirs in the programme."""
    db = get_session()
    customer = db.get(Customer, customer_id)
    if customer is None:
        raise NotFound("there is no such customer")
    card = db.scalars(select(Card).where(Card.program_id == program.id, Card.customer_id == customer.id)).first()
    if card is None:
        raise NotFound(f"this customer has no card in {program.name}")
    return customer, card


def _profile(customer_id: int, *, form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
             status: int = 200) -> Response:
    program, programs = programme()
    customer, card = _member(program, customer_id)
    db = get_session()
    page = page_number()
    entries, total = members.ledger_page(db, card_id=card.id, page=page, per_page=PAGE_SIZE)
    consents = {c.channel: c for c in db.scalars(select(Consent).where(Consent.customer_id == customer.id))}
    other_cards = [c for c in customer.cards if c.id != card.id]
    return render("dashboard/customer.html", status=status, program=program, programs=programs, customer=customer,
                  card=card, entries=entries, page=page, pages=pages(total), total=total,
                  purchases=members.purchases(db, card_id=card.id), consents=consents,
                  channels=CONSENT_CHANNELS, devices=members.devices(db, card=card), other_cards=other_cards,
                  form=form or {}, errors=errors or {}, max_adjust=MAX_ADJUST)


@bp.get("/customers/<int:customer_id>")
@requires("viewer")
def customers_profile(customer_id: int) -> Response:
    return _profile(customer_id)


@bp.post("/customers/<int:customer_id>/adjust")
@requires("marketer")
def customers_adjust(customer_id: int) -> Response:
    check_csrf()
    program, _ = programme()
    _, card = _member(program, customer_id)
    data = {"points": request.form.get("points", "")[:20], "reason": request.form.get("reason", "")[:1000]}
    form, errors = validate_form(AdjustForm, data)
    if form is None:
        return _profile(customer_id, form=data, errors=errors, status=422)
    db, user, now = get_session(), current_user(), utcnow()
    assert user is not None  # @requires
    try:
        entry = ledger.adjust(db, card=card, points=form.points, reason=form.reason, actor=f"user:{user.id}",
                              now=now)
    except (RuleViolation, Conflict) as error:  # Conflict: more points than the balance holds
        db.rollback()
        messages = {e.field: e.message[:1].upper() + e.message[1:] + "." for e in error.errors}
        return _profile(customer_id, form=data, errors=messages or {"points": error.detail}, status=422)
    audit.record(db, actor=user, action="customer.adjust", now=now, target=f"card:{card.id}",
                 details={"customer_id": customer_id, "points": form.points, "reason": form.reason,
                          "ledger_entry_id": entry.id, "balance": card.balance}, ip=request.remote_addr)
    db.commit()
    flash(f"{form.points:+,} points: the balance is now {card.balance:,}. The card on the phone updates by itself.",
          "success")
    return redirect(url_for("dashboard.customers_profile", customer_id=customer_id, program=program.slug), code=303)


@bp.post("/customers/<int:customer_id>/erase")
@requires("admin")
def customers_erase(customer_id: int) -> Response:
    """The customer's own "delete my data" (``members.anonymise``), done by an admin on request; audited."""
    check_csrf()
    program, _ = programme()
    customer, _card = _member(program, customer_id)
    if customer.anonymized_at is not None:
        flash("This customer was already erased.", "success")
        return redirect(url_for("dashboard.customers_profile", customer_id=customer_id, program=program.slug),
                        code=303)
    if request.form.get("confirm") != "yes":
        return _profile(customer_id, errors={"confirm": "Tick the box to confirm the erasure."}, status=422)
    db, user, now = get_session(), current_user(), utcnow()
    assert user is not None  # @requires
    members.anonymise(db, customer=customer, now=now)
    audit.record(db, actor=user, action="customer.erased", now=now, target=f"customer:{customer.id}",
                 details={"program": program.slug}, ip=request.remote_addr)
    db.commit()
    flash("The customer's personal data is erased and their cards are void.", "success")
    return redirect(url_for("dashboard.customers_profile", customer_id=customer_id, program=program.slug), code=303)


# ------------------------------------------------------------------------------------------- import


def _import_page(program: Program, programs: list[Program], *, status: int = 200,
                 report: member_import.Report | None = None, errors: dict[str, str] | None = None,
                 mode: str = "all") -> Response:
    recent = get_session().scalars(select(MemberImport).where(MemberImport.program_id == program.id)
                                   .order_by(MemberImport.id.desc()).limit(RECENT_IMPORTS))
    return render("dashboard/customers_import.html", status=status, program=program, programs=programs,
                  report=report, errors=errors or {}, mode=mode, columns=member_import.COLUMNS,
                  max_rows=member_import.MAX_ROWS, recent=list(recent), state_words=IMPORT_STATE_WORDS)


@bp.get("/customers/import")
@requires("marketer")
def customers_import() -> Response:
    program, programs = programme()
    return _import_page(program, programs)


@bp.post("/customers/import")
@requires("marketer")
def customers_import_post() -> Response:
    """Checks the upload as a whole (size, UTF-8, CSV, the header) and stores it as a job; the lines are
    checked and the members enrolled in the background (app.tasks.imports), and the import's page shows it."""
    from app.tasks.imports import run_member_import

    limit = member_import.MAX_BYTES + UPLOAD_MARGIN
    if (request.content_length or 0) > limit:  # refused unread (so unchecked: nothing changes)
        program, programs = programme()
        return _import_page(program, programs, status=413,
                            errors={"file": "The file is larger than 5 MB; split it into smaller files."})
    request.max_content_length = limit  # this form alone takes more than the app's 64 KiB (set before reading it)
    program, programs = programme()
    check_csrf()
    mode = request.form.get("mode", "")
    errors: dict[str, str] = {}
    if mode not in ("all", "valid"):
        errors["mode"] = "Choose whether to import only a fully valid file or the valid lines."
    upload = request.files.get("file")
    text = ""
    if upload is None or not upload.filename:
        errors["file"] = "Choose the CSV file to import."
    else:
        raw = upload.read(member_import.MAX_BYTES + 1)
        if len(raw) > member_import.MAX_BYTES:
            errors["file"] = "The file is larger than 5 MB; split it into smaller files."
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                errors["file"] = "The file is not UTF-8 text; in your spreadsheet, save it as 'CSV UTF-8'."
    if errors:
        return _import_page(program, programs, status=422, errors=errors, mode=mode or "all")
    db, user, now = get_session(), current_user(), utcnow()
    assert user is not None and upload is not None  # @requires; checked above
    try:
        job = member_import.start(db, program=program, csv_text=text, mode=mode, actor=f"user:{user.id}", now=now,
                                  filename=upload.filename or "", user_id=user.id, ip=request.remote_addr)
    except member_import.FileRefused as refused:
        db.rollback()
        return _import_page(program, programs, status=422, report=refused.report, mode=mode)
    db.commit()
    try:
        run_member_import.delay(job.id)
    except Exception:  # a broker outage: the job waits, and the beat's sweep takes it up
        log.exception("could not queue member import %s", job.id)
    return redirect(url_for("dashboard.customers_import_job", import_id=job.id, program=program.slug), code=303)


@bp.get("/customers/imports/<int:import_id>")
@requires("marketer")
def customers_import_job(import_id: int) -> Response:
    """An import's progress (the page reloads itself while it runs), then its report."""
    db = get_session()
    job = db.get(MemberImport, import_id)
    if job is None:
        raise NotFound("there is no such import")
    program = db.get(Program, job.program_id)
    assert program is not None  # the import goes with its programme
    programs = list(db.scalars(select(Program).order_by(Program.name)))
    running = job.state not in member_import.FINAL_STATES
    percent = min(100, job.done * 100 // job.rows) if job.rows else 0
    return render("dashboard/customers_import_job.html", program=program, programs=programs, job=job,
                  report=member_import.report_of(job), running=running, percent=percent,
                  state_words=IMPORT_STATE_WORDS, refresh_seconds=IMPORT_REFRESH_SECONDS)


# ------------------------------------------------------------------------------------------- export


@bp.get("/customers/export.csv")
@requires("marketer")
def customers_export() -> Response:
    program, _ = programme()
    db, user, now = get_session(), current_user(), utcnow()
    assert user is not None  # @requires
    audit.record(db, actor=user, action="customers.export", now=now, target=f"program:{program.slug}",
                 ip=request.remote_addr)
    db.commit()
    filename = f"{program.slug}-members-{now:%Y-%m-%d}.csv"
    return downloads.members_csv(program, filename=filename)

