"""Campaigns in the dashboard: the list, the composer (new, and edit while a draft) with a live per-channel
preview, scheduling and sending (after a confirmation showing the audience), the campaign's page with a live
progress bar and pause/resume/cancel, its results, and its delivery log with its two retries: the failed
deliveries (certainly not sent) and the interrupted ones (may have arrived; app.campaigns.send.retry).

The views are thin: the campaign engine is app/campaigns (lifecycle, audience, templating, send, results);
editing a draft (app.campaigns.lifecycle), progress and the log's query (app.campaigns.results) are shared
with the JSON API."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from flask import Response, current_app, flash, jsonify, redirect, request, url_for
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.campaigns import audience, lifecycle, results, send, templating
from app.campaigns.lifecycle import VariantSpec, update_draft
from app.campaigns.results import deliveries, progress, sent_counts
from app.database import get_session
from app.db import count_rows, utcnow
from app.errors import InvalidInput, NotFound
from app.local_time import zone_named
from app.merchants import audit
from app.models import (
    CAMPAIGN_CHANNELS,
    CAMPAIGN_STATES,
    DELIVERY_STATES,
    Campaign,
    Card,
    Program,
    Segment,
    Store,
)
from app.numbers import AsciiDecimal
from app.segments import rules
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, requires
from app.web.dashboard.pages import PAGE_SIZE, field_errors, page_number, programme, render, validate_form
from app.web.display import plain_decimal
from app.web.forms import check_csrf
from app.web.messaging import sms_sender

MAX_VARIANTS = 10
CHANNEL_LABELS = {"wallet": "Wallet pass (Apple and Google)", "push": "Web push", "sms": "SMS"}
FRIENDLIER = {
    "String should have at least 1 character": "This cannot be empty.",
    "List should have at least 1 item after validation, not 0": "Choose at least one.",
}


# ------------------------------------------------------------------ the composer's form


class VariantForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=40)
    title: str = Field(default="", max_length=120)
    body: str = Field(min_length=1, max_length=templating.MAX_TEMPLATE)
    weight: int = Field(default=1, ge=1, le=100)


class ComposeForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    segment_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    channels: list[Literal["wallet", "push", "sms"]] = Field(min_length=1, max_length=len(CAMPAIGN_CHANNELS))
    variants: list[VariantForm] = Field(min_length=1, max_length=MAX_VARIANTS)
    holdout_percent: AsciiDecimal = Field(default=Decimal("0"), ge=0, le=50, decimal_places=2)
    max_per_week: int | None = Field(default=None, ge=1, le=100)
    quiet_start_hour: int = Field(default=21, ge=0, le=23)
    quiet_end_hour: int = Field(default=9, ge=0, le=23)
    geo_store_ids: list[int] = Field(default_factory=list, max_length=lifecycle.MAX_GEO_STORES)
    ends_at: datetime | None = None  # the programme's local time, as a datetime-local field sends it


def _zone(program: Program) -> ZoneInfo:
    return zone_named(program.timezone)


def to_utc(local: datetime | None, program: Program) -> datetime | None:
    """A datetime-local value, read in the programme's time zone, as an aware UTC datetime."""
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=_zone(program))
    return local.astimezone(UTC)


def local_input(value: datetime | None, program: Program) -> str:
    """An aware datetime as a datetime-local field's value in the programme's time zone."""
    return value.astimezone(_zone(program)).strftime("%Y-%m-%dT%H:%M") if value else ""


def raw_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """What the marketer typed, as the template shows it again (nothing is lost on an error)."""
    names, titles, bodies, weights = (form.getlist(f"variant_{part}") for part in ("name", "title", "body",
                                                                                   "weight"))
    variants = []
    for n in range(min(max(len(names), len(bodies)), MAX_VARIANTS)):
        variant = {"name": names[n] if n < len(names) else "", "title": titles[n] if n < len(titles) else "",
                   "body": bodies[n] if n < len(bodies) else "", "weight": weights[n] if n < len(weights) else "1"}
        if n == 0 or any(variant[k].strip() for k in ("name", "title", "body")):
            variants.append(variant)
    return {
        "name": form.get("name", ""), "segment_id": form.get("segment_id", ""),
        "channels": [form.get(f"channel_{n}", "") for n in (1, 2, 3)],
        "variants": variants or [{"name": "A", "title": "", "body": "", "weight": "1"}],
        "holdout_percent": form.get("holdout_percent", "0"), "max_per_week": form.get("max_per_week", ""),
        "quiet_start_hour": form.get("quiet_start_hour", "21"), "quiet_end_hour": form.get("quiet_end_hour", "9"),
        "geo_store_ids": form.getlist("geo_store_ids"), "ends_at": form.get("ends_at", ""),
    }


def _blank_none(value: str) -> str | None:
    return value.strip() or None


def parse(raw: dict[str, Any]) -> tuple[ComposeForm | None, dict[str, str]]:
    model, errors = validate_form(ComposeForm, {
        "name": raw["name"], "segment_id": _blank_none(raw["segment_id"]),
        "channels": [c for c in raw["channels"] if c], "variants": raw["variants"],
        "holdout_percent": raw["holdout_percent"].strip() or "0", "max_per_week": _blank_none(raw["max_per_week"]),
        "quiet_start_hour": raw["quiet_start_hour"], "quiet_end_hour": raw["quiet_end_hour"],
        "geo_store_ids": raw["geo_store_ids"], "ends_at": _blank_none(raw["ends_at"]),
    })
    return model, _tidy(errors)


def _tidy(errors: dict[str, str]) -> dict[str, str]:
    """One key per place on the form (``channels.1`` → ``channels``), in plain words."""
    out: dict[str, str] = {}
    for key, message in errors.items():
        place = key.split(".")[0] if key.startswith(("channels", "geo_store_ids")) else key
        out.setdefault(place, FRIENDLIER.get(message, message))
    return out


def _compose_context(program: Program, programs: list[Program], raw: dict[str, Any], errors: dict[str, str],
                     campaign: Campaign | None = None) -> dict[str, Any]:
    db = get_session()
    return {
        "program": program, "programs": programs, "form": raw, "errors": errors, "campaign": campaign,
        "segments": list(db.scalars(select(Segment).where(Segment.program_id == program.id).order_by(Segment.name))),
        "stores": list(db.scalars(select(Store).where(Store.program_id == program.id, Store.closed_at.is_(None))
                                  .order_by(Store.name))),
        "channel_labels": CHANNEL_LABELS, "max_variants": MAX_VARIANTS, "variables": templating.VARIABLES,
        "timezone": program.timezone or "UTC",
    }


def _save(program: Program, programs: list[Program], campaign: Campaign | None) -> Response:
    """Create (``campaign`` None) or update a draft from the posted form; the form again with errors, else
    the campaign's page."""
    raw = raw_form(request.form)
    model, errors = parse(raw)
    db, user, now = get_session(), current_user(), utcnow()
    segment = None
    if model is not None and model.segment_id is not None:
        segment = db.get(Segment, model.segment_id)
        if segment is None or segment.program_id != program.id:
            errors["segment_id"] = "Choose one of this programme's segments."
    if model is not None and not errors:
        spec = dict(program=program, name=model.name, segment=segment, channels=list(model.channels),
                    variants=[VariantSpec(v.name, v.body, v.title, v.weight) for v in model.variants],
                    holdout_percent=model.holdout_percent, max_per_week=model.max_per_week,
                    quiet_start_hour=model.quiet_start_hour, quiet_end_hour=model.quiet_end_hour,
                    geo_store_ids=model.geo_store_ids or None, ends_at=to_utc(model.ends_at, program), now=now)
        try:
            if campaign is None:
                campaign = lifecycle.create(db, **spec)  # type: ignore[arg-type]
                action = "campaign-created"
            else:
                update_draft(db, campaign=campaign, **spec)  # type: ignore[arg-type]
                action = "campaign-edited"
        except InvalidInput as exc:
            for item in exc.errors:
                place = "quiet_start_hour" if item.field == "quiet_hours" else item.field
                errors.setdefault(place, item.message[:1].upper() + item.message[1:])
        else:
            audit.record(db, actor=user, action=action, now=now, target=f"campaign:{campaign.id}",
                         details={"name": campaign.name}, ip=request.remote_addr)
            db.commit()
            flash(f"“{campaign.name}” is saved as a draft. Check it, then send it now or schedule it.", "success")
            return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)
    return render("dashboard/campaign_compose.html", status=422,
                  **_compose_context(program, programs, raw, errors or {"form": "Check the form."}, campaign))


def _campaign(campaign_id: int) -> tuple[Campaign, Program, list[Program]]:
    db = get_session()
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("there is no such campaign")
    programs = list(db.scalars(select(Program).order_by(Program.name)))
    return campaign, next(p for p in programs if p.id == campaign.program_id), programs


def _audit(campaign: Campaign, action: str, **details: Any) -> None:
    audit.record(get_session(), actor=current_user(), action=action, now=utcnow(),  # type: ignore[arg-type]
                 target=f"campaign:{campaign.id}", details=details, ip=request.remote_addr)



# ------------------------------------------------------------------ the list and the composer


@bp.get("/campaigns")
@requires("viewer")
def campaigns() -> Response:
    program, programs = programme()
    db, page = get_session(), page_number()
    state = request.args.get("state", "")
    query = select(Campaign).where(Campaign.program_id == program.id, Campaign.automation.is_(None))
    if state in CAMPAIGN_STATES:
        query = query.where(Campaign.state == state)
    total = count_rows(db, query)
    rows = list(db.scalars(query.order_by(Campaign.created_at.desc(), Campaign.id.desc())
                           .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    segments = dict(db.execute(select(Segment.id, Segment.name).where(Segment.program_id == program.id)).all())
    return render("dashboard/campaigns.html", program=program, programs=programs, campaigns=rows,
                  sent=sent_counts(db, [c.id for c in rows]), segments=segments, state=state, states=CAMPAIGN_STATES,
                  page=page, pages=max(1, -(-total // PAGE_SIZE)), total=total, zone=_zone(program))


@bp.get("/campaigns/new")
@requires("marketer")
def campaigns_new() -> Response:
    program, programs = programme()
    raw = raw_form(MultiDict({"channel_1": "wallet", "channel_2": "push", "channel_3": "sms"}))
    # One message to start with: "Add variant B" makes it an A/B test (an empty B would refuse to save).
    raw["variants"] = [{"name": "A", "title": "", "body": "", "weight": "1"}]
    return render("dashboard/campaign_compose.html", **_compose_context(program, programs, raw, {}))


@bp.post("/campaigns/new")
@requires("marketer")
def campaigns_create() -> Response:
    check_csrf()
    program, programs = programme()
    return _save(program, programs, None)


@bp.get("/campaigns/<int:campaign_id>/edit")
@requires("marketer")
def campaigns_edit(campaign_id: int) -> Response:
    campaign, program, programs = _campaign(campaign_id)
    if campaign.state != "draft":
        flash(f"Only a draft can be edited; this campaign is {campaign.state}.", "error")
        return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)
    channels = list(campaign.channels) + [""] * (3 - len(campaign.channels))
    raw = {
        "name": campaign.name, "segment_id": str(campaign.segment_id or ""), "channels": channels,
        "variants": [{"name": v.name, "title": v.title, "body": v.body, "weight": plain_decimal(v.weight)}
                     for v in campaign.variants],
        "holdout_percent": plain_decimal(campaign.holdout_percent),
        "max_per_week": str(campaign.max_per_week or ""), "quiet_start_hour": str(campaign.quiet_start_hour),
        "quiet_end_hour": str(campaign.quiet_end_hour),
        "geo_store_ids": [str(i) for i in campaign.geo_store_ids or []],
        "ends_at": local_input(campaign.ends_at, program),
    }
    return render("dashboard/campaign_compose.html", **_compose_context(program, programs, raw, {}, campaign))


@bp.post("/campaigns/<int:campaign_id>/edit")
@requires("marketer")
def campaigns_update(campaign_id: int) -> Response:
    check_csrf()
    campaign, program, programs = _campaign(campaign_id)
    if campaign.state != "draft":
        flash(f"Only a draft can be edited; this campaign is {campaign.state}.", "error")
        return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)
    return _save(program, programs, campaign)


class PreviewVariant(BaseModel):
    name: str = Field(default="", max_length=40)
    title: str = Field(default="", max_length=templating.MAX_TEMPLATE)
    body: str = Field(default="", max_length=templating.MAX_TEMPLATE)


class PreviewRequest(BaseModel):
    program: str = Field(max_length=64)
    segment_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    channels: list[Literal["wallet", "push", "sms"]] = Field(default_factory=list, max_length=3)
    variants: list[PreviewVariant] = Field(min_length=1, max_length=MAX_VARIANTS)


def _sample(program: Program, segment: Segment | None) -> tuple[str, dict[str, Any]]:
    """A customer to preview with (the segment's first, else the programme's first), and their values."""
    db = get_session()
    query = select(Card).where(Card.program_id == program.id, Card.status == "active").order_by(Card.id)
    if segment is not None:
        members = rules.members(db, segment=segment, now=utcnow(), sms_sender=sms_sender()).subquery()
        query = query.where(Card.customer_id.in_(select(members.c[0])))
    card = db.scalars(query.limit(1)).first()
    if card is None:
        return "a sample customer (the programme has none yet)", {**templating.SAMPLE, "programme": program.name}
    values = templating.context(card, base_url=current_app.config["TALLYPASS"].base_url)
    return card.customer.name or f"customer #{card.customer_id}", values


def preview_variant(program: Program, variant: PreviewVariant, values: dict[str, Any], channels: list[str]
                    ) -> dict[str, Any]:
    """One variant as each chosen channel would show it, with what would not fit."""
    out: dict[str, Any] = {"name": variant.name, "error": None, "channels": []}
    try:
        templating.check_template(variant.title, field_name="title")
        templating.check_template(variant.body, field_name="message")
        rendered = templating.render(variant.title, variant.body, values)
    except InvalidInput as exc:
        out["error"] = exc.errors[0].message if exc.errors else exc.detail
        return out
    header = rendered.title or program.name
    for channel in channels or list(CAMPAIGN_CHANNELS):
        if channel == "wallet":
            out["channels"].append({"channel": "apple", "label": "Apple Wallet pass", "title": program.name,
                                    "body": rendered.body[:templating.LIMITS["wallet"]],
                                    "note": "The offer on the pass; the lock screen announces the change.",
                                    "warning": rendered.warnings.get("wallet")})
            out["channels"].append({"channel": "google", "label": "Google Wallet message", "title": header,
                                    "body": rendered.body, "note": "A message on the pass, with a notification.",
                                    "warning": rendered.warnings.get("wallet")})
        elif channel == "push":
            out["channels"].append({"channel": "push", "label": "Web push notification", "title": header,
                                    "body": rendered.body, "note": "Browsers show about 200 characters.",
                                    "warning": rendered.warnings.get("push")})
        else:
            parts = templating.sms_segments(rendered.body)
            out["channels"].append({"channel": "sms", "label": "SMS", "title": "", "body": rendered.body,
                                    "note": f"{len(rendered.body)} characters, {parts} SMS part"
                                            f"{'' if parts == 1 else 's'}.",
                                    "parts": parts, "warning": rendered.warnings.get("sms")})
    return out


@bp.post("/campaigns/preview")
@requires("marketer")
def campaigns_preview() -> Response:
    """The composer's live preview (JSON in, JSON out; the page's script sends the CSRF header)."""
    check_csrf()
    try:
        asked = PreviewRequest.model_validate(request.get_json(silent=True) or {})
    except ValidationError as error:
        response = jsonify({"errors": field_errors(error)})
        response.status_code = 422
        return response
    program = get_session().scalar(select(Program).where(Program.slug == asked.program))
    if program is None:
        raise NotFound(f"there is no programme {asked.program!r}")
    segment = get_session().get(Segment, asked.segment_id) if asked.segment_id else None
    if segment is not None and segment.program_id != program.id:
        segment = None
    who, values = _sample(program, segment)
    return jsonify({"sample": who, "variants": [preview_variant(program, v, values, list(asked.channels))
                                                for v in asked.variants]})


# ------------------------------------------------------------------ a campaign: page, progress, actions


def _show(campaign: Campaign, program: Program, programs: list[Program], *, status: int = 200,
          errors: dict[str, str] | None = None, scheduled_at: str = "") -> Response:
    db = get_session()
    segment = db.get(Segment, campaign.segment_id) if campaign.segment_id else None
    return render("dashboard/campaign.html", status=status, campaign=campaign, program=program, programs=programs,
                  segment=segment, progress=progress(db, campaign=campaign), errors=errors or {},
                  scheduled_at=scheduled_at, zone=_zone(program), channel_labels=CHANNEL_LABELS,
                  states=DELIVERY_STATES)


@bp.get("/campaigns/<int:campaign_id>")
@requires("viewer")
def campaigns_show(campaign_id: int) -> Response:
    return _show(*_campaign(campaign_id))


@bp.get("/campaigns/<int:campaign_id>/progress")
@requires("viewer")
def campaigns_progress(campaign_id: int) -> Response:
    campaign, _, _ = _campaign(campaign_id)
    return jsonify(progress(get_session(), campaign=campaign))


@bp.get("/campaigns/<int:campaign_id>/send")
@requires("marketer")
def campaigns_confirm(campaign_id: int) -> Response:
    campaign, program, programs = _campaign(campaign_id)
    if campaign.state not in ("draft", "scheduled"):
        flash(f"This campaign is {campaign.state}; it cannot be sent again.", "error")
        return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)
    db = get_session()
    members = audience.audience(db, campaign=campaign, now=utcnow(), sms_sender=sms_sender()).subquery()
    size = db.scalar(select(func.count()).select_from(members)) or 0
    held = int(size * campaign.holdout_percent / 100)
    segment = db.get(Segment, campaign.segment_id) if campaign.segment_id else None
    return render("dashboard/campaign_confirm.html", campaign=campaign, program=program, programs=programs,
                  size=size, held=held, segment=segment, channel_labels=CHANNEL_LABELS)


@bp.post("/campaigns/<int:campaign_id>/send")
@requires("marketer")
def campaigns_start(campaign_id: int) -> Response:
    from app.tasks.campaigns import kick

    check_csrf()
    campaign, _, _ = _campaign(campaign_id)
    db = get_session()
    size = lifecycle.start(db, campaign=campaign, now=utcnow(), sms_sender=sms_sender())
    _audit(campaign, "campaign-start", audience=size)
    db.commit()
    kick(campaign.id)
    flash(f"Sending “{campaign.name}” to {size:,} customer{'' if size == 1 else 's'}.", "success")
    return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)


@bp.post("/campaigns/<int:campaign_id>/schedule")
@requires("marketer")
def campaigns_schedule(campaign_id: int) -> Response:
    check_csrf()
    campaign, program, programs = _campaign(campaign_id)
    typed = request.form.get("scheduled_at", "").strip()[:32]
    try:
        at = to_utc(datetime.fromisoformat(typed), program) if typed else None
    except ValueError:
        at = None
    if at is None:
        return _show(campaign, program, programs, status=422, scheduled_at=typed,
                     errors={"scheduled_at": "Choose a date and time, like 2026-12-01 10:00."})
    db = get_session()
    try:
        lifecycle.schedule(db, campaign=campaign, at=at, now=utcnow())
    except InvalidInput:
        db.rollback()
        return _show(campaign, program, programs, status=422, scheduled_at=typed,
                     errors={"scheduled_at": "Choose a time in the future."})
    _audit(campaign, "campaign-scheduled", at=at.isoformat())
    db.commit()
    flash(f"“{campaign.name}” will start on {local_input(at, program).replace('T', ' ')} "
          f"({program.timezone or 'UTC'}).", "success")
    return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)


def _transition(campaign_id: int, action: str, message: str) -> Response:
    from app.tasks.campaigns import kick

    check_csrf()
    campaign, _, _ = _campaign(campaign_id)
    db, now = get_session(), utcnow()
    if action == "pause":
        lifecycle.pause(db, campaign=campaign, now=now)
    elif action == "resume":
        lifecycle.resume(db, campaign=campaign, now=now)
    else:
        lifecycle.cancel(db, campaign=campaign, now=now)
    _audit(campaign, f"campaign-{action}")
    db.commit()
    if campaign.state == "running":
        kick(campaign.id)
    flash(message.format(name=campaign.name), "success")
    return redirect(url_for("dashboard.campaigns_show", campaign_id=campaign.id), 303)


@bp.post("/campaigns/<int:campaign_id>/pause")
@requires("marketer")
def campaigns_pause(campaign_id: int) -> Response:
    return _transition(campaign_id, "pause", "“{name}” is paused; nothing more is sent until you resume it.")


@bp.post("/campaigns/<int:campaign_id>/resume")
@requires("marketer")
def campaigns_resume(campaign_id: int) -> Response:
    return _transition(campaign_id, "resume", "“{name}” is sending again.")


@bp.post("/campaigns/<int:campaign_id>/cancel")
@requires("marketer")
def campaigns_cancel(campaign_id: int) -> Response:
    return _transition(campaign_id, "cancel", "“{name}” is cancelled; what was sent stays sent.")


# ------------------------------------------------------------------ results and the delivery log


@bp.get("/campaigns/<int:campaign_id>/results")
@requires("viewer")
def campaigns_results(campaign_id: int) -> Response:
    campaign, program, programs = _campaign(campaign_id)
    # results.results needs a start time (the holdout's clock); before the start there is nothing to count.
    report = results.results(get_session(), campaign=campaign)
    rates = {name: (v["converted"] / v["sent"] if v["sent"] else None) for name, v in report.by_variant.items()}
    holdout_rate = (report.holdout["converted"] / report.holdout["customers"]
                    if report.holdout.get("customers") else None)
    chart = {"labels": [*rates, *(["Holdout"] if holdout_rate is not None else [])],
             "rates": [round((r or 0) * 100, 2) for r in rates.values()] +
                      ([round(holdout_rate * 100, 2)] if holdout_rate is not None else [])}
    return render("dashboard/campaign_results.html", campaign=campaign, program=program, programs=programs,
                  report=report, rates=rates, holdout_rate=holdout_rate, chart=chart, channel_labels=CHANNEL_LABELS)


@bp.get("/campaigns/<int:campaign_id>/deliveries")
@requires("viewer")
def campaigns_deliveries(campaign_id: int) -> Response:
    campaign, program, programs = _campaign(campaign_id)
    db, page = get_session(), page_number()
    variant_names = [v.name for v in campaign.variants]
    filters = {
        "status": request.args.get("status", "") if request.args.get("status") in DELIVERY_STATES else "",
        "channel": request.args.get("channel", "") if request.args.get("channel") in CAMPAIGN_CHANNELS else "",
        "variant": request.args.get("variant", "") if request.args.get("variant") in variant_names else "",
        "phone": request.args.get("phone", "").strip()[:20],
    }
    query = deliveries(campaign, **{k: v or None for k, v in filters.items()})
    total = count_rows(db, query)
    rows = db.execute(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render("dashboard/campaign_deliveries.html", campaign=campaign, program=program, programs=programs,
                  rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)), filters=filters,
                  states=DELIVERY_STATES, channels=CAMPAIGN_CHANNELS, variant_names=variant_names,
                  names={v.id: v.name for v in campaign.variants}, retryable=send.retryable(db, campaign=campaign),
                  zone=_zone(program))


RETRIED = {
    "failed": "{n:,} failed deliver{ies} queued again; each goes out on the first channel that reaches the "
              "customer now.",
    "interrupted": "{n:,} interrupted deliver{ies} queued again on the same channel; a web push replaces the first "
                   "copy where it is still waiting or still on the screen.",
}
NOTHING = {"failed": "No delivery had certainly failed; nothing was queued.",
           "interrupted": "No interrupted delivery can be resent; nothing was queued."}


@bp.post("/campaigns/<int:campaign_id>/retry")
@requires("marketer")
def campaigns_retry(campaign_id: int) -> Response:
    from app.tasks.campaigns import kick

    check_csrf()
    campaign, _, _ = _campaign(campaign_id)
    which = request.form.get("deliveries", "")
    if which not in send.RETRY_KINDS:
        flash("Choose which deliveries to send again: the failed ones or the interrupted ones.", "error")
        return redirect(url_for("dashboard.campaigns_deliveries", campaign_id=campaign.id), 303)
    db = get_session()
    retried = send.retry(db, campaign=campaign, deliveries=which, now=utcnow())
    _audit(campaign, "campaign-retry", deliveries=which, retried=retried.requeued)
    db.commit()
    if retried.requeued and campaign.state == "running":
        kick(campaign.id)
    n = retried.requeued
    message = RETRIED[which].format(n=n, ies="y is" if n == 1 else "ies are") if n else NOTHING[which]
    kept = sum(retried.kept.values())
    if kept:
        one = kept == 1
        message += (f" {kept:,} text message{' is' if one else 's are'} in doubt and {'was' if one else 'were'} not "
                    "resent: a second text cannot replace the first.")
    flash(message, "success")
    return redirect(url_for("dashboard.campaigns_deliveries", campaign_id=campaign.id), 303)
