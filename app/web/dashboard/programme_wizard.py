"""The "New programme" wizard (admin): basics (name, slug suggested from the name, currency, time zone, phone
region, kind) → a template → rules and tiers → the card design, with the live card preview of the programme page
from the first step. One form whose steps the page's script shows one at a time (all of them without script);
nothing is created until the last step is confirmed, and then everything at once, in one transaction. A mistake
anywhere brings the form back with the message beside its field, on the step that holds it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from flask import Response, current_app, flash, redirect, request, url_for

from app.channels.apple_pass import DESIGN_DIR
from app.database import get_session
from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.loyalty import program_creation as creation
from app.loyalty import settings as service
from app.loyalty.program_templates import TEMPLATES
from app.merchants.stores import timezones
from app.models import Program, User
from app.wallet import images
from app.wallet.links import program_links
from app.web.dashboard import bp, pages
from app.web.dashboard.access import current_user, requires
from app.web.forms import check_csrf

BASICS = ("name", "slug", "currency", "timezone", "phone_region", "kind")
RULES = ("welcome_bonus", "birthday_bonus", "referrer_bonus", "referred_bonus", "redeem_cap_percent", "expiry_days")
DESIGN = ("background_color", "foreground_color", "label_color", "logo_text")
TIER_ROWS = 4
TIER_FIELDS = ("name", "qualifying_spend", "earn_percent")
STEPS = (("basics", "Basics"), ("template", "Template"), ("rules", "Rules and tiers"), ("design", "Card design"))
MAX_FIELD = 200
# Where each field is, to open the step of the first mistake.
STEP_OF = {**{f: "basics" for f in BASICS}, "template": "template", **{f: "rules" for f in RULES},
           **{f: "design" for f in DESIGN}}
DEFAULT_DESIGN = {"background_color": "#1F2937", "foreground_color": "#FFFFFF", "label_color": "#FBBF24",
                  "logo_text": ""}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _start_values(template: str | None) -> dict[str, str]:
    """The form as it first shows: the template's rules, tiers and design (or a points card's defaults)."""
    values = {"currency": "EUR", "timezone": "UTC", "kind": "points", "template": template or "",
              "phone_region": current_app.config["TALLYPASS"].default_phone_region or "", **DEFAULT_DESIGN}
    chosen = TEMPLATES.get(template or "")
    defaults = {c.key: c.default.arg for c in Program.__table__.columns if c.key in RULES and c.default is not None}
    values.update({k: _text(v) for k, v in defaults.items()})
    tiers: list[tuple[str, Decimal, Decimal]] = [creation.BASE_TIER]
    if chosen is not None:
        values["kind"] = chosen.kind
        values.update({k: _text(v) for k, v in chosen.settings.items() if k in RULES})
        values.update(chosen.design)
        tiers = [(t.name, t.qualifying_spend, t.earn_percent) for t in chosen.tiers]
    for i in range(TIER_ROWS):
        row = tiers[i] if i < len(tiers) else ("", "", "")
        for field, value in zip(TIER_FIELDS, row, strict=True):
            values[f"tier-{i}-{field}"] = _text(value)
    return values


def _page(values: dict[str, str], errors: dict[str, str], *, status: int = 200) -> Response:
    first = next((STEP_OF.get(f, "rules") for f in errors), "basics") if errors else "basics"
    templates = {name: t.as_dict() for name, t in TEMPLATES.items()}
    return pages.render(
        "dashboard/programme_new.html", status=status, program=None, form=values, errors=errors, steps=STEPS,
        first_step=first, templates=TEMPLATES, currencies=sorted(creation.currencies()), zones=timezones(),
        regions=creation.phone_regions(), tier_rows=range(TIER_ROWS),
        data={"templates": templates, "default_design": DEFAULT_DESIGN,
              "base_tier": [creation.BASE_TIER[0], str(creation.BASE_TIER[1]), str(creation.BASE_TIER[2])]})


@bp.get("/programmes/new")
@requires("admin")
def programme_new() -> Response:
    template = request.args.get("template")
    return _page(_start_values(template if template in TEMPLATES else None), {})


@bp.get("/programmes/new/images/<kind>.png")
@requires("admin")
def programme_new_image(kind: str) -> Response:
    """The default logo and strip the preview shows before the programme has its own."""
    if kind not in images.BOXES:
        raise NotFound("there is no such image")
    return Response((DESIGN_DIR / images.file_name(kind, 2)).read_bytes(), mimetype="image/png")


def _errors_of(error: InvalidInput, prefix: str = "") -> dict[str, str]:
    return {prefix + e.field: e.message[:1].upper() + e.message[1:] for e in error.errors} or {"name": error.detail}


@bp.post("/programmes/new")
@requires("admin")
def programme_create() -> Response:
    check_csrf()
    fields = (*BASICS, "template", *RULES, *DESIGN,
              *(f"tier-{i}-{f}" for i in range(TIER_ROWS) for f in TIER_FIELDS))
    typed = {name: request.form.get(name, "")[:MAX_FIELD].strip() for name in fields}
    db = get_session()
    errors: dict[str, str] = {}
    new = creation.NewProgram(name=typed["name"], slug=typed["slug"], currency=typed["currency"],
                              timezone=typed["timezone"], phone_region=typed["phone_region"] or None,
                              kind=typed["kind"] or None, template=typed["template"] or None)
    try:
        creation.check(db, new)
    except InvalidInput as error:
        errors.update(_errors_of(error))
    rules, rule_errors = pages.validate_form(service.ProgramSettings,
                                             {k: typed[k] for k in RULES if typed[k]})  # empty: the template's
    design, design_errors = pages.validate_form(service.DesignSettings, {k: typed[k] for k in DESIGN})
    errors.update(rule_errors)
    errors.update(design_errors)
    tiers: list[service.TierSpec] = []
    for i in range(TIER_ROWS):
        row = {f: typed[f"tier-{i}-{f}"] for f in TIER_FIELDS}
        if not any(row.values()):
            continue
        spec, tier_errors = pages.validate_form(service.TierSpec, row)
        errors.update({f"tier-{i}-{f}": message for f, message in tier_errors.items()})
        if spec is not None:
            if spec.name.lower() in {t.name.lower() for t in tiers}:
                errors[f"tier-{i}-name"] = "This name is given twice."
            tiers.append(spec)
    if errors or rules is None or design is None:
        return _page(typed, errors, status=422)

    user, now = cast(User, current_user()), utcnow()
    program = creation.create_program(db, name=new.name, slug=new.slug, currency=new.currency, timezone=new.timezone,
                                      phone_region=new.phone_region, kind=new.kind, template=new.template,
                                      actor=user, now=now)
    service.update_program(db, program=program, settings=rules, actor=user, now=now)
    service.update_program(db, program=program, settings=design, actor=user, now=now)
    if tiers:
        service.replace_tiers(db, program=program, specs=tiers, actor=user, now=now)
    db.commit()
    links = program_links(program.slug, current_app.config["TALLYPASS"].base_url)
    flash(f"The programme “{program.name}” is ready. Customers join at {links['join_url']}; print the counter "
          "poster below. Next: add a store and its POS key, or a cashier for the till.", "success")
    return redirect(url_for("dashboard.programme", program=program.slug), code=303)

