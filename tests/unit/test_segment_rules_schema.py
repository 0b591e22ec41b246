"""The rule-segment tree: what it accepts, and the errors (JSON path + plain message) for what it does not.

No database: parsing and compiling to SQL text only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import CompileError

from app.errors import FieldError, InvalidInput
from app.segments import rules
from app.segments.rules import AllOf, AnyOf, Condition, NotOf, compile_rules, parse_rules

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def errors_of(tree: Any, **kw: Any) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        parse_rules(tree, **kw)
    assert caught.value.status == 422
    assert caught.value.errors
    return caught.value.errors


def only_error(tree: Any, **kw: Any) -> FieldError:
    found = errors_of(tree, **kw)
    assert len(found) == 1, found
    return found[0]


def cond(field: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value, **extra}


# ---------------------------------------------------------------- what is accepted


VALID = [
    cond("tier", "eq", "Gold"),
    cond("tier", "ne", "Gold"),
    cond("tier", "in", ["Silver", "Gold"]),
    cond("balance", "eq", 0),
    cond("balance", "ne", 10),
    cond("balance", "gt", 10),
    cond("balance", "gte", 10),
    cond("balance", "lt", 10),
    cond("balance", "lte", 10),
    cond("balance", "between", [10, 20]),
    cond("lifetime_spend", "gte", 100),
    cond("lifetime_spend", "gte", "99.90"),
    cond("window_spend", "between", [0, 49.5]),
    cond("visits", "gte", 3),
    cond("visits", "gte", 3, days=90),
    cond("spend", "gte", 100, days=30),
    cond("spend", "lt", 10),
    cond("days_since_last_purchase", "gt", 60),
    cond("days_since_last_purchase", "between", [30, 60]),
    cond("birthday_month", "eq", 12),
    cond("birthday_month", "in", [1, 2, 3]),
    cond("store", "in", [1, 4]),
    cond("store", "in", [1], days=30),
    cond("near_store", "within_km", 2.5),
    cond("near_store", "within_km", 3, stores=[1, 2]),
    cond("consent", "eq", "sms"),
    cond("reachable", "eq", "wallet"),
    cond("reachable", "eq", "email"),
    cond("tag", "has", "vip"),
    cond("tag", "not_has", "vip"),
    cond("rfm_segment", "eq", "Champions"),
    cond("rfm_segment", "in", ["At Risk", "Hibernating"]),
    cond("name", "contains", "ana"),
    cond("email", "contains", "@example.com"),
    cond("created_days_ago", "lt", 7),
    cond("created_days_ago", "gt", 365),
]


@pytest.mark.parametrize("tree", VALID, ids=lambda t: f"{t['field']}-{t['op']}")
def test_every_field_and_operator_is_accepted(tree: dict[str, Any]) -> None:
    node = parse_rules(tree)
    assert isinstance(node, Condition)
    assert (node.field, node.op) == (tree["field"], tree["op"])
    compile_rules(tree, program_id=1, now=NOW)  # builds the query without a database


def test_every_field_is_in_the_table_with_its_operators() -> None:
    assert set(rules.FIELDS) == {
        "tier", "balance", "lifetime_spend", "window_spend", "visits", "spend", "days_since_last_purchase",
        "birthday_month", "store", "near_store", "consent", "reachable", "tag", "rfm_segment", "name", "email",
        "created_days_ago",
    }
    assert {f for f, spec in rules.FIELDS.items() if spec.days} == {"visits", "spend", "store"}
    assert {f for f, spec in rules.FIELDS.items() if spec.stores} == {"near_store"}
    assert {v["field"] for v in VALID} == set(rules.FIELDS)
    assert set(rules._COMPILERS) == set(rules.FIELDS)


SAMPLES = {"tier": "Gold", "count": 3, "money": "10.50", "days": 30, "month": 6, "store": 2, "km": 1.5,
           "channel": "sms", "tag": "vip", "rfm": "Loyal", "text": "an"}
EVERY_PAIR = [(f, op) for f, spec in rules.FIELDS.items() for op in spec.ops]


@pytest.mark.parametrize(("field", "op"), EVERY_PAIR, ids=[f"{f}-{op}" for f, op in EVERY_PAIR])
def test_every_operator_of_every_field_compiles(field: str, op: str) -> None:
    sample = SAMPLES[rules.FIELDS[field].kind]
    value = [sample, sample] if op == "between" else [sample] if op == "in" else sample
    tree = {"not": cond(field, op, value)}
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        assert "customer.id" in str(compile_rules(tree, program_id=1, now=NOW).compile(dialect=dialect))


def test_values_are_normalised() -> None:
    assert parse_rules(cond("lifetime_spend", "gte", "99.90")).value == Decimal("99.90")  # type: ignore[union-attr]
    assert parse_rules(cond("spend", "gte", 49.5)).value == Decimal("49.5")  # type: ignore[union-attr]
    assert parse_rules(cond("balance", "between", [1, 5])).value == (1, 5)  # type: ignore[union-attr]
    assert parse_rules(cond("balance", "between", [5, 1])).value == (1, 5)  # type: ignore[union-attr]
    assert parse_rules(cond("balance", "eq", 3.0)).value == 3  # type: ignore[union-attr]
    assert parse_rules(cond("tier", "in", ["Gold", " Gold ", "Silver"])).value == ("Gold", "Silver")  # type: ignore[union-attr]
    near = parse_rules(cond("near_store", "within_km", 2, stores=[3, 1, 3]))
    assert isinstance(near, Condition) and near.value == 2.0 and near.stores == (3, 1)
    assert parse_rules(cond("visits", "gte", 1, days=None)).days is None  # type: ignore[union-attr]


def test_groups_nest() -> None:
    node = parse_rules({"all": [cond("tier", "eq", "Gold"),
                                {"any": [cond("tag", "has", "vip"), {"not": cond("balance", "lt", 5)}]}]})
    assert isinstance(node, AllOf)
    inner = node.all[1]
    assert isinstance(inner, AnyOf) and isinstance(inner.any[1], NotOf)
    assert isinstance(inner.any[1].not_, Condition)


def test_empty_groups_are_allowed() -> None:
    assert parse_rules({"all": []}) == AllOf(all=[])
    assert parse_rules({"any": []}) == AnyOf(any=[])


def test_a_parsed_tree_compiles_like_the_dict() -> None:
    tree = {"all": [cond("tier", "eq", "Gold"), cond("visits", "gte", 2, days=30)]}
    a = str(compile_rules(tree, program_id=1, now=NOW).compile(dialect=postgresql.dialect()))
    b = str(compile_rules(parse_rules(tree), program_id=1, now=NOW).compile(dialect=postgresql.dialect()))
    assert a == b


# ---------------------------------------------------------------- unknown fields and operators


def test_unknown_field_points_at_the_field_and_lists_the_choices() -> None:
    error = only_error({"all": [cond("tier", "eq", "Gold"), cond("tier", "eq", "Gold"), cond("colour", "eq", 1)]})
    assert error.field == "rules.all.2.field"
    assert '"colour" is not something rules can use' in error.message
    assert "tier, balance" in error.message


def test_a_field_that_is_not_text() -> None:
    error = only_error(cond(3, "eq", 1))  # type: ignore[arg-type]
    assert error.field == "rules.field" and "is not something rules can use" in error.message


def test_unknown_operator_names_the_allowed_ones() -> None:
    error = only_error({"any": [cond("tier", "gt", "Gold")]})
    assert error.field == "rules.any.0.op"
    assert error.message == '"gt" does not work with tier; use eq, ne or in'


def test_an_operator_of_another_field() -> None:
    error = only_error({"not": cond("balance", "contains", "5")})
    assert error.field == "rules.not.op"
    assert error.message == '"contains" does not work with balance; use eq, ne, gt, gte, lt, lte or between'


def test_no_cascade_of_errors_after_a_bad_field_or_operator() -> None:
    assert [e.field for e in errors_of(cond("nope", "nope", object()))] == ["rules.field"]
    assert [e.field for e in errors_of(cond("tier", "nope", 5))] == ["rules.op"]


# ---------------------------------------------------------------- values of the wrong type


BAD_VALUES = [
    (cond("tier", "eq", 5), "must be the name of a tier"),
    (cond("tier", "eq", "  "), "must be the name of a tier"),
    (cond("tier", "in", "Gold"), "must be a list of one or more values"),
    (cond("tier", "in", []), "must be a list of one or more values"),
    (cond("tier", "in", ["Gold", 7]), "item 2 must be the name of a tier"),
    (cond("balance", "gt", "ten"), "must be a whole number of 0 or more"),
    (cond("balance", "gt", True), "must be a whole number of 0 or more"),
    (cond("balance", "gt", 2.5), "must be a whole number of 0 or more"),
    (cond("balance", "gt", -1), "must be a whole number of 0 or more"),
    (cond("balance", "gt", None), "must be a whole number of 0 or more"),
    (cond("balance", "between", 5), "must be two values [from, to]"),
    (cond("balance", "between", [1, 2, 3]), "must be two values [from, to]"),
    (cond("balance", "between", [1, "x"]), "from and to must be a whole number"),
    (cond("lifetime_spend", "gte", "lots"), "must be an amount of money"),
    (cond("lifetime_spend", "gte", "NaN"), "must be an amount of money"),
    (cond("window_spend", "gte", -5), "must be an amount of money"),
    (cond("spend", "gte", [1]), "must be an amount of money"),
    (cond("visits", "gte", "3"), "must be a whole number of 0 or more"),
    (cond("days_since_last_purchase", "gt", 50_000), "must be a whole number of days from 0 to 36500"),
    (cond("created_days_ago", "lt", -1), "must be a whole number of days"),
    (cond("birthday_month", "eq", 13), "must be a month number from 1 (January) to 12 (December)"),
    (cond("birthday_month", "in", [1, 0]), "item 2 must be a month number"),
    (cond("store", "in", 3), "must be a list of one or more values, e.g. [1, 4]"),
    (cond("store", "in", [0]), "item 1 must be a store number"),
    (cond("near_store", "within_km", 0), "must be a distance in km, more than 0"),
    (cond("near_store", "within_km", "2"), "must be a distance in km"),
    (cond("near_store", "within_km", 30_000), "at most 20,000"),
    (cond("consent", "eq", "fax"), "must be one of sms, email, push, wallet"),
    (cond("reachable", "eq", "pigeon"), "must be one of sms, email, push, wallet"),
    (cond("tag", "has", ""), "must be a tag"),
    (cond("tag", "has", ["vip"]), "must be a tag"),
    (cond("rfm_segment", "eq", 1), "must be the name of an RFM segment"),
    (cond("name", "contains", ""), "must be the text to look for"),
    (cond("email", "contains", None), "must be the text to look for"),
]


@pytest.mark.parametrize(("tree", "message"), BAD_VALUES, ids=lambda v: str(v)[:60] if isinstance(v, dict) else "")
def test_a_value_of_the_wrong_type_points_at_the_value(tree: dict[str, Any], message: str) -> None:
    error = only_error({"all": [cond("tier", "eq", "Gold"), cond("tier", "eq", "Gold"), tree]})
    assert error.field == "rules.all.2.value"
    assert message in error.message


def test_too_long_in_list() -> None:
    error = only_error(cond("store", "in", list(range(1, 1002))))
    assert error.field == "rules.value" and "at most 1000" in error.message


def test_missing_value() -> None:
    error = only_error({"field": "tier", "op": "eq"})
    assert (error.field, error.message) == ("rules.value", "is required")


def test_an_empty_condition_names_each_missing_key() -> None:
    assert {(e.field, e.message) for e in errors_of({"all": [{}]})} == {
        ("rules.all.0.field", "is required"), ("rules.all.0.op", "is required"), ("rules.all.0.value", "is required"),
    }


# ---------------------------------------------------------------- days and stores


def test_days_only_for_visits_spend_and_store() -> None:
    error = only_error({"any": [cond("balance", "gt", 1, days=30)]})
    assert error.field == "rules.any.0.days"
    assert error.message == "only visits, spend and store take a number of days"


@pytest.mark.parametrize("days", [0, -3, "30", 1.5, True, 40_000])
def test_days_must_be_a_positive_whole_number(days: Any) -> None:
    error = only_error(cond("visits", "gte", 1, days=days))
    assert error.field == "rules.days" and "whole number of days from 1" in error.message


def test_stores_only_for_near_store() -> None:
    error = only_error(cond("store", "in", [1], stores=[1]))
    assert (error.field, error.message) == ("rules.stores", "only near_store takes a list of stores")


@pytest.mark.parametrize("stores", [[], "1", [1, "two"], [0]])
def test_stores_must_list_store_numbers(stores: Any) -> None:
    error = only_error(cond("near_store", "within_km", 2, stores=stores))
    assert error.field == "rules.stores"


# ---------------------------------------------------------------- the shape of the tree


def test_extra_key_in_a_condition() -> None:
    error = only_error({"all": [cond("tier", "eq", "Gold", colour="red")]})
    assert error.field == "rules.all.0.colour"
    assert error.message.startswith("is not part of a condition")


def test_a_group_with_two_kinds() -> None:
    error = only_error({"all": [], "any": []})
    assert error.field == "rules.any"
    assert 'a group holds exactly one of "all", "any" or "not"' in error.message


def test_a_group_mixed_with_a_condition() -> None:
    found = errors_of({"not": cond("tier", "eq", "Gold"), "field": "tier"})
    assert [e.field for e in found] == ["rules.field"]


@pytest.mark.parametrize("node", [5, "tier", None, [], [cond("tier", "eq", "G")]])
def test_a_node_that_is_not_an_object(node: Any) -> None:
    error = only_error({"all": [cond("tier", "eq", "Gold"), node]})
    assert error.field == "rules.all.1"
    assert error.message.startswith('must be a condition {"field", "op", "value"} or a group')


def test_the_root_must_be_an_object() -> None:
    error = only_error([cond("tier", "eq", "Gold")])
    assert error.field == "rules"


def test_all_and_any_take_lists() -> None:
    assert only_error({"all": cond("tier", "eq", "G")}).field == "rules.all"
    error = only_error({"not": {"any": "x"}})
    assert (error.field, error.message) == ("rules.not.any", "must be a list of conditions or groups")


def test_not_takes_one_node() -> None:
    error = only_error({"not": [cond("tier", "eq", "Gold")]})
    assert error.field == "rules.not"


def test_several_errors_are_reported_together() -> None:
    found = errors_of({"all": [cond("tier", "eq", 1), {"any": [cond("x", "eq", 1)]},
                               {"not": cond("balance", "gt", "a")}]})
    assert [e.field for e in found] == ["rules.all.0.value", "rules.all.1.any.0.field", "rules.all.2.not.value"]


def test_the_path_prefix_can_change() -> None:
    assert only_error(cond("x", "eq", 1), path="definition").field == "definition.field"
    assert only_error(cond("x", "eq", 1), path="").field == "field"


def test_the_error_reads_as_a_problem_document() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules({"all": [cond("balance", "gt", "x")]})
    problem = caught.value.problem()
    assert problem["status"] == 422
    assert problem["errors"] == [
        {"field": "rules.all.0.value", "message": "must be a whole number of 0 or more, e.g. 3"}]
    assert "rules.all.0.value" in problem["detail"]


# ---------------------------------------------------------------- limits


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = cond("tag", "has", "vip")
    for i in range(depth - 1):
        node = {"not": node} if i % 2 else {"all": [node]}
    return node


def test_eight_levels_are_allowed() -> None:
    parse_rules(nested(8))


def test_nine_levels_are_too_deep_and_the_path_says_where() -> None:
    error = only_error(nested(9))
    assert error.field == "rules.not.all.0.not.all.0.not.all.0.not.all.0"  # the 9th node: the condition
    assert error.message == "groups are nested too deeply; use at most 8 levels"


def test_a_hostile_depth_does_not_blow_the_stack() -> None:
    error = only_error(nested(50_000))
    assert "nested too deeply" in error.message


def test_a_hundred_conditions_are_allowed_not_more() -> None:
    parse_rules({"any": [cond("tag", "has", f"t{i}") for i in range(100)]})
    error = only_error({"any": [cond("tag", "has", f"t{i}") for i in range(101)]})
    assert error.field == "rules"
    assert "more than 100 conditions" in error.message


def test_conditions_are_counted_across_groups() -> None:
    half = [cond("tag", "has", "x")] * 51
    error = only_error({"all": [{"any": half}, {"not": {"all": half}}]})
    assert "more than 100 conditions" in error.message


def test_a_flood_of_junk_counts_as_conditions() -> None:
    error = only_error({"all": [1] * 10_000})
    assert "more than 100 conditions" in error.message


def test_too_many_groups() -> None:
    error = only_error({"all": [{"any": []}] * 101})
    assert error.field == "rules" and "more than 100 groups" in error.message


# ---------------------------------------------------------------- compiling (no database)


def test_compile_rules_validates() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_rules({"field": "tier", "op": "gt", "value": "Gold"}, program_id=1, now=NOW)
    assert caught.value.errors[0].field == "rules.op"


def test_compile_rules_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        compile_rules({"all": []}, program_id=1, now=datetime(2026, 1, 1))  # noqa: DTZ001


def test_tags_compile_per_database_and_refuse_others() -> None:
    query = compile_rules(cond("tag", "has", "vip"), program_id=1, now=NOW)
    assert "json_array_elements_text" in str(query.compile(dialect=postgresql.dialect()))
    assert "json_each" in str(query.compile(dialect=sqlite.dialect()))
    with pytest.raises(CompileError):
        query.compile(dialect=mysql.dialect())


def test_the_query_is_one_statement_of_customer_ids() -> None:
    tree = {"all": [cond("visits", "gte", 3, days=90), cond("near_store", "within_km", 2.5),
                    cond("reachable", "eq", "sms"), {"not": cond("tag", "has", "vip")}]}
    query = compile_rules(tree, program_id=7, now=NOW, sms_sender="+15550001")
    sql = str(query.compile(dialect=postgresql.dialect()))
    assert sql.startswith("SELECT DISTINCT customer.id")
    assert "acos(" in sql and "radians(" in sql
    assert "count(purchase.id)" in sql and "EXISTS" in sql
    assert [c.name for c in query.selected_columns] == ["id"]
