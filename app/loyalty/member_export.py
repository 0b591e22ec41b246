"""Exporting a programme's members as CSV, in the columns an import accepts (app.loyalty.member_import), so
an export can be imported again (into another programme, or another deployment).

Personal data: the caller checks the role (marketer) and records the export in the audit log.
Written for streaming: :func:`lines` yields the file line by line and reads the cards in batches (keyset
paging on the card id), so a large programme is never held in memory at once.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) as a
formula (CSV injection, OWASP): such a cell gets a leading apostrophe, which the spreadsheet shows as text
and the import removes again. E.164 phone numbers start with ``+``, so they always carry one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.loyalty.member_import import COLUMNS, FORMULA_START
from app.models import CONSENT_CHANNELS, Card, Customer, Program

BATCH = 1000


def safe_cell(value: str) -> str:
    """The value, with an apostrophe before it when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def rows(session: Session, *, program: Program, batch: int = BATCH) -> Iterator[list[str]]:
    """The header, then one row per active card of a (not anonymised) customer, oldest card first."""
    yield list(COLUMNS)
    after = 0
    while True:
        cards = list(session.scalars(
            select(Card).join(Customer, Customer.id == Card.customer_id)
            .where(Card.program_id == program.id, Card.status == "active", Card.id > after,
                   Customer.anonymized_at.is_(None), Customer.phone.is_not(None))
            .options(selectinload(Card.customer).selectinload(Customer.consents))
            .order_by(Card.id).limit(batch)))
        if not cards:
            return
        for card in cards:
            customer = card.customer
            answers = {c.channel: c.granted for c in customer.consents}
            consent = ["" if answers.get(ch) is None else ("yes" if answers[ch] else "no") for ch in CONSENT_CHANNELS]
            yield [customer.phone or "", customer.name, customer.email or "",
                   customer.birthday.isoformat() if customer.birthday else "", str(card.balance), *consent]
        after = cards[-1].id  # (the session holds its objects weakly: written batches can be collected)


def lines(session: Session, *, program: Program) -> Iterator[str]:
    """The CSV file, one line (with its line end) at a time, every cell guarded against formulas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows(session, program=program):
        writer.writerow([safe_cell(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
