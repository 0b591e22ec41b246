"""RFM recompute (app.segments.rfm) against the real schema, with hand-computed expectations.

Purchases are inserted as rows with chosen times and amounts; every recompute runs "as of" ``T0``.
Quintile scores are ``ceil(5 * rank / n)`` over the ``n`` customers with a counted purchase (see the
module docstring for the orderings and their tie-breaks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Card, Customer, Program, Purchase
from app.segments import rfm

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

Factory = Callable[..., Any]
Scores = tuple[int | None, int | None, int | None, str | None]
NONE: Scores = (None, None, None, None)


class Shop:
    """A programme with one store; ``customer()`` issues a card, ``buy()`` records a purchase row."""

    def __init__(self, session: Session, make_program: Factory, make_store: Factory, make_card: Factory,
                 **program_fields: Any) -> None:
        self.session, self.make_card = session, make_card
        self.program: Program = make_program(**program_fields)
        self.store = make_store(self.program).store
        self.receipts = count(1)

    def customer(self, **fields: Any) -> Card:
        return self.make_card(self.program, **fields)

    def buy(self, card: Card, *, at: datetime, amount: str = "10.00", refunded: str = "0") -> Purchase:
        purchase = Purchase(
            store_id=self.store.id, receipt_id=f"R{next(self.receipts)}", card_id=card.id,
            amount=Decimal(amount), amount_due=Decimal(amount), refunded_amount=Decimal(refunded),
            occurred_at=at, created_at=at,
        )
        self.session.add(purchase)
        return purchase

    def recompute(self, now: datetime = T0) -> rfm.RfmSummary:
        return rfm.recompute(self.session, program=self.program, now=now)


@pytest.fixture
def shop(db_session: Session, make_program: Factory, make_store: Factory, make_card: Factory) -> Callable[..., Shop]:
    return lambda **fields: Shop(db_session, make_program, make_store, make_card, **fields)


def scores(session: Session, card: Card) -> Scores:
    row = session.execute(
        select(Customer.rfm_recency, Customer.rfm_frequency, Customer.rfm_monetary, Customer.rfm_segment)
        .where(Customer.id == card.customer_id)
    ).one()
    return tuple(row)  # type: ignore[return-value]


def counts(**named: int) -> dict[str, int]:
    """Every segment name with 0, except those given (``Loyal_Customers=2`` style keys)."""
    given = {key.replace("_", " ").replace("Cant", "Can't"): value for key, value in named.items()}
    assert set(given) <= set(rfm.SEGMENT_NAMES)
    return {name: given.get(name, 0) for name in rfm.SEGMENT_NAMES}


FIXED = {"recency_days": [30, 60, 90, 180], "frequency": [2, 4, 8, 12], "monetary": [50, 100, 200, 500]}


# ---------------------------------------------------------------- quintile mode


def build_ten(shop: Shop) -> list[Card]:
    """10 customers with a purchase (6 of them exactly one) and an 11th without any.

    customer   purchases (days before T0 × amount)        F  last   M
    c1         100 × 10                                   1  100    10
    c2         5 × 20                                     1    5    20
    c3         50 × 30                                    1   50    30
    c4         200 × 40                                   1  200    40
    c5         300 × 50                                   1  300    50
    c6         20 × 10                                    1   20    10
    c7         2, 40, 80 × 10                             3    2    30
    c8         10, 150 × 25                               2   10    50
    c9         5, 6, 7, 8, 9 × 2                          5    5    10   (last purchase at the very time of c2's)
    c10        30, 60 × 100                               2   30   200
    c11        none                                       -    -     -
    """
    cards = [shop.customer() for _ in range(11)]
    plan: list[list[tuple[int, str]]] = [
        [(100, "10")], [(5, "20")], [(50, "30")], [(200, "40")], [(300, "50")], [(20, "10")],
        [(2, "10"), (40, "10"), (80, "10")], [(10, "25"), (150, "25")],
        [(d, "2") for d in (5, 6, 7, 8, 9)], [(30, "100"), (60, "100")], [],
    ]
    for card, purchases in zip(cards, plan, strict=True):
        for days, amount in purchases:
            shop.buy(card, at=T0 - days * DAY, amount=amount)
    return cards


# n = 10, score = ceil(5k/10) = ceil(k/2).
# R, oldest last purchase first: c5 c4 c1 c3 c10 c6 c8 c2 c9 c7 (c2 and c9 tie on time: lower id first)
# F, by count then last purchase then id: F=1: c5 c4 c1 c3 c6 c2; F=2: c10 c8; F=3: c7; F=5: c9
# M, by amount then id: 10: c1 c6 c9; 20: c2; 30: c3 c7; 40: c4; 50: c5 c8; 200: c10
EXPECTED_TEN: list[Scores] = [
    (2, 2, 1, "Hibernating"),          # c1
    (4, 3, 2, "Potential Loyalists"),  # c2
    (2, 2, 3, "Hibernating"),          # c3
    (1, 1, 4, "Hibernating"),          # c4
    (1, 1, 4, "Hibernating"),          # c5
    (3, 3, 1, "Need Attention"),       # c6
    (5, 5, 3, "Champions"),            # c7
    (4, 4, 5, "Loyal Customers"),      # c8
    (5, 5, 2, "Champions"),            # c9
    (3, 4, 5, "Loyal Customers"),      # c10
    NONE,                              # c11: no purchase
]


def test_quintiles_with_ties_hand_computed(db_session: Session, shop: Callable[..., Shop]) -> None:
    s = shop()
    cards = build_ten(s)

    summary = s.recompute()

    assert [scores(db_session, card) for card in cards] == EXPECTED_TEN
    # the six customers with F = 1 are spread over three scores instead of collapsing into one
    assert sorted(EXPECTED_TEN[i][1] for i in (0, 1, 2, 3, 4, 5)) == [1, 1, 2, 2, 3, 3]
    assert summary.counts == counts(Champions=2, Loyal_Customers=2, Potential_Loyalists=1, Need_Attention=1,
                                    Hibernating=4)
    assert (summary.customers, summary.scored, summary.unscored, summary.changed) == (11, 10, 1, 10)
    assert summary.program_id == s.program.id and summary.mode == "quintile"
    assert summary.window_start == T0 - 365 * DAY


def test_recompute_twice_is_stable_and_writes_nothing_the_second_time(
        db_session: Session, shop: Callable[..., Shop]) -> None:
    s = shop()
    cards = build_ten(s)
    first = s.recompute()
    before = [scores(db_session, card) for card in cards]

    second = s.recompute()

    assert [scores(db_session, card) for card in cards] == before == EXPECTED_TEN
    assert second.counts == first.counts
    assert (second.changed, second.unscored) == (0, first.unscored)
    assert s.program.rfm_computed_at == T0  # the moment the scores are as of, shown in the dashboard


def test_stale_scores_of_a_customer_without_purchases_are_cleared(
        db_session: Session, shop: Callable[..., Shop]) -> None:
    s = shop()
    cards = build_ten(s)
    lapsed = cards[10]
    db_session.execute(update(Customer).where(Customer.id == lapsed.customer_id).values(
        rfm_recency=5, rfm_frequency=5, rfm_monetary=5, rfm_segment="Champions"))

    summary = s.recompute()

    assert scores(db_session, lapsed) == NONE
    assert summary.changed == 11


def test_loaded_customers_see_the_new_scores(db_session: Session, shop: Callable[..., Shop]) -> None:
    """The UPDATE bypasses the ORM; customers already in the session must not keep stale values."""
    s = shop()
    card = s.customer()
    s.buy(card, at=T0 - DAY)
    customer = db_session.get(Customer, card.customer_id)
    assert customer is not None and customer.rfm_segment is None

    s.recompute()

    assert (customer.rfm_recency, customer.rfm_frequency, customer.rfm_monetary, customer.rfm_segment) == (
        5, 5, 5, "Champions")


# ---------------------------------------------------------------- tiny populations


@pytest.mark.parametrize(("n", "expected"), [
    (1, [(5, 5, 5, "Champions")]),
    (2, [(3, 3, 3, "Need Attention"), (5, 5, 5, "Champions")]),
    (3, [(2, 2, 2, "Hibernating"), (4, 4, 4, "Loyal Customers"), (5, 5, 5, "Champions")]),
    (4, [(2, 2, 2, "Hibernating"), (3, 3, 3, "Need Attention"), (4, 4, 4, "Loyal Customers"),
         (5, 5, 5, "Champions")]),
    (5, [(1, 1, 1, "Hibernating"), (2, 2, 2, "Hibernating"), (3, 3, 3, "Need Attention"),
         (4, 4, 4, "Loyal Customers"), (5, 5, 5, "Champions")]),
])
def test_tiny_populations_spread_over_the_scale(db_session: Session, shop: Callable[..., Shop], n: int,
                                                expected: list[Scores]) -> None:
    """Customer k (1..n) buys k times, the last time 100/k days ago, 10 each: k is its rank in R, F and M
    alike, so every score is ceil(5k/n); with n < 5 the best customer still scores 5."""
    s = shop()
    cards = [s.customer() for _ in range(n)]
    for k, card in enumerate(cards, start=1):
        for j in range(k):
            s.buy(card, at=T0 - (100 // k + j) * DAY, amount="10")

    summary = s.recompute()

    assert [scores(db_session, card) for card in cards] == expected
    assert summary.scored == n and sum(summary.counts.values()) == n


def test_a_programme_without_customers_or_purchases(db_session: Session, shop: Callable[..., Shop]) -> None:
    empty = shop().recompute()
    assert (empty.customers, empty.changed, empty.counts) == (0, 0, counts())

    s = shop()
    cards = [s.customer(), s.customer()]
    summary = s.recompute()
    assert [scores(db_session, card) for card in cards] == [NONE, NONE]
    assert (summary.customers, summary.unscored, summary.counts) == (2, 2, counts())


# ---------------------------------------------------------------- fixed thresholds


def test_fixed_thresholds_hand_computed(db_session: Session, shop: Callable[..., Shop]) -> None:
    """recency_days [30, 60, 90, 180], frequency [2, 4, 8, 12], monetary [50, 100, 200, 500].

    customer  last purchase           days  R | purchases  F | spend        M | segment
    a         T0 - 30 days            30    5 | 1          1 | 49.99        1 | New Customers
    b         T0 - 30 days - 23:59    30    5 | 2          2 | 2 × 25       2 | Potential Loyalists
    c         T0 - 31 days            31    4 | 4          3 | 4 × 25       3 | Potential Loyalists
    d         T0 - 180 days           180   2 | 8          4 | 8 × 25       4 | At Risk
    e         T0 - 181 days           181   1 | 12         5 | 12 × 41.67   5 | Can't Lose Them
    """
    s = shop(rfm_mode="fixed", rfm_thresholds=FIXED)
    a, b, c, d, e = (s.customer() for _ in range(5))
    s.buy(a, at=T0 - 30 * DAY, amount="49.99")
    for card, last, n, amount in ((b, T0 - 30 * DAY - timedelta(hours=23, minutes=59), 2, "25"),
                                  (c, T0 - 31 * DAY, 4, "25"), (d, T0 - 180 * DAY, 8, "25"),
                                  (e, T0 - 181 * DAY, 12, "41.67")):
        for j in range(n):
            s.buy(card, at=last - j * DAY, amount=amount)

    summary = s.recompute()

    assert [scores(db_session, card) for card in (a, b, c, d, e)] == [
        (5, 1, 1, "New Customers"),
        (5, 2, 2, "Potential Loyalists"),
        (4, 3, 3, "Potential Loyalists"),
        (2, 4, 4, "At Risk"),
        (1, 5, 5, "Can't Lose Them"),
    ]
    assert summary.mode == "fixed"
    assert summary.counts == counts(New_Customers=1, Potential_Loyalists=2, At_Risk=1, Cant_Lose_Them=1)


def test_fixed_scores_do_not_depend_on_the_other_customers(db_session: Session, shop: Callable[..., Shop]) -> None:
    s = shop(rfm_mode="fixed", rfm_thresholds=FIXED)
    alone = s.customer()
    s.buy(alone, at=T0 - 45 * DAY, amount="120")
    s.recompute()
    assert scores(db_session, alone) == (4, 1, 3, "Promising")

    for _ in range(3):
        other = s.customer()
        for j in range(20):
            s.buy(other, at=T0 - j * DAY, amount="100")
    s.recompute()
    assert scores(db_session, alone) == (4, 1, 3, "Promising")


@pytest.mark.parametrize("thresholds", [
    None,
    {},
    {"recency_days": [30, 60, 90], "frequency": [2, 4, 8, 12], "monetary": [50, 100, 200, 500]},
    {"recency_days": [90, 60, 30, 180], "frequency": [2, 4, 8, 12], "monetary": [50, 100, 200, 500]},
    {"recency_days": [30, 60, 90, 180], "frequency": [2, 4.5, 8, 12], "monetary": [50, 100, 200, 500]},
    {"recency_days": [30, 60, 90, 180], "frequency": [2, 4, 8, 12], "monetary": [50, "lots", 200, 500]},
    {"recency_days": [30, 60, 90, 180], "frequency": [2, 4, 8, 12], "monetary": [-1, 100, 200, 500]},
    {"recency_days": "30,60,90,180", "frequency": [2, 4, 8, 12], "monetary": [50, 100, 200, 500]},
])
def test_invalid_fixed_thresholds_are_refused(shop: Callable[..., Shop], thresholds: Any) -> None:
    s = shop(rfm_mode="fixed", rfm_thresholds=thresholds)
    with pytest.raises(ValueError, match="rfm_thresholds"):
        s.recompute()


def test_thresholds_accept_decimal_amounts() -> None:
    parsed = rfm.parse_thresholds({"recency_days": [7, 14, 14, 60], "frequency": [1, 2, 3, 3.0],
                                   "monetary": ["9.99", 20, 20.5, 100]})
    assert parsed.recency_days == (7, 14, 14, 60)
    assert parsed.frequency == (1, 2, 3, 3)
    assert parsed.monetary == (Decimal("9.99"), Decimal("20"), Decimal("20.5"), Decimal("100"))


def test_an_unknown_mode_or_window_is_refused(shop: Callable[..., Shop]) -> None:
    with pytest.raises(ValueError, match="rfm_mode"):
        shop(rfm_mode="deciles").recompute()
    with pytest.raises(ValueError, match="rfm_window_days"):
        shop(rfm_window_days=0).recompute()
    with pytest.raises(ValueError, match="naive"):
        shop().recompute(now=T0.replace(tzinfo=None))


# ---------------------------------------------------------------- window and refunds


def test_the_window_boundaries(db_session: Session, shop: Callable[..., Shop]) -> None:
    """Window [T0 - 30 days, T0], both ends included; anything later than ``now`` is ignored.
    Frequency thresholds [2, 3, 4, 5] make F = 1 mean exactly one counted purchase."""
    s = shop(rfm_mode="fixed", rfm_window_days=30, rfm_thresholds={
        "recency_days": [1, 10, 20, 29], "frequency": [2, 3, 4, 5], "monetary": [10, 20, 30, 40]})
    start = T0 - 30 * DAY
    at_start, before_start, only_future, at_now = (s.customer() for _ in range(4))
    s.buy(at_start, at=start, amount="15")
    s.buy(at_start, at=start - timedelta(seconds=1), amount="15")
    s.buy(before_start, at=start - timedelta(seconds=1))
    s.buy(only_future, at=T0 + timedelta(seconds=1))
    s.buy(at_now, at=T0, amount="25")
    s.buy(at_now, at=T0 + timedelta(hours=1), amount="25")

    summary = s.recompute()

    assert scores(db_session, at_start) == (1, 1, 2, "Hibernating")  # 30 days > r2 = 29
    assert scores(db_session, before_start) == NONE
    assert scores(db_session, only_future) == NONE
    assert scores(db_session, at_now) == (5, 1, 3, "New Customers")  # 0 days
    assert (summary.customers, summary.unscored) == (4, 2)

    # a day later the purchase at the start has left the window, the one after T0 has entered it
    s.recompute(now=T0 + DAY + timedelta(hours=1))
    assert scores(db_session, at_start) == NONE
    assert scores(db_session, only_future) == (5, 1, 2, "New Customers")
    assert scores(db_session, at_now) == (5, 2, 5, "Potential Loyalists")  # both purchases now, 50 in all


def test_refunds(db_session: Session, shop: Callable[..., Shop]) -> None:
    """A fully refunded purchase counts for nothing (not even recency); a partly refunded one counts as a
    visit for its net amount; a zero-amount purchase still counts as a visit."""
    s = shop(rfm_mode="fixed", rfm_thresholds={
        "recency_days": [10, 20, 50, 120], "frequency": [2, 3, 4, 5], "monetary": [30, 31, 1000, 2000]})
    mixed, only_refunded, free = (s.customer() for _ in range(3))
    s.buy(mixed, at=T0 - 5 * DAY, amount="100", refunded="100")
    s.buy(mixed, at=T0 - 100 * DAY, amount="50", refunded="20")
    s.buy(only_refunded, at=T0 - DAY, amount="80", refunded="80")
    s.buy(free, at=T0 - DAY, amount="0")

    summary = s.recompute()

    # days 100 → R2 (R5 if the refunded purchase counted); F1; 30 net → M2 (M3 gross or with the refunded one)
    assert scores(db_session, mixed) == (2, 1, 2, "Hibernating")
    assert scores(db_session, only_refunded) == NONE
    assert scores(db_session, free) == (5, 1, 1, "New Customers")
    assert (summary.scored, summary.unscored) == (2, 1)


def test_refunds_in_quintile_mode_change_the_population(db_session: Session, shop: Callable[..., Shop]) -> None:
    s = shop()
    kept, refunded = s.customer(), s.customer()
    s.buy(kept, at=T0 - 50 * DAY, amount="10")
    s.buy(refunded, at=T0 - DAY, amount="500", refunded="500")

    summary = s.recompute()

    assert scores(db_session, kept) == (5, 5, 5, "Champions")  # alone: n = 1
    assert scores(db_session, refunded) == NONE
    assert summary.scored == 1


# ---------------------------------------------------------------- several programmes


def test_another_programmes_purchases_do_not_count(db_session: Session, shop: Callable[..., Shop],
                                                   make_card: Factory) -> None:
    """Programme 1: three customers as in the n = 3 case. Programme 2: two heavy buyers, and a card of
    programme 1's weakest customer with even more recent and bigger purchases. Programme 1's scores ignore
    all of programme 2."""
    one, two = shop(), shop()
    weak, middle, best = (one.customer() for _ in range(3))
    for k, card in enumerate((weak, middle, best), start=1):
        for j in range(k):
            one.buy(card, at=T0 - (100 // k + j) * DAY)
    heavy = [two.customer() for _ in range(2)]
    weak_elsewhere = make_card(two.program, phone=db_session.get(Customer, weak.customer_id).phone)
    assert weak_elsewhere.customer_id == weak.customer_id and weak_elsewhere.id != weak.id
    for card, newest, amount in ((heavy[0], T0 - DAY, "500"), (heavy[1], T0 - DAY, "500"),
                                 (weak_elsewhere, T0, "600")):
        for j in range(30):
            two.buy(card, at=newest - j * DAY, amount=amount)

    summary = one.recompute()

    assert [scores(db_session, card) for card in (weak, middle, best)] == [
        (2, 2, 2, "Hibernating"), (4, 4, 4, "Loyal Customers"), (5, 5, 5, "Champions")]
    assert [scores(db_session, card) for card in heavy] == [NONE, NONE]  # not programme 1's customers
    assert (summary.customers, summary.scored) == (3, 3)

    # Scores are per customer: recomputing programme 2 gives the shared customer programme 2's scores.
    two.recompute()
    assert scores(db_session, weak) == (5, 5, 5, "Champions")  # 3rd of 3: latest, F tie broken by recency
    assert scores(db_session, middle) == (4, 4, 4, "Loyal Customers")  # untouched


# ---------------------------------------------------------------- the nightly task


def test_the_nightly_task_recomputes_every_programme_and_skips_a_broken_one(
        db_session: Session, shop: Callable[..., Shop], caplog: pytest.LogCaptureFixture) -> None:
    from app.tasks.segments import recompute_rfm

    good = shop()
    broken = shop(rfm_mode="fixed", rfm_thresholds=None)
    card = good.customer()
    good.buy(card, at=datetime.now(UTC) - DAY)
    broken.buy(broken.customer(), at=datetime.now(UTC) - DAY)
    db_session.commit()  # a savepoint in the test's transaction: visible to the task's own sessions

    with caplog.at_level("INFO", logger="app.tasks.segments"):
        result = recompute_rfm()

    assert result["failed"] == [broken.program.id]
    assert result["programs"] >= 2 and result["changed"] >= 1
    db_session.expire_all()
    assert scores(db_session, card) == (5, 5, 5, "Champions")
    assert f"RFM recompute failed for programme {broken.program.id}" in caplog.text
    assert "Champions 1" in caplog.text
