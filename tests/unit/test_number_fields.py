"""Every number any input model reads (amounts, percentages, points, counts, ids) accepts the digits 0–9 and
refuses other Unicode digits: Python's ``Decimal`` (and pydantic's) reads "١٢٣" as 123 (app/numbers.py).

The models are found by walking the ``app`` package, so a field added anywhere later is covered by this test
without anyone listing it here; a numeric field for which none of ``ACCEPTED`` is valid fails the test until a
value it accepts is added there.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, RootModel, ValidationError

import app
from app.settings import Settings

ACCEPTED = ("1", "0", "10", "50", "0.50", "100", "2026")  # one of these is valid for each field
OTHER_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")  # Arabic-Indic
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _subclasses(cls: type) -> typing.Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# Entry points build an app from the environment when imported (and so configure logging for the whole test run):
# no input model lives there.
ENTRY_POINTS = {"app.celery_app"}


def input_models() -> list[type[BaseModel]]:
    for module in pkgutil.walk_packages(app.__path__, "app."):
        if module.name not in ENTRY_POINTS:
            importlib.import_module(module.name)
    found = {
        cls for cls in _subclasses(BaseModel)
        if cls.__module__.startswith("app.") and not cls.__name__.endswith("Out")
        and not issubclass(cls, RootModel | Settings) and cls.__name__ != "Problem"
    }
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


def _is_number(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_number(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_number(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation in (Decimal, int)


def numeric_fields() -> list[tuple[type[BaseModel], str]]:
    return [(model, name) for model in input_models() for name, field in model.model_fields.items()
            if _is_number(field.annotation)]


def _field_errors(model: type[BaseModel], key: str, value: str) -> list[dict[str, Any]]:
    try:
        model.model_validate({key: value}, context={"phone_region": "MD"})
    except ValidationError as error:
        return [e for e in error.errors() if e["loc"] and e["loc"][0] == key]
    return []


FIELDS = numeric_fields()


def test_the_walk_finds_the_amount_and_points_fields() -> None:
    names = {f"{model.__name__}.{name}" for model, name in FIELDS}
    assert {"PurchaseIn.amount", "RefundIn.amount", "AmountQuery.amount", "PurchaseIn.redeem_points",
            "ProgramSettings.max_purchase_amount", "ProgramSettings.point_value", "TierSpec.qualifying_spend",
            "AdjustIn.points", "AdjustForm.points", "BonusRuleSpec.points"} <= names


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=[f"{m.__module__}.{m.__name__}.{n}" for m, n in FIELDS])
def test_a_number_field_refuses_digits_other_than_0_to_9(model: type[BaseModel], name: str) -> None:
    key = model.model_fields[name].alias or name
    accepted = [value for value in ACCEPTED if not _field_errors(model, key, value)]
    if not accepted:
        # a strict field (JSON numbers only, e.g. redeem_points) refuses every string: nothing to spell
        kinds = {e["type"] for e in _field_errors(model, key, "1")}
        assert kinds <= {"int_type", "decimal_type"}, f"{model.__name__}.{name} accepts none of {ACCEPTED}: add one"
        return
    ascii_value = accepted[0]
    for table in (OTHER_DIGITS, FULL_WIDTH):
        spelled = ascii_value.translate(table)
        assert _field_errors(model, key, spelled), f"{model.__name__}.{name} accepted {spelled!r}"
