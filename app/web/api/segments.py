"""Segments over the API: rule, RFM and static segments (list, create, change, delete), a live count, a CSV of
members, and the RFM distribution with a recompute."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from flask import current_app, request
from pydantic import Field, RootModel, WithJsonSchema
from sqlalchemy import func, select

from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest, Conflict, FieldError
from app.field_types import line
from app.loyalty.programs import phone_region
from app.merchants import audit
from app.models import Segment
from app.segments import catalog, manage, rfm_report, rules
from app.segments.rfm import SEGMENT_NAMES
from app.web.api import api_actor, bp, get_or_404, program_by_slug
from app.web.api._models import LISTED, REF, In, Out, ProgramSlug
from app.web.api.openapi import operation
from app.web.messaging import sms_sender

MAX_CSV = 5 * 1024 * 1024
TAG = "segments"
PAGE_SIZE = 50

# The rule tree's schema, written out from the fields rules can use (app.segments.rules.json_schemas).
LISTED.update(rules.json_schemas(lambda name: REF.format(model=name)))
Tree = Annotated[dict[str, Any], WithJsonSchema({"type": "object", "x-listed-as": "RuleNode"})]
RfmNames = Annotated[list[Literal[SEGMENT_NAMES]], Field(min_length=1, max_length=len(SEGMENT_NAMES))]  # type: ignore[valid-type]
Name = line(120)


class RulesSegmentIn(In):
    """A segment of the customers the rules match, counted afresh at each use."""

    program: ProgramSlug
    name: Name  # type: ignore[valid-type]
    kind: Literal["rules"]
    rules: Tree


class RfmSegmentIn(In):
    """A segment of the customers in some RFM segments."""

    program: ProgramSlug
    name: Name  # type: ignore[valid-type]
    kind: Literal["rfm"]
    segments: RfmNames = Field(description="RFM segment names.")


class StaticSegmentIn(In):
    """A list of customers, filled by importing a CSV of phones or e-mails."""

    program: ProgramSlug
    name: Name  # type: ignore[valid-type]
    kind: Literal["static"]


class SegmentIn(RootModel[Annotated[RulesSegmentIn | RfmSegmentIn | StaticSegmentIn, Field(discriminator="kind")]]):
    """A new segment: its kind says what else it needs."""


class SegmentPatchIn(In):
    """Only the fields given change; a segment's kind never changes (``rules`` for another kind than `rules`, or
    ``segments`` for another than `rfm`, is a conflict: 409)."""

    name: Name | None = None  # type: ignore[valid-type]
    rules: Tree | None = Field(default=None, description="The condition tree (kind `rules` only).")
    segments: RfmNames | None = Field(default=None, description="RFM segment names (kind `rfm` only).")


class SegmentPutIn(SegmentPatchIn):
    """The whole segment: its name, and its rules (kind `rules`) or RFM names (kind `rfm`; missing for a segment
    of that kind: 409)."""

    name: Name  # type: ignore[valid-type]


class ListQuery(In):
    program: ProgramSlug
    page: int = Field(default=1, ge=1, le=100_000)


class PreviewIn(In):
    program: ProgramSlug
    rules: Tree


class SegmentOut(Out):
    """A segment, with how many customers it holds now."""

    id: int
    name: str
    kind: str
    definition: dict[str, Any]
    count: int


class SegmentListOut(Out):
    """A page of the programme's segments, by name, each with its count now."""

    items: list[SegmentOut]
    page: int
    page_size: int
    total: int


class RfmOut(Out):
    """Customers with an active card per RFM segment, and how the programme computes the scores."""

    program: str
    mode: str
    window_days: int
    counts: dict[str, int] = Field(description="Every RFM segment name, in the standard order.")
    scored: int
    unscored: int = Field(description="Customers without a purchase in the window (no RFM segment).")
    thresholds: list[str] = Field(description="Fixed mode: the cut-offs in words.")
    thresholds_error: str | None = Field(description="Fixed mode: why the thresholds are not valid.")
    computed_at: datetime | None = Field(description="When the scores were computed (None: not yet).")
    last_requested_at: datetime | None = Field(description="When a recompute was last asked for (dashboard or API).")
    schedule: str


class RecomputeOut(Out):
    """The recompute was started (``queued``) or, on a deployment without a broker, already ran (``done``)."""

    state: Literal["queued", "done"]


class CountOut(Out):
    """How many customers the rules match now."""

    count: int


class ImportOut(Out):
    """What a CSV import added, and the lines it could not use (the first 100 of each)."""

    added: int
    unmatched: list[str]
    invalid: list[str]


def _out(segment: Segment) -> SegmentOut:
    count = rules.count(get_session(), segment=segment, now=utcnow(), sms_sender=sms_sender())
    return SegmentOut(id=segment.id, name=segment.name, kind=segment.kind, definition=segment.definition,
                      count=count)



@bp.get("/segments")
@operation(summary="The programme's segments with their counts", tag=TAG, query=ListQuery,
           responses={200: SegmentListOut})
def list_segments(query: ListQuery) -> SegmentListOut:
    program, db = program_by_slug(query.program), get_session()
    where = Segment.program_id == program.id
    total = db.scalar(select(func.count()).select_from(Segment).where(where)) or 0
    page = list(db.scalars(select(Segment).where(where).order_by(Segment.name, Segment.id)
                           .offset((query.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return SegmentListOut(items=[_out(s) for s in page], page=query.page, page_size=PAGE_SIZE, total=total)


@bp.post("/segments")
@operation(summary="Create a segment", tag=TAG, body=SegmentIn, responses={201: SegmentOut},
           problems={409: "Another segment of the programme has this name."}, rules=rules.TREE_RULES)
def create_segment(body: SegmentIn) -> tuple[SegmentOut, int]:
    given = body.root
    program, db = program_by_slug(given.program), get_session()
    segment = manage.create(db, program=program, name=given.name, kind=given.kind, actor=api_actor(), now=utcnow(),
                            tree=given.rules if isinstance(given, RulesSegmentIn) else None,
                            rfm_names=given.segments if isinstance(given, RfmSegmentIn) else None)
    out = _out(segment)
    db.commit()
    return out, 201


def _change(segment_id: int, body: SegmentPatchIn, *, whole: bool) -> SegmentOut:
    segment, db = get_or_404(Segment, segment_id, "segment"), get_session()
    if whole:  # PUT: the kind's own part is required, not kept; which part depends on the stored kind
        needed = {"rules": "rules", "rfm": "segments"}.get(segment.kind)
        if needed and getattr(body, needed) is None:
            raise Conflict(f"A {segment.kind} segment needs {needed}", code="segment-kind",
                           errors=[FieldError(needed, "is required")])
    manage.update(db, segment=segment, actor=api_actor(), now=utcnow(), name=body.name, tree=body.rules,
                  rfm_names=body.segments)
    out = _out(segment)
    db.commit()
    return out


@bp.put("/segments/<int:segment_id>")
@operation(summary="Replace a segment's name and rules (or RFM names)", tag=TAG, body=SegmentPutIn,
           responses={200: SegmentOut}, rules=rules.TREE_RULES)
def replace_segment(segment_id: int, body: SegmentPutIn) -> SegmentOut:
    return _change(segment_id, body, whole=True)


@bp.patch("/segments/<int:segment_id>")
@operation(summary="Change a segment's name, rules or RFM names (only the fields given)", tag=TAG,
           body=SegmentPatchIn, responses={200: SegmentOut}, rules=rules.TREE_RULES)
def edit_segment(segment_id: int, body: SegmentPatchIn) -> SegmentOut:
    return _change(segment_id, body, whole=False)


@bp.delete("/segments/<int:segment_id>")
@operation(summary="Delete a segment (refused while a draft, scheduled, running or paused campaign uses it)",
           tag=TAG, responses={204: None})
def delete_segment(segment_id: int) -> tuple[None, int]:
    segment, db = get_or_404(Segment, segment_id, "segment"), get_session()
    manage.delete(db, segment=segment, actor=api_actor(), now=utcnow())
    db.commit()
    return None, 204


@bp.post("/segments/preview")
@operation(summary="Count the customers some rules match", tag=TAG, body=PreviewIn, responses={200: CountOut},
           role="viewer", rules=rules.TREE_RULES)
def preview_segment(body: PreviewIn) -> CountOut:
    program = program_by_slug(body.program)
    catalog.refuse_nul(body.rules)
    return CountOut(count=rules.count(get_session(), tree=body.rules, program_id=program.id, now=utcnow(),
                                      sms_sender=sms_sender()))


@bp.get("/segments/<int:segment_id>")
@operation(summary="A segment and its count", tag=TAG, responses={200: SegmentOut})
def get_segment(segment_id: int) -> SegmentOut:
    return _out(get_or_404(Segment, segment_id, "segment"))


@bp.post("/segments/<int:segment_id>/import")
@operation(summary="Add customers to a static segment from a CSV of phones or e-mails", tag=TAG,
           raw_body="text/csv", responses={200: ImportOut})
def import_segment(segment_id: int) -> ImportOut:
    segment, db = get_or_404(Segment, segment_id, "segment"), get_session()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_CSV:
        raise BadRequest("the file is larger than 5 MB", code="too-large")
    outcome = rules.import_static(db, segment=segment, csv_text=raw.decode("utf-8-sig", errors="replace"),
                                  region=phone_region(db, program_id=segment.program_id,
                                                      default=current_app.config["TALLYPASS"].default_phone_region))
    audit.record(db, actor=api_actor(), action="segment.import", now=utcnow(), target=f"segment:{segment.id}",
                 details={"added": outcome.added, "unmatched": len(outcome.unmatched),
                          "invalid": len(outcome.invalid)})
    db.commit()
    return ImportOut(added=outcome.added, unmatched=outcome.unmatched[:100], invalid=outcome.invalid[:100])


def _rfm_out(slug: str) -> RfmOut:
    program, db = program_by_slug(slug), get_session()
    figures = rfm_report.distribution(db, program=program)
    settings = rfm_report.settings(program)
    last = rfm_report.last_requested(db, program=program)
    return RfmOut(program=program.slug, mode=settings.mode, window_days=settings.window_days, counts=figures.counts,
                  scored=figures.scored, unscored=figures.unscored, thresholds=settings.lines,
                  thresholds_error=settings.error, computed_at=program.rfm_computed_at,
                  last_requested_at=last.at if last else None,
                  schedule=rfm_report.NIGHTLY)


@bp.get("/programs/<slug>/rfm")
@operation(summary="Customers per RFM segment, and the programme's RFM settings", tag=TAG, responses={200: RfmOut})
def program_rfm(slug: str) -> RfmOut:
    return _rfm_out(slug)


@bp.post("/programs/<slug>/rfm/recompute")
@operation(summary="Recompute the RFM scores now (every programme, as the nightly job does)", tag=TAG,
           responses={202: RecomputeOut})
def recompute_program_rfm(slug: str) -> tuple[RecomputeOut, int]:
    program, db = program_by_slug(slug), get_session()
    audit.record(db, actor=api_actor(), action=rfm_report.RECOMPUTE_ACTION, now=utcnow(),
                 target=f"program:{program.id}")
    db.commit()
    from app.tasks.segments import recompute_rfm

    recompute_rfm.delay()  # after the commit; inline when no broker is configured
    eager = bool(current_app.extensions["celery"].conf.task_always_eager)
    return RecomputeOut(state="done" if eager else "queued"), 202
