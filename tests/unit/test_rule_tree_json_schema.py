"""The JSON Schema of a segment's rule tree (in the API document) accepts exactly the trees the server takes.

Trees are drawn at random from the fields rules know, with values of every JSON type (right and wrong), and
each is checked both ways: by the JSON Schema (``jsonschema_rs``, the validator schemathesis uses) and by
``parse_rules``. The size limits (depth, counts) are the exception the document states in words (x-rules)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import InvalidInput
from app.segments.rules import _SCALAR_SCHEMAS, FIELDS, json_schemas, parse_rules

SCHEMAS = json_schemas(lambda name: f"#/$defs/{name}")
VALIDATOR = jsonschema_rs.Draft202012Validator({"$ref": "#/$defs/RuleNode", "$defs": SCHEMAS})
OPS = sorted({op for spec in FIELDS.values() for op in spec.ops} | {"contains", "lt"})

JUNK = [None, True, False, "", "  ", "x\x00", "\u3000", "\ufeff", [], {}, 0.5, -1, "1e3", "049", " 5"]


def _edges(schema: dict[str, Any]) -> list[Any]:
    """Values at and just past the bounds of a scalar's schema, as the right and the wrong JSON types."""
    if "anyOf" in schema:
        return [edge for option in schema["anyOf"] for edge in _edges(option)]
    if "enum" in schema:
        return [*schema["enum"], "fax"]
    if schema["type"] == "string":
        longest = schema.get("maxLength", 10)
        return ["Gold", "a" * longest, "a" * (longest + 1), " Gold ", "12.50", "10000000000", "10000000000.01"]
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    edges = [low, high, low - 1, high + 1, (low + high) / 2, float(low), str(low)]
    return [*edges, *(e + 0.5 for e in edges if isinstance(e, int | float))]


def _values_of(field: str) -> st.SearchStrategy[Any]:
    spec = FIELDS.get(field)
    pool = _edges(_SCALAR_SCHEMAS[spec.kind]) if spec else []
    scalar = st.sampled_from(pool + JUNK)
    return st.one_of(scalar, st.lists(scalar, max_size=3))


@st.composite
def conditions(draw: Any) -> dict[str, Any]:
    field = draw(st.sampled_from([*FIELDS, "colour"]))
    ops = list(FIELDS[field].ops) if field in FIELDS else []
    op = draw(st.sampled_from(ops) if ops and draw(st.integers(0, 5)) else st.sampled_from(OPS))
    node: dict[str, Any] = {"field": field, "op": op, "value": draw(_values_of(field))}
    for extra, kind in (("days", "days"), ("stores", "store")):
        if draw(st.integers(0, 3)) == 0:
            node[extra] = draw(st.one_of(st.sampled_from(_edges(_SCALAR_SCHEMAS[kind]) + JUNK),
                                         st.lists(st.sampled_from(_edges(_SCALAR_SCHEMAS["store"])), max_size=2)))
    if draw(st.integers(0, 9)) == 0:
        node.pop(draw(st.sampled_from(["field", "op", "value"])))
    return node


trees = st.recursive(conditions(), lambda children: st.one_of(
    st.builds(lambda items: {"all": items}, st.lists(children, max_size=3)),
    st.builds(lambda items: {"any": items}, st.lists(children, max_size=3)),
    st.builds(lambda child: {"not": child}, children),
), max_leaves=6)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(tree=trees)
def test_the_schema_and_the_server_agree_on_every_tree(tree: dict[str, Any]) -> None:
    try:
        parse_rules(tree)
        server = True
    except InvalidInput:
        server = False
    assert VALIDATOR.is_valid(tree) == server, tree


def _agree(tree: Any) -> bool:
    try:
        parse_rules(tree)
        server = True
    except InvalidInput:
        server = False
    return VALIDATOR.is_valid(tree) == server


def test_every_field_operator_and_edge_value() -> None:
    """Every field with every operator and every edge value (alone, as [from, to] and as a list), and each
    optional key: the exhaustive part of the comparison."""
    disagree = []
    for field, spec in FIELDS.items():
        edges = _edges(_SCALAR_SCHEMAS[spec.kind]) + JUNK
        for op in [*spec.ops, "contains" if "contains" not in spec.ops else "eq"]:
            shapes = {"between": [[e, e] for e in edges] + [[edges[0], edges[1]], [edges[1], edges[0]]],
                      "in": [[e] for e in edges] + [[edges[0], edges[1]], [edges[0], edges[0]]]}
            wrong = [[edges[0], edges[0]], [edges[0]], [1, 2, 3], edges[0]]
            for value in [*(edges if op not in shapes else []), *shapes.get(op, []), *wrong]:
                condition = {"field": field, "op": op, "value": value}
                if not _agree(condition):
                    disagree.append(condition)
        for extra, kind in (("days", "days"), ("stores", "store")):
            for value in _edges(_SCALAR_SCHEMAS[kind]) + JUNK + [[1], [0], [1, 1]]:
                condition = {"field": field, "op": spec.ops[0], "value": _edges(_SCALAR_SCHEMAS[spec.kind])[0],
                             extra: value}
                if not _agree(condition):
                    disagree.append(condition)
    assert not disagree, disagree[:10]


def test_each_field_has_its_shapes() -> None:
    shapes = SCHEMAS["RuleCondition"]["oneOf"]
    assert {s["properties"]["field"]["const"] for s in shapes} == set(FIELDS)
    assert VALIDATOR.is_valid({"all": [{"field": "balance", "op": "between", "value": [50, 10]}]})
