"""Personalising a campaign's message: a sandboxed Jinja environment (marketers write templates, so
templates must not reach Python objects), the variables a message may use, and the limits of each channel.

Variables: ``first_name``, ``name``, ``balance``, ``stamps``, ``tier``, ``programme``, ``card_url``, and
``expiring_points`` / ``expiry_date`` (points expiring within a week; filled when a message uses them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateError
from jinja2.exceptions import SecurityError

from app.campaigns import template_language
from app.campaigns.template_language import MAX_RENDERED, MAX_TEMPLATE, MessageEnvironment, TemplateRefused
from app.errors import FieldError, InvalidInput
from app.models import Card
from app.wallet.links import card_links

VARIABLES = ("first_name", "name", "balance", "stamps", "tier", "programme", "card_url", "expiring_points",
             "expiry_date")
# What each channel can show: the pass's offer field is the card's offer_text (255), a browser shows about
# 200 characters of a notification, and an SMS beyond 3 segments costs more than it earns.
LIMITS = {"wallet": 255, "push": 200, "sms_segments": 3}
# A stand-in customer: for the trial run of a template when it is checked, and for the preview when the
# programme has nobody yet.
SAMPLE = {"first_name": "Maria", "name": "Maria Popescu", "balance": 120, "stamps": 4, "tier": "Silver",
          "programme": "Programme", "card_url": "https://example.test/c/sample", "expiring_points": 30,
          "expiry_date": "2026-12-31"}
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")
GSM7_ALL = GSM7 | GSM7_EXTENDED

_env = MessageEnvironment()
# What a template may raise while it renders, for data it was not written for (text compared with a number, a
# division by zero, truncate() shorter than its ending): the message cannot be rendered, the service goes on.
_RENDER_ERRORS = (TemplateError, ArithmeticError, LookupError, TypeError, ValueError, AssertionError,
                  RecursionError)


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
    """:raise InvalidInput: the template is too long, does not parse, uses an unknown variable or anything
    outside the message language (``template_language``). Takes milliseconds whatever the template says."""
    if len(source) > MAX_TEMPLATE:
        raise InvalidInput(f"{field_name} is too long", errors=[FieldError(field_name, f"at most {MAX_TEMPLATE} "
                                                                                      "characters")])
    try:
        _compiled(source).render(SAMPLE)  # bounded, so a trial run is safe: it finds a constant calculation too big
    except (_Refused, SecurityError) as exc:
        raise InvalidInput(f"{field_name} is not a valid message template: {exc}",
                           errors=[FieldError(field_name, str(exc))]) from None
    except _RENDER_ERRORS:
        pass  # a failure that depends on a customer's values (text compared with a number…): render() reports it


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


class _Refused(Exception):
    """A template that cannot be used (the reason is its message)."""


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """The template, checked against the message language, then compiled. Compiling is a thousand times
    dearer than rendering; a campaign renders one template per message. :raise _Refused:"""
    if len(source) > MAX_TEMPLATE:
        raise _Refused(f"at most {MAX_TEMPLATE} characters")
    try:
        tree = _env.parse(source)
        template_language.check(tree, VARIABLES)
        return _env.from_string(tree)
    except TemplateRefused as exc:
        raise _Refused(str(exc)) from None
    except TemplateError as exc:
        raise _Refused(str(exc)) from None
    except RecursionError:  # Jinja's parser recurses once per nested bracket or operator
        raise _Refused(f"it nests more than {template_language.MAX_DEPTH} levels deep") from None


def _render(source: str, values: dict[str, Any]) -> str:
    if "{" not in source:  # no variable, tag or comment: the text as it stands (and no Jinja context to build)
        return source.strip()
    return _compiled(source).render(values).strip()


def render(title: str, body: str, values: dict[str, Any]) -> Rendered:
    """Render both parts; :raise InvalidInput: a template error (also for a variable missing at run time)."""
    try:
        out = Rendered(_render(title, values), _render(body, values))
    except _Refused as exc:
        raise InvalidInput(f"the message is not a valid template: {exc}", errors=[FieldError("body", str(exc))]
                           ) from None
    except _RENDER_ERRORS as exc:
        raise InvalidInput(f"the message cannot be rendered: {exc}", errors=[FieldError("body", str(exc))]) from None
    if len(out.title) > MAX_RENDERED or len(out.body) > MAX_RENDERED:
        raise InvalidInput(f"the message renders to more than {MAX_RENDERED} characters",
                           errors=[FieldError("body", f"at most {MAX_RENDERED} characters once rendered")])
    if len(out.body) > LIMITS["wallet"]:
        out.warnings["wallet"] = f"{len(out.body)} characters; the card's offer shows at most {LIMITS['wallet']}"
    if len(out.body) > LIMITS["push"]:
        out.warnings["push"] = f"{len(out.body)} characters; notifications show about {LIMITS['push']}"
    if (parts := sms_segments(out.body)) > LIMITS["sms_segments"]:
        out.warnings["sms"] = f"{parts} SMS parts; at most {LIMITS['sms_segments']}"
    return out
