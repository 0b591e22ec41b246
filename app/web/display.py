"""How the dashboard shows numbers and times: one helper each, registered as Jinja filters.

- ``{{ value|decimal }}``: a Decimal in plain digits, without trailing zeros and never in exponent form
  (``Decimal("1E+1")`` is "10", not "1E+1"; ``Decimal("10.50")`` is "10.5"); ``|decimal(2)`` for money.
- ``{{ when|local_time(program) }}``: an instant in the programme's time zone, as a ``<time>`` element whose
  ``datetime`` is the exact UTC instant, labelled with the zone's name ("2026-12-08 14:05 (Europe/Chisinau)");
  ``label=False`` where a column header or the page already names the zone.
- ``{{ when|local_date(program) }}``: the programme's local day of an instant.
- ``zone_name(program)``: the zone's name for headers and notes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from markupsafe import Markup

from app.local_time import zone_named

NOTHING = Markup('<span class="dash-muted">—</span>')


def plain_decimal(value: Decimal | int | float | str | None, places: int | None = None) -> str:
    """``value`` in fixed-point digits, never with an exponent; "" for None. With ``places`` (money: 2) exactly
    that many decimals, else no trailing zeros (a percentage: "10", "10.5")."""
    if value is None:
        return ""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        return str(number)
    if places is not None:
        text = f"{number:.{places}f}"
    else:
        text = f"{number:f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    return text[1:] if text.startswith("-") and not number else text


def zone_name(program: Any) -> str:
    """The name of the zone times are shown in for ``program`` (None: a page about no programme → UTC)."""
    return zone_named(getattr(program, "timezone", None)).key


def local_time(value: datetime | None, program: Any, *, label: bool = True, seconds: bool = False) -> Markup:
    """``value`` (an aware instant) on the programme's clock, in a ``<time>`` element; a dash for None."""
    if value is None:
        return NOTHING
    zone = zone_named(getattr(program, "timezone", None))
    shown = value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    suffix = f" ({zone.key})" if label else ""
    return Markup('<time datetime="{}">{}{}</time>').format(value.isoformat(), shown, suffix)


def local_date(value: datetime | None, program: Any) -> str:
    """The programme's local day of ``value`` (ISO), "—" for None."""
    if value is None:
        return "—"
    return value.astimezone(zone_named(getattr(program, "timezone", None))).date().isoformat()


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(decimal=plain_decimal, local_time=local_time, local_date=local_date)
    app.jinja_env.globals["zone_name"] = zone_name



