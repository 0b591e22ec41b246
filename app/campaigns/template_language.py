"""The language a campaign message may be written in: a small, bounded part of Jinja.

Marketers write these templates, so a template is hostile input. Jinja's sandbox keeps it away from Python
objects but not from the CPU or memory: ``{{ 9**(9**9) }}`` never ends, ``{{ 'a'*300000000 }}`` takes
900 MB, and Jinja folds constant expressions while compiling, so even validating such a template hangs.
What is allowed here is bounded by construction, so that checking and rendering a template take
milliseconds whatever it says:

- **Text, ``{{ expressions }}``, ``{% if %}``/``{% elif %}``/``{% else %}`` and comments.** No loops, macros,
  blocks, ``set``, includes or calls: without them, every part of a template runs at most once, so the work
  is proportional to the template's length (at most ``MAX_TEMPLATE`` characters).
- **Expressions:** the message variables, string and number constants, comparisons, ``and``/``or``/``not``,
  ``a if b else c``, ``~`` (joining text), and ``+ - * / // %`` on numbers no bigger than ``MAX_NUMBER``
  (``**`` is not allowed). Text repeated with ``*`` grows to at most ``MAX_TEXT`` characters; ``%`` on text
  (Python's string formatting) is not allowed.
- **Filters and tests:** the few in ``FILTERS`` and ``TESTS``, none of which can make text longer.
- Expressions nest at most ``MAX_DEPTH`` deep.

Jinja's own sandbox is kept underneath (no attribute access reaches Python objects either way). The rules are
an allow-list of Jinja's syntax nodes: a node this module does not know is refused, so a newer Jinja cannot
slip a construct in. No Flask import here (domain code).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE = 2000  # characters of a title or body, as written
MAX_DEPTH = 16  # nesting of tags and expressions
MAX_NUMBER = 10**15  # largest number a constant or a calculation may give (well past any balance)
MAX_TEXT = 1000  # longest text ``*`` may make
MAX_RENDERED = 4000  # longest message a template may render (the longest channel shows 1,000 characters)

FILTERS = ("default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "round", "int", "abs")
TESTS = ("defined", "undefined", "none", "number", "string", "odd", "even", "divisibleby")
OPERATORS = {nodes.Add: "+", nodes.Sub: "-", nodes.Mul: "*", nodes.Div: "/", nodes.FloorDiv: "//",
             nodes.Mod: "%"}
COMPARISONS = ("eq", "ne", "lt", "lteq", "gt", "gteq", "in", "notin")

# Nodes allowed as they are; the others below are checked further, anything else is refused.
_PLAIN = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.CondExpr, nodes.And, nodes.Or,
          nodes.Not, nodes.Neg, nodes.Pos, nodes.Concat, nodes.Compare, nodes.Keyword, *OPERATORS)
_DESCRIBED = {
    nodes.For: "loops ({% for %})", nodes.Macro: "macros", nodes.CallBlock: "call blocks", nodes.Call: "calls",
    nodes.Assign: "{% set %}", nodes.AssignBlock: "{% set %}", nodes.Block: "blocks", nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}", nodes.Import: "{% import %}", nodes.FromImport: "{% from %}",
    nodes.Getattr: "attributes (a.b)", nodes.Getitem: "indexing (a[b])", nodes.Pow: "powers (**)",
    nodes.List: "lists", nodes.Tuple: "tuples", nodes.Dict: "dictionaries", nodes.With: "{% with %}",
    nodes.FilterBlock: "{% filter %}", nodes.Slice: "slices",
}


class TemplateRefused(ValueError):
    """The template uses something outside the message language; the message says what."""


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise SecurityError("a calculation in the message did not give a finite number")
    if abs(value) > MAX_NUMBER:
        raise SecurityError(f"a calculation in the message gives a number over {MAX_NUMBER:,}")
    return value


def _text(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise SecurityError(f"the message would repeat text to more than {MAX_TEXT} characters")
    return value


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every arithmetic operator checked (which also stops Jinja folding them
    while compiling) and only the filters and tests of the message language."""

    intercepted_binops = frozenset(OPERATORS.values())
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
        self.filters = {name: DEFAULT_FILTERS[name] for name in FILTERS}
        self.tests = {name: DEFAULT_TESTS[name] for name in TESTS}
        self.globals.clear()  # no range(), lipsum(), dict(), cycler(), …

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if isinstance(left, str) or isinstance(right, str):
            if operator_ == "%":
                raise SecurityError("'%' formats text; join text with '~' instead")
            if operator_ == "*":
                count = right if isinstance(left, str) else left
                text = left if isinstance(left, str) else right
                if isinstance(count, int) and not isinstance(count, bool) and len(text) * max(count, 0) > MAX_TEXT:
                    raise SecurityError(f"the message would repeat text to more than {MAX_TEXT} characters")
            return _text(_BINOPS[operator_](left, right))
        return _number(_BINOPS[operator_](_number(left), _number(right)))

    def call_unop(self, context: Context, operator_: str, arg: Any) -> Any:
        return _number(_UNOPS[operator_](_number(arg)))


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
    "%": operator.mod,
}
_UNOPS: dict[str, Callable[[Any], Any]] = {"-": operator.neg, "+": operator.pos}


def check(tree: nodes.Template, variables: tuple[str, ...]) -> None:
    """:raise TemplateRefused: ``tree`` (a parsed template) uses anything outside the message language."""
    unknown: set[str] = set()
    for node, depth in _walk(tree):
        if depth > MAX_DEPTH:
            raise TemplateRefused(f"it nests more than {MAX_DEPTH} levels deep")
        kind = type(node)
        if kind in _PLAIN:
            if isinstance(node, nodes.Compare) and any(op.op not in COMPARISONS for op in node.ops):
                raise TemplateRefused("it uses an unknown comparison")
            continue
        if isinstance(node, nodes.Operand):
            if node.op not in COMPARISONS:
                raise TemplateRefused("it uses an unknown comparison")
        elif isinstance(node, nodes.Name):
            if node.ctx != "load":
                raise TemplateRefused(f"it assigns to {node.name}")
            if node.name not in variables:
                unknown.add(node.name)
        elif isinstance(node, nodes.Const):
            _check_constant(node.value)
        elif isinstance(node, nodes.Filter):
            if node.name not in FILTERS:
                raise TemplateRefused(f"unknown filter {node.name}; use {', '.join(FILTERS)}")
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                raise TemplateRefused("filters take plain arguments here")
        elif isinstance(node, nodes.Test):
            if node.name not in TESTS:
                raise TemplateRefused(f"unknown test {node.name}; use {', '.join(TESTS)}")
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                raise TemplateRefused("tests take plain arguments here")
        else:
            raise TemplateRefused(f"messages cannot use {_DESCRIBED.get(kind, kind.__name__)}")
    if unknown:
        raise TemplateRefused(f"unknown variable(s) {', '.join(sorted(unknown))}; use {', '.join(variables)}")


def _check_constant(value: Any) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int | float):
        try:
            _number(value)
        except SecurityError as exc:
            raise TemplateRefused(str(exc).replace("a calculation in the message gives", "it holds")) from None
        return
    raise TemplateRefused(f"it holds a constant of an unknown kind ({type(value).__name__})")


def _walk(tree: nodes.Node) -> Iterator[tuple[nodes.Node, int]]:
    """Every node with its depth, without recursion (a deep tree must not exhaust the stack)."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
