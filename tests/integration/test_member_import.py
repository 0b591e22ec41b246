"""Importing existing members from CSV, as the background job runs it (app.tasks.imports): the validation
report line by line, both import modes, what an import does (no welcome bonus or message, explicit consent
only, opening balances), limits, the export that round-trips through it; the job's progress, and that a job
stopped mid-import continues where it stopped, and two runs of one job at once enrol nobody twice (with real
commits on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.database import SESSIONS
from app.db import utcnow
from app.loyalty import enrollment, member_export, member_import
from app.loyalty.member_import import Issue
from app.models import Card, Consent, Customer, LedgerEntry, MemberImport, OutboxEvent
from app.tasks import imports

REGION = "MD"
HEADER = "phone,name,email,birthday,points,consent_sms,consent_email"
MISTAKES = "\r\n".join([
    HEADER,
    "+37369000001,Ana Popescu,Ana@Example.com,1990-04-23,120,yes,no",  # 2: valid
    "+37369000002,Bob,bob@example,1985-01-01,,,",  # 3: bad e-mail
    "not-a-phone,Cara,,,,,",  # 4: bad phone
    "+37369000001,Ana again,,,,,",  # 5: duplicate of line 2
    "+37369999999,Already,,,,,",  # 6: already a member
    "+37369000003,Dan,,1990-02-30,,,",  # 7: bad birthday
    "+37369000004,Eve,,,-5,maybe,",  # 8: bad points and consent
    "069000005,Fay,,,,,",  # 9: valid (national number)
    "",
])
EXPECTED = [
    Issue(3, "email", "is not an e-mail address"),
    Issue(4, "phone", "is not a phone number; use the international format, e.g. +37369123456"),
    Issue(5, "phone", "the same phone as line 2"),
    Issue(6, "phone", "already a member of this programme"),
    Issue(7, "birthday", "is not a date; write it as YYYY-MM-DD, e.g. 1990-04-23"),
    Issue(8, "points", "must be a whole number of points, 0 or more"),
    Issue(8, "consent_sms", "must be yes or no (or empty: not asked)"),
]


@pytest.fixture
def program(make_program: Callable[..., Any], make_card: Callable[..., Any]) -> Any:
    program = make_program(welcome_bonus=50)
    make_card(program, phone="+37369999999", name="Already")
    return program


Run = Callable[..., member_import.Report]


@pytest.fixture
def run(app: Flask) -> Run:
    """``run(db, program, text, only_if_valid=True)``: upload (``start``) and run the job to its end, as the
    worker does; the job's report. A file refused at the upload gives the refusal's report."""

    def run_import(db: Session, program: Any, text: str, *, only_if_valid: bool = True) -> member_import.Report:
        try:
            job = member_import.start(db, program=program, csv_text=text, actor="user:1", now=utcnow(),
                                      mode="all" if only_if_valid else "valid")
        except member_import.FileRefused as refused:
            return refused.report
        imports.run(app.extensions[SESSIONS], job.id, region=REGION)
        db.expire_all()
        return member_import.report_of(db.get(MemberImport, job.id))

    return run_import


def card_of(db: Session, program: Any, phone: str) -> Card | None:
    return db.scalar(select(Card).join(Customer).where(Card.program_id == program.id, Customer.phone == phone))


def test_each_kind_of_mistake_is_reported_on_its_line_and_nothing_is_imported(run: Run, db_session: Session,
                                                                                program: Any) -> None:
    report = run(db_session, program, MISTAKES)
    assert report.issues == EXPECTED
    assert not report.file_errors and not report.ok
    assert (report.rows, report.valid, report.invalid_lines, report.imported) == (8, 2, 6, 0)
    assert card_of(db_session, program, "+37369000001") is None
    assert card_of(db_session, program, "+37369000005") is None


def test_importing_the_valid_lines_enrols_them_without_welcome_bonus_or_message(run: Run, db_session: Session,
                                                                                 program: Any) -> None:
    events_before = db_session.scalar(select(func.max(OutboxEvent.id))) or 0
    report = run(db_session, program, MISTAKES, only_if_valid=False)
    assert report.issues == EXPECTED
    assert (report.imported, report.skipped, report.points, report.existing_customers) == (2, 6, 120, 0)

    ana = card_of(db_session, program, "+37369000001")
    assert ana is not None and ana.customer.name == "Ana Popescu" and ana.customer.email == "ana@example.com"
    assert ana.customer.birthday == date(1990, 4, 23)
    assert ana.balance == 120  # the opening balance, and no welcome bonus of 50
    entries = db_session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == ana.id)).all()
    assert [(e.kind, e.points, e.reason, e.actor) for e in entries] == [
        ("adjust", 120, "opening balance (import)", "user:1")]
    consents = {c.channel: (c.granted, c.source) for c in ana.customer.consents}
    assert consents == {"sms": (True, "import"), "email": (False, "import")}  # push and wallet: never asked

    fay = card_of(db_session, program, "+37369000005")
    assert fay is not None and fay.balance == 0 and fay.customer.consents == []
    assert fay.tier is not None and fay.tier.name == "Bronze"

    topics = db_session.scalars(select(OutboxEvent.topic).where(OutboxEvent.id > events_before)).all()
    # customer.enrolled would queue the welcome automation's message: an import announces itself otherwise.
    assert "customer.enrolled" not in topics and topics.count("customer.imported") == 2


def test_a_member_of_another_programme_keeps_their_details_and_answers(run: Run,
        db_session: Session, program: Any, make_program: Callable[..., Any], make_card: Callable[..., Any]) -> None:
    other = make_card(make_program(), phone="+37369000007", name="Own Name", email="own@example.com")
    enrollment.set_consents(db_session, customer=other.customer, consents={"sms": False}, source="signup",
                            now=utcnow())
    report = run(db_session, program, "phone,name,email,consent_sms,consent_email\n"
                                      "+37369000007,File Name,file@example.com,yes,yes\n")
    assert report.ok and report.imported == 1 and report.existing_customers == 1
    card = card_of(db_session, program, "+37369000007")
    assert card is not None and card.customer_id == other.customer_id
    assert (card.customer.name, card.customer.email) == ("Own Name", "own@example.com")
    assert {c.channel: (c.granted, c.source) for c in card.customer.consents} == {
        "sms": (False, "signup"), "email": (True, "import")}


@pytest.mark.parametrize(("text", "expected"), [
    ("phone,name,favourite_colour\n+37369000001,Ana,blue\n",
     [Issue(1, "favourite_colour", "unknown column; the columns are " + ", ".join(member_import.COLUMNS))]),
    ("name,email\nAna,ana@example.com\n", [Issue(1, "phone", "the phone column is missing (it is required)")]),
    ("phone,Phone\n+37369000001,+37369000001\n", [Issue(1, "phone", "this column appears twice")]),
    ("phone,name\n", [Issue(1, "", "the file names its columns but holds no members")]),
    ("", [Issue(1, "", "the file is empty; the first line names the columns")]),
    ('phone,name\n+37369000001,"Ana\n', [Issue(0, "", "this is not a readable CSV file (unexpected end of data)")]),
])
def test_problems_with_the_file_itself_stop_the_import_in_either_mode(run: Run, db_session: Session, program: Any,
                                                                      text: str, expected: list[Issue]) -> None:
    report = run(db_session, program, text, only_if_valid=False)
    assert report.file_errors == expected and report.imported == 0
    assert card_of(db_session, program, "+37369000001") is None


def test_line_level_details(run: Run, db_session: Session, program: Any) -> None:
    text = ("phone,name,birthday,points,consent_push\n"
            "+37369000001,Ana,2999-01-01,99999999999,YES\n"
            "+37369000002,Bob\n"
            "+37369000003,Cy,,,,extra\n"
            "\n"
            ",Nobody,,,\n")
    report = run(db_session, program, text)
    assert report.issues == [
        Issue(2, "birthday", "is not a possible birthday"),
        Issue(2, "points", f"is more than {member_import.MAX_POINTS:,}"),
        Issue(3, "", "has 2 cells but the header names 5 columns"),
        Issue(4, "", "has 6 cells but the header names 5 columns"),
        Issue(6, "phone", "is required"),
    ]
    assert report.rows == 4  # the blank line is not a member


def test_size_limits(run: Run, db_session: Session, program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(member_import, "MAX_ROWS", 2)
    rows = "phone\n+37369000001\n+37369000002\n+37369000003\n"
    report = run(db_session, program, rows, only_if_valid=False)
    assert report.file_errors == [Issue(4, "", "the file has more than 2 members; split it into smaller files")]
    assert report.imported == 0
    monkeypatch.setattr(member_import, "MAX_BYTES", 20)
    report = run(db_session, program, rows)
    assert report.file_errors == [Issue(0, "", "the file is larger than 5 MB; split it into smaller files")]


def test_export_then_import_round_trips(run: Run, db_session: Session, make_program: Callable[..., Any],
                                        make_card: Callable[..., Any]) -> None:
    source, target = make_program(welcome_bonus=10), make_program(welcome_bonus=999)
    people = [
        {"phone": "+37369100001", "name": "=HYPERLINK(\"http://evil\")", "email": "a@example.com",
         "birthday": date(1991, 1, 2), "consents": {"sms": True, "email": False, "push": True, "wallet": False}},
        {"phone": "+37369100002", "name": "Ion, \"Jr\"", "email": None, "birthday": None, "consents": {}},
        {"phone": "+37369100003", "name": "@Maria -", "email": "m@example.com", "birthday": date(2000, 12, 31),
         "consents": {"email": True}},
    ]
    for n, person in enumerate(people):
        make_card(source, balance=5 * n, **person)
    make_card(source, phone="+37369100004", name="Voided").status = "voided"  # not exported
    db_session.flush()

    exported = "".join(member_export.lines(db_session, program=source))
    lines = exported.split("\r\n")
    assert lines[0] == ",".join(member_import.COLUMNS)
    assert lines[1] == "'+37369100001,\"'=HYPERLINK(\"\"http://evil\"\")\",a@example.com,1991-01-02,10,yes,no,yes,no"
    assert lines[3] == "'+37369100003,'@Maria -,m@example.com,2000-12-31,20,,yes,,"
    assert len(lines) == 5 and lines[4] == ""
    assert all(not cell.startswith(("=", "+", "-", "@")) for line in lines for cell in line.split(","))

    # The same people, as new customers of another deployment: free their phones first.
    for customer in db_session.scalars(select(Customer).where(Customer.phone.like("+373691000%"))):
        customer.phone = customer.phone.replace("+37369", "+37368")
    db_session.flush()
    report = run(db_session, target, exported)
    assert report.ok and report.imported == 3 and report.existing_customers == 0
    again = "".join(member_export.lines(db_session, program=target))
    assert again == exported
    consents = db_session.scalars(select(Consent).join(Customer).where(Customer.phone == "+37369100001")).all()
    assert {c.source for c in consents} == {"import"}


# ------------------------------------------------------------------------------------------- the job

GOOD = "\n".join(["phone,name,points,consent_sms"] + [f"+3736900{n:04d},Member {n},{n},yes" for n in range(1, 8)]
                 + ["not-a-phone,Nobody,,", "+37369999999,Already,,"]) + "\n"  # 7 good lines, 2 with a problem


def test_the_upload_checks_the_file_as_a_whole_and_the_job_the_lines_with_progress(
        app: Flask, db_session: Session, program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    job = member_import.start(db_session, program=program, csv_text="\ufeff" + GOOD, mode="valid", actor="user:1",
                              filename="members.csv", now=utcnow())
    assert (job.state, job.rows, job.done, job.imported, job.checked_at) == ("queued", 9, 0, 0, None)
    assert job.csv == GOOD  # kept for the worker, without the byte-order mark
    assert card_of(db_session, program, "+37369000001") is None  # nothing imported by the upload itself

    seen: list[tuple[str, int, int, int]] = []
    batch = member_import.import_batch

    def watched(session: Session, *, job: MemberImport, **kwargs: Any) -> int:
        seen.append((job.state, job.done, job.imported, job.next_line))
        return batch(session, job=job, **kwargs)

    monkeypatch.setattr(member_import, "BATCH", 3)
    monkeypatch.setattr(member_import, "import_batch", watched)
    assert imports.run(app.extensions[SESSIONS], job.id, region=REGION) == "done"
    # Checked first (the 2 bad lines are handled: skipped), then 3 members per transaction.
    assert seen == [("importing", 2, 0, 0), ("importing", 5, 3, 5), ("importing", 8, 6, 8),
                    ("importing", 9, 7, 9)]
    db_session.expire_all()
    job = db_session.get(MemberImport, job.id)
    assert (job.state, job.rows, job.done, job.valid, job.invalid_lines, job.imported, job.points) == (
        "done", 9, 9, 7, 2, 7, 28)
    assert [i["line"] for i in job.issues] == [9, 10] and job.finished_at is not None and job.runs == 1
    assert (job.csv, job.valid_lines) == ("", None)  # the personal data goes once the import has ended
    assert imports.run(app.extensions[SESSIONS], job.id, region=REGION) == "done"  # again: nothing to do
    assert db_session.scalar(select(func.count()).select_from(Card).where(Card.program_id == program.id)) == 8


def test_a_file_refused_at_the_upload_stores_nothing(db_session: Session, program: Any) -> None:
    with pytest.raises(member_import.FileRefused) as refused:
        member_import.start(db_session, program=program, csv_text="phone,colour\n+37369000001,blue\n", mode="all",
                            actor="user:1", now=utcnow())
    assert refused.value.status == 422 and refused.value.errors[0].field == "line 1: colour"
    with pytest.raises(member_import.FileRefused) as nul:
        member_import.start(db_session, program=program, csv_text="phone\n+3736900\x000001\n", mode="all",
                            actor="user:1", now=utcnow())
    assert "NUL character" in nul.value.report.file_errors[0].message  # PostgreSQL could not even store it
    assert db_session.scalar(select(func.count()).select_from(MemberImport)) == 0


class Killed(BaseException):
    """The worker process dying: not an Exception, so nothing on the way catches it."""


def _committed_programme(factory: Any) -> int:
    from app.models import Program, Tier

    with factory.begin() as session:
        program = Program(slug="imports", name="Imports", point_value=1, redeem_cap_percent=50)
        session.add(program)
        session.flush()
        session.add(Tier(program_id=program.id, name="Member", qualifying_spend=0, earn_percent=5))
        session.flush()
        enrollment.enrol(session, program=program, phone="+37369999999", name="Already")
        return program.id


def _upload(factory: Any, program_id: int, text: str) -> int:
    from app.models import Program

    with factory.begin() as session:
        return member_import.start(session, program=session.get(Program, program_id), csv_text=text, mode="valid",
                                   actor="user:1", now=utcnow()).id


def _imported_once(factory: Any, program_id: int, phones: list[str]) -> None:
    with factory() as session:
        cards = session.execute(select(Customer.phone, func.count()).join(Card).where(
            Card.program_id == program_id).group_by(Customer.phone)).all()
        assert dict(cards) == {**dict.fromkeys(phones, 1), "+37369999999": 1}
        entries = session.scalar(select(func.count()).select_from(LedgerEntry).join(Card).where(
            Card.program_id == program_id, LedgerEntry.reason == member_import.OPENING_BALANCE))
        assert entries == len([p for p in phones if int(p[-4:])])  # one opening balance each, never two
        events = session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.topic == "customer.imported"))
        assert events == len(phones)


@pytest.mark.committing
def test_a_worker_killed_mid_import_loses_nothing_and_the_job_continues(
        committing_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = committing_app.extensions[SESSIONS]
    program_id = _committed_programme(factory)
    job_id = _upload(factory, program_id, GOOD)
    monkeypatch.setattr(member_import, "BATCH", 3)
    enrol, calls = member_import._enrol, []

    def dies_at_the_fifth(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        if len(calls) == 5:
            raise Killed
        return enrol(*args, **kwargs)

    monkeypatch.setattr(member_import, "_enrol", dies_at_the_fifth)
    with committing_app.app_context(), pytest.raises(Killed):
        imports.run_member_import(job_id)
    with factory() as session:  # the first batch committed with its progress; the second left no trace
        job = session.get(MemberImport, job_id)
        assert (job.state, job.imported, job.done, job.next_line) == ("importing", 3, 5, 5)
        assert job.csv == GOOD  # still there to continue from
        assert session.scalar(select(func.count()).select_from(Card).where(Card.program_id == program_id)) == 4
    monkeypatch.setattr(member_import, "_enrol", enrol)

    with committing_app.app_context():
        assert imports.resume_member_imports() == 0  # not stalled yet: it might still be running
        with factory.begin() as session:
            session.get(MemberImport, job_id).updated_at = utcnow() - imports.STALL - timedelta(seconds=1)
        assert imports.resume_member_imports() == 1  # taken up again (inline here: no broker)
    with factory() as session:
        job = session.get(MemberImport, job_id)
        assert (job.state, job.imported, job.done, job.rows, job.runs, job.error) == ("done", 7, 9, 9, 2, None)
    _imported_once(factory, program_id, [f"+3736900{n:04d}" for n in range(1, 8)])


@pytest.mark.committing
def test_two_runs_of_one_job_at_once_enrol_nobody_twice(committing_app: Flask,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    factory = committing_app.extensions[SESSIONS]
    program_id = _committed_programme(factory)
    phones = [f"+3736910{n:04d}" for n in range(40)]
    job_id = _upload(factory, program_id, "phone,points\n" + "".join(f"{p},{n}\n" for n, p in enumerate(phones)))
    monkeypatch.setattr(member_import, "BATCH", 4)
    barrier = threading.Barrier(2)

    def worker() -> str:
        barrier.wait()
        return imports.run(factory, job_id, region=REGION)

    with ThreadPoolExecutor(2) as pool:
        states = list(pool.map(lambda _: worker(), range(2)))
    assert states == ["done", "done"]
    with factory() as session:
        job = session.get(MemberImport, job_id)
        assert (job.imported, job.done, job.error, job.runs) == (40, 40, None, 2)
    _imported_once(factory, program_id, phones)


def test_stalled_jobs_are_given_up_after_max_runs(app: Flask, db_session: Session, program: Any) -> None:
    job = member_import.start(db_session, program=program, csv_text=GOOD, mode="valid", actor="user:1",
                              now=utcnow())
    job.state, job.runs, job.error = "importing", imports.MAX_RUNS, "OperationalError: the server closed the connection"
    job.updated_at = utcnow() - imports.STALL - timedelta(minutes=1)
    db_session.flush()
    with app.app_context():
        assert imports.resume_member_imports() == 0
    db_session.expire_all()
    job = db_session.get(MemberImport, job.id)
    assert (job.state, job.error, job.csv) == ("failed", "OperationalError: the server closed the connection", "")
