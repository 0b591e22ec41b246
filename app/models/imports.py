"""A CSV import of existing members, run in the background (app.tasks.imports) with its progress and report.

The uploaded file is kept (``csv``) only while the import runs: it holds personal data, and once the import
has ended its report (counts and problems by line) is all anyone needs. ``next_line`` and the counters are
written in the same transaction as each batch of members, so a worker that dies mid-import leaves a job that
continues where it stopped (nothing enrolled twice, nothing lost).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

IMPORT_STATES = ("queued", "checking", "importing", "done", "refused", "failed")
IMPORT_MODES = ("all", "valid")


class MemberImport(Base):
    """queued → checking (every line read and checked) → importing (batches) → done; or refused (nothing
    imported: a line with a problem in mode ``all``, or no valid line), or failed (it kept stopping)."""

    __tablename__ = "member_import"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'checking', 'importing', 'done', 'refused', 'failed')", name="state"),
        CheckConstraint("mode IN ('all', 'valid')", name="mode"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    mode: Mapped[str] = mapped_column(String(8), default="all")  # all: only a fully valid file; valid: its valid lines
    filename: Mapped[str] = mapped_column(String(200), default="")
    csv: Mapped[str] = mapped_column(Text, default="")  # the file, until the import ends
    actor: Mapped[str] = mapped_column(String(254))  # as the ledger writes it: "user:7", "api-token:tp_ab12"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(45))  # of the upload, for the audit log
    rows: Mapped[int] = mapped_column(default=0)  # data lines in the file (the header not counted)
    done: Mapped[int] = mapped_column(default=0)  # lines handled: imported, or skipped with a problem
    valid: Mapped[int] = mapped_column(default=0)  # lines without a problem when the file was checked
    invalid_lines: Mapped[int] = mapped_column(default=0)  # lines with at least one problem
    imported: Mapped[int] = mapped_column(default=0)  # cards created
    existing_customers: Mapped[int] = mapped_column(default=0)  # of those, for a customer of another programme
    points: Mapped[int] = mapped_column(default=0)  # opening balances credited
    file_errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # {line, column, message}, ≤ 1000
    valid_lines: Mapped[list[int] | None] = mapped_column(JSON)  # what the check let through, until the end
    next_line: Mapped[int] = mapped_column(default=0)  # every valid line before it is handled
    runs: Mapped[int] = mapped_column(default=0)  # times a worker took the job up (a stalled one is taken again)
    error: Mapped[str | None] = mapped_column(String(500))  # why the last run stopped, when it did
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
