"""A campaign's life: draft → scheduled → running ⇄ paused → finished | cancelled.

Creating one checks its templates and channels; starting it materialises the audience once. Every
transition not in ``TRANSITIONS`` is refused with a 422 that says which are possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import audience, templating
from app.errors import Conflict, FieldError, InvalidInput
from app.models import CAMPAIGN_CHANNELS, Campaign, CampaignVariant, Program, Segment, Store

MAX_GEO_STORES = 10  # Apple's locations and Google's merchantLocations hold 10 each

TRANSITIONS: dict[str, set[str]] = {
    "draft": {"scheduled", "running", "cancelled"},
    "scheduled": {"running", "draft", "cancelled"},
    "running": {"paused", "finished", "cancelled"},
    "paused": {"running", "cancelled"},
    "finished": set(),
    "cancelled": set(),
}


@dataclass(frozen=True)
class VariantSpec:
    name: str
    body: str
    title: str = ""
    weight: int = 1


def _check(session: Session, *, program: Program, variants: list[VariantSpec], channels: list[str],
           segment: Segment | None, holdout_percent: Decimal, now: datetime, quiet_start_hour: int,
           quiet_end_hour: int, geo_store_ids: list[int] | None, ends_at: datetime | None) -> None:
    """:raise InvalidInput: a bad template, channel, weight or holdout (every mistake, each with its field)."""
    errors: list[FieldError] = []
    unknown = [c for c in channels if c not in CAMPAIGN_CHANNELS]
    if not channels or unknown or len(set(channels)) != len(channels):
        errors.append(FieldError("channels", f"list one or more of {', '.join(CAMPAIGN_CHANNELS)}, each once"))
    if not variants or len({v.name for v in variants}) != len(variants):
        errors.append(FieldError("variants", "give at least one variant, each with its own name"))
    if not Decimal("0") <= holdout_percent <= Decimal("50"):
        errors.append(FieldError("holdout_percent", "must be between 0 and 50"))
    if segment is not None and segment.program_id != program.id:
        errors.append(FieldError("segment_id", "the segment belongs to another programme"))
    for n, variant in enumerate(variants):
        if variant.weight < 1:
            errors.append(FieldError(f"variants.{n}.weight", "must be at least 1"))
        for part in ("title", "body"):
            try:
                templating.check_template(getattr(variant, part), field_name=f"variants.{n}.{part}")
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if not variant.body.strip():
            errors.append(FieldError(f"variants.{n}.body", "the message cannot be empty"))
    if not (0 <= quiet_start_hour <= 23 and 0 <= quiet_end_hour <= 23):
        errors.append(FieldError("quiet_hours", "hours are 0 to 23"))
    if ends_at is not None and ends_at <= now:
        errors.append(FieldError("ends_at", "must be in the future"))
    if geo_store_ids:
        errors.extend(_check_geo(session, program, geo_store_ids, ends_at))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors[:5]), errors=errors)


def create(session: Session, *, program: Program, name: str, variants: list[VariantSpec], channels: list[str],
           segment: Segment | None = None, holdout_percent: Decimal = Decimal("0"), now: datetime,
           max_per_week: int | None = None, quiet_start_hour: int = 21, quiet_end_hour: int = 9,
           geo_store_ids: list[int] | None = None, ends_at: datetime | None = None,
           automation: str | None = None) -> Campaign:
    """:raise InvalidInput: a bad template, channel, weight or holdout."""
    _check(session, program=program, variants=variants, channels=channels, segment=segment,
           holdout_percent=holdout_percent, now=now, quiet_start_hour=quiet_start_hour,
           quiet_end_hour=quiet_end_hour, geo_store_ids=geo_store_ids, ends_at=ends_at)
    campaign = Campaign(program_id=program.id, name=name, segment_id=segment.id if segment else None,
                        channels=list(channels), holdout_percent=holdout_percent, max_per_week=max_per_week,
                        quiet_start_hour=quiet_start_hour, quiet_end_hour=quiet_end_hour,
                        geo_store_ids=geo_store_ids, ends_at=ends_at, automation=automation,
                        created_at=now, updated_at=now)
    campaign.variants = [CampaignVariant(name=v.name, title=v.title, body=v.body, weight=v.weight) for v in variants]
    session.add(campaign)
    session.flush()
    return campaign


def update_draft(session: Session, *, campaign: Campaign, program: Program, name: str, variants: list[VariantSpec],
                 channels: list[str], segment: Segment | None, holdout_percent: Decimal, now: datetime,
                 max_per_week: int | None, quiet_start_hour: int, quiet_end_hour: int,
                 geo_store_ids: list[int] | None, ends_at: datetime | None) -> Campaign:
    """Change a draft campaign, with the checks of :func:`create`.

    :raise Conflict: not a draft. :raise InvalidInput:"""
    if campaign.state != "draft":
        raise Conflict(f"only a draft can be edited; this campaign is {campaign.state}", code="campaign-state")
    _check(session, program=program, variants=variants, channels=channels, segment=segment,
           holdout_percent=holdout_percent, now=now, quiet_start_hour=quiet_start_hour,
           quiet_end_hour=quiet_end_hour, geo_store_ids=geo_store_ids, ends_at=ends_at)
    campaign.name, campaign.segment_id, campaign.channels = name, segment.id if segment else None, list(channels)
    campaign.holdout_percent, campaign.max_per_week = holdout_percent, max_per_week
    campaign.quiet_start_hour, campaign.quiet_end_hour = quiet_start_hour, quiet_end_hour
    campaign.geo_store_ids, campaign.ends_at, campaign.updated_at = geo_store_ids, ends_at, now
    campaign.variants.clear()
    session.flush()  # the old variants go before new ones may take their names
    campaign.variants.extend(CampaignVariant(name=v.name, title=v.title, body=v.body, weight=v.weight)
                             for v in variants)
    session.flush()
    return campaign


def _check_geo(session: Session, program: Program, store_ids: list[int], ends_at: datetime | None
               ) -> list[FieldError]:
    """A geo campaign names up to 10 of the programme's stores, each with coordinates, and ends."""
    errors = []
    if len(store_ids) > MAX_GEO_STORES or len(set(store_ids)) != len(store_ids):
        errors.append(FieldError("geo_store_ids", f"name up to {MAX_GEO_STORES} stores, each once "
                                                  "(a pass holds 10 locations)"))
    stores = {s.id: s for s in session.scalars(select(Store).where(Store.id.in_(store_ids),
                                                                    Store.program_id == program.id))}
    unknown = [str(i) for i in store_ids if i not in stores]
    if unknown:
        errors.append(FieldError("geo_store_ids", f"not stores of this programme: {', '.join(unknown)}"))
    closed = [s.name for s in stores.values() if s.closed_at is not None]
    if closed:
        errors.append(FieldError("geo_store_ids", f"closed stores: {', '.join(closed)}"))
    unplaced = [s.name for s in stores.values() if s.latitude is None or s.longitude is None]
    if unplaced:
        errors.append(FieldError("geo_store_ids", f"set the coordinates of {', '.join(sorted(unplaced))} first"))
    if ends_at is None:
        errors.append(FieldError("ends_at", "a geo campaign needs an end: its stores stay on the cards until then"))
    return errors


def _move(campaign: Campaign, to: str, now: datetime) -> None:
    if to not in TRANSITIONS[campaign.state]:
        allowed = ", ".join(sorted(TRANSITIONS[campaign.state])) or "none"
        raise Conflict(f"a {campaign.state} campaign cannot become {to} (possible: {allowed})",
                       code="campaign-state")
    campaign.state, campaign.updated_at = to, now


def schedule(session: Session, *, campaign: Campaign, at: datetime, now: datetime) -> None:
    if at <= now:
        raise InvalidInput("the start must be in the future", errors=[FieldError("scheduled_at", "in the past")])
    _move(campaign, "scheduled", now)
    campaign.scheduled_at = at
    session.flush()


def start(session: Session, *, campaign: Campaign, now: datetime, sms_sender: str | None = None) -> int:
    """Materialise the audience (once) and let the senders go. Returns the audience size."""
    _move(campaign, "running", now)
    campaign.started_at = campaign.started_at or now
    if campaign.materialised_at is None:
        audience.materialise(session, campaign=campaign, now=now, sms_sender=sms_sender)
    session.flush()
    return campaign.audience_size or 0


def pause(session: Session, *, campaign: Campaign, now: datetime, reason: str = "paused by a marketer") -> None:
    _move(campaign, "paused", now)
    campaign.pause_reason = reason
    session.flush()


def resume(session: Session, *, campaign: Campaign, now: datetime) -> None:
    _move(campaign, "running", now)
    campaign.pause_reason = None
    session.flush()


def cancel(session: Session, *, campaign: Campaign, now: datetime) -> None:
    _move(campaign, "cancelled", now)
    campaign.finished_at = now
    session.flush()
