"""Importing existing members from CSV: the validation report line by line, both import modes, what an import
does (no welcome bonus or message, explicit consent only, opening balances), limits, and the export that
round-trips through it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty import enrollment, member_export, member_import
from app.loyalty.member_import import Issue
from app.models import Card, Consent, Customer, LedgerEntry, OutboxEvent

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


def run(db: Session, program: Any, text: str, *, only_if_valid: bool = True) -> member_import.Report:
    return member_import.import_members(db, program=program, csv_text=text, region=REGION, actor="user:1",
                                        now=utcnow(), only_if_valid=only_if_valid)


def card_of(db: Session, program: Any, phone: str) -> Card | None:
    return db.scalar(select(Card).join(Customer).where(Card.program_id == program.id, Customer.phone == phone))


def test_each_kind_of_mistake_is_reported_on_its_line_and_nothing_is_imported(db_session: Session,
                                                                                program: Any) -> None:
    report = run(db_session, program, MISTAKES)
    assert report.issues == EXPECTED
    assert not report.file_errors and not report.ok
    assert (report.rows, report.valid, report.invalid_lines, report.imported) == (8, 2, 6, 0)
    assert card_of(db_session, program, "+37369000001") is None
    assert card_of(db_session, program, "+37369000005") is None


def test_importing_the_valid_lines_enrols_them_without_welcome_bonus_or_message(db_session: Session,
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


def test_a_member_of_another_programme_keeps_their_details_and_answers(
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
def test_problems_with_the_file_itself_stop_the_import_in_either_mode(db_session: Session, program: Any,
                                                                      text: str, expected: list[Issue]) -> None:
    report = run(db_session, program, text, only_if_valid=False)
    assert report.file_errors == expected and report.imported == 0
    assert card_of(db_session, program, "+37369000001") is None


def test_line_level_details(db_session: Session, program: Any) -> None:
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


def test_size_limits(db_session: Session, program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(member_import, "MAX_ROWS", 2)
    rows = "phone\n+37369000001\n+37369000002\n+37369000003\n"
    report = run(db_session, program, rows, only_if_valid=False)
    assert report.file_errors == [Issue(4, "", "the file has more than 2 members; split it into smaller files")]
    assert report.imported == 0
    monkeypatch.setattr(member_import, "MAX_BYTES", 20)
    report = run(db_session, program, rows)
    assert report.file_errors == [Issue(0, "", "the file is larger than 5 MB; split it into smaller files")]


def test_export_then_import_round_trips(db_session: Session, make_program: Callable[..., Any],
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
