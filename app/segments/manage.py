"""Creating, changing and deleting segments, each change audited. No Flask here: flush, never commit.

A segment's name is unique in its programme. A rule segment's tree must parse (``rules.parse_rules``); an RFM
segment lists names of ``rfm.SEGMENT_NAMES``; a static segment holds an imported list (``rules.import_static``).
A segment that a campaign still needs (a draft, scheduled, running or paused campaign) cannot be deleted: the
campaign would otherwise lose its audience and go to every customer instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, FieldError, InvalidInput
from app.merchants import audit
from app.models import SEGMENT_KINDS, Campaign, Program, Segment, User
from app.segments import catalog, rules
from app.segments.rfm import SEGMENT_NAMES

MAX_NAME = 120
# Campaigns in these states still read their segment (ondelete SET NULL would make them go to everyone).
USING_STATES = ("draft", "scheduled", "running", "paused")


def _name(session: Session, *, program_id: int, name: Any, segment_id: int | None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The segment needs a name", errors=[FieldError("name", "Give the segment a name.")])
    name = name.strip()
    if "\x00" in name:
        raise InvalidInput("The name holds a NUL character",
                           errors=[FieldError("name", "Use letters, digits and punctuation only.")])
    if len(name) > MAX_NAME:
        raise InvalidInput("The name is too long",
                           errors=[FieldError("name", f"Use at most {MAX_NAME} characters.")])
    taken = select(Segment.id).where(Segment.program_id == program_id, func.lower(Segment.name) == name.lower())
    if segment_id is not None:
        taken = taken.where(Segment.id != segment_id)
    if session.scalar(taken.limit(1)) is not None:  # the request is fine; the programme's state is not
        raise Conflict(f"There is already a segment called {name!r}", code="name-taken",
                       errors=[FieldError("name", "Another segment of this programme has this name.")])
    return name


def definition_for(kind: str, *, tree: Any = None, rfm_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The stored definition of a segment of ``kind``, validated.

    :raise InvalidInput: field errors under ``rules.`` (the tree) or ``segments``.
    """
    if kind == "rules":
        catalog.refuse_nul(tree)
        rules.parse_rules(tree if tree is not None else {}, path="rules")
        return dict(tree) if isinstance(tree, dict) else {}
    if kind == "rfm":
        names = list(rfm_names or [])
        unknown = [n for n in names if n not in SEGMENT_NAMES]
        if unknown or not names:
            message = (f"{unknown[0]!r} is not an RFM segment; choose from {', '.join(SEGMENT_NAMES)}" if unknown
                       else "Choose at least one RFM segment.")
            raise InvalidInput("The RFM segments are not valid", errors=[FieldError("segments", message)])
        return {"segments": [n for n in SEGMENT_NAMES if n in names]}  # the standard order, no duplicates
    if kind == "static":
        return {}
    raise InvalidInput(f"unknown segment kind {kind!r}",
                       errors=[FieldError("kind", f"Must be one of {', '.join(SEGMENT_KINDS)}.")])


def _validate(session: Session, *, program_id: int, segment_id: int | None, name: Any, kind: str, tree: Any,
              rfm_names: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    """Both checks, with every field error together (so a form shows them all at once).

    :raise InvalidInput: something is not valid (a taken name listed too). :raise Conflict: only the name is
        taken."""
    errors: list[FieldError] = []
    checked_name, definition = "", {}
    taken: Conflict | None = None
    try:
        checked_name = _name(session, program_id=program_id, name=name, segment_id=segment_id)
    except InvalidInput as exc:
        errors += exc.errors
    except Conflict as exc:
        taken = exc
    try:
        definition = definition_for(kind, tree=tree, rfm_names=rfm_names)
    except InvalidInput as exc:
        errors += exc.errors
    if errors:
        errors = (taken.errors if taken else []) + errors
        detail = "The segment is not valid: " + "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        raise InvalidInput(detail, errors=errors)
    if taken is not None:
        raise taken
    return checked_name, definition


def create(session: Session, *, program: Program, name: Any, kind: str, actor: User | str, now: datetime,
           tree: Any = None, rfm_names: Sequence[str] | None = None) -> Segment:
    """A new segment.

    :raise InvalidInput: the name is missing or too long; the tree or RFM names are not valid.
    :raise Conflict: the name is taken.
    """
    checked, definition = _validate(session, program_id=program.id, segment_id=None, name=name, kind=kind,
                                    tree=tree, rfm_names=rfm_names)
    segment = Segment(program_id=program.id, name=checked, kind=kind, definition=definition, created_at=now,
                      updated_at=now)
    session.add(segment)
    session.flush()
    audit.record(session, actor=actor, action="segment.create", now=now, target=f"segment:{segment.id}",
                 details={"name": checked, "kind": kind})
    return segment


def update(session: Session, *, segment: Segment, actor: User | str, now: datetime, name: Any = None,
           tree: Any = None, rfm_names: Sequence[str] | None = None) -> Segment:
    """Rename a segment and/or change its rules (kind ``rules``) or RFM names (kind ``rfm``); ``None`` keeps
    what is there. The kind never changes.

    :raise InvalidInput: as for :func:`create`. :raise Conflict: as for :func:`create`, or a tree/RFM names given
        for a segment of another kind.
    """
    wrong = ((tree is not None and segment.kind != "rules") or (rfm_names is not None and segment.kind != "rfm"))
    if wrong:
        field = "rules" if tree is not None else "segments"
        raise Conflict(f"A {segment.kind} segment has no {field}", code="segment-kind",
                       errors=[FieldError(field, f"A {segment.kind} segment cannot take this.")])
    if segment.kind == "rules" and tree is None:
        tree = segment.definition
    if segment.kind == "rfm" and rfm_names is None:
        rfm_names = (segment.definition or {}).get("segments") or []
    checked, definition = _validate(
        session, program_id=segment.program_id, segment_id=segment.id,
        name=segment.name if name is None else name, kind=segment.kind, tree=tree, rfm_names=rfm_names)
    changed = [key for key, before, after in (("name", segment.name, checked),
                                              ("definition", segment.definition, definition)) if before != after]
    if segment.kind == "static":
        definition = segment.definition
    segment.name, segment.definition, segment.updated_at = checked, definition, now
    session.flush()
    if changed:
        audit.record(session, actor=actor, action="segment.update", now=now, target=f"segment:{segment.id}",
                     details={"name": checked, "changed": changed})
    return segment


def campaigns_using(session: Session, *, segment: Segment) -> list[Campaign]:
    """The campaigns that still need the segment (see ``USING_STATES``)."""
    return list(session.scalars(select(Campaign).where(Campaign.segment_id == segment.id,
                                                       Campaign.state.in_(USING_STATES)).order_by(Campaign.id)))


def delete(session: Session, *, segment: Segment, actor: User | str, now: datetime) -> None:
    """Delete a segment (and a static segment's list).

    :raise Conflict: a draft, scheduled, running or paused campaign uses it (named in the message).
    """
    using = campaigns_using(session, segment=segment)
    if using:
        names = ", ".join(f"“{c.name}” ({c.state})" for c in using[:5]) + (" and more" if len(using) > 5 else "")
        raise Conflict(f"The segment “{segment.name}” cannot be deleted while a campaign uses it: {names}. "
                       "Finish or cancel the campaign, or choose another segment for it, first.",
                       code="segment-in-use", extra={"campaigns": [c.id for c in using]})
    audit.record(session, actor=actor, action="segment.delete", now=now, target=f"segment:{segment.id}",
                 details={"name": segment.name, "kind": segment.kind})
    session.delete(segment)
    session.flush()
