"""Numbers as they come in from outside (JSON strings, form fields, query strings): the digits 0–9 only.

Python's ``Decimal`` and ``int``, and pydantic which relies on them, read every Unicode decimal digit: "١٢٣"
(Arabic-Indic), "１２３" (full width) and "१२३" (Devanagari) are all 123. An amount or a count of points is
keyed in at a till or in a form and then shown on receipts, in the dashboard and in the audit log, where such
digits would pass for something else; it is refused where it comes in, with a message saying why.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator

MESSAGE = 'write the number with the digits 0-9, e.g. "12.50"'


def ascii_digits(value: Any) -> Any:
    """A pydantic before-validator: refuse a string with any character outside ASCII."""
    if isinstance(value, str) and not value.isascii():
        raise ValueError(MESSAGE)
    return value


AsciiDecimal = Annotated[Decimal, BeforeValidator(ascii_digits)]
