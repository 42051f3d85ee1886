"""Whitelist matching, event filters, URL redaction, fault helpers (no network)."""

from __future__ import annotations

import pytest

from dpsapi.v1 import nvgrid_pb2
from simulator.faults import FaultKnobs
from simulator.webhooks import NOT_WHITELISTED, WebhookRegistry, redact_url

Event = nvgrid_pb2.RegisterWebhookRequest


@pytest.mark.parametrize(
    ("entry", "url", "allowed"),
    [
        ("http://127.0.0.1", "http://127.0.0.1:8080/any/path", True),  # no port = any port
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/x", True),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8081/x", False),
        ("https://grid.example.com", "https://grid.example.com/x", True),
        ("https://grid.example.com:443", "https://grid.example.com/x", True),  # default port
        ("https://grid.example.com", "http://grid.example.com/x", False),  # scheme
        ("https://grid.example.com", "https://grid.example.com.evil.io/x", False),  # host
        ("https://GRID.example.com", "https://grid.EXAMPLE.com/x", True),  # host case
        ("https://g.example.com/nvgrid", "https://g.example.com/nvgrid", True),
        ("https://g.example.com/nvgrid", "https://g.example.com/nvgrid/webhook?token=1", True),
        ("https://g.example.com/nvgrid/", "https://g.example.com/nvgrid/webhook", True),
        ("https://g.example.com/nvgrid", "https://g.example.com/nvgridx", False),
        ("https://g.example.com/nvgrid", "https://g.example.com/other", False),
        ("https://g.example.com/a?x=1", "https://g.example.com/a?x=1", True),  # exact URL
    ],
)
def test_whitelist_matching(entry: str, url: str, allowed: bool) -> None:
    problem = WebhookRegistry([entry]).register(url, [])
    assert (problem is None) is allowed
    if not allowed:
        assert problem == NOT_WHITELISTED


def test_no_whitelist_allows_any_http_url_but_rejects_other_schemes() -> None:
    registry = WebhookRegistry()
    assert registry.register("https://anything.example:9/x", []) is None
    assert "http" in (registry.register("ftp://x/y", []) or "")
    assert registry.register("", []) is not None
    assert registry.register("http:///nohost", []) is not None


def test_event_filters() -> None:
    registry = WebhookRegistry()
    registry.register("http://h/all", [])
    registry.register("http://h/unspecified", [Event.POWER_EVENT_UNSPECIFIED])
    registry.register(
        "http://h/down", [Event.POWER_EVENT_START_RAMP_DOWN, Event.POWER_EVENT_END_RAMP_DOWN]
    )
    down = {r.url for r in registry.subscribers(Event.POWER_EVENT_START_RAMP_DOWN)}
    up = {r.url for r in registry.subscribers(Event.POWER_EVENT_END_RAMP_UP)}
    assert down == {"http://h/all", "http://h/unspecified", "http://h/down"}
    assert up == {"http://h/all", "http://h/unspecified"}
    assert registry.register("http://h/bad", [42]) == "unknown power event(s): 42"


def test_registering_a_url_again_replaces_it() -> None:
    registry = WebhookRegistry()
    registry.register("http://h/x", [Event.POWER_EVENT_START_RAMP_UP])
    registry.register("http://h/x", [Event.POWER_EVENT_END_RAMP_UP])
    [registration] = registry.registrations()
    assert registration.event_names == ("end_ramp_up",)


def test_redact_url_hides_query_values_and_passwords() -> None:
    assert redact_url("https://h:8443/p/q?token=s3cret&x=1#frag") == (
        "https://h:8443/p/q?token=REDACTED&x=REDACTED"
    )
    assert redact_url("https://user:pw@h/p") == "https://user:REDACTED@h/p"
    assert "s3cret" not in redact_url("http://h/?a=s3cret")


def test_shuffled_never_keeps_the_original_order() -> None:
    knobs = FaultKnobs(seed=1)
    for size in range(2, 6):
        items = list(range(size))
        for _ in range(20):
            shuffled = knobs.shuffled(items)
            assert sorted(shuffled) == items
            assert shuffled != items


def test_counted_faults_are_consumed() -> None:
    knobs = FaultKnobs(drop_next=2, unavailable_calls=1, duplicate_every=3)
    assert [knobs.take_drop() for _ in range(3)] == [True, True, False]
    assert [knobs.take_rpc_outage() for _ in range(2)] == [True, False]
    assert [knobs.take_duplicate() for _ in range(6)] == [False, False, True, False, False, True]
    knobs.fail_rpcs_for(60)
    assert knobs.take_rpc_outage()
    knobs.reset()
    assert not knobs.take_rpc_outage()
