"""Personalising a campaign's message: a sandboxed Jinja environment (marketers write templates, so
templates must not reach Python objects), the variables a message may use, and the limits of each channel.

Variables: ``first_name``, ``name``, ``balance``, ``stamps``, ``tier``, ``programme``, ``card_url``, and
``expiring_points`` / ``expiry_date`` (points expiring within a week; filled when a message uses them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.errors import FieldError, InvalidInput
from app.models import Card
from app.wallet.links import card_links

VARIABLES = ("first_name", "name", "balance", "stamps", "tier", "programme", "card_url", "expiring_points",
             "expiry_date")
MAX_TEMPLATE = 2000
# What each channel can show: the pass's offer field is the card's offer_text (255), a browser shows about
# 200 characters of a notification, and an SMS beyond 3 segments costs more than it earns.
LIMITS = {"wallet": 255, "push": 200, "sms_segments": 3}
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")
GSM7_ALL = GSM7 | GSM7_EXTENDED

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)


def sms_segments(text: str) -> int:
    """How many SMS parts ``text`` takes: GSM-7 (160, or 153 per part when split; extended characters
    count twice) unless a character needs UCS-2 (70, or 67 per part)."""
    chars = set(text)  # every message is measured: work on its distinct characters, not each one
    if chars <= GSM7_ALL:
        units = len(text) + sum(text.count(ch) for ch in chars & GSM7_EXTENDED)
        return 1 if units <= 160 else -(-units // 153)
    units = len(text) + sum(text.count(ch) for ch in chars if ord(ch) > 0xFFFF)
    return 1 if units <= 70 else -(-units // 67)


def check_template(source: str, *, field_name: str = "body") -> None:
    """:raise InvalidInput: the template does not parse, is too long, or uses an unknown variable."""
    from jinja2 import meta

    if len(source) > MAX_TEMPLATE:
        raise InvalidInput(f"{field_name} is too long", errors=[FieldError(field_name, f"at most {MAX_TEMPLATE} "
                                                                                      "characters")])
    try:
        parsed = _env.parse(source)
    except TemplateError as exc:
        raise InvalidInput(f"{field_name} is not a valid template: {exc}",
                           errors=[FieldError(field_name, str(exc))]) from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - set(VARIABLES))
    if unknown:
        raise InvalidInput(f"{field_name} uses unknown variables: {', '.join(unknown)}",
                           errors=[FieldError(field_name, f"unknown variable(s) {', '.join(unknown)}; use "
                                                          f"{', '.join(VARIABLES)}")])


def context(card: Card, *, base_url: str) -> dict[str, Any]:
    name = card.customer.name or ""
    return {
        "first_name": name.split()[0] if name.split() else "",
        "name": name,
        "balance": card.balance,
        "stamps": card.stamps,
        "tier": card.tier.name if card.tier else "",
        "programme": card.program.name,
        "card_url": card_links(card, base_url)["page"],
        "expiring_points": 0,
        "expiry_date": "",
    }


@dataclass
class Rendered:
    title: str
    body: str
    warnings: dict[str, str] = field(default_factory=dict)  # channel → why it would not fit


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """Compiling is a thousand times dearer than rendering; a campaign renders one template per message."""
    return _env.from_string(source)


def _render(source: str, values: dict[str, Any]) -> str:
    if "{" not in source:  # no variable, tag or comment: the text as it stands (and no Jinja context to build)
        return source.strip()
    return _compiled(source).render(values).strip()


def render(title: str, body: str, values: dict[str, Any]) -> Rendered:
    """Render both parts; :raise InvalidInput: a template error (also for a variable missing at run time)."""
    try:
        out = Rendered(_render(title, values), _render(body, values))
    except TemplateError as exc:
        raise InvalidInput(f"the message cannot be rendered: {exc}", errors=[FieldError("body", str(exc))]) from None
    if len(out.body) > LIMITS["wallet"]:
        out.warnings["wallet"] = f"{len(out.body)} characters; the card's offer shows at most {LIMITS['wallet']}"
    if len(out.body) > LIMITS["push"]:
        out.warnings["push"] = f"{len(out.body)} characters; notifications show about {LIMITS['push']}"
    if (parts := sms_segments(out.body)) > LIMITS["sms_segments"]:
        out.warnings["sms"] = f"{parts} SMS parts; at most {LIMITS['sms_segments']}"
    return out
