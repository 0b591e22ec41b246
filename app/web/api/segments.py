"""Segments over the API: rule, RFM and static segments, a live count, a CSV of members."""

from __future__ import annotations

from typing import Any, Literal

from flask import current_app, request
from pydantic import Field

from app.database import get_session
from app.db import utcnow
from app.errors import BadRequest
from app.models import Segment
from app.segments import rules
from app.web.api import bp, get_or_404, program_by_slug, sms_sender
from app.web.api._models import In, Out
from app.web.api.openapi import operation

MAX_CSV = 5 * 1024 * 1024
TAG = "segments"


class SegmentIn(In):
    program: str = Field(max_length=64, description="The programme's slug.")
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["rules", "rfm", "static"]
    rules: dict[str, Any] | None = Field(default=None, description="The condition tree (kind `rules`).")
    segments: list[str] | None = Field(default=None, max_length=20, description="RFM segment names (kind `rfm`).")


class PreviewIn(In):
    program: str = Field(max_length=64)
    rules: dict[str, Any]


class SegmentOut(Out):
    """A segment, with how many customers it holds now."""

    id: int
    name: str
    kind: str
    definition: dict[str, Any]
    count: int


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


@bp.post("/segments")
@operation(summary="Create a segment", tag=TAG, body=SegmentIn, responses={201: SegmentOut})
def create_segment(body: SegmentIn) -> tuple[SegmentOut, int]:
    program, db, now = program_by_slug(body.program), get_session(), utcnow()
    definition: dict[str, Any] = {}
    if body.kind == "rules":
        rules.parse_rules(body.rules or {}, path="rules")  # InvalidInput, with the path of each mistake
        definition = body.rules or {}
    elif body.kind == "rfm":
        definition = {"segments": body.segments or []}
    segment = Segment(program_id=program.id, name=body.name, kind=body.kind, definition=definition,
                      created_at=now, updated_at=now)
    db.add(segment)
    db.flush()
    out = _out(segment)
    db.commit()
    return out, 201


@bp.post("/segments/preview")
@operation(summary="Count the customers some rules match", tag=TAG, body=PreviewIn, responses={200: CountOut},
           role="viewer")
def preview_segment(body: PreviewIn) -> CountOut:
    program = program_by_slug(body.program)
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
                                  region=current_app.config["TALLYPASS"].default_phone_region)
    db.commit()
    return ImportOut(added=outcome.added, unmatched=outcome.unmatched[:100], invalid=outcome.invalid[:100])
