"""Segments of a programme's customers: a rule tree evaluated live, RFM named groups (scores stored per
customer, recomputed nightly), or a static list imported from a CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

SEGMENT_KINDS = ("rules", "rfm", "static")


class Segment(Base):
    __tablename__ = "segment"
    __table_args__ = (
        UniqueConstraint("program_id", "name"),
        CheckConstraint("kind IN ('rules', 'rfm', 'static')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    # kind "rules": the condition tree; kind "rfm": {"segments": ["At Risk", ...]}; "static": unused.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentMember(Base):
    """A customer listed in a static segment."""

    __tablename__ = "segment_member"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)
