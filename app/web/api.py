"""The marketers' JSON API for segments and campaigns (``/api/v1``), with bearer API tokens.

``Authorization: Bearer tp_…`` (``flask --app app token create NAME``). Viewers may read; marketers and
admins may change. Errors are problem+json like everywhere.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.campaigns import lifecycle, results, send, templating
from app.campaigns.lifecycle import VariantSpec
from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest, Forbidden, NotFound, Unauthorized
from app.merchants import tokens
from app.models import CAMPAIGN_CHANNELS, Campaign, Card, Delivery, Program, Segment
from app.segments import rules
from app.web.bodies import parse_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_CSV = 5 * 1024 * 1024


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=5000)


class SegmentIn(_In):
    program: str
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["rules", "rfm", "static"]
    rules: dict[str, Any] | None = None
    segments: list[str] | None = None  # kind rfm


class PreviewIn(_In):
    program: str
    rules: dict[str, Any]


class VariantIn(_In):
    name: str = Field(min_length=1, max_length=40)
    title: str = ""
    body: str = Field(min_length=1, max_length=templating.MAX_TEMPLATE)
    weight: int = Field(default=1, ge=1, le=100)


class CampaignIn(_In):
    program: str
    name: str = Field(min_length=1, max_length=120)
    segment_id: int | None = None
    channels: list[Literal["wallet", "push", "sms"]] = Field(min_length=1, max_length=len(CAMPAIGN_CHANNELS))
    variants: list[VariantIn] = Field(min_length=1, max_length=10)
    holdout_percent: Decimal = Field(default=Decimal("0"), ge=0, le=50)
    max_per_week: int | None = Field(default=None, ge=1, le=100)
    quiet_start_hour: int = Field(default=21, ge=0, le=23)
    quiet_end_hour: int = Field(default=9, ge=0, le=23)
    geo_store_ids: list[int] | None = Field(default=None, max_length=10)
    ends_at: datetime | None = None


class ScheduleIn(_In):
    at: datetime

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a time zone offset")
        return value


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")


@bp.before_request
def _authenticate() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    row = tokens.verify(get_session(), token=token.strip(), now=utcnow()) if scheme.lower() == "bearer" else None
    if row is None:
        raise Unauthorized("send a valid API token as 'Authorization: Bearer <token>'")
    if request.method != "GET" and row.role == "viewer":
        raise Forbidden("this token may only read")
    g.api_token = row


def _program(slug: str) -> Program:
    program = get_session().scalar(select(Program).where(Program.slug == slug))
    if program is None:
        raise NotFound(f"there is no programme {slug!r}")
    return program


def _segment(segment_id: int) -> Segment:
    segment = get_session().get(Segment, segment_id)
    if segment is None:
        raise NotFound("there is no such segment")
    return segment


def _campaign(campaign_id: int) -> Campaign:
    campaign = get_session().get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("there is no such campaign")
    return campaign


def _sender() -> str | None:
    return current_app.config["TALLYPASS"].sms_from


def _segment_body(segment: Segment, count: int | None = None) -> dict[str, Any]:
    body = {"id": segment.id, "name": segment.name, "kind": segment.kind, "definition": segment.definition}
    if count is not None:
        body["count"] = count
    return body


# ---------------------------------------------------------------------------------------------- segments


@bp.post("/segments")
def create_segment() -> Response:
    data: SegmentIn = parse_body(SegmentIn)
    program, db, now = _program(data.program), get_session(), utcnow()
    definition: dict[str, Any] = {}
    if data.kind == "rules":
        rules.parse_rules(data.rules or {}, path="rules")  # InvalidInput, with the path of each mistake
        definition = data.rules or {}
    elif data.kind == "rfm":
        definition = {"segments": data.segments or []}
    segment = Segment(program_id=program.id, name=data.name, kind=data.kind, definition=definition,
                      created_at=now, updated_at=now)
    db.add(segment)
    db.flush()
    count = rules.count(db, segment=segment, now=now, sms_sender=_sender())
    db.commit()
    return _json(_segment_body(segment, count), 201)


@bp.post("/segments/preview")
def preview_segment() -> Response:
    data: PreviewIn = parse_body(PreviewIn)
    program = _program(data.program)
    return _json({"count": rules.count(get_session(), tree=data.rules, program_id=program.id, now=utcnow(),
                                       sms_sender=_sender())})


@bp.get("/segments/<int:segment_id>")
def get_segment(segment_id: int) -> Response:
    segment = _segment(segment_id)
    return _json(_segment_body(segment, rules.count(get_session(), segment=segment, now=utcnow(),
                                                    sms_sender=_sender())))


@bp.post("/segments/<int:segment_id>/import")
def import_segment(segment_id: int) -> Response:
    segment, db = _segment(segment_id), get_session()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_CSV:
        raise BadRequest("the file is larger than 5 MB", code="too-large")
    outcome = rules.import_static(db, segment=segment, csv_text=raw.decode("utf-8-sig", errors="replace"),
                                  region=current_app.config["TALLYPASS"].default_phone_region)
    db.commit()
    return _json({"added": outcome.added, "unmatched": outcome.unmatched[:100], "invalid": outcome.invalid[:100]})


# ---------------------------------------------------------------------------------------------- campaigns


def _campaign_body(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id, "name": campaign.name, "state": campaign.state, "segment_id": campaign.segment_id,
        "channels": campaign.channels, "holdout_percent": str(campaign.holdout_percent),
        "scheduled_at": campaign.scheduled_at, "audience_size": campaign.audience_size,
        "pause_reason": campaign.pause_reason,
        "variants": [{"id": v.id, "name": v.name, "weight": v.weight, "title": v.title, "body": v.body}
                     for v in campaign.variants],
    }


@bp.post("/campaigns")
def create_campaign() -> Response:
    data: CampaignIn = parse_body(CampaignIn)
    program, db = _program(data.program), get_session()
    segment = _segment(data.segment_id) if data.segment_id is not None else None
    campaign = lifecycle.create(
        db, program=program, name=data.name, segment=segment, channels=list(data.channels),
        variants=[VariantSpec(v.name, v.body, v.title, v.weight) for v in data.variants],
        holdout_percent=data.holdout_percent, max_per_week=data.max_per_week, quiet_start_hour=data.quiet_start_hour,
        quiet_end_hour=data.quiet_end_hour, geo_store_ids=data.geo_store_ids, ends_at=data.ends_at, now=utcnow())
    db.commit()
    return _json(_campaign_body(campaign), 201)


@bp.get("/campaigns/<int:campaign_id>")
def get_campaign(campaign_id: int) -> Response:
    return _json(_campaign_body(_campaign(campaign_id)))


@bp.post("/campaigns/<int:campaign_id>/preview")
def preview_campaign(campaign_id: int) -> Response:
    """Each variant rendered for one customer of the audience (or any card holder), with what would not fit."""
    campaign, db = _campaign(campaign_id), get_session()
    card = db.scalar(select(Card).join(Delivery, Delivery.card_id == Card.id)
                     .where(Delivery.campaign_id == campaign.id).limit(1)) or db.scalar(
        select(Card).where(Card.program_id == campaign.program_id, Card.status == "active").limit(1))
    if card is None:
        raise NotFound("the programme has no customers to preview with")
    values = templating.context(card, base_url=current_app.config["TALLYPASS"].base_url)
    rendered = {v.name: templating.render(v.title, v.body, values) for v in campaign.variants}
    return _json({name: {"title": r.title, "body": r.body, "sms_parts": templating.sms_segments(r.body),
                         "warnings": r.warnings} for name, r in rendered.items()})


@bp.post("/campaigns/<int:campaign_id>/schedule")
def schedule_campaign(campaign_id: int) -> Response:
    data: ScheduleIn = parse_body(ScheduleIn)
    campaign, db = _campaign(campaign_id), get_session()
    lifecycle.schedule(db, campaign=campaign, at=data.at, now=utcnow())
    db.commit()
    return _json(_campaign_body(campaign))


@bp.post("/campaigns/<int:campaign_id>/<any(start, pause, resume, cancel, retry):action>")
def act(campaign_id: int, action: str) -> Response:
    from app.tasks.campaigns import kick

    campaign, db, now = _campaign(campaign_id), get_session(), utcnow()
    if action == "start":
        lifecycle.start(db, campaign=campaign, now=now, sms_sender=_sender())
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
    return _json(_campaign_body(campaign))


@bp.get("/campaigns/<int:campaign_id>/results")
def campaign_results(campaign_id: int) -> Response:
    report = results.results(get_session(), campaign=_campaign(campaign_id))
    uplift = report.uplift
    return _json({
        "by_status": report.by_status, "by_channel": report.by_channel, "by_variant": report.by_variant,
        "holdout": report.holdout,
        "uplift": None if uplift is None else {"rate": uplift.rate, "baseline": uplift.baseline,
                                               "difference": uplift.difference, "ci95": [uplift.low, uplift.high]},
    })
