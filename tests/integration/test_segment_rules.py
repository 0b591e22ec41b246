"""Rule, RFM and static segments against the database: every field and operator returns exactly the
customers expected from hand-built rows (PostgreSQL in CI, SQLite otherwise).

The world: programme P with stores A, B (1 km north of A), C (10 km north of A) and D (no coordinates);
programme Q with store Z. In P: Ana, Ion, Maria and Dan, plus an anonymised customer and a voided card that
match everything else; Q's own customer, and Ion's card in Q with lots of recent purchases, must never count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput
from app.models import (
    AppleDevice,
    AppleRegistration,
    Card,
    Consent,
    GoogleObject,
    Purchase,
    Segment,
    SegmentMember,
    SmsOptOut,
    Tier,
    WebPushSubscription,
)
from app.segments import rules
from app.segments.rules import compile_rules, count, import_static, members

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KM_PER_DEGREE = rules.EARTH_RADIUS_KM * math.pi / 180  # along a meridian
LAT, LON = 47.0, 28.8
SENDER = "TALLY"


@dataclass
class World:
    session: Session
    program: Any
    other: Any
    stores: dict[str, Any]
    cards: dict[str, Card]
    receipts: Iterator[int]

    def id(self, *names: str) -> set[int]:
        return {self.cards[n].customer_id for n in names}

    def buy(self, name: str, store: str, amount: str, when: datetime, refunded: str = "0",
            card: Card | None = None) -> None:
        card = card or self.cards[name]
        self.session.add(Purchase(
            store_id=self.stores[store].id, receipt_id=f"r{next(self.receipts)}", card_id=card.id,
            amount=Decimal(amount), amount_due=Decimal(amount), refunded_amount=Decimal(refunded), occurred_at=when,
        ))
        self.session.flush()


@pytest.fixture
def world(db_session: Session, make_program: Callable[..., Any], make_store: Callable[..., Any],
          make_card: Callable[..., Any]) -> World:
    s = db_session
    p, q = make_program(), make_program()
    stores = {
        "A": make_store(p, "A", latitude=LAT, longitude=LON).store,
        "B": make_store(p, "B", latitude=LAT + 1 / KM_PER_DEGREE, longitude=LON).store,
        "C": make_store(p, "C", latitude=LAT + 10 / KM_PER_DEGREE, longitude=LON).store,
        "D": make_store(p, "D").store,
        "Z": make_store(q, "Z", latitude=LAT, longitude=LON).store,
    }
    tiers = {t.name: t for t in s.scalars(select(Tier).where(Tier.program_id == p.id))}
    joined = NOW - 30 * DAY
    all_consents = {"sms": True, "email": True, "push": True, "wallet": True}
    cards = {
        "ana": make_card(p, balance=500, phone="+37369100001", name="Ana Popescu", email="ana@example.com",
                         birthday=date(1990, 3, 10), consents=all_consents, home_store=stores["A"], now=joined),
        "ion": make_card(p, balance=120, phone="+37369100002", name="Ion Rusu", birthday=date(1985, 12, 1),
                         consents={"sms": True, "email": True, "wallet": True}, home_store=stores["C"], now=joined),
        "maria": make_card(p, phone="+37369100003", name="Maria Ionescu", email="MARIA@Example.org",
                           consents={"email": True, "sms": False, "wallet": True}, home_store=stores["B"], now=joined),
        "dan": make_card(p, balance=50, phone="+37369100004", name="Dan 100%", email="dan@shop.md",
                         birthday=date(2000, 7, 4), consents={"sms": False}, now=NOW - 400 * DAY),
        "gone": make_card(p, balance=999, phone="+37369100005", name="Gone Ana", email="gone@example.com",
                          birthday=date(1990, 3, 1), consents=all_consents, home_store=stores["A"], now=joined),
        "void": make_card(p, balance=999, phone="+37369100006", name="Void Ana", email="void@example.com",
                          birthday=date(1990, 3, 2), consents=all_consents, home_store=stores["A"], now=joined),
        "q_only": make_card(q, balance=999, phone="+37369100007", name="Q Ana", email="q@example.com",
                            birthday=date(1990, 3, 3), consents=all_consents, home_store=stores["Z"], now=joined),
    }
    cards["ion_in_q"] = make_card(q, phone="+37369100002", now=joined)
    w = World(s, p, q, stores, cards, iter(range(1, 10_000)))

    c = {name: card.customer for name, card in cards.items()}
    cards["ana"].tier_id, cards["ion"].tier_id, cards["dan"].tier_id = tiers["Gold"].id, tiers["Silver"].id, None
    cards["ana"].lifetime_spend, cards["ana"].window_spend = Decimal("6000"), Decimal("5500")
    cards["ion"].lifetime_spend, cards["ion"].window_spend = Decimal("1500"), Decimal("800")
    cards["dan"].lifetime_spend, cards["dan"].window_spend = Decimal("40"), Decimal("40")
    c["ana"].tags, c["ion"].tags, c["dan"].tags = ["vip", "coffee"], ["coffee"], ['a"b', "naïve"]
    c["ana"].rfm_segment, c["ion"].rfm_segment = "Champions", "At Risk"
    for broad in ("gone", "void", "q_only"):
        c[broad].tags, c[broad].rfm_segment = ["vip", "coffee"], "Champions"
        cards[broad].tier_id = None
    c["gone"].anonymized_at = NOW - DAY
    cards["void"].status = "voided"

    # Ana: 3 purchases in the last 30 days (one partly refunded), one 200 days ago; last 2 days 1 hour ago.
    w.buy("ana", "A", "100", NOW - 2 * DAY - timedelta(hours=1))
    w.buy("ana", "A", "50", NOW - 5 * DAY, refunded="20")
    w.buy("ana", "A", "30", NOW - 20 * DAY)
    w.buy("ana", "B", "200", NOW - 200 * DAY)
    # Ion: one purchase in P 100 days 3 hours ago; his card in Q buys every day at Z.
    w.buy("ion", "C", "80", NOW - 100 * DAY - timedelta(hours=3))
    for days in range(1, 6):
        w.buy("ion", "Z", "500", NOW - days * DAY, card=cards["ion_in_q"])
    # Maria never bought. Dan: exactly 10 days ago.
    w.buy("dan", "A", "40", NOW - 10 * DAY)
    for broad in ("gone", "void"):
        for days in range(1, 4):
            w.buy(broad, "A", "1000", NOW - days * DAY)
    for days in range(1, 4):
        w.buy("q_only", "Z", "1000", NOW - days * DAY)

    device = AppleDevice(library_id="dev-1", push_token="tok")
    s.add(device)
    s.flush()
    s.add_all([
        AppleRegistration(device_id=device.id, card_id=cards["ana"].id),
        AppleRegistration(device_id=device.id, card_id=cards["gone"].id),
        AppleRegistration(device_id=device.id, card_id=cards["void"].id),
        AppleRegistration(device_id=device.id, card_id=cards["q_only"].id),
        GoogleObject(card_id=cards["maria"].id, object_id="o.maria", inserted_at=NOW - DAY),
        GoogleObject(card_id=cards["ion"].id, object_id="o.ion", inserted_at=None),  # never confirmed
        WebPushSubscription(customer_id=c["ana"].id, endpoint="https://push.test/ana", p256dh="k", auth="a"),
        WebPushSubscription(customer_id=c["maria"].id, endpoint="https://push.test/maria", p256dh="k", auth="a"),
        WebPushSubscription(customer_id=c["q_only"].id, endpoint="https://push.test/q", p256dh="k", auth="a"),
        SmsOptOut(phone=c["ion"].phone, sender=SENDER),
    ])
    s.flush()
    return w


def ids(w: World, tree: Any, *, sender: str | None = SENDER, program: Any = None) -> set[int]:
    program_id = (program or w.program).id
    query = compile_rules(tree, program_id=program_id, now=NOW, sms_sender=sender)
    rules.prepare_session(w.session)
    found = list(w.session.scalars(query))
    assert len(found) == len(set(found)), "a customer appears twice"
    assert count(w.session, tree=tree, program_id=program_id, now=NOW, sms_sender=sender) == len(found)
    return set(found)


def c(field: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value, **extra}


EVERYONE = ("ana", "ion", "maria", "dan")


def check(w: World, tree: Any, *expected: str, **kw: Any) -> None:
    got = ids(w, tree, **kw)
    names = {w.cards[n].customer_id: n for n in EVERYONE + ("gone", "void", "q_only")}
    assert got == w.id(*expected), f"got {sorted(names.get(i, str(i)) for i in got)}"


# ---------------------------------------------------------------- who is ever in a segment


def test_empty_groups(world: World) -> None:
    check(world, {"all": []}, *EVERYONE)
    check(world, {"any": []})
    check(world, {"not": {"all": []}})
    check(world, {"not": {"any": []}}, *EVERYONE)


def test_anonymised_voided_and_other_programmes_never_match(world: World) -> None:
    check(world, c("balance", "gte", 0), *EVERYONE)
    check(world, c("tag", "has", "vip"), "ana")
    check(world, c("rfm_segment", "eq", "Champions"), "ana")
    check(world, c("visits", "gte", 1, days=7), "ana")
    check(world, {"not": c("tag", "has", "nothing")}, *EVERYONE)


def test_the_other_programme_sees_only_its_own(world: World) -> None:
    check(world, {"all": []}, "q_only", "ion", program=world.other)
    check(world, c("visits", "gte", 5, days=7), "ion", program=world.other)  # Ion's Q card, not his P card
    check(world, c("store", "in", [world.stores["Z"].id]), "q_only", "ion", program=world.other)
    check(world, c("near_store", "within_km", 0.5), "q_only", program=world.other)


# ---------------------------------------------------------------- card fields


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", "Gold", {"ana"}),
    ("ne", "Gold", {"ion", "maria", "dan"}),  # Dan has no tier: not Gold
    ("in", ["Silver", "Bronze"], {"ion", "maria"}),
    ("eq", "Platinum", set()),
])
def test_tier(world: World, op: str, value: Any, expected: set[str]) -> None:
    check(world, c("tier", op, value), *expected)


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", 120, {"ion"}),
    ("ne", 120, {"ana", "maria", "dan"}),
    ("gt", 50, {"ana", "ion"}),
    ("gte", 50, {"ana", "ion", "dan"}),
    ("lt", 50, {"maria"}),
    ("lte", 50, {"maria", "dan"}),
    ("between", [50, 120], {"ion", "dan"}),
])
def test_balance(world: World, op: str, value: Any, expected: set[str]) -> None:
    check(world, c("balance", op, value), *expected)


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("lifetime_spend", "gte", "1500", {"ana", "ion"}),
    ("lifetime_spend", "gt", 1500, {"ana"}),
    ("lifetime_spend", "eq", 40, {"dan"}),
    ("lifetime_spend", "lt", "40.01", {"maria", "dan"}),
    ("window_spend", "between", [40, 800], {"ion", "dan"}),
    ("window_spend", "ne", 0, {"ana", "ion", "dan"}),
    ("window_spend", "lte", 0, {"maria"}),
])
def test_lifetime_and_window_spend(world: World, field: str, op: str, value: Any, expected: set[str]) -> None:
    check(world, c(field, op, value), *expected)


# ---------------------------------------------------------------- purchases


@pytest.mark.parametrize(("op", "value", "days", "expected"), [
    ("gte", 1, None, {"ana", "ion", "dan"}),
    ("eq", 0, None, {"maria"}),
    ("eq", 4, None, {"ana"}),
    ("between", [1, 2], None, {"ion", "dan"}),
    ("gte", 3, 30, {"ana"}),
    ("gte", 1, 30, {"ana", "dan"}),
    ("lt", 1, 30, {"ion", "maria"}),
    ("eq", 1, 10, {"dan"}),  # exactly 10 days ago is inside a 10-day window
    ("eq", 0, 9, {"ion", "maria", "dan"}),
    ("ne", 0, 9, {"ana"}),
    ("gt", 2, 365, {"ana"}),
    ("lte", 1, 365, {"ion", "maria", "dan"}),
])
def test_visits(world: World, op: str, value: Any, days: int | None, expected: set[str]) -> None:
    check(world, c("visits", op, value, days=days), *expected)


@pytest.mark.parametrize(("op", "value", "days", "expected"), [
    ("eq", 160, 30, {"ana"}),  # 100 + (50 - 20 refunded) + 30
    ("gte", 100, 30, {"ana"}),
    ("eq", 0, 30, {"ion", "maria"}),
    ("gt", 300, None, {"ana"}),  # 360 in all
    ("eq", 360, None, {"ana"}),
    ("between", [40, 80], None, {"ion", "dan"}),
    ("lt", 50, 365, {"maria", "dan"}),
    ("lte", "29.99", 3, {"ion", "maria", "dan"}),
    ("gte", 100, 3, {"ana"}),
    ("ne", 0, None, {"ana", "ion", "dan"}),
])
def test_spend(world: World, op: str, value: Any, days: int | None, expected: set[str]) -> None:
    check(world, c("spend", op, value, days=days), *expected)


def test_spend_net_of_a_full_refund(world: World) -> None:
    world.buy("maria", "A", "70", NOW - DAY, refunded="70")
    check(world, c("spend", "eq", 0, days=30), "ion", "maria")
    check(world, c("visits", "eq", 1, days=30), "maria", "dan")  # her visit still counts


# Ana 2 days (+1 h), Dan exactly 10 days, Ion 100 days (+3 h) ago; Maria never bought.
@pytest.mark.parametrize(("op", "value", "expected"), [
    ("gte", 10, {"ion", "maria", "dan"}),
    ("gt", 10, {"ion", "maria"}),
    ("lt", 10, {"ana"}),
    ("lte", 10, {"ana", "dan"}),
    ("eq", 10, {"dan"}),
    ("ne", 10, {"ana", "ion", "maria"}),
    ("eq", 2, {"ana"}),
    ("eq", 3, set()),
    ("between", [2, 10], {"ana", "dan"}),
    ("between", [11, 1000], {"ion"}),
    ("between", [100, 100], {"ion"}),
    ("gte", 0, set(EVERYONE)),
    ("gt", 36_000, {"maria"}),
    ("lte", 36_000, {"ana", "ion", "dan"}),
])
def test_days_since_last_purchase(world: World, op: str, value: Any, expected: set[str]) -> None:
    check(world, c("days_since_last_purchase", op, value), *expected)


def test_days_since_last_purchase_uses_the_latest(world: World) -> None:
    world.buy("ion", "C", "5", NOW - 2 * DAY)  # after the 100-day-old one
    check(world, c("days_since_last_purchase", "eq", 2), "ana", "ion")


@pytest.mark.parametrize(("stores", "days", "expected"), [
    (["A"], None, {"ana", "dan"}),
    (["B"], None, {"ana"}),
    (["B"], 30, set()),
    (["A"], 5, {"ana"}),
    (["A"], 10, {"ana", "dan"}),
    (["C"], None, {"ion"}),
    (["B", "C"], 150, {"ion"}),
    (["D"], None, set()),
    (["Z"], None, set()),  # Ion bought at Z with his other programme's card
])
def test_store(world: World, stores: list[str], days: int | None, expected: set[str]) -> None:
    check(world, c("store", "in", [world.stores[s].id for s in stores], days=days), *expected)


# ---------------------------------------------------------------- customer fields


@pytest.mark.parametrize(("tree", "expected"), [
    (c("birthday_month", "eq", 3), {"ana"}),
    (c("birthday_month", "eq", 7), {"dan"}),
    (c("birthday_month", "in", [12, 1]), {"ion"}),
    (c("birthday_month", "in", [3, 7, 12]), {"ana", "ion", "dan"}),
    (c("birthday_month", "eq", 5), set()),
    ({"not": c("birthday_month", "eq", 3)}, {"ion", "maria", "dan"}),  # no birthday: not in March either
])
def test_birthday_month(world: World, tree: Any, expected: set[str]) -> None:
    check(world, tree, *expected)


# Homes: Ana at A, Maria at B (1 km from A), Ion at C (10 km from A, 9 km from B); Dan has none.
@pytest.mark.parametrize(("km", "stores", "expected"), [
    (2.5, ["A"], {"ana", "maria"}),
    (0.99, ["A"], {"ana"}),
    (1.01, ["A"], {"ana", "maria"}),
    (2.5, ["C"], {"ion"}),
    (8.5, ["B"], {"ana", "maria"}),
    (9.5, ["B"], {"ana", "ion", "maria"}),
    (9.99, ["A"], {"ana", "maria"}),
    (10.01, ["A"], {"ana", "ion", "maria"}),
    (0.5, ["D"], set()),  # a store without coordinates is nowhere
    (5, ["Z"], set()),  # another programme's store
    (0.5, None, {"ana", "ion", "maria"}),  # every home store is a store of the programme
])
def test_near_store(world: World, km: float, stores: list[str] | None, expected: set[str]) -> None:
    extra = {} if stores is None else {"stores": [world.stores[s].id for s in stores]}
    check(world, c("near_store", "within_km", km, **extra), *expected)


def test_near_store_with_a_home_store_far_from_every_store(world: World, make_store: Callable[..., Any]) -> None:
    far = make_store(world.program, "Far", latitude=LAT, longitude=LON + 1).store  # ~76 km east of A
    world.cards["dan"].customer.home_store_id = far.id
    world.session.flush()
    kilometres = rules.EARTH_RADIUS_KM * math.acos(
        math.sin(math.radians(LAT)) ** 2 + math.cos(math.radians(LAT)) ** 2 * math.cos(math.radians(1)))
    a = [world.stores["A"].id]
    check(world, c("near_store", "within_km", kilometres - 0.5, stores=a), "ana", "ion", "maria")
    check(world, c("near_store", "within_km", kilometres + 0.5, stores=a), "ana", "ion", "maria", "dan")


def test_near_store_without_sqlite_math_functions(world: World, monkeypatch: pytest.MonkeyPatch,
                                                  is_postgres: bool) -> None:
    """An SQLite built without math functions gets Python ones registered on the connection."""
    if is_postgres:
        pytest.skip("SQLite only")
    calls: list[str] = []
    original = dict(rules._MATH_FUNCTIONS)

    def counting(name: str) -> Callable[[float | None], float | None]:
        def call(x: float | None) -> float | None:
            calls.append(name)
            return original[name](x)
        return call

    monkeypatch.setattr(rules, "sqlite_has_math", lambda: False)
    for name in original:
        monkeypatch.setitem(rules._MATH_FUNCTIONS, name, counting(name))
    raw = world.session.connection().connection.driver_connection
    try:
        check(world, c("near_store", "within_km", 2.5, stores=[world.stores["A"].id]), "ana", "maria")
        assert {"acos", "sin", "cos", "radians"} <= set(calls)
    finally:
        for name, fn in original.items():
            raw.create_function(name, 1, fn, deterministic=True)


def test_sqlite_math_probe_matches_this_build(is_postgres: bool) -> None:
    import sqlite3
    rules.sqlite_has_math.cache_clear()
    if sqlite3.sqlite_version_info < (3, 35, 0):
        assert rules.sqlite_has_math() is False
    else:
        con = sqlite3.connect(":memory:")
        try:
            con.execute("SELECT acos(1.0)")
            expected = True
        except sqlite3.OperationalError:
            expected = False
        finally:
            con.close()
        assert rules.sqlite_has_math() is expected


@pytest.mark.parametrize(("channel", "expected"), [
    ("sms", {"ana", "ion"}),
    ("email", {"ana", "ion", "maria"}),
    ("push", {"ana"}),
    ("wallet", {"ana", "ion", "maria"}),
])
def test_consent(world: World, channel: str, expected: set[str]) -> None:
    check(world, c("consent", "eq", channel), *expected)


@pytest.mark.parametrize(("channel", "sender", "expected"), [
    ("sms", SENDER, {"ana"}),  # Ion told this sender STOP
    ("sms", "OTHER", {"ana", "ion"}),  # ... but not this one
    ("sms", None, {"ana"}),  # sender unknown: any STOP counts
    ("push", SENDER, {"ana"}),  # Maria has a subscription but no push consent
    ("wallet", SENDER, {"ana", "maria"}),  # Apple registration; Google object saved. Ion's was never inserted
    ("email", SENDER, {"ana", "maria"}),  # Ion agreed but has no address; Dan has one but did not agree
])
def test_reachable(world: World, channel: str, sender: str | None, expected: set[str]) -> None:
    check(world, c("reachable", "eq", channel), *expected, sender=sender)


def test_reachable_by_sms_needs_a_phone(world: World) -> None:
    world.cards["ana"].customer.phone = None
    world.session.flush()
    check(world, c("reachable", "eq", "sms"), "ion", sender="OTHER")


def test_a_withdrawn_consent_is_not_consent(world: World) -> None:
    consent = world.session.scalars(select(Consent).where(
        Consent.customer_id == world.cards["ana"].customer_id, Consent.channel == "push")).one()
    consent.granted = False
    world.session.flush()
    check(world, c("consent", "eq", "push"))
    check(world, c("reachable", "eq", "push"))


@pytest.mark.parametrize(("tree", "expected"), [
    (c("tag", "has", "vip"), {"ana"}),
    (c("tag", "has", "coffee"), {"ana", "ion"}),
    (c("tag", "not_has", "coffee"), {"maria", "dan"}),
    (c("tag", "has", "VIP"), set()),  # tags match exactly
    (c("tag", "has", "vi"), set()),
    (c("tag", "has", 'a"b'), {"dan"}),
    (c("tag", "has", "naïve"), {"dan"}),
    ({"not": c("tag", "not_has", "vip")}, {"ana"}),
])
def test_tag(world: World, tree: Any, expected: set[str]) -> None:
    check(world, tree, *expected)


@pytest.mark.parametrize(("tree", "expected"), [
    (c("rfm_segment", "eq", "Champions"), {"ana"}),
    (c("rfm_segment", "in", ["Champions", "At Risk"]), {"ana", "ion"}),
    ({"not": c("rfm_segment", "eq", "Champions")}, {"ion", "maria", "dan"}),  # no segment yet: not Champions
    ({"not": c("rfm_segment", "in", ["Champions", "At Risk"])}, {"maria", "dan"}),
])
def test_rfm_segment(world: World, tree: Any, expected: set[str]) -> None:
    check(world, tree, *expected)


@pytest.mark.parametrize(("tree", "expected"), [
    (c("name", "contains", "ion"), {"ion", "maria"}),  # Ion Rusu, Maria Ionescu
    (c("name", "contains", "POPESCU"), {"ana"}),
    (c("name", "contains", "0%"), {"dan"}),  # % is a character, not a wildcard
    (c("name", "contains", "%"), {"dan"}),
    (c("name", "contains", "_"), set()),
    (c("email", "contains", "EXAMPLE"), {"ana", "maria"}),
    (c("email", "contains", ".md"), {"dan"}),
    ({"not": c("email", "contains", "example")}, {"ion", "dan"}),  # Ion has no address at all
])
def test_name_and_email(world: World, tree: Any, expected: set[str]) -> None:
    check(world, tree, *expected)


# Ana, Ion and Maria joined exactly 30 days ago, Dan 400.
@pytest.mark.parametrize(("op", "value", "expected"), [
    ("gt", 100, {"dan"}),
    ("lt", 30, set()),
    ("lte", 30, {"ana", "ion", "maria"}),
    ("eq", 30, {"ana", "ion", "maria"}),
    ("ne", 30, {"dan"}),
    ("gte", 400, {"dan"}),
    ("gt", 400, set()),
    ("between", [31, 399], set()),
    ("between", [30, 400], set(EVERYONE)),
])
def test_created_days_ago(world: World, op: str, value: Any, expected: set[str]) -> None:
    check(world, c("created_days_ago", op, value), *expected)


# ---------------------------------------------------------------- nesting


def test_nested_groups(world: World) -> None:
    tree = {"all": [
        c("tier", "ne", "Gold"),  # ion, maria, dan
        {"any": [c("tag", "has", "coffee"), c("balance", "lt", 10)]},  # ana, ion | maria
        {"not": c("birthday_month", "eq", 7)},  # everyone but dan
    ]}
    check(world, tree, "ion", "maria")


def test_deeper_nesting(world: World) -> None:
    lapsed_regulars = {"all": [c("visits", "gte", 1), c("days_since_last_purchase", "gte", 7)]}  # ion, dan
    near_a = c("near_store", "within_km", 2, stores=[world.stores["A"].id])  # ana, maria
    tree = {"any": [
        {"all": [lapsed_regulars, {"not": c("reachable", "eq", "sms")}]},  # ion (opted out), dan (no consent)
        {"all": [near_a, {"not": {"any": [c("tag", "has", "vip"), c("consent", "eq", "push")]}}]},  # maria
    ]}
    check(world, tree, "ion", "maria", "dan")
    check(world, {"not": tree}, "ana")


def test_double_negation(world: World) -> None:
    check(world, {"not": {"not": c("tier", "eq", "Gold")}}, "ana")


def test_a_deep_but_allowed_tree(world: World) -> None:
    node: dict[str, Any] = c("tag", "has", "coffee")
    for _ in range(7):
        node = {"all": [node, c("balance", "gte", 0)]}
    check(world, node, "ana", "ion")


# ---------------------------------------------------------------- members and counts for every kind


def segment(w: World, kind: str, definition: dict[str, Any] | None = None, name: str | None = None) -> Segment:
    seg = Segment(program_id=w.program.id, name=name or f"{kind} segment", kind=kind, definition=definition or {})
    w.session.add(seg)
    w.session.flush()
    return seg


def member_ids(w: World, seg: Segment, sender: str | None = SENDER) -> set[int]:
    found = list(w.session.scalars(members(w.session, segment=seg, now=NOW, sms_sender=sender)))
    assert len(found) == len(set(found))
    assert count(w.session, segment=seg, now=NOW, sms_sender=sender) == len(found)
    return set(found)


def test_members_of_a_rules_segment(world: World) -> None:
    seg = segment(world, "rules", {"all": [c("tag", "has", "coffee"), c("reachable", "eq", "sms")]})
    assert member_ids(world, seg) == world.id("ana")
    assert member_ids(world, seg, sender="OTHER") == world.id("ana", "ion")


def test_a_stored_invalid_tree_raises(world: World) -> None:
    seg = segment(world, "rules", {"all": [c("tier", "gt", 1)]})
    with pytest.raises(InvalidInput) as caught:
        members(world.session, segment=seg, now=NOW)
    assert caught.value.errors[0].field == "rules.all.0.op"


def test_members_of_an_rfm_segment(world: World) -> None:
    seg = segment(world, "rfm", {"segments": ["Champions", "At Risk"]})
    assert member_ids(world, seg) == world.id("ana", "ion")  # not the anonymised, voided or Q Champions
    assert member_ids(world, segment(world, "rfm", {"segments": []}, name="none")) == set()
    with pytest.raises(InvalidInput) as caught:
        members(world.session, segment=segment(world, "rfm", {}, name="bad"), now=NOW)
    assert caught.value.errors[0].field == "definition.segments"


def test_members_of_a_static_segment_follow_the_card_and_anonymisation(world: World) -> None:
    seg = segment(world, "static")
    for name in ("ana", "maria", "gone", "void", "q_only"):
        world.session.add(SegmentMember(segment_id=seg.id, customer_id=world.cards[name].customer_id))
    world.session.flush()
    assert member_ids(world, seg) == world.id("ana", "maria")
    world.cards["maria"].status = "voided"
    world.session.flush()
    assert member_ids(world, seg) == world.id("ana")


def test_count_takes_a_segment_or_a_tree(world: World) -> None:
    with pytest.raises(TypeError):
        count(world.session, now=NOW)
    with pytest.raises(TypeError):
        count(world.session, tree={"all": []}, now=NOW)
    with pytest.raises(TypeError):
        count(world.session, segment=segment(world, "static"), tree={"all": []}, program_id=1, now=NOW)


def test_the_query_composes_inside_a_bigger_one(world: World) -> None:
    """Used as campaigns use it (a subquery next to ``card``), or straight in an IN clause."""
    seg = segment(world, "rules", {"all": [c("visits", "gte", 1), c("tier", "ne", "Gold")]})  # ion, dan
    query = members(world.session, segment=seg, now=NOW)
    sub = query.subquery()
    in_subquery = world.session.scalars(
        select(Card.id).where(Card.program_id == world.program.id, Card.customer_id.in_(select(sub.c[0]))))
    assert set(in_subquery) == {world.cards["ion"].id, world.cards["dan"].id}
    direct = world.session.scalars(select(Card.id).where(Card.customer_id.in_(query)))
    assert set(direct) == {world.cards["ion"].id, world.cards["dan"].id, world.cards["ion_in_q"].id}


# ---------------------------------------------------------------- static import


def imported(w: World, seg: Segment) -> set[int]:
    return set(w.session.scalars(select(SegmentMember.customer_id).where(SegmentMember.segment_id == seg.id)))


def test_import_phones_and_emails_in_various_formats(world: World) -> None:
    seg = segment(world, "static")
    csv_text = "\n".join([
        "Name,Phone,E-mail,Note",
        "Ana,+373 69 100 001,ANA@EXAMPLE.COM,both hers",
        "Ion,069100002,,national",
        "Maria,,maria@example.org,address in another case",
        "Dan,(069) 100-004,,punctuation",
        "Nobody,+37369999999,nobody@example.com,",
        "Gone,+37369100005,,anonymised",
        "Void,37369100006,,voided card; the + was lost",
        "Q,+37369100007,q@example.com,other programme",
        "Junk,hello,not-an-email@,",
        "Short,12,,",
        ",,,",
        "Ion again,+37369100002,,",
    ])
    result = import_static(world.session, segment=seg, csv_text=csv_text, region="MD")
    assert result.added == 4
    assert result.unmatched == ["+37369999999, nobody@example.com", "+37369100005", "37369100006",
                                "+37369100007, q@example.com"]
    assert result.invalid == ["hello, not-an-email@", "12"]
    assert imported(world, seg) == world.id("ana", "ion", "maria", "dan")
    assert member_ids(world, seg) == world.id("ana", "ion", "maria", "dan")

    again = import_static(world.session, segment=seg, csv_text=csv_text, region="MD")
    assert again.added == 0
    assert (again.unmatched, again.invalid) == (result.unmatched, result.invalid)
    assert member_ids(world, seg) == world.id("ana", "ion", "maria", "dan")


def test_import_one_value_per_line_without_a_header(world: World) -> None:
    seg = segment(world, "static")
    result = import_static(world.session, segment=seg, csv_text="+37369100001\r\nmaria@EXAMPLE.org\r\n\r\n"
                           "069100004\r\nwho?\r\n", region=None)
    assert result.added == 2
    assert result.invalid == ["069100004", "who?"]  # a national number needs a region
    assert result.unmatched == []
    assert member_ids(world, seg) == world.id("ana", "maria")


def test_import_adds_to_an_existing_list(world: World) -> None:
    seg = segment(world, "static")
    assert import_static(world.session, segment=seg, csv_text="phone\n+37369100001\n", region=None).added == 1
    result = import_static(world.session, segment=seg, csv_text="phone\n+37369100001\n+37369100002\n", region=None)
    assert result.added == 1
    assert member_ids(world, seg) == world.id("ana", "ion")


def test_import_semicolons_and_a_byte_order_mark(world: World) -> None:
    seg = segment(world, "static")
    result = import_static(world.session, segment=seg,
                           csv_text="\ufeffEmail;Phone\nana@example.com;\n;+37369100004\n", region=None)
    assert (result.added, result.unmatched, result.invalid) == (2, [], [])
    assert member_ids(world, seg) == world.id("ana", "dan")


def test_an_email_shared_by_two_customers_adds_both(world: World) -> None:
    world.cards["dan"].customer.email = "Ana@Example.com"
    world.session.flush()
    seg = segment(world, "static")
    assert import_static(world.session, segment=seg, csv_text="ana@example.com", region=None).added == 2
    assert member_ids(world, seg) == world.id("ana", "dan")


def test_import_only_into_a_static_segment(world: World) -> None:
    seg = segment(world, "rules", {"all": []})
    with pytest.raises(Conflict) as caught:  # the segment's kind, not the file, is in the way: 409
        import_static(world.session, segment=seg, csv_text="+37369100001", region=None)
    assert caught.value.errors[0].field == "kind"


def test_import_size_limits(world: World) -> None:
    seg = segment(world, "static")
    with pytest.raises(InvalidInput, match="5 MB") as caught:
        import_static(world.session, segment=seg, csv_text="x" * (5 * 1024 * 1024 + 1), region=None)
    assert caught.value.errors[0].field == "file"
    with pytest.raises(InvalidInput, match="200,000 lines"):
        import_static(world.session, segment=seg, csv_text="1\n" * 200_001, region=None)
    # Exactly at the limits is fine.
    result = import_static(world.session, segment=seg, csv_text="+37369100001\n" * 200_000, region=None)
    assert result.added == 1
