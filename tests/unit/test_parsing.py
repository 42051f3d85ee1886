"""Strict JSON parsing: every leniency of json.loads is refused with a clear code."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridhook.parsing import MAX_DEPTH, BadPayload, parse_payload


def test_parses_an_object() -> None:
    assert parse_payload(b'{"event": "start_ramp_up", "n": 1.5}') == {
        "event": "start_ramp_up",
        "n": 1.5,
    }


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b'{"a": NaN}', "invalid_number"),
        (b'{"a": Infinity}', "invalid_number"),
        (b'{"a": -Infinity}', "invalid_number"),
        (b'{"a": 1e400}', "invalid_number"),
        (b'{"a": -1e400}', "invalid_number"),
        (b'{"a": ' + b"1" * 4400 + b"}", "invalid_number"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b'{"o": {"k": 1, "k": 1}}', "duplicate_key"),
        (b"[1]", "not_an_object"),
        (b"true", "not_an_object"),
        (b"\xef\xbb\xbf{}", "invalid_json"),  # a UTF-8 BOM is not JSON
        (b'{"a": "\xc3"}', "invalid_encoding"),
        (b'{"a": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", "too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    ],
)
def test_rejections_carry_a_code_and_message(raw, code) -> None:
    with pytest.raises(BadPayload) as exc:
        parse_payload(raw)
    assert exc.value.code == code
    assert exc.value.message


def test_depth_limit_is_inclusive() -> None:
    nested = b'{"a": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert parse_payload(nested)


@given(st.binary(max_size=300))
def test_property_never_raises_anything_but_bad_payload(raw) -> None:
    try:
        assert isinstance(parse_payload(raw), dict)
    except BadPayload as exc:
        assert exc.code and exc.message


@given(st.text(max_size=200))
def test_property_text_bodies_never_escape(text) -> None:
    with contextlib.suppress(BadPayload):
        assert isinstance(parse_payload(text.encode("utf-8", "surrogatepass")), dict)
