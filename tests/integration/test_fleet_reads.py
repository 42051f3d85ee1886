"""The fleet page and `gridhook sites` cost O(sites x feeds), never the history: on SQLite,
the same SQL whether the sites hold a day of events or a month (counted on the connection),
and the same answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook import site_reads
from gridhook.events import normalise
from gridhook.health import site_health
from gridhook.report.fleet_room import build_fleet_room
from gridhook.sites import load_sites
from gridhook.store import EventQuery, iter_events, open_store
from tests.fleet_scenario import AMS, PHX, seed_fleet, sites_json

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
NOW = ORIGIN + timedelta(hours=20, minutes=50)
DEADLINE = timedelta(seconds=1800)
SITES = load_sites({"GRIDHOOK_SITES": sites_json()}).sites


def fleet_store(path: Path, older_days: int) -> object:
    """The fleet scenario, and before it ``older_days`` copies of each site's day."""
    store = open_store(f"sqlite:///{path}")
    seed_fleet(store, ORIGIN, NOW)
    for site in (PHX, AMS):
        day = list(iter_events(store, EventQuery(site=site, limit=1000)))
        for back in range(1, older_days + 1):
            store.add_events(  # type: ignore[attr-defined]  # SQLite's bulk load
                normalise(
                    {**e.payload, "correlation_id": f"{e.correlation_id}-{back}"},
                    e.received_at - timedelta(days=back),
                    site=site,
                )
                for e in day
            )
    return store


def traced(store: object, fn) -> tuple[list[str], object]:
    """The SQL ``fn`` runs (the machine's clock, which expiry is judged by, left out) and
    what it returns."""
    conn = store._connection()  # type: ignore[attr-defined]  # this thread's connection
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        found = fn()
    finally:
        conn.set_trace_callback(None)
    return [re.sub(r"expires_at >= '[^']*'", "expires_at >= NOW", s) for s in statements], found


def test_the_fleet_page_reads_the_same_for_a_day_or_a_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site_reads, "READERS", 1)  # one thread: its connection is traced
    monkeypatch.setattr(site_reads, "_pool", None)
    day = fleet_store(tmp_path / "day.db", 0)
    month = fleet_store(tmp_path / "month.db", 30)
    try:
        assert len(list(iter_events(month, EventQuery(site=PHX, limit=1000)))) == 31 * 17

        def room(store: object):
            return lambda: build_fleet_room(store, SITES, now=NOW, ramp_deadline=DEADLINE)

        small, day_room = traced(day, room(day))
        large, month_room = traced(month, room(month))
        assert small == large and 0 < len(small) <= 8 * len(SITES)
        assert day_room == month_room

        def health(store: object):
            return lambda: [site_health(store, s, now=NOW, ramp_deadline=DEADLINE) for s in SITES]

        assert traced(day, health(day))[0] == traced(month, health(month))[0]
    finally:
        day.close()  # type: ignore[attr-defined]
        month.close()  # type: ignore[attr-defined]
