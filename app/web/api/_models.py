"""What API models share: inputs refuse unknown fields and overlong strings; lists come wrapped; and the field
types whose JSON Schema says exactly what the server accepts (ids, days, instants, time zones).

Bodies are validated from the JSON text in pydantic's strict mode (``app.web.api.openapi``): a number is not a
string, ``false`` is not ``0``, a date is not a timestamp."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from app.demo import DEMO_SLUG
from app.loyalty.program_creation import currencies
from app.merchants.stores import timezones

MAX_ID = 2**31 - 1  # the database's integer ids
REF = "#/components/schemas/{model}"  # where the document keeps named schemas

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 (what JSON Schema's "date-time" format means): seconds and an offset are required.
INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
                     r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=5000)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _parsed(pattern: re.Pattern[str], parse: Any, what: str) -> Any:
    """Only text written as ``pattern``, read by ``parse`` (pydantic's own parsers also take timestamps)."""
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        try:
            return parse(value.upper())
        except ValueError as exc:
            raise ValueError(f"must be {what} ({exc})") from None

    return BeforeValidator(check)


def _zone(value: str) -> str:
    if value not in ZONES:
        raise ValueError("must be an IANA time zone name, e.g. Europe/Chisinau (see components/schemas/TimeZone)")
    return value


ZONES = frozenset(timezones())
# Enums too long to repeat at each use: the document lists each once under components/schemas and points there
# (``app.web.api.openapi`` swaps each ``{"x-listed-as": name}`` for a ``$ref``).
LISTED = {"TimeZone": {"type": "string", "enum": timezones(), "description": "An IANA time zone name."},
          "Currency": {"type": "string", "enum": sorted(currencies()),
                       "description": "An ISO 4217 currency code in use today (CLDR)."},
          "PhoneRegion": {"type": "string", "enum": sorted(phonenumbers.SUPPORTED_REGIONS),
                          "description": "A country whose phone numbers phonenumbers reads (ISO 3166 alpha-2)."}}

RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
ProgramSlug = Annotated[str, Field(max_length=64, description="The programme's slug.", examples=[DEMO_SLUG])]
Day = Annotated[date, _parsed(DAY, date.fromisoformat, "a date written YYYY-MM-DD"),
                WithJsonSchema({"type": "string", "format": "date"})]
Instant = Annotated[datetime, _parsed(INSTANT, datetime.fromisoformat,
                                      "a date and time with seconds and an offset, e.g. 2026-05-01T09:00:00+03:00"),
                    WithJsonSchema({"type": "string", "format": "date-time"})]
def _currency(value: str) -> str:
    if value not in currencies():
        raise ValueError("must be an ISO 4217 currency code in use, e.g. EUR (see components/schemas/Currency)")
    return value


Currency = Annotated[str, Field(max_length=3), AfterValidator(_currency),
                     WithJsonSchema({"type": "string", "x-listed-as": "Currency"})]
TimeZoneName = Annotated[str, AfterValidator(_zone), WithJsonSchema({"type": "string", "x-listed-as": "TimeZone"})]
