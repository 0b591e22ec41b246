"""Campaigns over the API: create, preview, schedule, start/pause/resume/cancel, retry failed, results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from flask import current_app
from pydantic import Field, RootModel, field_validator
from sqlalchemy import select

from app.campaigns import lifecycle, results, send, templating
from app.campaigns.lifecycle import VariantSpec
from app.database import get_session
from app.db import utcnow
from app.errors import NotFound
from app.models import CAMPAIGN_CHANNELS, Campaign, Card, Delivery, Segment
from app.web.api import bp, get_or_404, program_by_slug, sms_sender
from app.web.api._models import In, Out
from app.web.api.openapi import operation

TAG = "campaigns"


class VariantIn(In):
    name: str = Field(min_length=1, max_length=40)
    title: str = Field(default="", max_length=200)
    body: str = Field(min_length=1, max_length=templating.MAX_TEMPLATE)
    weight: int = Field(default=1, ge=1, le=100)


class CampaignIn(In):
    program: str = Field(max_length=64, description="The programme's slug.")
    name: str = Field(min_length=1, max_length=120)
    segment_id: int | None = Field(default=None, description="None: every customer of the programme.")
    channels: list[Literal["wallet", "push", "sms"]] = Field(
        min_length=1, max_length=len(CAMPAIGN_CHANNELS), description="In fallback order.")
    variants: list[VariantIn] = Field(min_length=1, max_length=10)
    holdout_percent: Decimal = Field(default=Decimal("0"), ge=0, le=50, decimal_places=2)
    max_per_week: int | None = Field(default=None, ge=1, le=100)
    quiet_start_hour: int = Field(default=21, ge=0, le=23)
    quiet_end_hour: int = Field(default=9, ge=0, le=23)
    geo_store_ids: list[int] | None = Field(default=None, max_length=10)
    ends_at: datetime | None = None


class ScheduleIn(In):
    at: datetime = Field(description="When to start, with a time zone offset.")

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a time zone offset")
        return value


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


@bp.post("/campaigns")
@operation(summary="Create a draft campaign", tag=TAG, body=CampaignIn, responses={201: CampaignOut})
def create_campaign(body: CampaignIn) -> tuple[CampaignOut, int]:
    program, db = program_by_slug(body.program), get_session()
    segment = get_or_404(Segment, body.segment_id, "segment") if body.segment_id is not None else None
    campaign = lifecycle.create(
        db, program=program, name=body.name, segment=segment, channels=list(body.channels),
        variants=[VariantSpec(v.name, v.body, v.title, v.weight) for v in body.variants],
        holdout_percent=body.holdout_percent, max_per_week=body.max_per_week, quiet_start_hour=body.quiet_start_hour,
        quiet_end_hour=body.quiet_end_hour, geo_store_ids=body.geo_store_ids, ends_at=body.ends_at, now=utcnow())
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
@operation(summary="Schedule a draft campaign", tag=TAG, body=ScheduleIn, responses={200: CampaignOut})
def schedule_campaign(campaign_id: int, body: ScheduleIn) -> CampaignOut:
    campaign, db = _campaign(campaign_id), get_session()
    lifecycle.schedule(db, campaign=campaign, at=body.at, now=utcnow())
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
    elif action == "cancel":
        lifecycle.cancel(db, campaign=campaign, now=now)
    else:
        send.retry_failed(db, campaign=campaign, now=now)
    db.commit()
    if campaign.state == "running" and action in ("start", "resume", "retry"):
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
@operation(summary="Send the failed deliveries again", tag=TAG, responses={200: CampaignOut})
def retry_campaign(campaign_id: int) -> CampaignOut:
    return _act(campaign_id, "retry")


@bp.get("/campaigns/<int:campaign_id>/results")
@operation(summary="Results per status, channel and variant, with uplift against the holdout", tag=TAG,
           responses={200: ResultsOut})
def campaign_results(campaign_id: int) -> ResultsOut:
    report = results.results(get_session(), campaign=_campaign(campaign_id))
    uplift = report.uplift
    return ResultsOut(
        by_status=report.by_status, by_channel=report.by_channel, by_variant=report.by_variant,
        holdout=report.holdout,
        uplift=None if uplift is None else UpliftOut(rate=uplift.rate, baseline=uplift.baseline,
                                                     difference=uplift.difference, ci95=[uplift.low, uplift.high]))
