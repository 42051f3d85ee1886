"""Strict JSON parsing for webhook bodies.

``json.loads`` is lenient where a webhook receiver must not be: it accepts NaN and
Infinity, turns 1e999 into inf, and silently keeps the last of duplicate keys. Each of
those is rejected here with a :class:`BadPayload` that says what is wrong.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_DEPTH", "BadPayload", "parse_payload"]

MAX_DEPTH = 32

_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class BadPayload(ValueError):
    """The body is not a JSON object we can read; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        dupes = sorted(key for key, count in counts.items() if count > 1)
        raise BadPayload("duplicate_key", f"duplicate key(s) in a JSON object: {dupes[:5]}")
    return obj


def _no_constants(name: str) -> Any:
    raise BadPayload("invalid_number", f"{name} is not valid JSON; send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadPayload("invalid_number", f"number {text[:40]} is out of range for a 64-bit float")
    return value


def _depth(value: Any) -> int:
    # Iterative, so a pathological body cannot exhaust the stack here either.
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_payload(raw: bytes) -> dict[str, Any]:
    """Parse a webhook body into a JSON object, or raise BadPayload."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload(
            "invalid_encoding", f"body is not valid UTF-8 (bad byte at offset {exc.start})"
        ) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constants,
            parse_float=_finite_float,
        )
    except BadPayload:
        raise
    except json.JSONDecodeError as exc:
        raise BadPayload(
            "invalid_json",
            f"body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ) from None
    except RecursionError:
        raise BadPayload("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer literal with more than 4300 digits
        raise BadPayload("invalid_number", f"body has an unreadable number: {exc}") from None
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise BadPayload("not_an_object", f"body must be a JSON object, not {kind}")
    if _depth(value) > MAX_DEPTH:
        raise BadPayload("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels")
    return value
