"""The power-event JSON Schema: loaded from ``schemas/power-event.schema.json`` and
compiled once per process.

The deployed archive carries that very file (``functions/schemas`` links to the
top-level ``schemas/``), so there is no hand-kept copy to drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

from gridhook.timestamps import parse_time

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = [
    "SCHEMA_PATH",
    "Violation",
    "fast_validator",
    "is_valid",
    "load_schema",
    "validator",
    "violations",
]

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


def _is_datetime(value: object) -> bool:
    # The pattern fixes the shape; this rejects impossible dates such as 2025-13-45.
    if not isinstance(value, str):
        return True
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


@cache
def validator() -> Draft202012Validator:
    """The full validator, used to list every violation (built on first use, then reused)."""
    from jsonschema import Draft202012Validator, FormatChecker

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_datetime)
    return Draft202012Validator(schema, format_checker=checker)


# -- the fast path -------------------------------------------------------------------
# Almost every delivery is valid. fastjsonschema compiles the schema into plain Python
# that answers "valid?" in a few microseconds (jsonschema's general machinery takes
# ~150 µs). Only a "no" goes to jsonschema, which alone lists the violations, so the
# 422 messages never depend on the fast path; jsonschema is imported only then, which
# also keeps it out of the receiver's cold start. fastjsonschema applies draft 2019-09
# rules to this 2020-12 schema, the same for every keyword it uses;
# tests/unit/test_schema_fast_path.py checks that both validators agree.


@cache
def fast_validator() -> Callable[[Any], Any]:
    """The compiled fast check: returns the payload, or raises JsonSchemaValueException."""
    return fastjsonschema.compile(load_schema(), formats={"date-time": _is_datetime})


def is_valid(payload: Any) -> bool:
    """Whether ``payload`` passes the schema (the receiver's hot path)."""
    try:
        fast_validator()(payload)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def _pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def violations(payload: Any) -> list[Violation]:
    """Every way ``payload`` fails the schema, sorted by path; empty when it is valid."""
    if is_valid(payload):
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
