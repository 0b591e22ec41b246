"""Campaigns over the API: list, create, edit a draft, preview, schedule, start/pause/resume/cancel, retry
(the failed deliveries, or the interrupted ones: the caller says which), progress, the delivery log and
results.

``update_draft``, ``progress`` and ``deliveries`` are shared with the dashboard (app/web/dashboard/campaigns.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from flask import current_app
from pydantic import Field, RootModel
from sqlalchemy import select

from app.campaigns import lifecycle, results, send, templating
from app.campaigns.lifecycle import VariantSpec
from app.campaigns.results import deliveries, sent_counts
from app.database import get_session
from app.db import count_rows, utcnow
from app.errors import NotFound
from app.field_types import decimal_text, line, optional_line, text
from app.merchants import audit
from app.models import (
    CAMPAIGN_CHANNELS,
    CAMPAIGN_STATES,
    DELIVERY_STATES,
    Campaign,
    Card,
    Delivery,
    Program,
    Segment,
)
from app.web.api import api_actor, bp, get_or_404, program_by_slug
from app.web.api._models import In, Instant, Out, ProgramSlug, RowId
from app.web.api.openapi import operation
from app.web.messaging import sms_sender

TAG = "campaigns"


UNIQUE = {"uniqueItems": True}
Percent = decimal_text(le=50, places=2, example="10")
Channels = Annotated[list[Literal["wallet", "push", "sms"]],
                     Field(min_length=1, max_length=len(CAMPAIGN_CHANNELS), json_schema_extra=UNIQUE,
                           description="In fallback order, each once.")]
GeoStores = Annotated[list[RowId], Field(max_length=10, json_schema_extra=UNIQUE,
                                         description="Stores of the programme, with coordinates, each once: the "
                                                     "cards show them near these stores until ends_at.")]
RULES = ("Each variant's title and body are templates that parse and use only known variables (the dashboard's "
         "composer lists them); the variants' names differ.",
         "segment_id names a segment of the programme.",
         "A geo campaign (geo_store_ids) names stores of the programme that have coordinates, and has an ends_at.",
         "ends_at is in the future.")


class VariantIn(In):
    name: line(40)  # type: ignore[valid-type]
    title: optional_line(120) = ""  # type: ignore[valid-type]
    body: text(templating.MAX_TEMPLATE)  # type: ignore[valid-type]
    weight: int = Field(default=1, ge=1, le=100)


class CampaignIn(In):
    program: ProgramSlug
    name: line(120)  # type: ignore[valid-type]
    segment_id: RowId | None = Field(default=None, description="None: every customer of the programme.")
    channels: Channels
    variants: list[VariantIn] = Field(min_length=1, max_length=10)
    holdout_percent: Percent = Decimal("0")  # type: ignore[valid-type]
    max_per_week: int | None = Field(default=None, ge=1, le=100)
    quiet_start_hour: int = Field(default=21, ge=0, le=23)
    quiet_end_hour: int = Field(default=9, ge=0, le=23)
    geo_store_ids: GeoStores | None = None
    ends_at: Instant | None = None


class ScheduleIn(In):
    at: Instant = Field(description="When to start (in the future), with a time zone offset.")


class VariantOut(Out):
    id: int
    name: str
    weight: int
    title: str
    body: str


class CampaignOut(Out):
    """A campaign and its state."""

    id: int
    name: str
    state: str
    segment_id: int | None
    channels: list[str]
    holdout_percent: str
    scheduled_at: datetime | None
    audience_size: int | None
    pause_reason: str | None
    variants: list[VariantOut]


class RenderedOut(Out):
    title: str
    body: str
    sms_parts: int
    warnings: list[str]


class PreviewOut(RootModel[dict[str, RenderedOut]]):
    """Each variant, by name, rendered for one customer of the audience."""


class UpliftOut(Out):
    rate: float
    baseline: float
    difference: float
    ci95: list[float]


class ResultsOut(Out):
    """Deliveries per status, channel and variant; the holdout; the uplift with its 95 % interval."""

    by_status: dict[str, int]
    by_channel: dict[str, int]
    by_variant: dict[str, dict[str, int]]
    holdout: dict[str, int]
    uplift: UpliftOut | None


PER_PAGE = 50


# ------------------------------------------------------------------ models of the added operations


class CampaignListQuery(In):
    program: ProgramSlug | None = Field(default=None, description="Only this programme's (its slug).")
    state: Literal[CAMPAIGN_STATES] | None = None  # type: ignore[valid-type]
    automations: bool = Field(default=False, description="List the automations (welcome, birthday...) instead.")
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=PER_PAGE, ge=1, le=100)


class CampaignSummaryOut(Out):
    id: int
    program: str
    name: str
    state: str
    segment_id: int | None
    automation: str | None
    audience_size: int | None
    sent: int
    scheduled_at: datetime | None
    created_at: datetime


class CampaignListOut(Out):
    """A page of campaigns, newest first."""

    items: list[CampaignSummaryOut]
    page: int
    per_page: int
    total: int


class CampaignPatchIn(In):
    """Only the fields given change. ``null`` clears segment_id (everyone), max_per_week, geo_store_ids and
    ends_at, and leaves the other fields as they are."""

    name: line(120) | None = None  # type: ignore[valid-type]
    segment_id: RowId | None = None
    channels: Channels | None = None
    variants: list[VariantIn] | None = Field(default=None, min_length=1, max_length=10)
    holdout_percent: Percent | None = None  # type: ignore[valid-type]
    max_per_week: int | None = Field(default=None, ge=1, le=100)
    quiet_start_hour: int | None = Field(default=None, ge=0, le=23)
    quiet_end_hour: int | None = Field(default=None, ge=0, le=23)
    geo_store_ids: GeoStores | None = None
    ends_at: Instant | None = None


class DeliveryQuery(In):
    status: Literal[DELIVERY_STATES] | None = None  # type: ignore[valid-type]
    channel: Literal["wallet", "push", "sms"] | None = None
    variant: str | None = Field(default=None, max_length=40, description="A variant's name.")
    phone: str | None = Field(default=None, max_length=20, description="Digits the customer's phone contains.")
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=PER_PAGE, ge=1, le=100)


class RetryIn(In):
    deliveries: Literal["failed", "interrupted"] = Field(description=(
        "Which deliveries to send again. `failed`: those that certainly did not reach the customer (status "
        "`failed`, no `reason` or another than `interrupted`/`unconfirmed`); each goes out on the first of the "
        "campaign's channels that reaches the customer now. `interrupted`: those that may have arrived "
        "(`reason` `interrupted` or `unconfirmed`) on a channel where a second copy replaces the first: web "
        "push, sent again on the same channel with the same `Topic` and notification `tag`. Text messages in "
        "doubt are never resent (a second text cannot replace the first); they are counted in `kept`."))


class RetryOut(Out):
    """What the retry queued, what it left, and the campaign as it is now."""

    deliveries: Literal["failed", "interrupted"]
    requeued: int = Field(description="Deliveries queued again.")
    kept: dict[str, int] = Field(description="Deliveries in doubt that were not resent, per channel (`sms`).")
    campaign: CampaignOut


class DeliveryOut(Out):
    id: int
    customer_id: int
    customer_name: str
    phone: str | None
    variant: str | None
    channel: str | None
    status: str
    reason: str | None
    error: str | None
    attempts: int
    sent_at: datetime | None
    updated_at: datetime


class DeliveryListOut(Out):
    """A page of the campaign's delivery log, latest change first."""

    items: list[DeliveryOut]
    page: int
    per_page: int
    total: int


class ProgressOut(Out):
    """Deliveries per status and the share of the audience settled (sent, failed, skipped or held out)."""

    state: str
    audience_size: int | None
    counts: dict[str, int]
    done: int
    percent: int
    pause_reason: str | None


def _out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id, name=campaign.name, state=campaign.state, segment_id=campaign.segment_id,
        channels=list(campaign.channels), holdout_percent=str(campaign.holdout_percent),
        scheduled_at=campaign.scheduled_at, audience_size=campaign.audience_size,
        pause_reason=campaign.pause_reason,
        variants=[VariantOut(id=v.id, name=v.name, weight=v.weight, title=v.title, body=v.body)
                  for v in campaign.variants])


def _campaign(campaign_id: int) -> Campaign:
    return get_or_404(Campaign, campaign_id, "campaign")


def _audit(action: str, campaign: Campaign, **details: object) -> None:
    audit.record(get_session(), actor=api_actor(), action=action, now=utcnow(),
                 target=f"campaign:{campaign.id}", details=details)


@bp.get("/campaigns")
@operation(summary="The campaigns (or the automations), newest first", tag=TAG, query=CampaignListQuery,
           responses={200: CampaignListOut})
def list_campaigns(query: CampaignListQuery) -> CampaignListOut:
    db = get_session()
    rows = select(Campaign, Program.slug).join(Program, Program.id == Campaign.program_id).where(
        Campaign.automation.is_not(None) if query.automations else Campaign.automation.is_(None))
    if query.program is not None:
        rows = rows.where(Campaign.program_id == program_by_slug(query.program).id)
    if query.state is not None:
        rows = rows.where(Campaign.state == query.state)
    total = count_rows(db, rows)
    page = db.execute(rows.order_by(Campaign.created_at.desc(), Campaign.id.desc())
                      .limit(query.per_page).offset((query.page - 1) * query.per_page)).all()
    sent = sent_counts(db, [c.id for c, _ in page])
    return CampaignListOut(page=query.page, per_page=query.per_page, total=total, items=[
        CampaignSummaryOut(id=c.id, program=slug, name=c.name, state=c.state, segment_id=c.segment_id,
                           automation=c.automation, audience_size=c.audience_size, sent=sent.get(c.id, 0),
                           scheduled_at=c.scheduled_at, created_at=c.created_at) for c, slug in page])


@bp.post("/campaigns")
@operation(summary="Create a draft campaign", tag=TAG, body=CampaignIn, responses={201: CampaignOut}, rules=RULES)
def create_campaign(body: CampaignIn) -> tuple[CampaignOut, int]:
    program, db = program_by_slug(body.program), get_session()
    segment = get_or_404(Segment, body.segment_id, "segment") if body.segment_id is not None else None
    campaign = lifecycle.create(
        db, program=program, name=body.name, segment=segment, channels=list(body.channels),
        variants=[VariantSpec(v.name, v.body, v.title, v.weight) for v in body.variants],
        holdout_percent=body.holdout_percent, max_per_week=body.max_per_week, quiet_start_hour=body.quiet_start_hour,
        quiet_end_hour=body.quiet_end_hour, geo_store_ids=body.geo_store_ids, ends_at=body.ends_at, now=utcnow())
    _audit("campaign-created", campaign, name=campaign.name)
    out = _out(campaign)
    db.commit()
    return out, 201


@bp.get("/campaigns/<int:campaign_id>")
@operation(summary="A campaign", tag=TAG, responses={200: CampaignOut})
def get_campaign(campaign_id: int) -> CampaignOut:
    return _out(_campaign(campaign_id))


@bp.post("/campaigns/<int:campaign_id>/preview")
@operation(summary="Each variant rendered for one customer, with what would not fit", tag=TAG,
           responses={200: PreviewOut}, role="viewer")
def preview_campaign(campaign_id: int) -> PreviewOut:
    campaign, db = _campaign(campaign_id), get_session()
    card = db.scalar(select(Card).join(Delivery, Delivery.card_id == Card.id)
                     .where(Delivery.campaign_id == campaign.id).limit(1)) or db.scalar(
        select(Card).where(Card.program_id == campaign.program_id, Card.status == "active").limit(1))
    if card is None:
        raise NotFound("the programme has no customers to preview with")
    values = templating.context(card, base_url=current_app.config["TALLYPASS"].base_url)
    rendered = {v.name: templating.render(v.title, v.body, values) for v in campaign.variants}
    return PreviewOut({name: RenderedOut(title=r.title, body=r.body, sms_parts=templating.sms_segments(r.body),
                                         warnings=list(r.warnings)) for name, r in rendered.items()})


@bp.post("/campaigns/<int:campaign_id>/schedule")
@operation(summary="Schedule a draft campaign", tag=TAG, body=ScheduleIn, responses={200: CampaignOut},
           problems={409: "The campaign is not a draft."}, rules=("at is in the future.",))
def schedule_campaign(campaign_id: int, body: ScheduleIn) -> CampaignOut:
    campaign, db = _campaign(campaign_id), get_session()
    lifecycle.schedule(db, campaign=campaign, at=body.at, now=utcnow())
    _audit("campaign-scheduled", campaign, at=body.at.isoformat())
    out = _out(campaign)
    db.commit()
    return out


def _act(campaign_id: int, action: str) -> CampaignOut:
    from app.tasks.campaigns import kick

    campaign, db, now = _campaign(campaign_id), get_session(), utcnow()
    if action == "start":
        lifecycle.start(db, campaign=campaign, now=now, sms_sender=sms_sender())
    elif action == "pause":
        lifecycle.pause(db, campaign=campaign, now=now)
    elif action == "resume":
        lifecycle.resume(db, campaign=campaign, now=now)
    else:
        lifecycle.cancel(db, campaign=campaign, now=now)
    _audit(f"campaign-{action}", campaign)
    db.commit()
    if campaign.state == "running" and action in ("start", "resume"):
        kick(campaign.id)
        db.refresh(campaign)
    return _out(campaign)


@bp.post("/campaigns/<int:campaign_id>/start")
@operation(summary="Start now: the audience is chosen and sending begins", tag=TAG, responses={200: CampaignOut})
def start_campaign(campaign_id: int) -> CampaignOut:
    return _act(campaign_id, "start")


@bp.post("/campaigns/<int:campaign_id>/pause")
@operation(summary="Pause a running campaign", tag=TAG, responses={200: CampaignOut})
def pause_campaign(campaign_id: int) -> CampaignOut:
    return _act(campaign_id, "pause")


@bp.post("/campaigns/<int:campaign_id>/resume")
@operation(summary="Resume a paused campaign", tag=TAG, responses={200: CampaignOut})
def resume_campaign(campaign_id: int) -> CampaignOut:
    return _act(campaign_id, "resume")


@bp.post("/campaigns/<int:campaign_id>/cancel")
@operation(summary="Cancel a campaign; what was sent stays sent", tag=TAG, responses={200: CampaignOut})
def cancel_campaign(campaign_id: int) -> CampaignOut:
    return _act(campaign_id, "cancel")


@bp.post("/campaigns/<int:campaign_id>/retry")
@operation(summary="Send again the failed deliveries, or the interrupted ones", tag=TAG, body=RetryIn,
           responses={200: RetryOut},
           description="The caller chooses, because the two differ: a failed delivery certainly did not arrive, "
                       "an interrupted one may have. See `deliveries`.")
def retry_campaign(campaign_id: int, body: RetryIn) -> RetryOut:
    from app.tasks.campaigns import kick

    campaign, db = _campaign(campaign_id), get_session()
    retried = send.retry(db, campaign=campaign, deliveries=body.deliveries, now=utcnow())
    _audit("campaign-retry", campaign, deliveries=body.deliveries, retried=retried.requeued)
    db.commit()
    if retried.requeued and campaign.state == "running":
        kick(campaign.id)
        db.refresh(campaign)
    return RetryOut(deliveries=body.deliveries, requeued=retried.requeued, kept=retried.kept, campaign=_out(campaign))


@bp.get("/campaigns/<int:campaign_id>/results")
@operation(summary="Results per status, channel and variant, with uplift against the holdout", tag=TAG,
           responses={200: ResultsOut})
def campaign_results(campaign_id: int) -> ResultsOut:
    campaign = _campaign(campaign_id)
    # results.results needs the start (the holdout's clock); before it there is nothing to count.
    report = results.results(get_session(), campaign=campaign)
    uplift = report.uplift
    return ResultsOut(
        by_status=report.by_status, by_channel=report.by_channel, by_variant=report.by_variant,
        holdout=report.holdout,
        uplift=None if uplift is None else UpliftOut(rate=uplift.rate, baseline=uplift.baseline,
                                                     difference=uplift.difference, ci95=[uplift.low, uplift.high]))


NULLABLE = {"segment_id", "max_per_week", "geo_store_ids", "ends_at"}  # null clears these


@bp.patch("/campaigns/<int:campaign_id>")
@operation(summary="Edit a draft campaign (only the fields given change)", tag=TAG, body=CampaignPatchIn,
           responses={200: CampaignOut}, problems={409: "The campaign is not a draft."}, rules=RULES)
def edit_campaign(campaign_id: int, body: CampaignPatchIn) -> CampaignOut:
    campaign, db = _campaign(campaign_id), get_session()
    given = body.model_fields_set

    def pick(name: str, current: object) -> object:
        value = getattr(body, name)
        return current if name not in given or (value is None and name not in NULLABLE) else value

    segment_id = pick("segment_id", campaign.segment_id)
    segment = get_or_404(Segment, segment_id, "segment") if segment_id is not None else None
    variants = ([VariantSpec(v.name, v.body, v.title, v.weight) for v in body.variants]
                if body.variants is not None else
                [VariantSpec(v.name, v.body, v.title, v.weight) for v in campaign.variants])
    lifecycle.update_draft(db, campaign=campaign, program=db.get(Program, campaign.program_id), variants=variants,
                 name=pick("name", campaign.name), segment=segment,  # type: ignore[arg-type]
                 channels=pick("channels", campaign.channels),  # type: ignore[arg-type]
                 holdout_percent=pick("holdout_percent", campaign.holdout_percent),  # type: ignore[arg-type]
                 max_per_week=pick("max_per_week", campaign.max_per_week),  # type: ignore[arg-type]
                 quiet_start_hour=pick("quiet_start_hour", campaign.quiet_start_hour),  # type: ignore[arg-type]
                 quiet_end_hour=pick("quiet_end_hour", campaign.quiet_end_hour),  # type: ignore[arg-type]
                 geo_store_ids=pick("geo_store_ids", campaign.geo_store_ids),  # type: ignore[arg-type]
                 ends_at=pick("ends_at", campaign.ends_at), now=utcnow())  # type: ignore[arg-type]
    _audit("campaign-edited", campaign, fields=sorted(given))
    out = _out(campaign)
    db.commit()
    return out


@bp.get("/campaigns/<int:campaign_id>/progress")
@operation(summary="How far sending has gone", tag=TAG, responses={200: ProgressOut})
def campaign_progress(campaign_id: int) -> ProgressOut:
    return ProgressOut(**results.progress(get_session(), campaign=_campaign(campaign_id)))  # type: ignore[arg-type]


@bp.get("/campaigns/<int:campaign_id>/deliveries")
@operation(summary="The delivery log: one row per customer, filtered and paged", tag=TAG, query=DeliveryQuery,
           responses={200: DeliveryListOut})
def campaign_deliveries(campaign_id: int, query: DeliveryQuery) -> DeliveryListOut:
    campaign, db = _campaign(campaign_id), get_session()
    rows = deliveries(campaign, status=query.status, channel=query.channel, variant=query.variant,
                      phone=query.phone)
    total = count_rows(db, rows)
    names = {v.id: v.name for v in campaign.variants}
    page = db.execute(rows.limit(query.per_page).offset((query.page - 1) * query.per_page)).all()
    return DeliveryListOut(page=query.page, per_page=query.per_page, total=total, items=[
        DeliveryOut(id=d.id, customer_id=c.id, customer_name=c.name, phone=c.phone,
                    variant=names.get(d.variant_id) if d.variant_id is not None else None, channel=d.channel,
                    status=d.status, reason=d.reason, error=d.error, attempts=d.attempts, sent_at=d.sent_at,
                    updated_at=d.updated_at) for d, c in page])
