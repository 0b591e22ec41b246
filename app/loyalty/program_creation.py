"""Creating a programme from nothing (the CLI's ``program create``, ``POST /api/v1/programs`` and the dashboard's
"New programme" wizard): every field checked with a message per field, then the programme made, filled from a
template (``app.loyalty.program_templates``) when one is chosen, audited when an actor is given and announced
(``programs.saved``). Flushes; the caller commits."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache

import phonenumbers
from babel.core import get_global
from babel.numbers import get_territory_currencies
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import FieldError, InvalidInput
from app.loyalty import programs
from app.loyalty.program_templates import TEMPLATES, ProgramTemplate
from app.merchants import audit
from app.merchants.stores import timezone_problem
from app.models import BonusRule, Program, Tier, User
from app.models.program import CARD_KINDS

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
SLUG_RULE = "Use 1 to 64 lower-case letters, digits and hyphens, starting and ending with a letter or digit."
# Without a template: a points programme earns 5 % on one base tier, a stamp card gives a reward every 10 stamps.
BASE_TIER = ("Member", Decimal("0"), Decimal("5"))
DEFAULT_STAMPS = 10


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes legal tender somewhere today (Babel's CLDR data; withdrawn ones such as DEM are left out)."""
    found: set[str] = set()
    for territory in get_global("territory_currencies"):
        found.update(get_territory_currencies(territory))
    return frozenset(found)


def phone_regions() -> list[str]:
    """The regions whose local numbers phonenumbers can read (ISO 3166 alpha-2, e.g. MD, RO, US), sorted."""
    return sorted(phonenumbers.SUPPORTED_REGIONS)


def suggest_slug(name: str) -> str:
    """A slug from a name ("Café Luna" → "cafe-luna"); letters outside Latin are dropped, so it may be empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].strip("-")


@dataclass(frozen=True)
class NewProgram:
    """What a new programme needs; ``kind`` None takes the template's (or points)."""

    name: str
    slug: str
    currency: str
    timezone: str
    phone_region: str | None = None
    kind: str | None = None
    template: str | None = None


def check(session: Session, new: NewProgram) -> NewProgram:
    """The fields normalised (currency and region upper-case, kind filled in).

    :raise InvalidInput: with a message for every field that is wrong."""
    problems: list[FieldError] = []
    name = new.name.strip()
    if not name or len(name) > 120 or any(ord(c) < 32 for c in name):
        problems.append(FieldError("name", "Give the programme a name of 1 to 120 characters."))
    if not SLUG.fullmatch(new.slug):
        problems.append(FieldError("slug", SLUG_RULE))
    elif session.scalar(select(Program.id).where(func.lower(Program.slug) == new.slug)) is not None:
        problems.append(FieldError("slug", f"The slug “{new.slug}” is taken by another programme; choose another."))
    currency = new.currency.strip().upper()
    if currency not in currencies():
        problems.append(FieldError("currency", "Choose a currency by its ISO 4217 code, such as EUR, MDL or USD."))
    if (why := timezone_problem(new.timezone)) is not None:
        problems.append(FieldError("timezone", why))
    region = (new.phone_region or "").strip().upper() or None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(FieldError("phone_region", "Choose a country by its two-letter code, such as MD, RO or US; "
                                                   "or leave it empty to use the server's default."))
    template: ProgramTemplate | None = None
    if new.template is not None:
        template = TEMPLATES.get(new.template)
        if template is None:
            problems.append(FieldError("template", "Choose one of the templates: " + ", ".join(TEMPLATES) + "."))
    kind = new.kind
    if kind is not None and kind not in CARD_KINDS:
        problems.append(FieldError("kind", "Choose points or stamps."))
    elif template is not None and kind is not None and kind != template.kind:
        problems.append(FieldError("template", f"The template “{template.title}” makes a {template.kind} card; "
                                               f"choose a {kind} template, or the kind {template.kind}."))
    if problems:
        raise InvalidInput("the programme's details are not valid", errors=problems)
    return NewProgram(name=name, slug=new.slug, currency=currency, timezone=new.timezone, phone_region=region,
                      kind=kind or (template.kind if template else "points"), template=new.template)


def create_program(session: Session, *, name: str, slug: str, currency: str, timezone: str,
                   phone_region: str | None = None, kind: str | None = None, template: str | None = None,
                   actor: User | str | None = None, now: datetime | None = None) -> Program:
    """A new programme, its tiers and bonus rules, filled from ``template`` when given.

    :raise InvalidInput: a field is wrong (each one named in ``errors``); nothing is created then."""
    new = check(session, NewProgram(name=name, slug=slug, currency=currency, timezone=timezone,
                                    phone_region=phone_region, kind=kind, template=template))
    chosen = TEMPLATES[new.template] if new.template else None
    program = Program(slug=new.slug, name=new.name, kind=new.kind, currency=new.currency, timezone=new.timezone,
                      phone_region=new.phone_region)
    if chosen is not None:
        for column, value in {**chosen.settings, **chosen.design}.items():
            setattr(program, column, value)
    elif new.kind == "stamps":
        program.stamps_required = DEFAULT_STAMPS
        program.stamp_reward = "A free item"
    session.add(program)
    session.flush()
    tiers = chosen.tiers if chosen is not None else ()
    if chosen is None and new.kind == "points":
        session.add(Tier(program_id=program.id, name=BASE_TIER[0], qualifying_spend=BASE_TIER[1],
                         earn_percent=BASE_TIER[2]))
    for tier in tiers:
        session.add(Tier(program_id=program.id, name=tier.name, qualifying_spend=tier.qualifying_spend,
                         earn_percent=tier.earn_percent, perks=tier.perks))
    for rule in chosen.bonus_rules if chosen is not None else ():
        session.add(BonusRule(program_id=program.id, event_name=rule.event_name, points=rule.points,
                              limit_per_period=rule.limit_per_period, period=rule.period))
    session.flush()
    session.expire(program, ["tiers", "bonus_rules"])
    if actor is not None:
        audit.record(session, actor=actor, action="program.created", now=now or utcnow(),
                     target=f"program:{program.id}",
                     details={"slug": program.slug, "kind": program.kind, "currency": program.currency,
                              "template": new.template})
    programs.saved(session, program=program)
    return program
