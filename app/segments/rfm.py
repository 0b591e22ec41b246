"""RFM: recency, frequency and monetary scores (1–5) per customer and the 10 standard named segments.

What is measured, for one programme, over its look-back window ``[now - rfm_window_days, now]``
(both ends included; purchases dated after ``now`` are ignored, so a recompute "as of" a past date
gives the same answer it gave that day):

- the programme's customers are the holders of its cards (any card status: a voided card's
  purchases were real purchases);
- a purchase counts when it is on one of the programme's cards, in the window, and not fully
  refunded (``refunded_amount < amount``; a zero-amount purchase still counts as a visit). A fully
  refunded purchase counts for nothing, recency included: it is as if it never happened. A partly
  refunded one counts as a visit and for its net amount;
- **R** = days since the customer's last counted purchase, in whole elapsed days
  (``floor((now - last) / 24 h)``), **F** = number of counted purchases, **M** = their net spend
  ``sum(amount - refunded_amount)``.

Customers of the programme with no counted purchase in the window get all four columns NULL (no
scores, no segment).

Scores, ``Program.rfm_mode``:

- ``"quintile"``: each customer's rank ``k`` (1 = worst) among the ``n`` scored customers becomes
  ``ceil(5 * k / n)``. That is NTILE(5) when ``n`` is a multiple of 5 and otherwise differs only in
  which quintiles take the one extra customer each; it never divides by zero (``n >= 1`` whenever a row
  exists), and it spreads a tiny population over the scale with the best customer always at 5:
  n = 1 → 5; n = 2 → 3, 5; n = 3 → 2, 4, 5; n = 4 → 2, 3, 4, 5. Ties are broken deterministically,
  so tied customers may get different scores (pandas ``rank(method="first")``, as in the reference):

  - R: ordered by the last purchase's time (fewer days since it scores higher; within a day the later
    purchase ranks higher), then by customer id;
  - F: ordered by the number of purchases, ties broken by recency (the more recent last purchase ranks
    higher) and then by customer id, so that the many customers with F = 1 do not all collapse into
    one score;
  - M: ordered by net spend, then by customer id.

  Wherever the customer id breaks a tie, the lower id gets the lower rank.
- ``"fixed"``: ``Program.rfm_thresholds`` = ``{"recency_days": [r5, r4, r3, r2], "frequency": [f2, f3,
  f4, f5], "monetary": [m2, m3, m4, m5]}``; R is 5 when days ≤ r5, 4 when ≤ r4, 3 when ≤ r3, 2 when ≤ r2,
  else 1; F is 5 when purchases ≥ f5, …, 2 when ≥ f2, else 1; M likewise on net spend. Each list holds
  4 non-decreasing non-negative numbers (recency and frequency whole numbers).

The segment comes from R and F only (the reference's 10-segment R×F map, ``segment_name``); M is kept
for reporting and campaigns.

Scores live on ``Customer``, not on the card: **a customer with cards in several programmes has one set
of scores, those of the programme recomputed last** (the nightly task goes through programmes by id,
so the highest id wins), and recomputing a programme where such a customer bought nothing in the window
clears them. Scores per programme would need them on ``Card`` (a model change).

``recompute`` is one set-based ``UPDATE customer SET … FROM (SELECT … window functions …)`` through
SQLAlchemy Core, the same statement on PostgreSQL and SQLite (≥ 3.33 for ``UPDATE … FROM``, ≥ 3.25
for window functions), followed by one ``GROUP BY`` for the counts. It writes only the rows whose
scores or segment change. It flushes, never commits. The UPDATE holds the row locks of the customers it
changes until the caller commits. The customers without a purchase come out of the same outer join as the
others (``card LEFT JOIN purchase … GROUP BY``), not from a second outer join to the scored rows: SQLite
scans such a materialised subquery once per outer row (100,000 customers took 387 s that way, 2.5 s this).

Cost (``bench/rfm.py``: 1,000,000 customers, 10,000,000 purchases over two years, PostgreSQL 15, 2 cores):
23–28 s when every scored customer's row changes (the first run), 11–17 s a day later when 1 % of them do
(the nightly case). PostgreSQL never runs a data-modifying statement with parallel workers, so the reading
half runs in one process (2–3× the parallel bare aggregate of the same rows, about 2× that aggregate in one
process); the rest is writing the rows and their five customer indexes. A larger ``work_mem`` measured
slower, so none is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import Card, Customer, Program, Purchase

SEGMENT_NAMES: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
)

# The reference's R×F table (loyalty_platforms.md §3.2): segment, R scores, F scores. Covers all 25.
SEGMENT_RULES: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("Champions", (5,), (4, 5)),
    ("Loyal Customers", (3, 4), (4, 5)),
    ("Potential Loyalists", (4, 5), (2, 3)),
    ("New Customers", (5,), (1,)),
    ("Promising", (4,), (1,)),
    ("Need Attention", (3,), (3,)),
    ("About to Sleep", (3,), (1, 2)),
    ("At Risk", (1, 2), (3, 4)),
    ("Can't Lose Them", (1, 2), (5,)),
    ("Hibernating", (1, 2), (1, 2)),
)
_SEGMENT_BY_RF: dict[tuple[int, int], str] = {
    (r, f): name for name, rs, fs in SEGMENT_RULES for r in rs for f in fs
}

RFM_MODES = ("quintile", "fixed")
_RFM_ATTRIBUTES = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")


def segment_name(r: int, f: int) -> str:
    """The named segment of an R score and an F score (each 1–5)."""
    try:
        return _SEGMENT_BY_RF[(r, f)]
    except (KeyError, TypeError):
        raise ValueError(f"RFM scores are whole numbers from 1 to 5, got R={r!r}, F={f!r}") from None


@dataclass(frozen=True)
class Thresholds:
    """Fixed-mode cut-offs: ``recency_days`` = (r5, r4, r3, r2), ``frequency`` = (f2, f3, f4, f5),
    ``monetary`` = (m2, m3, m4, m5)."""

    recency_days: tuple[int, int, int, int]
    frequency: tuple[int, int, int, int]
    monetary: tuple[Decimal, Decimal, Decimal, Decimal]


def parse_thresholds(raw: Mapping[str, Any] | None) -> Thresholds:
    """Validate ``Program.rfm_thresholds``; ``ValueError`` says what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError('fixed RFM mode needs rfm_thresholds {"recency_days": [...], "frequency": [...], '
                         '"monetary": [...]}')

    def four(key: str, convert: Any) -> tuple[Any, ...]:
        values = raw.get(key)
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 4:
            raise ValueError(f"rfm_thresholds.{key} must be a list of 4 numbers, got {values!r}")
        out = tuple(convert(key, v) for v in values)
        if any(v < 0 for v in out) or any(a > b for a, b in zip(out, out[1:], strict=False)):
            raise ValueError(f"rfm_thresholds.{key} must be non-negative and non-decreasing, got {values!r}")
        return out

    def whole(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"rfm_thresholds.{key} holds whole numbers, got {value!r}")
        return int(value)

    def amount(key: str, value: Any) -> Decimal:
        if isinstance(value, bool):
            raise ValueError(f"rfm_thresholds.{key} holds amounts, got {value!r}")
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"rfm_thresholds.{key} holds amounts, got {value!r}") from None
        if not result.is_finite():
            raise ValueError(f"rfm_thresholds.{key} holds amounts, got {value!r}")
        return result

    return Thresholds(four("recency_days", whole), four("frequency", whole), four("monetary", amount))


@dataclass(frozen=True)
class RfmSummary:
    program_id: int
    mode: str
    now: datetime
    window_start: datetime
    customers: int  # holders of the programme's cards
    unscored: int  # of them, no counted purchase in the window: scores and segment NULL
    changed: int  # customers whose stored scores or segment this run changed
    counts: dict[str, int]  # customers per segment, every name of SEGMENT_NAMES in that order

    @property
    def scored(self) -> int:
        return self.customers - self.unscored


def recompute(session: Session, *, program: Program, now: datetime | None = None) -> RfmSummary:
    """Recompute the RFM scores and segment of every customer of ``program`` as of ``now``.

    One set-based UPDATE (see the module docstring for the definitions); returns the counts per segment.
    """
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetime given; use an aware UTC datetime")
    mode = program.rfm_mode
    if mode not in RFM_MODES:
        raise ValueError(f"unknown rfm_mode {mode!r} (expected one of {', '.join(RFM_MODES)})")
    thresholds = parse_thresholds(program.rfm_thresholds) if mode == "fixed" else None
    window_days = program.rfm_window_days
    if window_days is None or window_days < 1:
        raise ValueError(f"rfm_window_days must be at least 1, got {window_days!r}")
    start = now - timedelta(days=window_days)
    session.flush()
    dialect = session.get_bind().dialect.name

    # One row per customer of the programme (a customer has at most one card per programme): last counted
    # purchase, number of counted purchases (0 for none) and net spend. Outer-joining the purchases keeps
    # the customers without any, so no second pass over the cards is needed to clear their scores.
    net = func.sum(Purchase.amount - Purchase.refunded_amount)
    if dialect == "sqlite":  # SQLite sums NUMERIC as binary floats: keep cents exact for ties and thresholds
        net = func.round(net, 2)
    activity = (
        select(
            Card.customer_id.label("customer_id"),
            func.max(Purchase.occurred_at).label("last_at"),
            func.count(Purchase.id).label("frequency"),
            net.label("monetary"),
        )
        .select_from(Card)
        .outerjoin(
            Purchase,
            and_(
                Purchase.card_id == Card.id,
                Purchase.occurred_at >= start,
                Purchase.occurred_at <= now,
                or_(Purchase.refunded_amount < Purchase.amount, Purchase.amount == 0),
            ),
        )
        .where(Card.program_id == program.id)
        .group_by(Card.customer_id)
        .subquery("activity")
    )
    a = activity.c
    if thresholds is None:
        # Ranks 1..n (1 = worst) within the customers with purchases; those without are ranked apart and
        # their ranks are not used.
        idle = a.frequency == 0
        ranked = select(
            a.customer_id,
            a.frequency,
            func.count().over(partition_by=idle).label("n"),
            func.row_number().over(partition_by=idle, order_by=(a.last_at, a.customer_id)).label("rank_r"),
            func.row_number().over(partition_by=idle, order_by=(a.frequency, a.last_at, a.customer_id))
            .label("rank_f"),
            func.row_number().over(partition_by=idle, order_by=(a.monetary, a.customer_id)).label("rank_m"),
        ).subquery("ranked")
        a = ranked.c
        # ceil(5 * rank / n) in integers: rank 1..n → score 1..5
        r, f, m = ((5 * rank + a.n - 1) // a.n for rank in (a.rank_r, a.rank_f, a.rank_m))
    else:
        # days ≤ t ⇔ floor(elapsed / 24 h) ≤ t ⇔ the last purchase is later than now - (t + 1) days
        r = case(
            *((a.last_at > now - timedelta(days=t + 1), score)
              for score, t in zip((5, 4, 3, 2), thresholds.recency_days, strict=True)),
            else_=1,
        )
        f = case(
            *((a.frequency >= t, score)
              for score, t in zip((5, 4, 3, 2), reversed(thresholds.frequency), strict=True)),
            else_=1,
        )
        m = case(
            *((a.monetary >= t, score)
              for score, t in zip((5, 4, 3, 2), reversed(thresholds.monetary), strict=True)),
            else_=1,
        )
    active = a.frequency > 0
    scores = (
        select(
            a.customer_id,
            case((active, r), else_=None).label("r"),
            case((active, f), else_=None).label("f"),
            case((active, m), else_=None).label("m"),
        )
        .subquery("scores")
    )
    s = scores.c
    segment = case(
        *((and_(s.r.in_(rs), s.f.in_(fs)), name) for name, rs, fs in SEGMENT_RULES),
        else_=None,
    )
    target = select(s.customer_id, s.r, s.f, s.m, segment.label("segment")).subquery("target")
    t = target.c
    customer = Customer.__table__.c
    result = session.execute(
        update(Customer.__table__)
        .where(
            customer.id == t.customer_id,
            or_(
                customer.rfm_recency.is_distinct_from(t.r),
                customer.rfm_frequency.is_distinct_from(t.f),
                customer.rfm_monetary.is_distinct_from(t.m),
                customer.rfm_segment.is_distinct_from(t.segment),
            ),
        )
        .values(rfm_recency=t.r, rfm_frequency=t.f, rfm_monetary=t.m, rfm_segment=t.segment)
    )
    changed = int(result.rowcount or 0)
    program.rfm_computed_at = now
    # The UPDATE went around the ORM: reload these columns on customers already in the session.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer):
            session.expire(obj, _RFM_ATTRIBUTES)

    rows = session.execute(
        select(Customer.rfm_segment, func.count())
        .join(Card, Card.customer_id == Customer.id)
        .where(Card.program_id == program.id)
        .group_by(Customer.rfm_segment)
    ).all()
    by_name = {name: int(count) for name, count in rows}
    unscored = by_name.pop(None, 0)
    counts = {name: by_name.pop(name, 0) for name in SEGMENT_NAMES}
    if by_name:  # cannot happen: the CASE only yields SEGMENT_NAMES
        raise RuntimeError(f"unexpected RFM segments {sorted(by_name)}")
    return RfmSummary(
        program_id=program.id,
        mode=mode,
        now=now,
        window_start=start,
        customers=unscored + sum(counts.values()),
        unscored=unscored,
        changed=changed,
        counts=counts,
    )
