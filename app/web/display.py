"""How the dashboard shows numbers and times: one helper each, registered as Jinja filters.

- ``{{ value|decimal }}``: a Decimal in plain digits, without trailing zeros and never in exponent form
  (``Decimal("1E+1")`` is "10", not "1E+1"; ``Decimal("10.50")`` is "10.5"); ``|decimal(2)`` for money.
- ``{{ when|local_time(program) }}``: an instant in the programme's time zone, as a ``<time>`` element whose
  ``datetime`` is the exact UTC instant, labelled with the zone's name ("2026-12-08 14:05 (Europe/Chisinau)");
  ``label=False`` where a column header or the page already names the zone.
- ``{{ when|local_date(program) }}``: the programme's local day of an instant.
- ``zone_name(program)``: the zone's name for headers and notes.
- ``brand_palette(program)``: the customer pages' brand colours, with text colours that pass WCAG AA on them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from markupsafe import Markup

from app.contrast import AA_TEXT, contrast_ratio, readable
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


def zone_of(where: Any) -> ZoneInfo:
    """The zone of ``where``: a programme (its ``timezone``), a ZoneInfo, a zone's name, or None (UTC: a page about
    no one programme, such as the audit log)."""
    if isinstance(where, ZoneInfo):
        return where
    if isinstance(where, str):
        return zone_named(where)
    return zone_named(getattr(where, "timezone", None))


def zone_name(where: Any) -> str:
    """The name of the zone times are shown in for ``where`` (see ``zone_of``)."""
    return zone_of(where).key


def local_time(value: datetime | None, program: Any, *, label: bool = True, seconds: bool = False) -> Markup:
    """``value`` (an aware instant) on the programme's clock, in a ``<time>`` element; a dash for None."""
    if value is None:
        return NOTHING
    zone = zone_of(program)
    shown = value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    suffix = f" ({zone.key})" if label else ""
    return Markup('<time datetime="{}">{}{}</time>').format(value.isoformat(), shown, suffix)


def local_date(value: datetime | None, program: Any) -> str:
    """The programme's local day of ``value`` (ISO), "—" for None."""
    if value is None:
        return "—"
    return value.astimezone(zone_of(program)).date().isoformat()


def brand_palette(program: Any) -> dict[str, str]:
    """The customer pages' colours where the brand colour is a background (the header, the card, buttons): the
    text is the programme's text colour when it passes WCAG AA (4.5:1) on the brand colour, else black or white,
    whichever reads better; the accent (the tier) likewise, falling back to the text colour."""
    brand = program.background_color
    ink = readable(program.foreground_color, brand)
    accent = program.label_color if contrast_ratio(program.label_color, brand) >= AA_TEXT else ink
    return {"brand": brand, "ink": ink, "accent": accent}


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(decimal=plain_decimal, local_time=local_time, local_date=local_date)
    app.jinja_env.globals.update(zone_name=zone_name, brand_palette=brand_palette)



