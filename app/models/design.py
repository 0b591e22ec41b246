"""A programme's card design images (logo, strip, icon at Apple's three scales) and the background jobs
the dashboard follows (re-syncing every pass after a design or settings change)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

IMAGE_KINDS = ("logo", "strip", "icon")
JOB_STATES = ("queued", "running", "done", "failed")


class ProgramImage(Base):
    """One uploaded image of a programme at one scale (1, 2 or 3: Apple's ``logo.png``, ``logo@2x.png``…)."""

    __tablename__ = "program_image"
    __table_args__ = (
        UniqueConstraint("program_id", "kind", "scale"),
        CheckConstraint("kind IN ('logo', 'strip', 'icon')", name="kind"),
        CheckConstraint("scale IN (1, 2, 3)", name="scale"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    scale: Mapped[int]
    png: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Job(Base):
    """A background job with progress (``done`` of ``total``), for the dashboard and ``GET /api/v1/jobs/<id>``."""

    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    program_id: Mapped[int | None] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
