"""Customers over the API: search, one customer with their cards and consent, a card's ledger, a manual
adjustment with a reason (audited), and the CSV import of existing members: a background job (``202`` and
the job; ``GET /customers/imports/<id>`` for its progress and report).

The CSV export is on the dashboard only (``/dashboard/customers/export.csv``): an API answer is declared
with a JSON model, and a streamed CSV is not one."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Literal

from flask import Response, after_this_request, current_app, request, url_for
from pydantic import Field
from sqlalchemy import func, select

from app.database import get_session
from app.db import utcnow
from app.errors import FieldError, InvalidInput, NotFound, PayloadTooLarge
from app.field_types import line
from app.loyalty import customers as members
from app.loyalty import ledger, member_import
from app.merchants import audit
from app.models import (
    IMPORT_STATES,
    AppleRegistration,
    Card,
    Customer,
    GoogleObject,
    LedgerEntry,
    MemberImport,
    Program,
    WebPushSubscription,
)
from app.phones import normalise_phone, region_for
from app.web import downloads
from app.web.api import api_actor, bp, get_or_404, program_by_slug
from app.web.api._models import In, Out, ProgramSlug
from app.web.api.openapi import operation

log = logging.getLogger(__name__)

TAG = "customers"
MAX_ADJUST = 1_000_000
BODY_MARGIN = 64 * 1024


class SearchQuery(In):
    program: ProgramSlug
    q: str = Field(default="", max_length=100,
                   description="A phone number (full, or 3+ of its digits), part of a name, or an exact barcode. "
                               "Empty: every member.")
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)


class PageQuery(In):
    program: ProgramSlug
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)


class AdjustIn(In):
    program: ProgramSlug
    points: int = Field(ge=-MAX_ADJUST, le=MAX_ADJUST, json_schema_extra={"not": {"const": 0}},
                        description="Positive adds, negative takes away (at most the balance: else 409); not 0.")
    reason: line(255) = Field(description="Why; kept in the ledger and the audit log.")  # type: ignore[valid-type]


class ImportQuery(In):
    program: ProgramSlug
    mode: Literal["all", "valid"] = Field(
        default="all", description="`all`: import only if every line is valid; `valid`: import the valid lines.")


class MemberOut(Out):
    customer_id: int
    card_id: int
    name: str
    phone: str | None
    email: str | None
    barcode: str
    balance: int
    tier: str | None
    status: str
    created_at: datetime


class MemberPageOut(Out):
    """Members of the programme that match, newest card first."""

    items: list[MemberOut]
    page: int
    per_page: int
    total: int
    next: int | None


class ConsentOut(Out):
    channel: str
    granted: bool
    source: str
    changed_at: datetime


class CardOut(Out):
    id: int
    program: str
    barcode: str
    balance: int
    stamps: int
    tier: str | None
    status: str
    lifetime_spend: str
    created_at: datetime
    apple_devices: int = Field(description="Apple Wallets registered for updates of this card.")
    google_object: bool = Field(description="The card exists as an object at Google Wallet.")


class CustomerOut(Out):
    """A customer, their cards and their consent per channel (absent: never asked)."""

    id: int
    name: str
    phone: str | None
    email: str | None
    birthday: date | None
    referral_code: str
    rfm_segment: str | None
    created_at: datetime
    anonymized_at: datetime | None
    cards: list[CardOut]
    consents: list[ConsentOut]
    web_push_subscriptions: int


class LedgerEntryOut(Out):
    id: int
    kind: str
    points: int
    reason: str
    actor: str
    created_at: datetime
    expires_at: datetime | None


class LedgerPageOut(Out):
    """The card's ledger, newest entry first."""

    items: list[LedgerEntryOut]
    page: int
    per_page: int
    total: int
    next: int | None
    balance: int


class AdjustOut(Out):
    """The adjustment's ledger entry and the card's new balance."""

    entry: LedgerEntryOut
    balance: int


class IssueOut(Out):
    line: int = Field(description="1 is the header line; 0: the file as a whole.")
    column: str
    message: str


class ImportReportOut(Out):
    """What the import did (so far), and every problem found (line, column, message)."""

    ok: bool = Field(description="No problem at all (once the lines are checked).")
    rows: int
    valid: int = Field(description="Lines without a problem when the file was checked.")
    imported: int = Field(description="Cards created: new customers, and existing customers of another programme.")
    skipped: int = Field(description="Lines not imported (so far, while the import runs).")
    existing_customers: int = Field(description="Imported members who already had a card in another programme.")
    points: int = Field(description="Opening balances credited.")
    file_errors: list[IssueOut]
    issues: list[IssueOut] = Field(description="At most 1,000, in line order; the counts stay exact.")


class ImportJobOut(Out):
    """A member import, run in the background: its progress while it runs, then its report.

    `state`: `queued` → `checking` (every line is checked first) → `importing` (members added in batches) →
    `done`; or `refused` (nothing imported: a line with a problem in mode `all`, or no valid line; the
    report says which), or `failed` (it kept stopping; what was imported stays)."""

    id: int
    program: str = Field(description="The programme's slug.")
    state: Literal[IMPORT_STATES]  # type: ignore[valid-type]
    mode: Literal["all", "valid"]
    rows: int = Field(description="Members (data lines) in the file.")
    done: int = Field(description="Lines handled so far: imported, or skipped with a problem.")
    percent: int = Field(ge=0, le=100, description="`done` of `rows`, in whole percent.")
    error: str | None = Field(description="Why the last run stopped, when it did (it is taken up again).")
    created_at: datetime
    finished_at: datetime | None
    report: ImportReportOut


def _next(page: int, per_page: int, total: int) -> int | None:
    return page + 1 if page * per_page < total else None


def _card(program: Program, customer_id: int) -> Card:
    customer = get_or_404(Customer, customer_id, "customer")
    card = get_session().scalars(select(Card).where(Card.program_id == program.id,
                                                    Card.customer_id == customer.id)).first()
    if card is None:
        raise NotFound(f"this customer has no card in the programme {program.slug!r}")
    return card


def _entry(entry: LedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut.model_validate(entry)


@bp.get("/customers")
@operation(summary="Find members by phone, name or barcode", tag=TAG, query=SearchQuery,
           responses={200: MemberPageOut})
def search_customers(query: SearchQuery) -> MemberPageOut:
    program = program_by_slug(query.program)
    phone = None
    if query.q and not any(ch.isalpha() for ch in query.q) and sum(ch.isdigit() for ch in query.q) >= 6:
        try:
            phone = normalise_phone(query.q, region_for(program.phone_region,
                                                             current_app.config["TALLYPASS"].default_phone_region))
        except ValueError:
            phone = None
    cards, total = members.search(get_session(), program_id=program.id, text=query.q, phone=phone, page=query.page,
                                  per_page=query.per_page)
    items = [MemberOut(customer_id=c.customer_id, card_id=c.id, name=c.customer.name, phone=c.customer.phone,
                       email=c.customer.email, barcode=c.barcode, balance=c.balance,
                       tier=c.tier.name if c.tier else None, status=c.status, created_at=c.created_at) for c in cards]
    return MemberPageOut(items=items, page=query.page, per_page=query.per_page, total=total,
                         next=_next(query.page, query.per_page, total))


@bp.get("/customers/<int:customer_id>")
@operation(summary="A customer with their cards and consent", tag=TAG, responses={200: CustomerOut})
def get_customer(customer_id: int) -> CustomerOut:
    customer, db = get_or_404(Customer, customer_id, "customer"), get_session()
    cards = list(db.scalars(select(Card).where(Card.customer_id == customer.id).order_by(Card.id)))
    ids = [c.id for c in cards]
    apple = dict(db.execute(select(AppleRegistration.card_id, func.count()).where(AppleRegistration.card_id.in_(ids))
                            .group_by(AppleRegistration.card_id)).all()) if ids else {}
    google = set(db.scalars(select(GoogleObject.card_id).where(GoogleObject.card_id.in_(ids)))) if ids else set()
    pushes = db.scalar(select(func.count()).select_from(WebPushSubscription)
                       .where(WebPushSubscription.customer_id == customer.id)) or 0
    return CustomerOut(
        id=customer.id, name=customer.name, phone=customer.phone, email=customer.email, birthday=customer.birthday,
        referral_code=customer.referral_code, rfm_segment=customer.rfm_segment, created_at=customer.created_at,
        anonymized_at=customer.anonymized_at,
        cards=[CardOut(id=c.id, program=c.program.slug, barcode=c.barcode, balance=c.balance, stamps=c.stamps,
                       tier=c.tier.name if c.tier else None, status=c.status, lifetime_spend=str(c.lifetime_spend),
                       created_at=c.created_at, apple_devices=apple.get(c.id, 0), google_object=c.id in google)
               for c in cards],
        consents=[ConsentOut.model_validate(c) for c in sorted(customer.consents, key=lambda c: c.channel)],
        web_push_subscriptions=pushes)


@bp.get("/customers/<int:customer_id>/ledger")
@operation(summary="The ledger of a customer's card in a programme", tag=TAG, query=PageQuery,
           responses={200: LedgerPageOut})
def customer_ledger(customer_id: int, query: PageQuery) -> LedgerPageOut:
    card = _card(program_by_slug(query.program), customer_id)
    entries, total = members.ledger_page(get_session(), card_id=card.id, page=query.page, per_page=query.per_page)
    return LedgerPageOut(items=[_entry(e) for e in entries], page=query.page, per_page=query.per_page, total=total,
                         next=_next(query.page, query.per_page, total), balance=card.balance)


@bp.post("/customers/<int:customer_id>/adjustments")
@operation(summary="Add or take away points by hand, with a reason", tag=TAG, body=AdjustIn,
           responses={201: AdjustOut}, problems={409: "Taking away more points than the card holds."},
           description="The card's pass updates on the phone; the change is recorded "
                                                    "in the ledger (actor: the token) and in the audit log.")
def adjust_customer(customer_id: int, body: AdjustIn) -> tuple[AdjustOut, int]:
    card, db, now = _card(program_by_slug(body.program), customer_id), get_session(), utcnow()
    actor = api_actor()
    entry = ledger.adjust(db, card=card, points=body.points, reason=body.reason.strip(), actor=actor, now=now)
    audit.record(db, actor=actor, action="customer.adjust", now=now, target=f"card:{card.id}",
                 details={"customer_id": customer_id, "points": body.points, "reason": body.reason.strip(),
                          "ledger_entry_id": entry.id, "balance": card.balance}, ip=request.remote_addr)
    out = AdjustOut(entry=_entry(entry), balance=card.balance)
    db.commit()
    return out, 201


def _report(report: member_import.Report) -> ImportReportOut:
    return ImportReportOut(ok=report.ok, rows=report.rows, valid=report.valid, imported=report.imported,
                           skipped=report.skipped, existing_customers=report.existing_customers, points=report.points,
                           file_errors=[IssueOut(**i.as_dict()) for i in report.file_errors],  # type: ignore[arg-type]
                           issues=[IssueOut(**i.as_dict()) for i in report.issues])  # type: ignore[arg-type]


def _job(job: MemberImport) -> ImportJobOut:
    program = get_session().get(Program, job.program_id)
    return ImportJobOut(id=job.id, program=program.slug if program else "", state=job.state, mode=job.mode,
                        rows=job.rows, done=job.done, percent=min(100, job.done * 100 // job.rows) if job.rows else 0,
                        error=job.error, created_at=job.created_at, finished_at=job.finished_at,
                        report=_report(member_import.report_of(job)))


@bp.post("/customers/import")
@operation(summary="Import existing members from a CSV file (a background job)", tag=TAG, query=ImportQuery,
           raw_body="text/csv", responses={202: ImportJobOut},
           description="Columns: " + ", ".join(member_import.COLUMNS) + " (a header line; only `phone` is "
                       "required). At most 5 MB and 50,000 members, UTF-8. No welcome bonus or message; consent only "
                       "where a cell says yes or no; `points` is the opening balance. The file as a whole is checked "
                       "here (size, encoding, CSV, the header); a file that must be fixed first is answered 422 with "
                       "`errors` (`field`: \"line N: column\") and the whole `report`, and nothing is stored. "
                       "Otherwise the answer is `202` with the job (`Location`: its URL): every line is checked, then "
                       "the members are added in batches; follow it with `GET /customers/imports/{import_id}`. A "
                       "worker that stops mid-import loses nothing: the job continues where it stopped.",
           problems={422: "Nothing was imported: the file must be fixed first; `errors` and `report` list why."},
           rules=("The body is a UTF-8 CSV file without NUL characters whose header line names known columns, each "
                  "once, `phone` among them, followed by at least one member and at most 50,000; each line's own "
                  "problems are reported by the job.",))
def import_customers(query: ImportQuery) -> tuple[ImportJobOut, int]:
    from app.tasks.imports import run_member_import

    program = program_by_slug(query.program)
    request.max_content_length = member_import.MAX_BYTES + BODY_MARGIN
    if (request.content_length or 0) > member_import.MAX_BYTES:
        raise PayloadTooLarge("the file is larger than 5 MB; split it into smaller files")
    raw = request.get_data(cache=False)
    if len(raw) > member_import.MAX_BYTES:
        raise PayloadTooLarge("the file is larger than 5 MB; split it into smaller files")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", code="not-utf8",
                           errors=[FieldError("body", "save the file as CSV UTF-8")]) from None
    db = get_session()
    try:
        job = member_import.start(db, program=program, csv_text=text, mode=query.mode, actor=api_actor(),
                                  now=utcnow(), ip=request.remote_addr)
    except member_import.FileRefused as refused:
        db.rollback()
        refused.extra["report"] = _report(refused.report).model_dump(mode="json")
        raise
    db.commit()
    try:
        run_member_import.delay(job.id)
    except Exception:  # a broker outage: the job waits, and the beat's sweep takes it up
        log.exception("could not queue member import %s", job.id)
    db.refresh(job)
    location = url_for("api.get_import", import_id=job.id)

    @after_this_request
    def _locate(response: Response) -> Response:
        response.headers["Location"] = location
        return response

    return _job(job), 202


@bp.get("/customers/imports/<int:import_id>")
@operation(summary="A member import's progress and report", tag=TAG, responses={200: ImportJobOut})
def get_import(import_id: int) -> ImportJobOut:
    return _job(get_or_404(MemberImport, import_id, "import"))


class ExportQuery(In):
    program: ProgramSlug


@bp.get("/customers/export.csv")
@operation(summary="Export the members as CSV (the columns the import reads)", tag=TAG, query=ExportQuery,
           responses={200: None}, raw_response="text/csv", role="marketer",
           description="Personal data: a marketer token is needed, and every export is in the audit log.")
def export_customers(query: ExportQuery) -> Response:
    program, db, now = program_by_slug(query.program), get_session(), utcnow()
    audit.record(db, actor=api_actor(), action="customers.export", now=now,
                 target=f"program:{program.slug}", ip=request.remote_addr)
    db.commit()
    filename = f"{program.slug}-members-{now:%Y-%m-%d}.csv"
    return downloads.members_csv(program, filename=filename)
