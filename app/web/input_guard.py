"""Malformed input is refused at the edge with 400, before any view, service or query sees it.

Two kinds of character data break code far from where they arrive, whatever the field: a NUL character
(PostgreSQL text cannot hold one, so the query fails) and a number of more than 4,300 digits (Python refuses
to convert it, ``int()`` raises ``ValueError``). One check here, on every request, covers every field of
every page and API instead of one patch per field:

- the path, the query string and every header value, before the view runs;
- form fields and the names of uploaded files, when the form is parsed (after the view has set its own
  body limit, e.g. for an import);
- text bodies (``text/csv`` …) when they are read: no NUL byte;
- JSON, wherever it is read: :func:`app.web.bodies.loads` (``request.get_json()`` uses it too).

Query strings and forms are decoded by werkzeug, which replaces bytes that are not UTF-8 (lone surrogates
among them) rather than producing strings that cannot be encoded again.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import Any

from flask import Flask, request
from flask import Request as FlaskRequest

from app.errors import BadRequest, FieldError
from app.web.bodies import loads

MAX_DIGITS = sys.get_int_max_str_digits() or 4300  # Python's limit for int(str); 0 means unlimited
DIGIT = re.compile(r"\d")  # any digit int() reads, not only 0-9


def problem(value: str) -> str | None:
    """Why ``value`` is malformed input, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if len(value) > MAX_DIGITS and len(DIGIT.findall(value)) > MAX_DIGITS:
        return f"must not hold more than {MAX_DIGITS} digits"
    return None


def refuse(where: str, pairs: Iterable[tuple[str, str]]) -> None:
    """:raise BadRequest: a name or a value of ``pairs`` (e.g. a form's fields) is malformed input."""
    for name, value in pairs:
        name_problem, value_problem = problem(name), problem(value)
        if name_problem is not None or value_problem is not None:
            field = where if name_problem is not None or not name else f"{where} {name}"
            why = name_problem or value_problem
            raise BadRequest(f"{field}: {why}", code="malformed-input", errors=[FieldError(field, str(why))])


class _StrictJSON:
    """What ``request.get_json()`` parses with: :func:`app.web.bodies.loads`, whose errors are ``ValueError``s
    that ``get_json`` turns into 400 (or ``None`` when ``silent``)."""

    loads = staticmethod(loads)
    dumps = staticmethod(json.dumps)


class GuardedRequest(FlaskRequest):
    """Flask's request, refusing malformed form fields and text bodies as they are read, and parsing JSON with
    the service's limits."""

    json_module = _StrictJSON

    def _load_form_data(self) -> None:
        super()._load_form_data()
        refuse("form field", self.form.items(multi=True))
        refuse("file name", ((name, upload.filename or "") for name, upload in self.files.items(multi=True)))

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any:
        data = super().get_data(cache=cache, as_text=as_text, parse_form_data=parse_form_data)  # type: ignore[call-overload]
        if self.mimetype.startswith("text/") and ("\x00" if as_text else b"\x00") in data:
            raise BadRequest("the body must not contain NUL characters", code="malformed-input",
                             errors=[FieldError("body", "must not contain NUL characters")])
        return data


def refuse_malformed_input() -> None:
    """Before every request: the path, the query string and the headers. :raise BadRequest: malformed."""
    refuse("path", [("", request.path)])
    refuse("query parameter", request.args.items(multi=True))
    refuse("header", request.headers.items())


def init_app(app: Flask) -> None:
    app.request_class = GuardedRequest
    app.before_request(refuse_malformed_input)
