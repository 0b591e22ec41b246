"""Importing existing members from a CSV file: parse, validate every line, then enrol the valid ones.

The file's columns (a header line is required; names in any case and order, only ``phone`` is required):

- ``phone``: E.164 (``+37369123456``) or a national number of the deployment's default region;
- ``name``, ``email``, ``birthday`` (``YYYY-MM-DD``);
- ``points``: the opening balance the member brings from the old programme (a whole number, may be empty);
- ``consent_sms``, ``consent_email``, ``consent_push``, ``consent_wallet``: ``yes`` or ``no``.

What an import does, and deliberately does not do:

- Members are enrolled with the enrolment service's building blocks (``enrollment.issue_card`` and
  ``enrollment.set_consents``): a customer (or the existing customer with that phone, who joined another
  programme) and a card on the programme's base tier.
- **No welcome bonus and no welcome message.** These people are members already; a welcome SMS to thousands
  of them at once is the last thing the merchant wants. So no ``customer.enrolled`` event either (its handlers
  queue the welcome automation): the import emits ``customer.imported`` instead.
- **Their points come with them**: a ``points`` cell becomes one ledger adjustment, "opening balance
  (import)", by the importing user, which expires by the programme's rule like any credit.
- **Consent is never assumed.** A channel is recorded as agreed only where the file says ``yes`` (and refused
  where it says ``no``), with the source ``import``; a blank cell or an absent column records nothing, and
  nothing is sent on a channel without a recorded yes. For an existing customer, a channel they already
  answered themselves keeps their answer, and their personal details are not overwritten.
- Validation first, always over the whole file: every problem is reported with its line number and column.
  ``only_if_valid=True`` (mode ``all``, the default) imports nothing unless the whole file is valid; ``False``
  (mode ``valid``) imports the valid lines and skips the others. Problems with the file itself (too large, an
  unknown or repeated column, no ``phone`` column, not a CSV) stop the import in either mode.

An import is a background job (``MemberImport``; app.tasks.imports runs it), so the upload answers at once:

1. ``start``: the request checks the file as a whole (``check_file``: one quick read, no line checked) and
   stores it as a queued job; a file that must be fixed first is refused there and then (``FileRefused``).
2. ``check``: the worker checks every line (``validate``) and keeps the report on the job; it is then
   ``importing``, or ``refused`` when nothing will be imported.
3. ``import_batch``, ``BATCH`` members per transaction: enrolled, and the job's counters and ``next_line``
   moved on in the same transaction. A worker that dies mid-import loses nothing: the job is taken up again
   and continues at ``next_line`` (``pending_members`` reads the file again). A phone that became a member
   in between (at the till, or on the sign-up page) is skipped and reported, never enrolled twice.
4. ``finish``: ``done``; the file is dropped (it holds personal data) and the report stays.

:func:`app.loyalty.member_export.rows` writes exactly these columns, so an export can be imported again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import outbox
from app.errors import FieldError, InvalidInput
from app.loyalty import enrollment, ledger
from app.models import CONSENT_CHANNELS, Card, Customer, MemberImport, Program
from app.phones import normalise_phone

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_POINTS = 10_000_000
MAX_ISSUES = 1000  # a report lists at most this many problems (the counts stay exact)
BATCH = 250  # members enrolled per transaction of an import job
ALREADY_MEMBER = "already a member of this programme"
CONSENT_COLUMNS = tuple(f"consent_{channel}" for channel in CONSENT_CHANNELS)
COLUMNS = ("phone", "name", "email", "birthday", "points", *CONSENT_COLUMNS)
SOURCE = "import"
OPENING_BALANCE = "opening balance (import)"
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}
# CSV formula injection guard (see member_export): a leading apostrophe before one of these is ours.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EMAIL = re.compile(r"^[^@\s,;<>\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*"
                    r"[A-Za-z0-9])?)+$")
_LIMITS = {"name": 120, "email": 254}


@dataclass(frozen=True)
class Issue:
    line: int  # 1 is the header
    column: str  # "" when the problem is the whole line or file
    message: str

    def as_dict(self) -> dict[str, str | int]:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass
class Member:
    """One valid line, ready to enrol."""

    line: int
    phone: str
    name: str = ""
    email: str | None = None
    birthday: date | None = None
    points: int = 0
    consents: dict[str, bool] = field(default_factory=dict)


@dataclass
class Report:
    rows: int = 0  # data lines read (the header not counted)
    valid: int = 0  # lines without a problem
    imported: int = 0  # cards created
    existing_customers: int = 0  # of those, for a customer who already had a card in another programme
    points: int = 0  # opening balances credited
    file_errors: list[Issue] = field(default_factory=list)  # the file as a whole: nothing is imported
    issues: list[Issue] = field(default_factory=list)  # per line, in line order
    invalid_lines: int = 0  # lines with at least one problem
    only_if_valid: bool = True

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.invalid_lines

    @property
    def skipped(self) -> int:
        return self.rows - self.imported

    def problems(self) -> list[Issue]:
        return [*self.file_errors, *self.issues]


def _clean(value: str | None) -> str:
    """A cell without surrounding blanks and without the apostrophe an export puts before ``=+-@``."""
    text = (value or "").strip()
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START:
        text = text[1:]
    return text




def _header(names: list[str], line: int, report: Report) -> list[str]:
    columns = [_clean(name).lower() for name in names]
    seen: set[str] = set()
    for name in columns:
        if name not in COLUMNS:
            shown = name or "(an empty heading)"
            report.file_errors.append(Issue(line, shown, f"unknown column; the columns are {', '.join(COLUMNS)}"))
        elif name in seen:
            report.file_errors.append(Issue(line, name, "this column appears twice"))
        seen.add(name)
    if "phone" not in seen:
        report.file_errors.append(Issue(line, "phone", "the phone column is missing (it is required)"))
    return columns


def _parse_line(cells: dict[str, str], line: int, region: str | None, today: date
                ) -> tuple[Member, list[Issue]]:
    """The line's member (``phone`` empty when it is not a valid number) and its problems."""
    issues: list[Issue] = []
    member = Member(line=line, phone="")
    raw_phone = cells.get("phone", "")
    if not raw_phone:
        issues.append(Issue(line, "phone", "is required"))
    elif len(raw_phone) > 32:
        issues.append(Issue(line, "phone", "is not a phone number (too long)"))
    else:
        try:
            member.phone = normalise_phone(raw_phone, region)
        except ValueError as error:
            issues.append(Issue(line, "phone", str(error)))
    for name, limit in _LIMITS.items():
        if len(cells.get(name, "")) > limit:
            issues.append(Issue(line, name, f"is longer than {limit} characters"))
    member.name = cells.get("name", "")[:_LIMITS["name"]]
    email = cells.get("email", "")
    if email:
        if not _EMAIL.match(email):
            issues.append(Issue(line, "email", "is not an e-mail address"))
        else:
            member.email = email.lower()
    birthday = cells.get("birthday", "")
    if birthday:
        try:
            member.birthday = date.fromisoformat(birthday)
        except ValueError:
            issues.append(Issue(line, "birthday", "is not a date; write it as YYYY-MM-DD, e.g. 1990-04-23"))
        else:
            if member.birthday > today or member.birthday.year < 1900:
                issues.append(Issue(line, "birthday", "is not a possible birthday"))
    points = cells.get("points", "")
    if points:
        if not points.isascii() or not points.isdigit():
            issues.append(Issue(line, "points", "must be a whole number of points, 0 or more"))
        elif int(points) > MAX_POINTS:
            issues.append(Issue(line, "points", f"is more than {MAX_POINTS:,}"))
        else:
            member.points = int(points)
    for channel, column in zip(CONSENT_CHANNELS, CONSENT_COLUMNS, strict=True):
        answer = cells.get(column, "").lower()
        if answer in YES:
            member.consents[channel] = True
        elif answer in NO:
            member.consents[channel] = False
        elif answer:
            issues.append(Issue(line, column, "must be yes or no (or empty: not asked)"))
    return member, issues


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    for cells in reader:
        yield reader.line_num, cells


Read = tuple[Report, list[Member], dict[int, str]]


def _read(csv_text: str, *, region: str | None, today: date, lines: bool) -> Read:
    """The file read once, without the database: problems with the file as a whole (``file_errors``) and
    the data lines counted; with ``lines``, every line checked too (problems in ``issues``, in reading order,
    a phone repeated from an earlier line among them), the valid members, and line → phone for the first
    line with each phone."""
    report = Report()
    if len(csv_text) > MAX_BYTES or len(csv_text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        report.file_errors.append(Issue(0, "", "the file is larger than 5 MB; split it into smaller files"))
        return report, [], {}
    if "\x00" in csv_text:
        report.file_errors.append(Issue(0, "", "the file holds a NUL character, so it is not a text CSV file; "
                                               "save it from your spreadsheet as 'CSV UTF-8'"))
        return report, [], {}
    records = _records(csv_text.removeprefix("\ufeff"))
    members: list[Member] = []
    first_line_of: dict[str, int] = {}
    phones: dict[int, str] = {}  # line → phone, for the first line with each phone
    try:
        header = next(((n, cells) for n, cells in records if any(c.strip() for c in cells)), None)
        if header is None:
            report.file_errors.append(Issue(1, "", "the file is empty; the first line names the columns"))
            return report, [], {}
        columns = _header(header[1], header[0], report)
        for line, cells in records:
            if not any(c.strip() for c in cells):
                continue  # blank lines are not members
            report.rows += 1
            if report.rows > MAX_ROWS:
                report.file_errors.append(Issue(line, "", f"the file has more than {MAX_ROWS:,} members; "
                                                          "split it into smaller files"))
                report.rows -= 1
                return report, [], {}
            if not lines:
                continue
            issues: list[Issue] = []
            if len(cells) != len(columns):
                issues.append(Issue(line, "", f"has {len(cells)} cells but the header names {len(columns)} "
                                              "columns"))
            values = {name: _clean(cell) for name, cell in zip(columns, cells, strict=False) if name in COLUMNS}
            member, more = _parse_line(values, line, region, today)
            issues += more
            if member.phone:
                earlier = first_line_of.setdefault(member.phone, line)
                if earlier != line:
                    issues.append(Issue(line, "phone", f"the same phone as line {earlier}"))
                else:
                    phones[line] = member.phone
            if issues:
                report.invalid_lines += 1
                report.issues.extend(issues)
            else:
                members.append(member)
    except csv.Error as error:
        report.file_errors.append(Issue(0, "", f"this is not a readable CSV file ({error})"))
        return report, [], {}
    if not report.rows:
        report.file_errors.append(Issue(header[0], "", "the file names its columns but holds no members"))
        return report, [], {}
    return report, members, phones


def check_file(csv_text: str) -> Report:
    """The checks of the file as a whole, quick enough for the upload's request (one read, no line
    checked): size, NUL characters, CSV syntax, the header, at least one and at most ``MAX_ROWS`` members.
    ``file_errors`` lists what must be fixed first; ``rows`` counts the members."""
    return _read(csv_text, region=None, today=date.min, lines=False)[0]


def validate(session: Session, *, program: Program, csv_text: str, region: str | None, today: date,
             only_if_valid: bool = True) -> tuple[Report, list[Member]]:
    """Read the file and check every line, without changing anything. Returns the report and the valid
    lines (the members an import would enrol)."""
    report, members, phones = _read(csv_text, region=region, today=today, lines=True)
    report.only_if_valid = only_if_valid
    if report.file_errors:
        return report, []
    members_already = _already_members(session, program=program, phones=phones)
    bad_lines = {i.line for i in report.issues}
    for line in sorted(members_already):
        report.invalid_lines += line not in bad_lines
        report.issues.append(Issue(line, "phone", ALREADY_MEMBER))
    valid = [m for m in members if m.line not in members_already]
    report.valid = len(valid)
    report.issues.sort(key=lambda i: (i.line, COLUMNS.index(i.column) if i.column in COLUMNS else -1))
    del report.issues[MAX_ISSUES:]
    return report, valid


def _already_members(session: Session, *, program: Program, phones: dict[int, str]) -> set[int]:
    """The lines whose phone already has a card in the programme (one query per 1,000 phones)."""
    values = list(phones.values())
    taken: set[str] = set()
    for start in range(0, len(values), 1000):
        taken.update(p for p in session.scalars(
            select(Customer.phone).join(Card, Card.customer_id == Customer.id)
            .where(Card.program_id == program.id, Customer.phone.in_(values[start:start + 1000]))) if p)
    return {line for line, phone in phones.items() if phone in taken}


class FileRefused(InvalidInput):
    """The file itself must be fixed before anything can be imported; ``report`` says why."""

    def __init__(self, report: Report) -> None:
        problems = report.problems()
        super().__init__(f"nothing was imported: {len(problems)} problem(s) in the file", code="invalid-import",
                         errors=[FieldError(f"line {i.line}: {i.column}" if i.column else f"line {i.line}",
                                            i.message) for i in problems])
        self.report = report


FINAL_STATES = ("done", "refused", "failed")


def start(session: Session, *, program: Program, csv_text: str, mode: str, actor: str, now: datetime,
          filename: str = "", user_id: int | None = None, ip: str | None = None) -> MemberImport:
    """Store an upload as a queued import job, after the checks of the file as a whole (``check_file``).
    The caller commits, then queues ``app.tasks.imports.run_member_import``. ``actor``: who imports, as
    the ledger writes it ("user:7", "api-token:tp_ab12").

    :raise FileRefused: the file must be fixed first (nothing is stored). :raise ValueError: a bad ``mode``."""
    if mode not in ("all", "valid"):
        raise ValueError(f"mode must be all or valid, not {mode!r}")
    report = check_file(csv_text)
    if report.file_errors:
        raise FileRefused(report)
    job = MemberImport(program_id=program.id, state="queued", mode=mode, filename=filename[:200],
                       csv=csv_text.removeprefix("\ufeff"), actor=actor[:254], user_id=user_id, ip=ip,
                       rows=report.rows, file_errors=[], issues=[], created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job


def check(session: Session, *, job: MemberImport, program: Program, region: str | None, now: datetime
          ) -> list[Member]:
    """Check every line of the job's file (``validate``) and keep the report on the job. Returns the members
    to enrol, and the job is ``importing``; or none, and the job is ``refused`` (a problem in mode ``all``,
    or no valid line). Flushes."""
    report, members = validate(session, program=program, csv_text=job.csv, region=region, today=now.date(),
                               only_if_valid=job.mode == "all")
    job.rows, job.valid, job.invalid_lines = report.rows, report.valid, report.invalid_lines
    job.file_errors = [i.as_dict() for i in report.file_errors]
    job.issues = [i.as_dict() for i in report.issues]
    job.checked_at = job.updated_at = now
    if report.file_errors or not members or (job.mode == "all" and report.invalid_lines):
        _end(job, "refused", now)
        members = []
    else:
        job.state, job.valid_lines, job.done = "importing", [m.line for m in members], report.invalid_lines
    session.flush()
    return members


def pending_members(job: MemberImport, *, region: str | None, today: date) -> list[Member]:
    """The members of a checked job not yet handled, in line order: a job taken up again reads its file
    again (the same file gives the same lines) and continues at ``next_line``."""
    wanted = set(job.valid_lines or ())
    _, members, _ = _read(job.csv, region=region, today=today, lines=True)
    return [m for m in members if m.line in wanted and m.line >= job.next_line]


def import_batch(session: Session, *, job: MemberImport, program: Program, members: list[Member], now: datetime,
                 limit: int | None = None) -> int:
    """Enrol the next ``limit`` of ``members`` from ``job.next_line`` on, and move the job's counters and
    ``next_line`` on, in the caller's transaction: the members and the progress commit together. Returns
    how many lines it handled (0: none was left). A phone that became a member of the programme since the
    check is skipped with that problem. ``limit`` None: ``BATCH``. Flushes."""
    batch = [m for m in members if m.line >= job.next_line][:limit or BATCH]
    if not batch:
        return 0
    taken = _already_members(session, program=program, phones={m.line: m.phone for m in batch})
    for member in batch:
        problem = ALREADY_MEMBER if member.line in taken else _enrol_safely(session, program=program,
                                                                           member=member, job=job, now=now)
        if problem is not None:
            job.invalid_lines += 1
            if len(job.issues) < MAX_ISSUES:
                job.issues = [*job.issues, Issue(member.line, "phone", problem).as_dict()]
    job.next_line = batch[-1].line + 1
    job.done, job.updated_at = job.invalid_lines + job.imported, now
    session.flush()
    return len(batch)


def finish(session: Session, *, job: MemberImport, now: datetime) -> None:
    """Every member handled: ``done``, and the file dropped. Flushes."""
    _end(job, "done", now)
    session.flush()


def fail(session: Session, *, job: MemberImport, error: str, now: datetime) -> None:
    """Give up on a job that kept stopping: ``failed`` with the last error (what was imported stays). Flushes."""
    job.error = error[:500]
    _end(job, "failed", now)
    session.flush()


def _end(job: MemberImport, state: str, now: datetime) -> None:
    job.state, job.finished_at, job.updated_at = state, now, now
    job.csv, job.valid_lines = "", None  # personal data, no longer needed: the report stays


def report_of(job: MemberImport) -> Report:
    """The job's report, as ``validate`` and the pages know it."""
    return Report(rows=job.rows, valid=job.valid, imported=job.imported, existing_customers=job.existing_customers,
                  points=job.points, invalid_lines=job.invalid_lines, only_if_valid=job.mode == "all",
                  file_errors=[Issue(**i) for i in job.file_errors], issues=[Issue(**i) for i in job.issues])


def _enrol_safely(session: Session, *, program: Program, member: Member, job: MemberImport, now: datetime
                  ) -> str | None:
    """``_enrol`` in a savepoint, counted on the job; the problem when it could not be done. Another request
    creating the same customer at the same moment makes the first try fail on the phone's uniqueness: the
    second finds them."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                created = _enrol(session, program=program, member=member, actor=job.actor, now=now)
        except IntegrityError:
            if attempt == 2:
                return "could not be imported: the phone was being enrolled elsewhere at the same moment"
            continue
        job.imported += 1
        job.existing_customers += 0 if created else 1
        job.points += member.points
        return None
    return None  # not reached


def _enrol(session: Session, *, program: Program, member: Member, actor: str, now: datetime) -> bool:
    """One member's card (and customer, when the phone is new). Returns whether the customer is new."""
    customer = session.scalars(select(Customer).where(Customer.phone == member.phone)).one_or_none()
    created = customer is None
    if customer is None:
        customer = Customer(phone=member.phone, name=member.name, email=member.email, birthday=member.birthday,
                            referral_code=enrollment.new_referral_code(session), timezone=program.timezone,
                            created_at=now)
        session.add(customer)
        session.flush()
        consents = member.consents
    else:  # their own details and answers stand; the file only fills gaps
        customer.name = customer.name or member.name
        customer.email = customer.email or member.email
        customer.birthday = customer.birthday or member.birthday
        answered = {c.channel for c in customer.consents}
        consents = {k: v for k, v in member.consents.items() if k not in answered}
    enrollment.set_consents(session, customer=customer, consents=consents, source=SOURCE, now=now)
    card = enrollment.issue_card(session, program=program, customer=customer, now=now)
    if member.points:
        ledger.adjust(session, card=card, points=member.points, reason=OPENING_BALANCE, actor=actor, now=now)
    outbox.emit(session, "customer.imported",
                {"customer_id": customer.id, "card_id": card.id, "program_id": program.id, "source": SOURCE})
    return created
