"""Programmes over the API: read them, change their settings and design, replace their tiers and bonus rules,
upload their logo, strip and icon, and follow the job that re-sends every pass afterwards."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import current_app, request
from pydantic import Field
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import NotFound
from app.field_types import line
from app.loyalty import program_creation as creation
from app.loyalty import programs as programs_service
from app.loyalty import settings as service
from app.loyalty.program_templates import TEMPLATES
from app.loyalty.settings import PhoneRegion
from app.models import IMAGE_KINDS, Job, Program
from app.tasks.design import resync_design
from app.wallet import images
from app.wallet.links import program_links
from app.web.api import api_actor, bp, get_or_404, program_by_slug
from app.web.api._models import Currency, In, Out, TimeZoneName
from app.web.api.openapi import operation

TAG = "programmes"
PAGE_SIZE = 50
TEMPLATE_NAMES = tuple(TEMPLATES)


class SettingsIn(service.ProgramSettings, service.DesignSettings, In):
    """Any of the programme's settings and design fields; only the ones given change."""


class TierIn(service.TierSpec, In):
    pass


class TiersIn(In):
    tiers: list[TierIn] = Field(max_length=20, description="Every tier; matched to the current ones by name. "
                                                           "A tier left out is removed (refused if cards are on it).")


class BonusRuleIn(service.BonusRuleSpec, In):
    pass


class BonusRulesIn(In):
    rules: list[BonusRuleIn] = Field(max_length=50, description="Every bonus rule; matched by event name. A rule "
                                                                "left out is removed.")


class TierOut(Out):
    id: int
    name: str
    qualifying_spend: str
    earn_percent: str
    perks: str


class BonusRuleOut(Out):
    id: int
    event_name: str
    points: int
    limit_per_period: int | None
    period: str


class ProgramOut(Out):
    """A programme: rules, bonuses, design, tiers and bonus rules."""

    slug: str
    name: str
    kind: str
    currency: str
    timezone: str
    phone_region: str | None = Field(description="Local phone numbers are read in this country; null: the server's "
                                                 "default.")
    point_value: str
    redeem_cap_percent: str
    max_purchase_amount: str = Field(description="The largest purchase amount accepted (a decimal string).")
    tier_window_days: int
    expiry_days: int | None
    welcome_bonus: int
    birthday_bonus: int
    referrer_bonus: int
    referred_bonus: int
    terms: str
    privacy_policy_url: str | None = Field(description="The programme's privacy policy, linked from its sign-up "
                                                       "and card pages.")
    background_color: str
    foreground_color: str
    label_color: str
    logo_text: str | None
    images: list[str] = Field(description="The kinds of image the programme has uploaded; the others are defaults.")
    logo_url: str | None = Field(description="The public URL of the uploaded logo (Google Wallet shows it).")
    tiers: list[TierOut]
    bonus_rules: list[BonusRuleOut]


class ProgramCreateIn(In):
    """A new programme; a template fills its rules, tiers, bonus rules and card design (all editable after)."""

    name: line(120)  # type: ignore[valid-type]
    slug: str = Field(max_length=64, pattern=creation.SLUG.pattern.join("^$"),
                      description="The programme's short name in its URLs (/join/<slug>); unused by any other.")
    currency: Currency
    timezone: TimeZoneName
    phone_region: PhoneRegion | None = Field(default=None, description="The country whose local phone numbers the "
                                                                       "programme reads; null: the server's default.")
    kind: Literal["points", "stamps"] | None = Field(default=None, description="null: the template's, else points.")
    template: Literal[TEMPLATE_NAMES] | None = Field(  # type: ignore[valid-type]
        default=None, description="coffee-stamps (stamps; the 10th coffee free), cafe-points, retail-cashback "
                                  "(tiers from 3 % to 10 %), beauty-salon (a birthday bonus); null: no template.")


class ProgramCreatedOut(ProgramOut):
    """The new programme, its id and public URLs."""

    id: int
    join_url: str = Field(description="The sign-up page.")
    poster_url: str = Field(description="The counter poster with the sign-up page's QR code.")


class ListQuery(In):
    page: int = Field(default=1, ge=1, le=100_000, description="1-based.")


class ProgramListOut(Out):
    """The programmes, by name, a page at a time."""

    items: list[ProgramOut]
    page: int
    has_more: bool


class JobOut(Out):
    """A background job and its progress."""

    id: int
    kind: str
    program_id: int | None
    state: str
    total: int
    done: int
    error: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class ProgramSavedOut(Out):
    """The programme after the change, and the job re-sending its passes (null when no pass changes)."""

    program: ProgramOut
    job: JobOut | None


class ImageOut(Out):
    """The stored image at each scale, and the job re-sending the programme's passes."""

    kind: str
    scales: list[int]
    sha256: list[str]
    job: JobOut



def _program_out(program: Program) -> ProgramOut:
    db = get_session()
    path = images.logo_path(program)
    base = current_app.config["TALLYPASS"].base_url.rstrip("/")
    return ProgramOut(
        slug=program.slug, name=program.name, kind=program.kind, currency=program.currency,
        timezone=program.timezone, phone_region=program.phone_region,
        point_value=str(program.point_value), redeem_cap_percent=str(program.redeem_cap_percent),
        max_purchase_amount=str(program.max_purchase_amount),
        tier_window_days=program.tier_window_days, expiry_days=program.expiry_days,
        welcome_bonus=program.welcome_bonus, birthday_bonus=program.birthday_bonus,
        referrer_bonus=program.referrer_bonus, referred_bonus=program.referred_bonus, terms=program.terms,
        privacy_policy_url=program.privacy_policy_url,
        background_color=program.background_color, foreground_color=program.foreground_color,
        label_color=program.label_color, logo_text=program.logo_text, images=sorted(images.uploaded(db, program.id)),
        logo_url=base + path if path else None,
        tiers=[TierOut(id=t.id, name=t.name, qualifying_spend=str(t.qualifying_spend), earn_percent=str(t.earn_percent),
                       perks=t.perks) for t in program.tiers],
        bonus_rules=[BonusRuleOut.model_validate(r) for r in sorted(program.bonus_rules, key=lambda r: r.event_name)])


def _job_out(job: Job) -> JobOut:
    return JobOut.model_validate(job)


def _finish(program: Program, *, resync: bool) -> ProgramSavedOut:
    """Commit; queue the re-sync job when the passes change; the programme as it is now."""
    db = get_session()
    job = service.start_resync(db, program=program, actor=api_actor(), now=utcnow()) if resync else None
    db.commit()
    if job is not None:
        resync_design.delay(job.id)
    db.expire_all()  # read back what was stored (numbers as the database rounds them, the job's progress)
    return ProgramSavedOut(program=_program_out(program), job=_job_out(job) if job else None)


@bp.get("/programs")
@operation(summary="The programmes", tag=TAG, query=ListQuery, responses={200: ProgramListOut})
def list_programs(query: ListQuery) -> ProgramListOut:
    rows = list(get_session().scalars(select(Program).order_by(Program.name, Program.id)
                                      .offset((query.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return ProgramListOut(items=[_program_out(p) for p in rows[:PAGE_SIZE]], page=query.page,
                          has_more=len(rows) > PAGE_SIZE)


@bp.post("/programs")
@operation(summary="Create a programme, optionally from a template", tag=TAG, body=ProgramCreateIn,
           responses={201: ProgramCreatedOut}, role="admin",
           rules=("slug is not the slug of another programme.",
                  "kind, when given with a template, is the template's kind (coffee-stamps is a stamps card, "
                  "the others points)."))
def create_program(body: ProgramCreateIn) -> tuple[ProgramCreatedOut, int]:
    db = get_session()
    program = creation.create_program(db, name=body.name, slug=body.slug, currency=body.currency,
                                      timezone=body.timezone, phone_region=body.phone_region, kind=body.kind,
                                      template=body.template, actor=api_actor(), now=utcnow())
    db.commit()
    db.expire_all()  # read back what was stored (numbers as the database rounds them)
    base = current_app.config["TALLYPASS"].base_url
    out = ProgramCreatedOut(**_program_out(program).model_dump(), id=program.id,
                            **program_links(program.slug, base))
    return out, 201


@bp.get("/programs/<slug>")
@operation(summary="A programme", tag=TAG, responses={200: ProgramOut})
def get_program(slug: str) -> ProgramOut:
    return _program_out(program_by_slug(slug))


@bp.patch("/programs/<slug>/settings")
@operation(summary="Change a programme's settings or design", tag=TAG, body=SettingsIn,
           responses={200: ProgramSavedOut},
           description="Only the fields given change. A change to what the cards show (name, terms, colours, "
                       "logo text) starts a job that re-sends every pass.",
           rules=("The text colour (foreground_color) and the background_color have a contrast ratio of at least "
                  "3:1 (WCAG 2.x); the cards' text could not be read below that.",))
def patch_settings(slug: str, body: SettingsIn) -> ProgramSavedOut:
    program = program_by_slug(slug)
    changed = service.update_program(get_session(), program=program, settings=body, actor=api_actor(), now=utcnow())
    return _finish(program, resync=bool(changed.keys() & service.PASS_FIELDS))


@bp.put("/programs/<slug>/tiers")
@operation(summary="Replace a programme's tiers", tag=TAG, body=TiersIn, responses={200: ProgramSavedOut},
           problems={409: "A tier left out still has cards on it."},
           rules=("The tiers' names differ from one another (in any case).",))
def put_tiers(slug: str, body: TiersIn) -> ProgramSavedOut:
    program = program_by_slug(slug)
    changed = service.replace_tiers(get_session(), program=program, specs=body.tiers, actor=api_actor(),
                                    now=utcnow())
    return _finish(program, resync=changed)


@bp.put("/programs/<slug>/bonus-rules")
@operation(summary="Replace a programme's bonus rules", tag=TAG, body=BonusRulesIn, responses={200: ProgramSavedOut},
           rules=("The rules' event names differ from one another.",))
def put_bonus_rules(slug: str, body: BonusRulesIn) -> ProgramSavedOut:
    program = program_by_slug(slug)
    service.replace_bonus_rules(get_session(), program=program, specs=body.rules, actor=api_actor(), now=utcnow())
    return _finish(program, resync=False)


@bp.post("/programs/<slug>/images/<kind>")
@operation(summary="Upload a programme's logo, strip or icon (a PNG)", tag=TAG, raw_body="image/png",
           responses={201: ImageOut},
           description="The PNG (at most 2 MB and 4096 × 4096 pixels) is resized to Apple's sizes at @1x, @2x "
                       "and @3x: logo at most 160 × 50 pt, strip 375 × 123 pt, icon 29 × 29 pt. Every pass is "
                       "then re-sent by a job.",
           rules=("The body is a PNG image of at most 2 MB and 4096 × 4096 pixels.",))
def upload_image(slug: str, kind: str) -> tuple[ImageOut, int]:
    program = program_by_slug(slug)
    if kind not in IMAGE_KINDS:
        raise NotFound(f"there is no image kind {kind!r}; use one of {', '.join(IMAGE_KINDS)}")
    request.max_content_length = images.MAX_BYTES + 1  # the app's 64 KB limit is for JSON bodies
    data = request.get_data(cache=False)
    db = get_session()
    now = utcnow()
    rows = images.save_image(db, program=program, kind=kind, data=data, actor=api_actor(), now=now, field="body")
    programs_service.saved(db, program=program)  # Google's class points at the new logo
    job = service.start_resync(db, program=program, actor=api_actor(), now=now)
    out = [(r.scale, r.sha256) for r in rows]
    db.commit()
    resync_design.delay(job.id)
    db.refresh(job)
    return ImageOut(kind=kind, scales=[s for s, _ in out], sha256=[h for _, h in out], job=_job_out(job)), 201


@bp.get("/jobs/<int:job_id>")
@operation(summary="A background job's progress", tag=TAG, responses={200: JobOut})
def get_job(job_id: int) -> JobOut:
    return _job_out(get_or_404(Job, job_id, "job"))
