"""The power-event JSON Schema: loaded from ``schemas/power-event.schema.json`` and
compiled once per process.

The deployed archive carries that very file (``functions/schemas`` links to the
top-level ``schemas/``), so there is no hand-kept copy to drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from gridhook.events import parse_time

__all__ = ["SCHEMA_PATH", "Violation", "load_schema", "validator", "violations"]

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "power-event.schema.json"


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a payload fails the schema: where (a JSON pointer) and what."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@cache
def load_schema() -> dict[str, Any]:
    """The schema document, read once."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


_format_checker = FormatChecker(formats=())


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    # The pattern fixes the shape; this rejects impossible dates such as 2025-13-45.
    if isinstance(value, str):
        parse_time(value)
    return True


@cache
def validator() -> Draft202012Validator:
    """The compiled validator for power events (built on first use, then reused)."""
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker)


# -- the fast path -------------------------------------------------------------------
# Almost every delivery is valid, and jsonschema's general machinery spends ~120 µs
# saying so (a validator object per keyword, $ref lookups). The schema uses a handful of
# keywords; they are compiled here into plain checks that only answer "valid?". A "no"
# goes to jsonschema, which alone writes the violations, so messages never change; a
# schema keyword outside this set turns the fast path off (everything goes to jsonschema).
# tests/unit/test_schema_fast_path.py checks that both agree on generated payloads.

_Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "x-message"}
)
_TYPES: dict[str, _Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        not isinstance(v, bool)
        and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))
    ),
}


class _Unsupported(Exception):
    """The schema uses a keyword the fast path does not implement."""


def _compile(schema: Any, root: dict[str, Any]) -> _Check:
    if schema is True:
        return lambda v: True
    if not isinstance(schema, dict):
        raise _Unsupported(repr(schema))
    checks: list[_Check] = []
    for key, arg in schema.items():
        if key in _ANNOTATIONS or (key == "additionalProperties" and arg is True):
            continue
        if key == "$ref" and isinstance(arg, str) and arg.startswith("#/$defs/"):
            checks.append(_compile(root["$defs"][arg.removeprefix("#/$defs/")], root))
        elif key == "type":
            names = [arg] if isinstance(arg, str) else list(arg)
            types = [_TYPES[n] for n in names]
            checks.append(types[0] if len(types) == 1 else _any_of(types))
        elif key == "required":
            names = list(arg)
            checks.append(
                lambda v, names=names: not isinstance(v, dict) or all(n in v for n in names)
            )
        elif key == "properties":
            checks.append(_properties([(name, _compile(sub, root)) for name, sub in arg.items()]))
        elif key == "pattern":
            search = re.compile(arg).search
            checks.append(lambda v, search=search: not isinstance(v, str) or bool(search(v)))
        elif key == "format":
            checks.append(
                lambda v, fmt=arg: not isinstance(v, str) or _format_checker.conforms(v, fmt)
            )
        elif key in ("minLength", "maxLength"):
            low, high = (arg, float("inf")) if key == "minLength" else (0, arg)
            checks.append(
                lambda v, low=low, high=high: not isinstance(v, str) or low <= len(v) <= high
            )
        elif key in ("minimum", "maximum"):
            low, high = (arg, float("inf")) if key == "minimum" else (float("-inf"), arg)
            checks.append(lambda v, low=low, high=high: not _TYPES["number"](v) or low <= v <= high)
        else:
            raise _Unsupported(key)
    return checks[0] if len(checks) == 1 else _all_of(checks)


# Plain loops: generator expressions would cost more than the checks themselves.
def _all_of(checks: list[_Check]) -> _Check:
    def check(v: Any) -> bool:
        for c in checks:  # noqa: SIM110
            if not c(v):
                return False
        return True

    return check


def _any_of(checks: list[_Check]) -> _Check:
    def check(v: Any) -> bool:
        for c in checks:  # noqa: SIM110
            if c(v):
                return True
        return False

    return check


def _properties(props: list[tuple[str, _Check]]) -> _Check:
    def check(v: Any) -> bool:
        if isinstance(v, dict):
            for name, c in props:
                if name in v and not c(v[name]):
                    return False
        return True

    return check


@cache
def _fast_check() -> _Check | None:
    """The compiled fast check, or None when the schema needs jsonschema's full power."""
    try:
        return _compile(load_schema(), load_schema())
    except (_Unsupported, KeyError, TypeError, re.error):
        return None


def _pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def violations(payload: Any) -> list[Violation]:
    """Every way ``payload`` fails the schema, sorted by path; empty when it is valid."""
    fast = _fast_check()
    if fast is not None and fast(payload):
        return []
    found: set[Violation] = set()
    for error in validator().iter_errors(payload):
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            # Point at each missing member itself, not at its parent object.
            for name in error.validator_value:
                if name not in error.instance:
                    found.add(Violation(_pointer([*path, name]), f"{name!r} is required"))
            continue
        message = error.message
        if error.validator in ("pattern", "format") and isinstance(error.schema, dict):
            hint = error.schema.get("x-message")
            if hint:
                message = f"{_short(error.instance)}: {hint}"
        found.add(Violation(_pointer(path), _short_text(message)))
    return sorted(found, key=lambda v: (v.path, v.message))


def _short_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any, limit: int = 80) -> str:
    # Echo a bad value so the sender can find it, but never a whole megabyte of it.
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
