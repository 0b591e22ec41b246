"""Google Wallet's own definition of its REST resources: the ``walletobjects`` v1 discovery document that ships
with Google's ``google-api-python-client`` (a dev extra), and a validator of JSON bodies against it.

The stand-in of Google's API (``tests/fakes/google_wallet_api.py``) refuses with it what Google refuses, and
the guard test (``tests/integration/test_google_resources.py``) checks every body Tallypass builds with the very
same code, so nothing about Google's fields is typed by hand: field names, JSON types, enum values (legacy
aliases included, as the document lists them) and the ``Required.`` markers all come from the document.

The JSON rules are those of the proto3 JSON mapping, which Google's API front end applies
(https://protobuf.dev/programming-guides/json/):

- an unknown field is refused (``Invalid JSON payload received. Unknown name "x" at 'resource': Cannot find
  field.``), at any depth: ``$ref``s, arrays and maps are followed;
- a field may be named in lowerCamelCase (the document's name) or as the original proto name (snake_case);
- ``null`` stands for the field's default (an absent field), except inside a list;
- 64-bit integers (``format: int64``/``uint64``) are accepted as decimal strings or JSON numbers, 32-bit ones as
  numbers or decimal strings; doubles as numbers, numeric strings, ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
  booleans only as ``true``/``false``; bytes as base64;
- enums by their names. (proto3 JSON also takes an enum's number; the document does not give the numbers,
  so a number is refused here: Tallypass always sends names.)

A type error reads ``Invalid value at 'resource.loyalty_points.balance.int' (TYPE_INT32), "12a"``, an enum
value the field does not have ``Invalid value at 'resource.state' (TYPE_ENUM), "ON"``, a list where one value
belongs ``... Proto field is not repeating, cannot start list.``: the wording follows Google's front end; its
exact text for a type error on a message field is not documented, so ``(TYPE_MESSAGE <schema>)`` is this
module's rendering.

Why by hand rather than with ``jsonschema``: a discovery document is not JSON Schema (``$ref`` names a schema
id, ``format`` changes the JSON type int64 takes), the proto3 rules above would need rewriting into it, and its
errors would need translating back into Google's field paths and messages; the walk below is shorter than that
translation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "Violation",
    "canonical_enum",
    "check",
    "document",
    "enum_values",
    "field_name",
    "method",
    "normalised",
    "problems",
    "proto_name",
    "required_fields",
    "schema",
]

_DOCUMENT = ("googleapiclient", "discovery_cache/documents/walletobjects.v1.json")
_REQUIRED = re.compile(r"\s*Required\b")
_ALIAS = re.compile(r"Legacy alias for `([A-Za-z0-9_]+)`")
_INTEGER_TEXT = re.compile(r"-?\d+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_RANGES = {
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1),
}


@dataclass(frozen=True)
class Violation(Exception):
    """One thing Google's front end would refuse: ``message`` in Google's wording, ``field`` the proto path
    (``resource.loyalty_points``), ``kind`` one of unknown-field, type, enum, required."""

    kind: str
    field: str
    message: str

    def __str__(self) -> str:
        return self.message


@cache
def document() -> dict[str, Any]:
    """The discovery document, as google-api-python-client installed it."""
    package, name = _DOCUMENT
    return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def schema(name: str) -> dict[str, Any]:
    try:
        return document()["schemas"][name]
    except KeyError:
        raise KeyError(f"the walletobjects discovery document has no schema {name!r}") from None


def method(resource: str, name: str) -> dict[str, Any]:
    """A method of a REST resource, e.g. ``method("loyaltyobject", "patch")``: httpMethod, path, request."""
    return document()["resources"][resource]["methods"][name]


def enum_values(schema_name: str, field: str) -> tuple[str, ...]:
    return tuple(_property(schema_name, field)["enum"])


def canonical_enum(schema_name: str, field: str, value: str) -> str:
    """The value a legacy alias stands for (``underReview`` → ``UNDER_REVIEW``), read from the document's
    ``enumDescriptions`` ("Legacy alias for `UNDER_REVIEW`"); other values are their own."""
    spec = _property(schema_name, field)
    for candidate, description in zip(spec["enum"], spec.get("enumDescriptions", []), strict=False):
        if candidate == value:
            alias = _ALIAS.search(description or "")
            return alias.group(1) if alias else value
    raise ValueError(f"{value!r} is not a value of {schema_name}.{field}")


def required_fields(schema_name: str) -> tuple[str, ...]:
    """The properties whose description starts with "Required." (the document's only marker of it)."""
    return tuple(name for name, spec in schema(schema_name).get("properties", {}).items()
                 if _REQUIRED.match(spec.get("description", "")))


def field_name(schema_name: str, key: str) -> str:
    """The document's name of a field sent as ``key`` (its lowerCamelCase or proto name); ``key`` if unknown."""
    return _aliases(schema_name).get(key, key)


def proto_name(json_name: str) -> str:
    """``loyaltyPoints`` → ``loyalty_points``: the proto field name Google's error paths use."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", json_name).lower()


def check(schema_name: str, value: Any, *, at: str = "resource", complete: bool = True) -> None:
    """Raise the first ``Violation`` of ``value`` against the schema. ``at`` is where the body sits in Google's
    error paths ("resource" for an inserted or patched resource, "" for a whole request such as addMessage's);
    ``complete`` False for a PATCH body, whose top level may leave out required fields."""
    for violation in _walk_ref(schema_name, value, at, complete=complete):
        raise violation


def problems(schema_name: str, value: Any, *, at: str = "resource", complete: bool = True) -> list[Violation]:
    """Every ``Violation`` of ``value`` (for tests that report them all at once)."""
    return list(_walk_ref(schema_name, value, at, complete=complete))


def normalised(schema_name: str, value: Any) -> Any:
    """``value`` (already checked) as Google keeps and answers it, in proto3 JSON's output form: fields under
    the document's names, nulls left out, 32-bit integers as numbers, 64-bit ones as strings, legacy enum
    aliases as the value they stand for."""
    if not isinstance(value, dict):
        return value
    properties, aliases = schema(schema_name).get("properties", {}), _aliases(schema_name)
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = aliases.get(key, key)
        if item is not None:
            out[name] = _normalised_value(properties.get(name, {}), item)
    return out


def _normalised_value(spec: dict[str, Any], value: Any) -> Any:
    kind, fmt = spec.get("type"), spec.get("format")
    if "$ref" in spec:
        return normalised(spec["$ref"], value)
    if kind == "array" and isinstance(value, list):
        return [_normalised_value(spec["items"], item) for item in value]
    if kind == "object" and "additionalProperties" in spec and isinstance(value, dict):
        return {k: _normalised_value(spec["additionalProperties"], v) for k, v in value.items() if v is not None}
    if "enum" in spec and isinstance(value, str):
        for candidate, description in zip(spec["enum"], spec.get("enumDescriptions", []), strict=False):
            alias = _ALIAS.search(description or "") if candidate == value else None
            if alias:
                return alias.group(1)
        return value
    if kind == "integer" and not isinstance(value, bool):
        return int(float(value)) if isinstance(value, str | float) else value
    if kind == "string" and fmt in ("int64", "uint64") and not isinstance(value, bool):
        return str(int(float(value))) if isinstance(value, float) else str(int(value))
    return value


# -------------------------------------------------------------------------------- the walk


def _property(schema_name: str, field: str) -> dict[str, Any]:
    spec = schema(schema_name).get("properties", {}).get(field)
    if spec is None:
        raise KeyError(f"{schema_name} has no field {field!r}")
    return spec


@cache
def _aliases(schema_name: str) -> dict[str, str]:
    """Both spellings proto3 JSON accepts for each field → the document's name."""
    names = schema(schema_name).get("properties", {})
    return {**{proto_name(n): n for n in names}, **{n: n for n in names}}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _walk_ref(schema_name: str, value: Any, path: str, *, complete: bool, key: str = "") -> Iterator[Violation]:
    if value is None:
        return
    if not isinstance(value, dict):
        if isinstance(value, list):
            yield _not_repeating(path, key)
        else:
            yield Violation("type", path, f"Invalid value at '{path}' (TYPE_MESSAGE {schema_name}), {_shown(value)}")
        return
    properties = schema(schema_name).get("properties", {})
    aliases = _aliases(schema_name)
    for key, item in value.items():
        name = aliases.get(key)
        if name is None:
            where = f" at '{path}'" if path else ""
            yield Violation("unknown-field", _join(path, key),
                            f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.')
            continue
        yield from _walk(properties[name], item, _join(path, proto_name(name)), key)
    if complete:
        for name in required_fields(schema_name):
            given = value.get(name, value.get(proto_name(name)))
            if given is None or (isinstance(given, str) and given.endswith("_UNSPECIFIED")):
                where = f" at '{path}'" if path and path != "resource" else ""
                yield Violation("required", _join(path, proto_name(name)), f"Missing required field: {name}{where}")


def _walk(spec: dict[str, Any], value: Any, path: str, key: str) -> Iterator[Violation]:
    """``key``: the field's name as sent (for Google's "Unknown name" wording)."""
    if value is None:
        return
    if "$ref" in spec:
        yield from _walk_ref(spec["$ref"], value, path, complete=True, key=key)
        return
    kind = spec.get("type")
    if kind == "array":
        if not isinstance(value, list):
            yield Violation("type", path, f"Invalid value at '{path}' ({_type_name(spec['items'])}), {_shown(value)}")
            return
        for i, item in enumerate(value):
            if item is None:  # proto3 JSON: null is no value of a list
                yield Violation("type", f"{path}[{i}]", f"Invalid value at '{path}[{i}]' "
                                f"({_type_name(spec['items'])}), null")
            else:
                yield from _walk(spec["items"], item, f"{path}[{i}]", key)
        return
    if kind == "object" and "additionalProperties" in spec:  # a map
        if not isinstance(value, dict):
            yield Violation("type", path, f"Invalid value at '{path}' (map), {_shown(value)}")
            return
        for map_key, item in value.items():
            yield from _walk(spec["additionalProperties"], item, f"{path}[{map_key}]", key)
        return
    if kind in ("any", "object"):
        return
    if isinstance(value, list):
        yield _not_repeating(path, key)
        return
    if "enum" in spec:
        if not isinstance(value, str) or value not in spec["enum"]:
            yield Violation("enum", path, f"Invalid value at '{path}' (TYPE_ENUM), {_shown(value)}")
        return
    if not _scalar_ok(kind, spec.get("format"), value):
        yield Violation("type", path, f"Invalid value at '{path}' ({_type_name(spec)}), {_shown(value)}")


def _not_repeating(path: str, key: str) -> Violation:
    parent, _, leaf = path.rpartition(".")
    leaf = key or leaf
    where = f" at '{parent}'" if parent else ""
    return Violation("type", path,
                     f'Invalid JSON payload received. Unknown name "{leaf}"{where}: Proto field is not repeating, '
                     "cannot start list.")


def _type_name(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return f"TYPE_MESSAGE {spec['$ref']}"
    if "enum" in spec:
        return "TYPE_ENUM"
    kind, fmt = spec.get("type"), spec.get("format")
    if kind == "string":
        return {"int64": "TYPE_INT64", "uint64": "TYPE_UINT64", "byte": "TYPE_BYTES"}.get(fmt or "", "TYPE_STRING")
    if kind == "integer":
        return "TYPE_UINT32" if fmt == "uint32" else "TYPE_INT32"
    if kind == "number":
        return "TYPE_FLOAT" if fmt == "float" else "TYPE_DOUBLE"
    if kind == "boolean":
        return "TYPE_BOOL"
    return f"TYPE_{str(kind).upper()}"


def _scalar_ok(kind: str | None, fmt: str | None, value: Any) -> bool:
    if isinstance(value, dict):
        return False
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if (kind == "string" and fmt in ("int64", "uint64")) or kind == "integer":
        return _integer_ok(value, fmt or "int32")
    if kind == "string" and fmt == "byte":
        return isinstance(value, str) and _base64_ok(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        if isinstance(value, int | float):
            return True
        if isinstance(value, str):
            if value in ("NaN", "Infinity", "-Infinity"):
                return True
            try:
                return math.isfinite(float(value))
            except ValueError:
                return False
        return False
    return True  # a type the document does not use for the loyalty resources


def _integer_ok(value: Any, fmt: str) -> bool:
    if isinstance(value, float):
        if not value.is_integer():
            return False
        value = int(value)
    elif isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            return False
        value = int(value)
    elif not isinstance(value, int):
        return False
    low, high = _RANGES.get(fmt, _RANGES["int64"])
    return low <= value <= high


def _base64_ok(value: str) -> bool:
    """Standard or URL-safe base64, padding optional (proto3 JSON accepts both alphabets)."""
    return _BASE64.fullmatch(value) is not None and len(value.rstrip("=")) % 4 != 1
