"""What the RFM view shows: customers per RFM segment, the programme's RFM settings in words, and when a
recompute was last asked for. No Flask here."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Card, Customer, Program
from app.segments.rfm import SEGMENT_NAMES, SEGMENT_RULES, parse_thresholds

RECOMPUTE_ACTION = "rfm.recompute"
NIGHTLY = "every night at 03:00 UTC"


@dataclass
class Distribution:
    counts: dict[str, int]  # every name of SEGMENT_NAMES, in that order
    unscored: int  # active customers without a purchase in the window (no segment)

    @property
    def scored(self) -> int:
        return sum(self.counts.values())


@dataclass
class Settings:
    mode: str
    window_days: int
    lines: list[str] = field(default_factory=list)  # the fixed thresholds in words
    error: str | None = None  # invalid fixed thresholds: the nightly run skips the programme


def distribution(session: Session, *, program: Program) -> Distribution:
    """Customers with an active card in the programme (not anonymised), per stored RFM segment."""
    rows = session.execute(
        select(Customer.rfm_segment, func.count())
        .join(Card, Card.customer_id == Customer.id)
        .where(Card.program_id == program.id, Card.status == "active", Customer.anonymized_at.is_(None))
        .group_by(Customer.rfm_segment)
    ).all()
    found = {name: int(n) for name, n in rows}
    return Distribution(counts={name: found.get(name, 0) for name in SEGMENT_NAMES}, unscored=found.get(None, 0))


def settings(program: Program) -> Settings:
    out = Settings(mode=program.rfm_mode, window_days=program.rfm_window_days)
    if program.rfm_mode != "fixed":
        return out
    try:
        t = parse_thresholds(program.rfm_thresholds)
    except ValueError as exc:
        out.error = str(exc)
        return out
    r5, r4, r3, r2 = t.recency_days
    f2, f3, f4, f5 = t.frequency
    m2, m3, m4, m5 = t.monetary
    out.lines = [
        f"Recency: 5 if the last purchase was at most {r5} days ago, 4 if at most {r4}, 3 if at most {r3}, "
        f"2 if at most {r2}, else 1.",
        f"Frequency: 5 for {f5} purchases or more, 4 for {f4}+, 3 for {f3}+, 2 for {f2}+, else 1.",
        f"Monetary: 5 for a spend of {m5} or more, 4 for {m4}+, 3 for {m3}+, 2 for {m2}+, else 1.",
    ]
    return out


def segment_rules() -> list[tuple[str, str]]:
    """Each named segment with the R and F scores it covers, for a legend."""
    return [(name, f"R {'/'.join(map(str, rs))} · F {'/'.join(map(str, fs))}") for name, rs, fs in SEGMENT_RULES]


def last_requested(session: Session, *, program: Program) -> AuditEvent | None:
    """The latest recompute asked for from the dashboard or the API for this programme."""
    return session.scalar(select(AuditEvent).where(AuditEvent.action == RECOMPUTE_ACTION,
                                                   AuditEvent.target == f"program:{program.id}")
                          .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(1))

