"""The programme page: earn rules and bonuses, tiers, bonus rules, and the card designer with a live preview
of the Apple and Google cards. Viewers read it; marketers save. A change to what the cards show starts a
re-sync job (every pass re-sent), whose progress the page's script follows."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, cast

from flask import Response, current_app, flash, jsonify, redirect, request, url_for

from app.channels.apple_pass import DESIGN_DIR
from app.contrast import AA_TEXT, UNREADABLE, contrast_ratio, ratio_text
from app.database import get_session
from app.db import utcnow
from app.errors import AppError, InvalidInput, NotFound
from app.loyalty import programs as programs_service
from app.loyalty import settings as service
from app.loyalty.program_creation import phone_regions
from app.loyalty.settings import COLOUR
from app.models import BonusRule, Job, Program, Tier, User
from app.tasks.design import resync_design
from app.wallet import images
from app.wallet.links import program_links
from app.web.dashboard import bp, pages
from app.web.dashboard.access import current_user, may, requires
from app.web.display import plain_decimal
from app.web.forms import check_csrf

log = logging.getLogger(__name__)

SETTINGS_FIELDS = ("name", "point_value", "redeem_cap_percent", "max_purchase_amount", "tier_window_days",
                   "expiry_days", "welcome_bonus", "birthday_bonus", "referrer_bonus", "referred_bonus", "terms",
                   "privacy_policy_url", "phone_region")
DESIGN_FIELDS = ("background_color", "foreground_color", "label_color", "logo_text")
TIER_FIELDS = ("name", "qualifying_spend", "earn_percent", "perks")
RULE_FIELDS = ("event_name", "points", "limit_per_period", "period")
UPLOADS = ("logo", "strip")
# Two images of at most 2 MB each and the form's fields; every other dashboard form keeps the app's 64 KB.
UPLOAD_REQUEST_LIMIT = 2 * images.MAX_BYTES + 256 * 1024
MAX_FIELD = 5000
OPTIONAL = {"expiry_days", "limit_per_period", "logo_text", "terms", "perks", "privacy_policy_url"}  # empty means none


def _actor() -> User:
    return cast(User, current_user())  # @requires let only a signed-in user through


MONEY_FIELDS = {"point_value", "max_purchase_amount", "qualifying_spend"}  # shown with cents; percentages without


def _text(value: Any, name: str = "") -> str:
    if isinstance(value, Decimal):
        return plain_decimal(value, 2 if name in MONEY_FIELDS else None)
    return "" if value is None else str(value)


def _form_data(names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, Any]]:
    """What was typed (to show again) and what to validate: only the fields sent, an empty optional field
    as None."""
    typed = {name: request.form.get(name, "")[:MAX_FIELD] for name in names if name in request.form}
    data: dict[str, Any] = {}
    for name, value in typed.items():
        value = value.strip()
        data[name] = value if value or name in ("logo_text", "terms", "perks") else None
    return typed, data


def _defaults(program: Program) -> dict[str, dict[str, str]]:
    """Every form's values as stored."""
    forms = {
        "settings": {name: _text(getattr(program, name), name) for name in SETTINGS_FIELDS},
        "design": {name: _text(getattr(program, name)) for name in DESIGN_FIELDS},
        "tier-new": {"name": "", "qualifying_spend": "0", "earn_percent": "", "perks": ""},
        "rule-new": {"event_name": "", "points": "", "limit_per_period": "", "period": "day"},
    }
    for tier in program.tiers:
        forms[f"tier-{tier.id}"] = {name: _text(getattr(tier, name), name) for name in TIER_FIELDS}
    for rule in program.bonus_rules:
        forms[f"rule-{rule.id}"] = {name: _text(getattr(rule, name)) for name in RULE_FIELDS}
    return forms


def _job_json(job: Job) -> dict[str, Any]:
    return {"id": job.id, "state": job.state, "done": job.done, "total": job.total, "error": job.error,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def _page(program: Program, programs: list[Program], *, status: int = 200, form: str | None = None,
          typed: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Response:
    db = get_session()
    forms = _defaults(program)
    if form is not None and typed is not None:
        forms[form] = {**forms.get(form, {}), **typed}
    job = service.latest_job(db, program=program)
    own = images.uploaded(db, program.id)
    preview = {
        "name": program.name,
        "logo_text": program.logo_text or "",
        "balance_label": "Stamps" if program.kind == "stamps" else "Points",
        "tier": program.tiers[0].name if program.tiers else "",
    }
    return pages.render(
        "dashboard/programme.html", status=status, program=program, programs=programs, forms=forms,
        contrast=design_contrast(forms["design"]),
        errors={form: errors} if form and errors else {}, tiers=list(program.tiers),
        rules=sorted(program.bonus_rules, key=lambda r: r.event_name), job=job,
        job_json=_job_json(job) if job else None, own_images=sorted(own), boxes=images.BOXES, preview=preview,
        can_edit=may(current_user(), "marketer"), periods=("day", "week", "month", "year", "lifetime"),
        phone_regions=phone_regions(), default_phone_region=current_app.config["TALLYPASS"].default_phone_region,
        links=program_links(program.slug, current_app.config["TALLYPASS"].base_url))


CONTRAST_CHECKS = (("foreground_color", "Text"), ("label_color", "Labels"))


def design_contrast(design: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Beside the text and label colour fields: their contrast with the background on the pass (WCAG 2.x), and
    whether it passes AA (4.5:1), is hard to read (3–4.5:1) or could not be read at all (below 3:1, refused on
    save for the text). The page's script recomputes the same as the colours are typed."""
    background = design.get("background_color", "")
    out: dict[str, dict[str, Any]] = {}
    for name, what in CONTRAST_CHECKS:
        colour = design.get(name, "")
        if not (COLOUR.fullmatch(colour) and COLOUR.fullmatch(background)):
            continue
        ratio = contrast_ratio(colour, background)
        level = "ok" if ratio >= AA_TEXT else "low" if ratio >= UNREADABLE else "unreadable"
        words = {"ok": "passes WCAG AA (4.5:1)",
                 "low": "below the 4.5:1 of WCAG AA: hard to read, in sunlight above all",
                 "unreadable": "far too low: it cannot be read"}[level]
        out[name] = {"ratio": ratio_text(ratio), "level": level, "text": f"{what} on the background: "
                     f"{ratio_text(ratio)}, {words}."}
    return out


def _done(program: Program, message: str, *, resync: bool) -> Response:
    """Commit; start the re-sync job when the cards' look changed; flash and go back to the page."""
    db, now = get_session(), utcnow()
    job = service.start_resync(db, program=program, actor=_actor(), now=now) if resync else None
    db.commit()
    if job is not None:
        message += f" Every card is being updated ({job.total} card{'s' if job.total != 1 else ''})."
        _run(job.id)
    flash(message, "success")
    return redirect(url_for("dashboard.programme", program=program.slug), code=303)


def _run(job_id: int) -> None:
    """Queue the job (inline without a broker). A failure is recorded on the job, never raised at the user."""
    try:
        resync_design.delay(job_id)
    except Exception:  # a broker outage: the job stays queued and the page says so
        log.exception("could not queue design re-sync job %s", job_id)


@bp.get("/programme")
@requires("viewer")
def programme() -> Response:
    program, programs = pages.programme()
    return _page(program, programs)


@bp.post("/programme/settings")
@requires("marketer")
def programme_settings() -> Response:
    check_csrf()
    program, programs = pages.programme()
    typed, data = _form_data(SETTINGS_FIELDS)
    spec, errors = pages.validate_form(service.ProgramSettings, data)
    if spec is None:
        return _page(program, programs, status=422, form="settings", typed=typed, errors=errors)
    changed = service.update_program(get_session(), program=program, settings=spec, actor=_actor(), now=utcnow())
    if not changed:
        flash("Nothing changed.", "success")
        return redirect(url_for("dashboard.programme", program=program.slug), code=303)
    return _done(program, "The programme's settings are saved.", resync=bool(changed.keys() & service.PASS_FIELDS))


@bp.post("/programme/design")
@requires("marketer")
def programme_design() -> Response:
    request.max_content_length = UPLOAD_REQUEST_LIMIT
    check_csrf()
    program, programs = pages.programme()
    typed, data = _form_data(DESIGN_FIELDS)
    spec, errors = pages.validate_form(service.DesignSettings, data)
    uploads: dict[str, bytes] = {}
    for kind in UPLOADS:
        upload = request.files.get(kind)
        if upload is None or not upload.filename:
            continue
        uploads[kind] = upload.read(images.MAX_BYTES + 1)
        try:
            images.check_png(uploads[kind], field=kind)
        except InvalidInput as error:
            errors[kind] = error.errors[0].message + " (Choose the file again.)"
    if spec is None or errors:
        return _page(program, programs, status=422, form="design", typed=typed, errors=errors)
    db, user, now = get_session(), _actor(), utcnow()
    try:
        changed = bool(service.update_program(db, program=program, settings=spec, actor=user, now=now))
    except InvalidInput as error:  # colours nothing on the pass could be read in; nothing was changed
        errors = {item.field: item.message for item in error.errors}
        return _page(program, programs, status=422, form="design", typed=typed, errors=errors)
    for kind, data_bytes in uploads.items():
        images.save_image(db, program=program, kind=kind, data=data_bytes, actor=user, now=now)
        changed = True
    for kind in UPLOADS:
        if request.form.get(f"remove_{kind}") and kind not in uploads:
            changed = images.remove_image(db, program=program, kind=kind, actor=user, now=now) or changed
    if not changed:
        flash("Nothing changed.", "success")
        return redirect(url_for("dashboard.programme", program=program.slug), code=303)
    if uploads or any(request.form.get(f"remove_{kind}") for kind in UPLOADS):
        programs_service.saved(db, program=program)  # Google's class points at the new logo
    return _done(program, "The card design is saved.", resync=True)


# ------------------------------------------------------------------------------------------------- tiers


def _tier(program: Program, tier_id: int) -> Tier:
    tier = get_session().get(Tier, tier_id)
    if tier is None or tier.program_id != program.id:
        raise NotFound("there is no such tier in this programme")
    return tier


def _save_tier(tier_id: int | None) -> Response:
    program, programs = pages.programme()
    tier = _tier(program, tier_id) if tier_id is not None else None
    key = f"tier-{tier_id}" if tier_id is not None else "tier-new"
    typed, data = _form_data(TIER_FIELDS)
    spec, errors = pages.validate_form(service.TierSpec, data)
    if spec is None:
        return _page(program, programs, status=422, form=key, typed=typed, errors=errors)
    db, user, now = get_session(), _actor(), utcnow()
    try:
        if tier is None:
            service.add_tier(db, program=program, spec=spec, actor=user, now=now)
            message = f"The tier “{spec.name}” is added."
        else:
            if not service.update_tier(db, tier=tier, spec=spec, actor=user, now=now):
                flash("Nothing changed.", "success")
                return redirect(url_for("dashboard.programme", program=program.slug), code=303)
            message = f"The tier “{spec.name}” is saved."
    except InvalidInput as error:
        db.rollback()
        return _page(program, programs, status=422, form=key, typed=typed,
                     errors={e.field: e.message for e in error.errors})
    return _done(program, message, resync=True)


@bp.post("/programme/tiers")
@requires("marketer")
def programme_tier_add() -> Response:
    check_csrf()
    return _save_tier(None)


@bp.post("/programme/tiers/<int:tier_id>")
@requires("marketer")
def programme_tier_update(tier_id: int) -> Response:
    check_csrf()
    return _save_tier(tier_id)


@bp.post("/programme/tiers/<int:tier_id>/remove")
@requires("marketer")
def programme_tier_remove(tier_id: int) -> Response:
    check_csrf()
    program, _ = pages.programme()
    tier = _tier(program, tier_id)
    name, db = tier.name, get_session()
    try:
        service.remove_tier(db, tier=tier, actor=_actor(), now=utcnow())
    except AppError as error:
        db.rollback()
        flash(error.detail[:1].upper() + error.detail[1:], "error")
        return redirect(url_for("dashboard.programme", program=program.slug), code=303)
    return _done(program, f"The tier “{name}” is removed.", resync=True)


# ------------------------------------------------------------------------------------------- bonus rules


def _rule(program: Program, rule_id: int) -> BonusRule:
    rule = get_session().get(BonusRule, rule_id)
    if rule is None or rule.program_id != program.id:
        raise NotFound("there is no such bonus rule in this programme")
    return rule


def _save_rule(rule_id: int | None) -> Response:
    program, programs = pages.programme()
    rule = _rule(program, rule_id) if rule_id is not None else None
    key = f"rule-{rule_id}" if rule_id is not None else "rule-new"
    typed, data = _form_data(RULE_FIELDS)
    spec, errors = pages.validate_form(service.BonusRuleSpec, data)
    if spec is None:
        return _page(program, programs, status=422, form=key, typed=typed, errors=errors)
    db, user, now = get_session(), _actor(), utcnow()
    try:
        if rule is None:
            service.add_bonus_rule(db, program=program, spec=spec, actor=user, now=now)
            message = f"The bonus rule for “{spec.event_name}” is added."
        else:
            service.update_bonus_rule(db, rule=rule, spec=spec, actor=user, now=now)
            message = f"The bonus rule for “{spec.event_name}” is saved."
    except InvalidInput as error:
        db.rollback()
        return _page(program, programs, status=422, form=key, typed=typed,
                     errors={e.field: e.message for e in error.errors})
    return _done(program, message, resync=False)


@bp.post("/programme/bonus-rules")
@requires("marketer")
def programme_rule_add() -> Response:
    check_csrf()
    return _save_rule(None)


@bp.post("/programme/bonus-rules/<int:rule_id>")
@requires("marketer")
def programme_rule_update(rule_id: int) -> Response:
    check_csrf()
    return _save_rule(rule_id)


@bp.post("/programme/bonus-rules/<int:rule_id>/remove")
@requires("marketer")
def programme_rule_remove(rule_id: int) -> Response:
    check_csrf()
    program, _ = pages.programme()
    rule = _rule(program, rule_id)
    name = rule.event_name
    service.remove_bonus_rule(get_session(), rule=rule, actor=_actor(), now=utcnow())
    return _done(program, f"The bonus rule for “{name}” is removed.", resync=False)


# ---------------------------------------------------------------------------- images and job progress


@bp.get("/programme/images/<kind>.png")
@requires("viewer")
def programme_image(kind: str) -> Response:
    """The programme's own image at @2x (what the preview shows), else the default one."""
    if kind not in images.BOXES:
        raise NotFound("there is no such image")
    program, _ = pages.programme()
    own = images.uploaded(get_session(), program.id).get(kind, {})
    png = own[2].png if 2 in own else (DESIGN_DIR / images.file_name(kind, 2)).read_bytes()
    return Response(png, mimetype="image/png")


@bp.get("/programme/jobs/<int:job_id>")
@requires("viewer")
def programme_job(job_id: int) -> Response:
    """A re-sync job's progress, as JSON for the page's script."""
    job = get_session().get(Job, job_id)
    if job is None:
        raise NotFound("there is no such job")
    return jsonify(_job_json(job))
