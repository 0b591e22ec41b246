"""Pydantic field types whose JSON Schema says exactly what they accept: the API document is built from them
(``/api/v1/openapi.json``), and a client that follows it is never refused for a rule it could not read there.

Text
----
:func:`line` is one line of text that is not blank (a name); :func:`optional_line` may be empty; :func:`text`
may span lines (terms, message bodies). None holds a control character but tab and line breaks (in
:func:`text`), so never a NUL (PostgreSQL text holds none). The patterns name characters by code point:
ECMA 262 (the document's regular expressions), Python and Rust read them alike, while their classes for
"white space" differ.

Decimal strings
---------------
Decimal numbers written as text ("12.50"), the way amounts and percentages travel in JSON here: the pydantic
type, and a JSON Schema ``pattern`` that matches exactly the strings the type accepts, bounds included.

A JSON Schema cannot bound the number a string spells, and a JSON number is a binary float (``0.57`` is not a
multiple of ``0.01`` once parsed). So a document that says "a decimal string from 0 to 50 with at most two
decimals" needs the bounds written into the regular expression; :func:`pattern` builds it. No library builds
such patterns for decimal ranges, and the few lines here are checked against ``Decimal`` comparisons by a
property test (tests/unit/test_field_types.py).

Validated with the context ``{EXACT: True}`` (the JSON API), a value must be such a string, exactly;
otherwise (the dashboard's forms) surrounding spaces and numbers are also accepted.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, ValidationInfo, WithJsonSchema

from app.numbers import ascii_digits

EXACT = "exact"  # validation context key: values are taken exactly as sent (the JSON API), not as typed in a form

# ------------------------------------------------------------------------------------------------------ text

CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
CONTROL_BUT_LINES = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"  # tab, LF and CR allowed
# White space to Python (str.isspace, str.strip) or to ECMA 262, whichever is wider, control characters aside.
SPACE = " \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
LINE = f"^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$"
OPTIONAL_LINE = f"^[^{CONTROL}]*$"
TEXT = f"^[^{CONTROL_BUT_LINES}]*[^{CONTROL}{SPACE}][^{CONTROL_BUT_LINES}]*$"
OPTIONAL_TEXT = f"^[^{CONTROL_BUT_LINES}]*$"


def _text_type(max_length: int, pattern: str, *, lines: bool) -> Any:
    """A string type checked against ``pattern``, with messages a person can act on (a pattern's own message
    would quote the regular expression); the document shows the pattern."""
    compiled = re.compile(pattern)
    controls = re.compile(f"[{CONTROL_BUT_LINES if lines else CONTROL}]")

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            if controls.search(value):
                raise ValueError("may not contain control characters" + ("" if lines else " or line breaks"))
            raise ValueError("enter a value")
        return value

    schema = {"type": "string", "maxLength": max_length, "pattern": pattern}
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(check), WithJsonSchema(schema)]


def line(max_length: int) -> Any:
    """One line of text, not blank, at most ``max_length`` characters."""
    return _text_type(max_length, LINE, lines=False)


def optional_line(max_length: int) -> Any:
    """One line of text or nothing, at most ``max_length`` characters."""
    return _text_type(max_length, OPTIONAL_LINE, lines=False)


def text(max_length: int, *, optional: bool = False) -> Any:
    """Text that may span lines, at most ``max_length`` characters; not blank unless ``optional``."""
    return _text_type(max_length, OPTIONAL_TEXT if optional else TEXT, lines=True)


# ------------------------------------------------------------------------------------------------ web links

_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# https, a host name with at least one dot, an optional port, then a path, query or fragment without spaces or
# control characters. Nothing else: never javascript: or data:, never a user name before the host.
HTTPS_URL = f"^https://{_LABEL}(?:\\.{_LABEL})+(?::[0-9]{{1,5}})?(?:[/?#][^{CONTROL}{SPACE}]*)?$"


def https_url(max_length: int) -> Any:
    """An ``https://`` address of a web page, at most ``max_length`` characters."""
    compiled = re.compile(HTTPS_URL)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError("enter a web address that starts with https://, like https://example.com/privacy")
        return value

    schema = {"type": "string", "maxLength": max_length, "pattern": HTTPS_URL,
              "examples": ["https://example.com/privacy"]}
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(check), WithJsonSchema(schema)]


# ------------------------------------------------------------------------------------------- decimal strings


def _below(limit: int) -> str:
    """A regular expression for the integers 0 .. ``limit`` - 1, written without leading zeros."""
    if limit < 1:
        raise ValueError("the limit must be at least 1")
    text = str(limit)
    options = ["0"]
    if len(text) >= 2:  # fewer digits than the limit

        options.append(f"[1-9][0-9]{{0,{len(text) - 2}}}" if len(text) > 2 else "[1-9]")
    for i, digit in enumerate(text):  # as many digits: the limit's first i, then a smaller one, then any
        low = 1 if i == 0 else 0
        high = int(digit) - 1
        if high >= low:
            rest = len(text) - i - 1
            options.append(text[:i] + (f"[{low}-{high}]" if high > low else str(low))
                           + (f"[0-9]{{{rest}}}" if rest else ""))
    return "|".join(dict.fromkeys(options))


def pattern(*, le: int, places: int, positive: bool = False) -> str:
    """A regular expression (ECMA 262 and Python alike) matching the decimal strings from 0 (or, with
    ``positive``, from just above 0) to ``le`` with at most ``places`` decimals: ``12``, ``12.5``, ``0.05``."""
    if le < 1 or places < 0:
        raise ValueError("the upper bound must be a whole number of 1 or more, and places 0 or more")
    fraction = f"(?:\\.[0-9]{{1,{places}}})?" if places else ""
    zeros = f"(?:\\.0{{1,{places}}})?" if places else ""
    options = []
    below = _below(le)
    if positive:
        # 0 alone is out; 0.x is in when a decimal is not 0; 1 .. le-1 with any decimals.
        nonzero = [f"0{{{k}}}[1-9][0-9]{{0,{places - 1 - k}}}" if k else f"[1-9][0-9]{{0,{places - 1}}}"
                   for k in range(places)]
        if places:
            options.append(f"0\\.(?:{'|'.join(nonzero)})")
        whole = "|".join(part for part in below.split("|") if part != "0")
        if whole:
            options.append(f"(?:{whole}){fraction}")
    else:
        options.append(f"(?:{below}){fraction}")
    options.append(f"{le}{zeros}")
    return "^(?:" + "|".join(options) + ")$"


def decimal_text(*, le: int, places: int = 2, positive: bool = False, example: str = "12.50") -> Any:
    """The pydantic type of a decimal string from 0 (``positive``: more than 0) to ``le``, ``places`` decimals."""
    regex = pattern(le=le, places=places, positive=positive)
    compiled = re.compile(regex)
    low = "more than 0" if positive else "0"
    message = f'must be a decimal string from {low} to {le} with at most {places} decimals, e.g. "{example}"'

    def check(value: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get(EXACT):  # a form: pydantic reads the number and words its own messages
            return ascii_digits(value.strip()) if isinstance(value, str) else value  # (never "١٢٣")
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ValueError(message)
        return Decimal(value)

    bounds = {"gt": 0} if positive else {"ge": 0}
    return Annotated[Decimal, BeforeValidator(check), Field(le=le, decimal_places=places, **bounds),
                     WithJsonSchema({"type": "string", "pattern": regex, "examples": [example]})]
