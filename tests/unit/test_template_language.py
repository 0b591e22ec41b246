"""Campaign messages are written in a bounded part of Jinja (app.campaigns.template_language): a hostile
template is refused while it is checked, before anything is computed, and what is allowed cannot run long or
grow large. On the sandbox alone, ``{{ 3 ** 30000000 }}`` pinned a core for 23 s, ``{{ 9**(9**9) }}`` never
ended and ``{{ 'a'*300000000 }}`` took 900 MB."""

from __future__ import annotations

import pytest

from app.campaigns import templating
from app.campaigns.template_language import MAX_DEPTH, MAX_NUMBER, MAX_TEXT
from app.errors import InvalidInput

VALUES = {"first_name": "Ana", "name": "Ana Lungu", "balance": 120, "stamps": 3, "tier": "Gold",
          "programme": "Cafea", "card_url": "https://t.test/c/x", "expiring_points": 0, "expiry_date": ""}

HOSTILE = {
    "a huge power": "{{ 3 ** 30000000 }}",
    "a power tower": "{{ 9**(9**9) }}",
    "a power of a variable": "{{ balance ** balance ** balance }}",
    "huge repeated text": "{{ 'a'*300000000 }}",
    "repeated text, the other way round": "{{ 300000000*'a' }}",
    "repeated text made of a variable": "{{ name * 100000000 }}",
    "a product past any balance": "{{ 99999999 * 99999999 * 99999999 }}",
    "a huge constant": "{{ " + "9" * 1500 + " }}",
    "a loop": "{% for i in range(99999) %}{% for j in range(99999) %}{{ i }}{% endfor %}{% endfor %}",
    "a macro": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "set": "{% set x = 'a' * 1000 %}{{ x }}",
    "a call": "{{ name.upper() }}",
    "an attribute": "{{ name.__class__ }}",
    "indexing": "{{ name[0] }}",
    "string formatting": "{{ '%0999999999d' % 1 }}",
    "a filter that pads": "{{ name|center(300000000) }}",
    "a filter that formats": "{{ '%999999999s'|format(name) }}",
    "a global": "{{ range(10) }}",
    "a list": "{{ [name] * 100000000 }}",
    "nesting brackets": "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "nesting negations": "{{ " + "not " * 400 + "true }}",
    "nesting ifs": "{% if true %}" * (MAX_DEPTH + 2) + "x" + "{% endif %}" * (MAX_DEPTH + 2),
    "an include": "{% include 'x' %}",
    "an unknown variable": "Hi {{ password }}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_template_is_refused_while_it_is_checked(source: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        templating.check_template(source, field_name="body")
    assert refused.value.errors[0].field == "body" and refused.value.errors[0].message
    with pytest.raises(InvalidInput):  # a template stored before these rules is refused when it renders, too
        templating.render("", source, VALUES)


@pytest.mark.parametrize(("source", "why"), [
    ("{{ 3 ** 3 }}", "powers"), ("{% for x in y %}{% endfor %}", "loops"), ("{{ name.upper() }}", "calls"),
    ("{{ name|center(9) }}", "unknown filter center"), ("{{ name is sameas name }}", "unknown test sameas"),
    ("{{ '%s' % name }}", "formats text"), ("{{ 'ab' * 600 }}", f"more than {MAX_TEXT} characters"),
    ("{{ 1 + " + str(MAX_NUMBER * 10) + " }}", f"over {MAX_NUMBER:,}"),
])
def test_the_refusal_says_what_is_not_allowed(source: str, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        templating.render("", source, VALUES)  # a constant calculation is refused while compiling or rendering
    assert why in refused.value.errors[0].message


def test_what_marketers_write_still_works() -> None:
    source = ("{% if tier == 'Gold' %}Dear {{ first_name|upper }}{% elif tier %}Hi{% else %}Hello{% endif %}, "
              "{{ balance }} points ({{ balance // 10 }} coffees, {{ (balance * 1.5)|round|int }} with the bonus, "
              "{{ balance - 20 if balance > 20 else 0 }} after the gift). {{ 'Thanks' ~ '!' }} "
              "{{ expiry_date|default('never', true) }} {{ name|truncate(9, true, '…') }} {{ '-' * 3 }} "
              "{{ stamps is odd }} {{ -balance|abs }} {# a note to myself #}")
    templating.check_template(source)
    rendered = templating.render("{{ programme|title }}", source, VALUES)
    assert rendered.title == "Cafea"
    assert rendered.body == ("Dear ANA, 120 points (12 coffees, 180 with the bonus, 100 after the gift). Thanks! "
                             "never Ana Lungu --- True 120")


@pytest.mark.parametrize("source", ["{{ name < 1 }}", "{{ balance / (stamps - 3) }}", "{{ name + balance }}",
                                    "{{ name|truncate(1, false, '.....') }}", "{{ balance|round(2, 'sideways') }}"])
def test_data_a_template_was_not_written_for_fails_as_invalid_input(source: str) -> None:
    templating.check_template(source)  # valid: it only fails for this customer's values
    with pytest.raises(InvalidInput) as failed:
        templating.render("", source, VALUES)
    assert failed.value.detail.startswith("the message cannot be rendered")


def test_a_rendered_message_is_bounded_in_size() -> None:
    source = "{{ 'x' * 1000 }}" * 5
    templating.check_template(source)
    with pytest.raises(InvalidInput) as refused:
        templating.render("", source, VALUES)
    assert "more than 4000 characters" in refused.value.detail


def test_the_trial_values_cover_every_variable() -> None:
    assert set(templating.SAMPLE) == set(templating.VARIABLES)
