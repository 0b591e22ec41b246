"""The R×F → segment map (no database): all 25 combinations against the reference's table
(shared/reference/loyalty_platforms.md §3.2, copied here as its regular expressions on the "RF" string)."""

from __future__ import annotations

import re

import pytest

from app.segments.rfm import SEGMENT_NAMES, segment_name

# The reference's table, verbatim: segment, regex on the two-digit "RF" score.
REFERENCE = [
    ("Champions", r"5[4-5]"),
    ("Loyal Customers", r"[3-4][4-5]"),
    ("Potential Loyalists", r"[4-5][2-3]"),
    ("New Customers", r"51"),
    ("Promising", r"41"),
    ("Need Attention", r"33"),
    ("About to Sleep", r"3[1-2]"),
    ("At Risk", r"[1-2][3-4]"),
    ("Can't Lose Them", r"[1-2]5"),
    ("Hibernating", r"[1-2][1-2]"),
]

# The same map drawn as a grid, R down (5 at the top), F across (1..5): the reader's check.
GRID = {
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
}

ALL_RF = [(r, f) for r in range(1, 6) for f in range(1, 6)]


def test_the_ten_names_in_the_reference_order() -> None:
    assert tuple(name for name, _ in REFERENCE) == SEGMENT_NAMES
    assert len(set(SEGMENT_NAMES)) == 10
    assert all(len(name) <= 40 for name in SEGMENT_NAMES)  # Customer.rfm_segment is String(40)


@pytest.mark.parametrize(("r", "f"), ALL_RF, ids=[f"RF{r}{f}" for r, f in ALL_RF])
def test_each_combination_maps_as_in_the_reference(r: int, f: int) -> None:
    matches = [name for name, pattern in REFERENCE if re.fullmatch(pattern, f"{r}{f}")]
    assert len(matches) == 1, f"the reference table gives {matches} for RF {r}{f}"
    assert segment_name(r, f) == matches[0] == GRID[r][f - 1]


def test_every_name_is_reachable() -> None:
    assert {segment_name(r, f) for r, f in ALL_RF} == set(SEGMENT_NAMES)


@pytest.mark.parametrize(("r", "f"), [(0, 3), (6, 3), (3, 0), (3, 6), (None, 1), (1, None), ("5", "5"), (2.5, 1)])
def test_scores_outside_1_to_5_are_refused(r: object, f: object) -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        segment_name(r, f)  # type: ignore[arg-type]
