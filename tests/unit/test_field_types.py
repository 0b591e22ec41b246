"""The patterns the API document states for decimal strings and text match exactly what the server accepts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app.field_types import EXACT, decimal_text, pattern

BOUNDS = [(1, 0, False), (1, 2, True), (5, 2, False), (50, 2, False), (100, 2, False), (100, 2, True),
          (101, 1, False), (1_000_000, 2, True), (1_000_000_000, 2, False), (2_000, 3, True)]


def _in_range(text: str, le: int, places: int, positive: bool) -> bool:
    if not re.fullmatch(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", text):
        return False
    value = Decimal(text)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return decimals <= places and (value > 0 if positive else value >= 0) and value <= le


numbers = st.one_of(
    st.decimals(min_value=-5, max_value=2_000_000_001, allow_nan=False, allow_infinity=False, places=3).map(str),
    st.integers(min_value=0, max_value=2_000_000_001).map(str),
    st.from_regex(r"\A[0-9]{1,11}(\.[0-9]{0,4})?\Z"),
    st.text(alphabet="0123456789.-+ e", max_size=12),
)


@pytest.mark.parametrize(("le", "places", "positive"), BOUNDS)
@settings(max_examples=400, deadline=None, database=None)
@given(text=numbers)
def test_the_pattern_matches_exactly_the_decimals_in_range(le: int, places: int, positive: bool, text: str) -> None:
    assert bool(re.fullmatch(pattern(le=le, places=places, positive=positive), text)) == _in_range(
        text, le, places, positive), text


@pytest.mark.parametrize(("le", "places", "positive"), BOUNDS)
def test_the_edges(le: int, places: int, positive: bool) -> None:
    regex = re.compile(pattern(le=le, places=places, positive=positive))
    edges = ["0", "0.0", str(le), f"{le}.{'0' * places}" if places else str(le), str(le + 1), str(le - 1),
             "00", "01", f"{le}.{'0' * (places - 1)}1" if places else f"{le}1", "", ".5", "5.", "-0", "1e2"]
    for text in edges:
        assert bool(regex.fullmatch(text)) == _in_range(text, le, places, positive), text


class Percent(BaseModel):
    value: decimal_text(le=50, places=2)  # type: ignore[valid-type]


def test_the_api_takes_only_the_exact_string_and_forms_are_lenient() -> None:
    exact = {EXACT: True}
    assert Percent.model_validate_json('{"value": "12.5"}', context=exact).value == Decimal("12.5")
    for bad in ('"12.505"', '""', '" 12"', '"51"', "12", "12.5", "true", '"1e1"'):
        with pytest.raises(ValidationError):
            Percent.model_validate_json(f'{{"value": {bad}}}', context=exact)
    assert Percent.model_validate({"value": " 12 "}).value == Decimal("12")
    assert Percent.model_validate({"value": 7}).value == Decimal("7")
    schema = Percent.model_json_schema()["properties"]["value"]
    assert schema["type"] == "string" and schema["pattern"] == pattern(le=50, places=2)
