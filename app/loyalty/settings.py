"""Changing a programme's settings: earn and redeem rules, bonuses, terms, the card's design, its tiers and
its bonus rules. The input models here are shared by the dashboard's forms and the JSON API; the
services take validated values, flush, write the audit log and announce the change (``programs.saved``)
so Google's class follows. They never commit.

A change to what the pass shows (names, terms, colours, tiers) also needs every pass re-sent: the caller
starts a re-sync job (:func:`start_resync`) once the change is committed.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.contrast import UNREADABLE, contrast_ratio, ratio_text
from app.errors import Conflict, FieldError, InvalidInput
from app.field_types import EXACT, decimal_text, https_url, line, optional_line, text
from app.loyalty import programs
from app.merchants import audit
from app.models import BonusRule, Card, Job, Program, Tier, User
from app.models.program import MAX_MONEY

RESYNC = "design-resync"
# Fields a pass or Google class shows: changing one re-sends every pass.
PASS_FIELDS = frozenset({"name", "terms", "logo_text", "background_color", "foreground_color", "label_color"})
COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
Colour = Annotated[str, Field(max_length=20, description="A colour as #RRGGBB.",
                              json_schema_extra={"pattern": "^#[0-9A-Fa-f]{6}$"})]
Points = Annotated[int, Field(ge=0, le=1_000_000)]


def _region(value: str) -> str:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("choose a country by its two-letter code, such as MD, RO or US")
    return value


# The document lists the codes once, under components/schemas/PhoneRegion (app.web.api._models.LISTED).
PhoneRegion = Annotated[str, Field(max_length=2), AfterValidator(_region),
                        WithJsonSchema({"type": "string", "x-listed-as": "PhoneRegion"})]


class Spec(BaseModel):
    """Strings are matched as sent when validated with the context ``{EXACT: True}`` (the JSON API, whose document
    states exactly what it takes), then stripped; a form is stripped first."""

    model_config = ConfigDict(extra="forbid", str_max_length=5000)

    @model_validator(mode="before")
    @classmethod
    def _strip_form(cls, data: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get(EXACT) and isinstance(data, dict):
            return {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}
        return data

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str):
            if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
                raise ValueError("may not contain control characters")
            return value.strip()
        return value


class ProgramSettings(Spec):
    """Earn and redeem rules, bonuses and terms. Every field is optional: only the ones given change. A field
    typed without None may be left out, not set to null (its default None is never validated)."""

    name: line(120) = None  # type: ignore[valid-type]
    point_value: decimal_text(le=1_000_000, positive=True, example="1.00") = Field(  # type: ignore[valid-type]
        default=None, description="Money value of one point.")
    redeem_cap_percent: decimal_text(le=100, example="50") = Field(  # type: ignore[valid-type]
        default=None, description="At most this share of a purchase may be paid in points.")
    max_purchase_amount: decimal_text(le=int(MAX_MONEY), positive=True, example="100000") = Field(  # type: ignore[valid-type]
        default=None,
        description="The largest purchase amount accepted, in the programme's currency: a purchase over it is "
                    "refused (422 amount-over-limit), and so are refunds over it (unless their purchase was "
                    "larger) and the till's question how many points may pay for an amount over it.")
    tier_window_days: int = Field(default=None, ge=1, le=3650,
                                            description="Days of spending that count towards a tier.")
    expiry_days: int | None = Field(default=None, ge=1, le=3650,
                                    description="Days after which points expire; null: never.")
    welcome_bonus: Points = None
    birthday_bonus: Points = None
    referrer_bonus: Points = None
    referred_bonus: Points = None
    terms: text(5000, optional=True) = None  # type: ignore[valid-type]
    privacy_policy_url: https_url(500) | None = Field(  # type: ignore[valid-type]
        default=None, description="The programme's privacy policy (https), linked from the sign-up and card "
                                  "pages; null: no link.")
    phone_region: PhoneRegion | None = Field(
        default=None, description="The country whose local phone numbers (069 123 457) the programme's pages and "
                                  "APIs read, as its two-letter code (MD, RO, US…); null: the server's default.")

    @field_validator("phone_region", mode="before")
    @classmethod
    def _region_in_capitals(cls, value: Any, info: ValidationInfo) -> Any:
        """A form may type "md"; the JSON API takes the codes exactly as its document lists them."""
        if isinstance(value, str) and not (info.context or {}).get(EXACT):
            return value.strip().upper() or None
        return value

    @field_validator("name", "point_value", "redeem_cap_percent", "max_purchase_amount", "tier_window_days",
                     "welcome_bonus", "birthday_bonus", "referrer_bonus", "referred_bonus", "terms", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("enter a value")
        return value


class DesignSettings(Spec):
    """The card's colours and the text beside its logo. Every field is optional: only the ones given change."""

    background_color: Colour = None
    foreground_color: Colour = None
    label_color: Colour = None
    logo_text: optional_line(60) | None = Field(default=None,  # type: ignore[valid-type]
                                                description="Beside the logo; empty or null: the name.")

    @field_validator("background_color", "foreground_color", "label_color", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("enter a value")
        return value

    @field_validator("background_color", "foreground_color", "label_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not COLOUR.fullmatch(value):
            raise ValueError("use a colour written as # and six hex digits, like #1F2937")
        return value.upper()


class TierSpec(Spec):
    name: line(60)  # type: ignore[valid-type]
    qualifying_spend: decimal_text(le=1_000_000_000, example="1000") = Field(  # type: ignore[valid-type]
        description="Spend over the tier window that qualifies.")
    earn_percent: decimal_text(le=100, example="5") = Field(  # type: ignore[valid-type]
        description="Share of the paid amount earned.")
    perks: text(1000, optional=True) = ""  # type: ignore[valid-type]


class BonusRuleSpec(Spec):
    event_name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                            description="The event the POS posts, e.g. review or check-in.")
    points: Points
    limit_per_period: int | None = Field(default=None, ge=1, le=1000, description="null: unlimited.")
    period: Literal["day", "week", "month", "year", "lifetime"] = "day"



def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _apply(target: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set ``values`` on ``target``; ``{field: [old, new]}`` of what really changed."""
    changed: dict[str, list[Any]] = {}
    for name, new in values.items():
        old = getattr(target, name)
        if old != new:
            changed[name] = [_plain(old), _plain(new)]
            setattr(target, name, new)
    return changed


def _check_contrast(foreground: str, background: str) -> None:
    """:raise InvalidInput: the pass's text colour so close to its background that nothing on the pass can be
    read (below 3:1, the AA minimum even for large text). Between 3:1 and 4.5:1 the designer only warns: the
    balance is large, and a merchant may knowingly keep their brand's colours."""
    ratio = contrast_ratio(foreground, background)
    if ratio < UNREADABLE:
        message = (f"The text colour and the background are too alike ({ratio_text(ratio)}): nothing on the pass "
                   f"could be read. Choose colours with at least 3:1 between them; 4.5:1 or more reads well.")
        raise InvalidInput(message, errors=[FieldError("foreground_color", message)])


def update_program(session: Session, *, program: Program, settings: ProgramSettings | DesignSettings,
                   actor: User | str, now: datetime) -> dict[str, list[Any]]:
    """Apply the fields given in ``settings``; ``{field: [old, new]}`` of what changed (audited)."""
    values = {name: getattr(settings, name) for name in settings.model_fields_set}
    if {"background_color", "foreground_color"} & set(values):
        _check_contrast(values.get("foreground_color") or program.foreground_color,
                        values.get("background_color") or program.background_color)
    if "logo_text" in values:
        values["logo_text"] = values["logo_text"] or None
    if "terms" in values:
        values["terms"] = values["terms"] or ""
    changed = _apply(program, values)
    if changed:
        session.flush()
        audit.record(session, actor=actor, action="program.updated", now=now, target=f"program:{program.id}",
                     details={"changed": {k: (["(long text)"] * 2 if k == "terms" else v) for k, v in changed.items()}})
        programs.saved(session, program=program)
    return changed


# ------------------------------------------------------------------------------------------------- tiers


def _tier_name_taken(session: Session, program: Program, name: str, but: int | None = None) -> None:
    stmt = select(Tier.id).where(Tier.program_id == program.id, func.lower(Tier.name) == name.lower())
    if but is not None:
        stmt = stmt.where(Tier.id != but)
    if session.scalar(stmt) is not None:
        raise InvalidInput(f"there is already a tier named {name!r}",
                           errors=[FieldError("name", f"There is already a tier named “{name}”.")])


def add_tier(session: Session, *, program: Program, spec: TierSpec, actor: User | str, now: datetime) -> Tier:
    _tier_name_taken(session, program, spec.name)
    tier = Tier(program_id=program.id, **spec.model_dump())
    session.add(tier)
    session.flush()
    session.expire(program, ["tiers"])
    audit.record(session, actor=actor, action="tier.created", now=now, target=f"tier:{tier.id}",
                 details={"program_id": program.id, **{k: _plain(v) for k, v in spec.model_dump().items()}})
    programs.saved(session, program=program)
    return tier


def update_tier(session: Session, *, tier: Tier, spec: TierSpec, actor: User | str, now: datetime
                ) -> dict[str, list[Any]]:
    _tier_name_taken(session, tier.program, spec.name, but=tier.id)
    changed = _apply(tier, spec.model_dump())
    if changed:
        session.flush()
        audit.record(session, actor=actor, action="tier.updated", now=now, target=f"tier:{tier.id}",
                     details={"program_id": tier.program_id, "changed": changed})
        programs.saved(session, program=tier.program)
    return changed


def remove_tier(session: Session, *, tier: Tier, actor: User | str, now: datetime) -> None:
    """:raise Conflict: cards are on this tier (move them first by changing the thresholds)."""
    members = session.scalar(select(func.count()).select_from(Card).where(Card.tier_id == tier.id)) or 0
    if members:
        raise Conflict(f"{members} card(s) are on the tier {tier.name!r}; a tier with members cannot be "
                       "removed. Change its thresholds instead, or wait until nobody is on it.",
                       code="tier-has-members")
    program, details = tier.program, {"program_id": tier.program_id, "name": tier.name}
    session.delete(tier)
    session.flush()
    session.expire(program, ["tiers"])
    audit.record(session, actor=actor, action="tier.removed", now=now, target=f"tier:{tier.id}", details=details)
    programs.saved(session, program=program)


# ------------------------------------------------------------------------------------------- bonus rules


def _event_taken(session: Session, program: Program, event_name: str, but: int | None = None) -> None:
    stmt = select(BonusRule.id).where(BonusRule.program_id == program.id, BonusRule.event_name == event_name)
    if but is not None:
        stmt = stmt.where(BonusRule.id != but)
    if session.scalar(stmt) is not None:
        raise InvalidInput(f"there is already a rule for {event_name!r}",
                           errors=[FieldError("event_name", f"There is already a rule for “{event_name}”.")])


def add_bonus_rule(session: Session, *, program: Program, spec: BonusRuleSpec, actor: User | str,
                   now: datetime) -> BonusRule:
    _event_taken(session, program, spec.event_name)
    rule = BonusRule(program_id=program.id, **spec.model_dump())
    session.add(rule)
    session.flush()
    session.expire(program, ["bonus_rules"])
    audit.record(session, actor=actor, action="bonus_rule.created", now=now, target=f"bonus_rule:{rule.id}",
                 details={"program_id": program.id, **spec.model_dump()})
    return rule


def update_bonus_rule(session: Session, *, rule: BonusRule, spec: BonusRuleSpec, actor: User | str,
                      now: datetime) -> dict[str, list[Any]]:
    _event_taken(session, rule.program, spec.event_name, but=rule.id)
    changed = _apply(rule, spec.model_dump())
    if changed:
        session.flush()
        audit.record(session, actor=actor, action="bonus_rule.updated", now=now, target=f"bonus_rule:{rule.id}",
                     details={"program_id": rule.program_id, "changed": changed})
    return changed


def remove_bonus_rule(session: Session, *, rule: BonusRule, actor: User | str, now: datetime) -> None:
    program, details = rule.program, {"program_id": rule.program_id, "event_name": rule.event_name}
    session.delete(rule)
    session.flush()
    session.expire(program, ["bonus_rules"])
    audit.record(session, actor=actor, action="bonus_rule.removed", now=now, target=f"bonus_rule:{rule.id}",
                 details=details)


# ----------------------------------------------------------------------------------------------- re-sync


def start_resync(session: Session, *, program: Program, actor: User | str, now: datetime) -> Job:
    """A queued job that re-syncs Google's class and re-sends every pass of the programme; the caller
    commits, then runs ``app.tasks.design.resync_design.delay(job.id)``."""
    total = session.scalar(select(func.count()).select_from(Card).where(Card.program_id == program.id)) or 0
    job = Job(kind=RESYNC, program_id=program.id, state="queued", total=total, done=0, created_at=now,
              created_by=actor.email if isinstance(actor, User) else actor[:254])
    session.add(job)
    session.flush()
    return job


def latest_job(session: Session, *, program: Program) -> Job | None:
    return session.scalar(select(Job).where(Job.program_id == program.id, Job.kind == RESYNC)
                          .order_by(Job.id.desc()).limit(1))


# ------------------------------------------------------------------------------------- whole lists at once


def replace_tiers(session: Session, *, program: Program, specs: list[TierSpec], actor: User | str,
                  now: datetime) -> bool:
    """Make the programme's tiers exactly ``specs``, matched by name in any case: missing ones are removed,
    known ones updated, new ones added. Returns whether anything changed (the passes show the tier).

    :raise InvalidInput: a name given twice (field ``tiers.<n>.name``). :raise Conflict: a tier to
        remove has cards on it."""
    wanted: dict[str, TierSpec] = {}
    for index, spec in enumerate(specs):
        if spec.name.lower() in wanted:
            raise InvalidInput("two tiers have the same name",
                               errors=[FieldError(f"tiers.{index}.name", "This name is given twice.")])
        wanted[spec.name.lower()] = spec
    current = {t.name.lower(): t for t in program.tiers}
    changed = False
    for name, tier in current.items():
        if name not in wanted:
            remove_tier(session, tier=tier, actor=actor, now=now)
            changed = True
    for name, spec in wanted.items():
        if name in current:
            changed = bool(update_tier(session, tier=current[name], spec=spec, actor=actor, now=now)) or changed
        else:
            add_tier(session, program=program, spec=spec, actor=actor, now=now)
            changed = True
    return changed


def replace_bonus_rules(session: Session, *, program: Program, specs: list[BonusRuleSpec], actor: User | str,
                        now: datetime) -> None:
    """Make the programme's bonus rules exactly ``specs``, matched by event name.

    :raise InvalidInput: an event given twice (field ``rules.<n>.event_name``)."""
    wanted: dict[str, BonusRuleSpec] = {}
    for index, spec in enumerate(specs):
        if spec.event_name in wanted:
            raise InvalidInput("two rules have the same event name",
                               errors=[FieldError(f"rules.{index}.event_name", "This event is given twice.")])
        wanted[spec.event_name] = spec
    current = {r.event_name: r for r in program.bonus_rules}
    for name, rule in current.items():
        if name not in wanted:
            remove_bonus_rule(session, rule=rule, actor=actor, now=now)
    for name, spec in wanted.items():
        if name in current:
            update_bonus_rule(session, rule=current[name], spec=spec, actor=actor, now=now)
        else:
            add_bonus_rule(session, program=program, spec=spec, actor=actor, now=now)
