"""Segments: the list with live counts, the rule builder (with a live count), RFM and static segments, and
the RFM view. Viewers look; marketers create, change and delete."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, flash, jsonify, redirect, request, url_for
from sqlalchemy import select

from app.database import get_session
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.loyalty.programs import phone_region
from app.merchants import audit
from app.models import Program, Segment
from app.segments import catalog, manage, rfm_report, rules
from app.segments.rfm import SEGMENT_NAMES
from app.web.bodies import loads
from app.web.dashboard import bp
from app.web.dashboard.access import current_user, may, requires
from app.web.dashboard.pages import programme, render
from app.web.forms import check_csrf
from app.web.messaging import sms_sender

KINDS = {"rules": "Rules", "rfm": "RFM", "static": "Imported list"}
MAX_RULES_JSON = 60_000
MAX_CSV = rules.MAX_IMPORT_BYTES
SHOWN_LINES = 50



def _count(segment: Segment) -> int | None:
    try:
        return rules.count(get_session(), segment=segment, now=utcnow(), sms_sender=sms_sender())
    except InvalidInput:  # a definition stored before it was checked: shown as "—", fixed by editing it
        return None


def _segment(segment_id: int) -> tuple[Segment, Program, list[Program]]:
    db = get_session()
    segment = db.get(Segment, segment_id)
    if segment is None:
        raise NotFound("there is no such segment; it may have been deleted")
    programs = list(db.scalars(select(Program).order_by(Program.name)))
    program = next(p for p in programs if p.id == segment.program_id)
    return segment, program, programs


@bp.get("/segments")
@requires("viewer")
def segments() -> Response:
    program, programs = programme()
    db = get_session()
    rows = list(db.scalars(select(Segment).where(Segment.program_id == program.id).order_by(Segment.name)))
    listed = [(s, _count(s)) for s in rows]
    return render("dashboard/segments.html", program=program, programs=programs, listed=listed, kinds=KINDS)


# ---------------------------------------------------------------- the builder / forms


def _form_page(*, program: Program, programs: list[Program], kind: str, segment: Segment | None,
               name: str, tree_text: str, rfm_names: list[str], errors: dict[str, str], status: int = 200,
               import_report: dict[str, Any] | None = None) -> Response:
    db = get_session()
    user = current_user()
    editable = may(user, "marketer")
    return render(
        "dashboard/segment_form.html", status=status, program=program, programs=programs, kind=kind,
        kinds=KINDS, segment=segment, name=name, tree_text=tree_text, rfm_names=rfm_names, errors=errors,
        editable=editable, rfm_all=SEGMENT_NAMES, import_report=import_report,
        count=_count(segment) if segment is not None and not errors else None,
        users=[c.name for c in manage.campaigns_using(db, segment=segment)] if segment is not None else [],
        builder={"catalog": catalog.catalog(db, program=program), "errors": errors, "editable": editable,
                 "program": program.slug, "count_url": url_for("dashboard.segments_count")},
    )


def _tree_from_form() -> tuple[Any, str, dict[str, str]]:
    """The tree typed in the form (the builder keeps the ``rules`` field up to date), its text, and an error
    when it is not JSON."""
    text = request.form.get("rules", "").strip() or '{"all": []}'
    if len(text) > MAX_RULES_JSON:
        return None, text[:MAX_RULES_JSON], {"rules": "The rules are too long; split them into several segments."}
    try:
        return loads(text), text, {}  # the service's JSON limits (depth, numbers, NUL)
    except ValueError:
        return None, text, {"rules": 'The rules are not valid JSON, e.g. {"all": [{"field": "balance", '
                                     '"op": "gte", "value": 20}]}.'}


@bp.get("/segments/new")
@requires("marketer")
def segments_new() -> Response:
    program, programs = programme()
    kind = request.args.get("kind", "rules")
    kind = kind if kind in KINDS else "rules"
    return _form_page(program=program, programs=programs, kind=kind, segment=None, name="",
                      tree_text='{"all": []}', rfm_names=[], errors={})


@bp.post("/segments/new")
@requires("marketer")
def segments_create() -> Response:
    check_csrf()
    program, programs = programme()
    kind = request.form.get("kind", "rules")
    kind = kind if kind in KINDS else "rules"
    name = request.form.get("name", "")[:500]
    rfm_names = request.form.getlist("segments")[:len(SEGMENT_NAMES) + 5]
    tree, tree_text, errors = _tree_from_form() if kind == "rules" else (None, '{"all": []}', {})
    db = get_session()
    if not errors:
        try:
            segment = manage.create(db, program=program, name=name, kind=kind, actor=current_user(), now=utcnow(),
                                    tree=tree, rfm_names=rfm_names)
        except (InvalidInput, Conflict) as exc:  # Conflict: the name is taken
            errors = catalog.errors_by_path(exc)
        else:
            db.commit()
            flash(f"Segment “{segment.name}” saved.", "success")
            target = "dashboard.segments_edit" if kind == "static" else "dashboard.segments"
            args = {"segment_id": segment.id} if kind == "static" else {"program": program.slug}
            return redirect(url_for(target, **args), 303)
    return _form_page(program=program, programs=programs, kind=kind, segment=None, name=name, tree_text=tree_text,
                      rfm_names=rfm_names, errors=errors, status=422)


@bp.get("/segments/<int:segment_id>")
@requires("viewer")
def segments_edit(segment_id: int) -> Response:
    segment, program, programs = _segment(segment_id)
    return _form_page(program=program, programs=programs, kind=segment.kind, segment=segment, name=segment.name,
                      tree_text=json.dumps(segment.definition or {"all": []}, indent=1),
                      rfm_names=list((segment.definition or {}).get("segments") or []), errors={})


@bp.post("/segments/<int:segment_id>")
@requires("marketer")
def segments_update(segment_id: int) -> Response:
    check_csrf()
    segment, program, programs = _segment(segment_id)
    name = request.form.get("name", "")[:500]
    rfm_names = request.form.getlist("segments")[:len(SEGMENT_NAMES) + 5]
    tree, tree_text, errors = (_tree_from_form() if segment.kind == "rules"
                               else (None, json.dumps(segment.definition or {}), {}))
    db = get_session()
    if not errors:
        try:
            manage.update(db, segment=segment, actor=current_user(), now=utcnow(), name=name,
                          tree=tree if segment.kind == "rules" else None,
                          rfm_names=rfm_names if segment.kind == "rfm" else None)
        except (InvalidInput, Conflict) as exc:  # Conflict: the name is taken
            errors = catalog.errors_by_path(exc)
        else:
            db.commit()
            flash(f"Segment “{segment.name}” saved.", "success")
            return redirect(url_for("dashboard.segments", program=program.slug), 303)
    return _form_page(program=program, programs=programs, kind=segment.kind, segment=segment, name=name,
                      tree_text=tree_text, rfm_names=rfm_names, errors=errors, status=422)


@bp.post("/segments/<int:segment_id>/delete")
@requires("marketer")
def segments_delete(segment_id: int) -> Response:
    check_csrf()
    segment, program, _ = _segment(segment_id)
    db = get_session()
    name = segment.name
    try:
        manage.delete(db, segment=segment, actor=current_user(), now=utcnow())
    except Conflict as exc:
        flash(exc.detail, "error")
        return redirect(url_for("dashboard.segments_edit", segment_id=segment_id), 303)
    db.commit()
    flash(f"Segment “{name}” deleted.", "success")
    return redirect(url_for("dashboard.segments", program=program.slug), 303)


@bp.post("/segments/<int:segment_id>/import")
@requires("marketer")
def segments_import(segment_id: int) -> Response:
    check_csrf()
    segment, program, programs = _segment(segment_id)
    upload = request.files.get("file")
    errors: dict[str, str] = {}
    report = None
    if segment.kind != "static":
        errors["file"] = "Only an imported-list segment takes a file."
    elif upload is None or not upload.filename:
        errors["file"] = "Choose a CSV file of phone numbers or e-mail addresses."
    else:
        raw = upload.stream.read(MAX_CSV + 1)
        if len(raw) > MAX_CSV:
            errors["file"] = "The file is larger than 5 MB; split it into smaller files."
        else:
            db = get_session()
            try:
                outcome = rules.import_static(db, segment=segment, csv_text=raw.decode("utf-8-sig", errors="replace"),
                                              region=phone_region(
                                                  db, program_id=segment.program_id,
                                                  default=current_app.config["TALLYPASS"].default_phone_region))
            except InvalidInput as exc:
                errors = {"file": exc.errors[0].message[:1].upper() + exc.errors[0].message[1:] + "."
                          if exc.errors else exc.detail}
            else:
                audit.record(db, actor=current_user(), action="segment.import", now=utcnow(),
                             target=f"segment:{segment.id}",
                             details={"added": outcome.added, "unmatched": len(outcome.unmatched),
                                      "invalid": len(outcome.invalid)})
                db.commit()
                report = {"added": outcome.added, "unmatched": outcome.unmatched[:SHOWN_LINES],
                          "unmatched_total": len(outcome.unmatched), "invalid": outcome.invalid[:SHOWN_LINES],
                          "invalid_total": len(outcome.invalid), "filename": upload.filename[:200]}
    return _form_page(program=program, programs=programs, kind=segment.kind, segment=segment, name=segment.name,
                      tree_text="{}", rfm_names=[], errors=errors, status=422 if errors else 200,
                      import_report=report)


@bp.post("/segments/count")
@requires("viewer")
def segments_count() -> Response:
    """The live count: ``{"program": slug, "rules": tree}`` → ``{"count": n}``, or 422 ``{"errors": {path:
    message}}`` naming the rows in error. A count changes nothing, so viewers may ask too."""
    check_csrf()
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("program"), str):
        return _json_errors({"rules": 'Send {"program": "<slug>", "rules": {...}} as JSON.'})
    db = get_session()
    program = db.scalar(select(Program).where(Program.slug == data["program"][:64].replace("\x00", "")))
    if program is None:
        return _json_errors({"program": "There is no such programme."}, status=404)
    try:
        catalog.refuse_nul(data.get("rules"))
        n = rules.count(db, tree=data.get("rules"), program_id=program.id, now=utcnow(), sms_sender=sms_sender())
    except InvalidInput as exc:
        return _json_errors(catalog.errors_by_path(exc))
    return jsonify(count=n)


def _json_errors(errors: dict[str, str], status: int = 422) -> Response:
    response = jsonify(errors=errors)
    response.status_code = status
    return response


# ---------------------------------------------------------------- RFM


@bp.get("/segments/rfm")
@requires("viewer")
def segments_rfm() -> Response:
    program, programs = programme()
    db = get_session()
    figures = rfm_report.distribution(db, program=program)
    return render("dashboard/segment_rfm.html", program=program, programs=programs, figures=figures,
                  settings=rfm_report.settings(program), legend=rfm_report.segment_rules(),
                  last=rfm_report.last_requested(db, program=program), nightly=rfm_report.NIGHTLY,
                  chart={"labels": list(figures.counts), "values": list(figures.counts.values())})


@bp.post("/segments/rfm/recompute")
@requires("marketer")
def segments_rfm_recompute() -> Response:
    check_csrf()
    program, _ = programme()
    db = get_session()
    audit.record(db, actor=current_user(), action=rfm_report.RECOMPUTE_ACTION, now=utcnow(),
                 target=f"program:{program.id}")
    db.commit()
    from app.tasks.segments import recompute_rfm

    recompute_rfm.delay()  # after the commit; inline when no broker is configured
    if current_app.extensions["celery"].conf.task_always_eager:
        flash("RFM scores recomputed.", "success")
    else:
        flash("RFM scores are being recomputed. Reload this page in a minute to see the new counts.", "success")
    back = "dashboard.overview" if request.form.get("back") == "overview" else "dashboard.segments_rfm"
    return redirect(url_for(back, program=program.slug), 303)
