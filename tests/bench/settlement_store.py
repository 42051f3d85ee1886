"""Settlement end to end through the store, at issue 16's scale (tests/bench/settlement.py's
workload: 60 days of 1-minute samples on 2 feeds, ≈172k samples, 120 curtailments in the
last 30 days, each with its four webhooks):

- **SQLite**: the samples stored, rolled up (what ``gridhook samples rollup`` does for 60
  days), then a 30-day settlement end to end: the episodes loaded from the events, each
  feed's interval load (``gridhook.intervals.load``: rollups for complete hours, raw
  samples for the open hour), every episode settled and totalled. Target ≤ 1 s.
- **the Firestore emulator**, the same data: a 30-day report (``build_report``) and a
  30-day interval load of both feeds, each with its RPCs and the documents they read.
  Target ≤ 2 s each (the 30-day report over 17k raw samples took 14.6 s before rollups).
  The emulator holds the 60 days of rollups, the events and the last six hours of raw
  samples: the reads never touch an older raw sample (every hour before the open one has
  its rollup), and writing 172k documents one at a time to the emulator would take the
  section most of an hour.

Medians of warm runs after one unmeasured run. The machine is shared: absolute figures
are noisy.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gridhook.events import StoredEvent, normalise
from gridhook.store import LoadSample
from tests.bench.settlement import (
    FEEDS,
    HISTORY_DAYS,
    NOW,
    SETTLE_DAYS,
    TZ,
    BenchEpisode,
    workload,
)

__all__ = ["bench_settlement_store", "settlement_store_table"]

TARGET_SQLITE_S = 1.0
TARGET_FIRESTORE_S = 2.0
RAMP_DEADLINE = timedelta(minutes=30)
KEEP = timedelta(days=3650)  # samples and rollups outlive any run of the bench
LOOKBACK = timedelta(days=45 + 2)  # the baselines' look-back, and a day each side
FIRESTORE_RAW_HOURS = 6


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = fn()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def _mw(watts: float) -> dict[str, Any]:
    return {"value": round(watts / 1e6, 6), "unit": "mw"}


def episode_events(episode: BenchEpisode) -> Iterator[StoredEvent]:
    """The four webhooks of a bench curtailment, as the simulator sends them."""
    prev = episode.target_w / 0.7
    start, end = episode.interval_start, episode.interval_end
    down = {"target_load": _mw(episode.target_w), "prev_target_load": _mw(prev)}
    up = {"target_load": _mw(prev), "prev_target_load": _mw(episode.target_w)}
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    steps = (
        ("start_ramp_down", episode.ramp_down_started_at, down, start, end, prev),
        ("end_ramp_down", start, down, start, end, episode.target_w),
        ("start_ramp_up", end, up, end, None, episode.target_w),
        ("end_ramp_up", end + timedelta(minutes=3), up, end, None, prev),
    )
    for event, at, targets, start_time, end_time, load in steps:
        payload = {
            "event": event,
            "feed_tag": episode.feed_tag,
            "start_time": start_time.strftime(stamp),
            "end_time": None if end_time is None else end_time.strftime(stamp),
            "strategy": "best_effort",
            **targets,
            "calculated_load": _mw(load),
            "compliant": True,
            "correlation_id": episode.episode_id,
        }
        if payload["end_time"] is None:
            del payload["end_time"]
        yield normalise(payload, at + timedelta(milliseconds=400))


def _samples(data: dict[str, Any], since: datetime | None = None) -> Iterator[LoadSample]:
    floor = None if since is None else since.timestamp()
    for feed, (times, watts) in data.items():
        for t, w in zip(times.tolist(), watts.tolist(), strict=True):
            if floor is None or t >= floor:
                at = datetime.fromtimestamp(t, UTC)
                yield LoadSample(feed, at, w, None, None, at + KEEP)


# -- the settlement, through a store -------------------------------------------------------


def settle_from_store(store: Any) -> tuple[list[Any], Any, dict[str, Any]]:
    """The 30-day settlement as ``gridhook settlement`` runs it (``settle_range``): the
    site's episodes loaded once, each feed's intervals once for the union of its episodes'
    data ranges, every episode listed in the range settled, totals per feed, site, fleet."""
    from gridhook.intervals.settle import settle_range
    from gridhook.sites import Site

    settle_since = NOW - timedelta(days=SETTLE_DAYS)
    run = settle_range(
        store,
        [Site(name="default", timezone=TZ.key)],
        since=settle_since,
        until=NOW,
        now=NOW,
        method="caiso-10-in-10",
        ramp_deadline=RAMP_DEADLINE,
        min_coverage=0.8,
    )
    loads = {f.feed: f.load.to_dict() for f in run.feeds if f.load is not None}
    return run.settlements, run.totals, loads


def _statements_every_thread(store: Any, fn: Callable[[], Any]) -> int:
    """The SQL statements ``fn`` runs on every connection the store has opened (white-box:
    a settlement reads its feeds in parallel, a connection per thread; they exist after
    the warm runs)."""
    statements: list[str] = []
    connections = list(store._connections)
    for conn in connections:
        conn.set_trace_callback(statements.append)
    try:
        fn()
    finally:
        for conn in connections:
            conn.set_trace_callback(None)
    return len(statements)


def sqlite_figures(runs: int, say: Callable[[str], None]) -> dict[str, Any]:
    from gridhook.intervals.rollups import roll_up
    from gridhook.store import sqlite as backend
    from gridhook.store.sqlite import SQLiteEventStore

    data, episodes = workload()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gridhook-settle-") as tmp:
        store = SQLiteEventStore(Path(tmp) / "settle.db")
        try:
            conn = store._connection()
            conn.execute("PRAGMA synchronous=OFF")  # loading speed only
            started = time.perf_counter()
            rows = [backend._SAMPLES.row(s) for s in _samples(data)]  # bench-only bulk path
            with conn:
                conn.executemany(backend._SAMPLES.insert(), rows)
            store.add_events(e for ep in episodes for e in episode_events(ep))
            figures["samples"] = len(rows)
            figures["load_s"] = time.perf_counter() - started
            say(f"    stored {len(rows):,} samples in {figures['load_s']:.0f} s; rolling up …")
            started = time.perf_counter()
            run = roll_up(
                store,
                site="default",
                since=NOW - timedelta(days=HISTORY_DAYS),
                until=NOW,
                now=NOW,
                retention=KEEP,
            )
            figures["rollup_s"] = time.perf_counter() - started
            figures["rollups_written"] = run.written
            started = time.perf_counter()
            again = roll_up(
                store,
                site="default",
                since=NOW - timedelta(days=HISTORY_DAYS),
                until=NOW,
                now=NOW,
                retention=KEEP,
            )
            figures["rollup_again_s"] = time.perf_counter() - started
            figures["rollup_again_written"] = again.written
            conn.execute("ANALYZE")

            seconds, (results, totals, loads) = _timed(lambda: settle_from_store(store), runs)
            figures["settlement_30d_s"] = seconds
            figures["settlement_30d_statements"] = _statements_every_thread(
                store, lambda: settle_from_store(store)
            )
            figures["settled"] = len(results)
            figures["statuses"] = totals.statuses
            figures["loads"] = loads

            def load_only() -> Any:
                from gridhook.episodes.load import load_episodes
                from gridhook.intervals.load import load_intervals

                since = NOW - timedelta(days=SETTLE_DAYS) - LOOKBACK
                load_episodes(store, since=since, until=NOW, now=NOW, ramp_deadline=RAMP_DEADLINE)
                for feed in FEEDS:
                    load_intervals(store, feed=feed, tz=TZ, since=since, until=NOW)

            figures["load_part_s"], _ = _timed(load_only, runs)
            figures.update(_report_figures(store, runs))
        finally:
            store.close()
    return figures


def _report(store: Any, settled: bool) -> Any:
    """The 30-day report of the workload's site (in its time zone), with each curtailment
    settled against the default baseline (``settled``) or without."""
    from gridhook.report import build_report
    from gridhook.report.settled import DeliveryOptions
    from gridhook.settlement import DEFAULT_METHOD

    return build_report(
        store,
        since=NOW - timedelta(days=SETTLE_DAYS),
        until=NOW,
        now=NOW,
        ramp_deadline=RAMP_DEADLINE,
        zone=TZ,
        delivery=DeliveryOptions(DEFAULT_METHOD) if settled else None,
    )


def _report_figures(store: Any, runs: int) -> dict[str, Any]:
    """The 30-day report without and with its delivered figures, built and as HTML: paired
    on the same store, in the same process (the difference is what settling costs)."""
    from gridhook.report.render import render_html
    from tests.bench.scale import _sql_statements

    figures: dict[str, Any] = {}
    for name, settled in (("plain", False), ("settled", True)):
        seconds, report = _timed(lambda settled=settled: _report(store, settled), runs)
        figures[f"report_{name}_s"] = seconds
        figures[f"report_{name}_statements"] = _sql_statements(
            store, lambda settled=settled: _report(store, settled)
        )
        figures[f"html_{name}_s"], _ = _timed(lambda report=report: render_html(report), runs)
        if settled:
            totals = report.delivery_totals
            figures["report_settled_statuses"] = totals.totals.statuses
    return figures


# -- the Firestore emulator ----------------------------------------------------------------


def firestore_figures(host: str, runs: int, say: Callable[[str], None]) -> dict[str, Any]:
    import os

    from gridhook.intervals.load import load_intervals
    from gridhook.intervals.rollups import complete_until, pack_days, rollup_record
    from gridhook.report import build_report
    from gridhook.settlement import rollup_hours
    from tests.firestore_counts import counted_documents_store

    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    data, episodes = workload()
    store, counter = counted_documents_store(f"bench-settle-{uuid.uuid4().hex[:8]}")
    figures: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        complete = complete_until(NOW)  # what the sampling job has rolled up by now
        since = NOW - timedelta(days=HISTORY_DAYS)
        rollups = [
            rollup_record(r, KEEP)
            for feed in FEEDS
            for r in rollup_hours(
                data[feed], site="default", feed=feed, since=since, until=complete
            )
        ]
        store.add_rollups(rollups)
        # What the sampling job has packed by now: each complete day's rollups, per feed.
        days = pack_days(store, site="default", since=since, until=NOW, now=NOW)
        raw = list(_samples(data, NOW - timedelta(hours=FIRESTORE_RAW_HOURS)))
        events = [e for ep in episodes for e in episode_events(ep)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(store.add_sample, raw))
            list(pool.map(store.add_event, events))
        figures.update(
            rollups=len(rollups),
            day_rollups=days,
            raw_samples=len(raw),
            events=len(events),
            load_s=time.perf_counter() - started,
        )
        say(
            f"    loaded {len(rollups):,} rollups ({days} day rollups), {len(raw)} raw samples "
            f"and {len(events)} "
            f"events into the emulator in {figures['load_s']:.0f} s"
        )

        def report() -> Any:
            return build_report(
                store,
                since=NOW - timedelta(days=SETTLE_DAYS),
                until=NOW,
                now=NOW,
                ramp_deadline=RAMP_DEADLINE,
            )

        def intervals() -> Any:
            return [
                load_intervals(
                    store, feed=feed, tz=TZ, since=NOW - timedelta(days=SETTLE_DAYS), until=NOW
                )
                for feed in FEEDS
            ]

        def settlement_range() -> Any:
            # What a 30-day settlement reads: the range and the baselines' look-back
            # (here 60 days of rollups: the history the workload has).
            since = NOW - timedelta(days=SETTLE_DAYS) - LOOKBACK
            return [
                load_intervals(store, feed=feed, tz=TZ, since=since, until=NOW) for feed in FEEDS
            ]

        def report_settled() -> Any:
            return _report(store, settled=True)

        def settlement() -> Any:
            return settle_from_store(store)

        measured = (
            ("report_30d", report),
            ("report_30d_settled", report_settled),
            ("settlement_30d", settlement),
            ("intervals_30d", intervals),
            ("intervals_settlement", settlement_range),
        )
        for name, fn in measured:
            seconds, result = _timed(fn, runs)
            counter.clear()
            fn()
            figures[name] = {
                "s": seconds,
                "rpcs": counter.total(),
                "rpc_methods": dict(counter.calls),
                "documents": counter.documents,
            }
            if name.startswith("report_30d"):
                figures[name]["points"] = {f.feed_tag: f.timeline.load_source for f in result.feeds}
                figures[name]["episodes"] = len(result.episodes)
            elif name == "settlement_30d":
                figures[name]["settled"] = len(result[0])
                figures[name]["statuses"] = result[1].statuses
                figures[name]["loads"] = list(result[2].values())
            else:
                figures[name]["loads"] = [load.to_dict() for load in result]
    finally:
        store.close()
    return figures


def bench_settlement_store(
    runs: int, emulator_host: str | None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    say("  SQLite: 60 days of 1-minute samples, rolled up, a 30-day settlement …")
    results: dict[str, Any] = {"sqlite": sqlite_figures(runs, say)}
    if emulator_host:
        say("  Firestore emulator: a 30-day report, settlement and interval load …")
        results["firestore"] = firestore_figures(emulator_host, min(runs, 3), say)
    return results


def settlement_store_table(results: dict[str, Any]) -> str:
    sq = results["sqlite"]
    met = "yes" if sq["settlement_30d_s"] <= TARGET_SQLITE_S else "NO"
    rows = [
        ("SQLite: samples stored (2 feeds, 60 days)", f"{sq['samples']:,}", ""),
        (
            "SQLite: roll up 60 days (samples rollup)",
            f"{sq['rollup_s']:.1f} s",
            f"{sq['rollups_written']:,} rollups; again: {sq['rollup_again_s'] * 1000:.0f} ms, "
            f"{sq['rollup_again_written']} new",
        ),
        (
            f"SQLite: 30-day settlement end to end ({sq['settled']} episodes)",
            f"{sq['settlement_30d_s'] * 1000:.0f} ms",
            f"≤ 1 s: {met}; {sq['settlement_30d_statements']} SQL statements",
        ),
        ("  of which loading (episodes + intervals)", f"{sq['load_part_s'] * 1000:.0f} ms", ""),
    ]
    if "report_plain_s" in sq:
        for name, label in (("plain", "without"), ("settled", "with")):
            rows.append(
                (
                    f"SQLite: 30-day report {label} delivered figures",
                    f"{sq[f'report_{name}_s'] * 1000:.0f} ms",
                    f"{sq[f'report_{name}_statements']} SQL statements; as HTML "
                    f"{sq[f'html_{name}_s'] * 1000:.0f} ms more",
                )
            )
    fs = results.get("firestore")
    if fs:
        for key, label in (
            ("report_30d", "30-day report"),
            ("report_30d_settled", "30-day report, settled"),
            ("settlement_30d", "30-day settlement"),
            ("intervals_30d", "30-day intervals"),
            ("intervals_settlement", "a settlement's intervals*"),
        ):
            figure = fs[key]
            met = "yes" if figure["s"] <= TARGET_FIRESTORE_S else "NO"
            rows.append(
                (
                    f"Firestore emulator: {label} (2 feeds)",
                    f"{figure['s'] * 1000:.0f} ms",
                    ("" if key == "intervals_settlement" else f"≤ 2 s: {met}; ")
                    + f"{figure['rpcs']} RPCs, {figure['documents']:,} documents",
                )
            )
    width = max(len(r[0]) for r in rows)
    lines = [f"{name.ljust(width)}  {value:>10}  {note}" for name, value, note in rows]
    lines.append(f"statuses {sq['statuses']}; loads {list(sq['loads'].values())}")
    if fs:
        lines.append(
            "* information: the 30 days and the baselines' 47-day look-back (all 60 days of "
            "rollups the workload has)"
        )
    return "\n".join(lines)


def main() -> int:
    """``python -m tests.bench.settlement_store``: this part alone (the emulator started)."""
    from tests.harness import FirestoreEmulator

    emulator = FirestoreEmulator()
    emulator.start()
    try:
        results = bench_settlement_store(5, emulator.host)
    finally:
        emulator.stop()
    print()
    print(settlement_store_table(results))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
