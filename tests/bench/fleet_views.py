"""Issue 14's scale, the part the fleet views own: the fleet control room and a 30-day fleet
report over 50 sites x 2 feeds (``--fleet-sites``), on SQLite; and the fleet page on the
Firestore emulator, where every read is a round trip.

The data (generated once, cached under var/bench/ like the scale section's): each site in
one of eight time zones, its two feeds (``main_power_feed``, ``backup_power_feed``: the
same names on every site, as NVIDIA's examples name them) curtailed twice a day at the
site's local morning and evening peaks for the 30 days before ``DATA_NOW`` (real payloads
through ``gridhook.events.normalise``, a target in eight not met), a GetStatus sample per
feed every 5 minutes, and a registration per site. At ``DATA_NOW`` every fifth site has a
curtailment going on, every tenth one stalled (its ramp down never ended), and every
seventh site's registration is failing.

Figures (medians of warm runs, one unmeasured run first):

1. **the fleet page**, ``GET /`` of power_report in-process (the real functions-framework
   app): build, render, and its SQL statements (O(sites x feeds): each site's feed states,
   recent samples and registration, never the history);
2. a site's page, ``GET /sites/<site>`` (its two 24-hour charts);
3. **the 30-day fleet report**, ``build_fleet_report`` and its HTML and JSON renders, one
   run each after a one-site report warmed the renderers;
4. ``gridhook sites``' work (each site's health), in-process;
5. the fleet page on the Firestore emulator, with its RPCs.

``python -m tests.bench --only fleet_views``. The machine is shared: absolute times are
noisy (say so when quoting them); the statement and RPC counts are not.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.scale_data import Curtailment
from tests.harness import REPO

__all__ = ["bench_fleet_views", "fleet_views_table"]

GENERATOR_VERSION = 3  # 2: rolled up, as sample_load leaves a store; 3: days packed too
CACHE = REPO / "var" / "bench"
DATA_NOW = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
LOOK_BACK_DAYS = 2  # history before the report's range: what its edges read
SAMPLE_EVERY = timedelta(minutes=5)
FEEDS = {"main_power_feed": 10.0, "backup_power_feed": 8.0}
ZONES = (
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Chicago",
    "America/New_York",
    "Europe/London",
    "Europe/Amsterdam",
    "Asia/Kolkata",
    "Asia/Tokyo",
)
PEAKS = ((7, 30), (18, 0))  # local start of the morning and evening curtailments
RAMP_DEADLINE = timedelta(seconds=1800)
TARGET_PAGE_S = 1.0
FIRESTORE_SAMPLE_HOURS = 1  # the page reads the last 15 minutes of samples


def site_name(number: int) -> str:
    return f"s{number:02d}"


def sites_json(count: int) -> str:
    import json

    return json.dumps(
        {
            "sites": {
                site_name(n): {
                    "timezone": ZONES[n % len(ZONES)],
                    "nvgrid_host": f"dps.{site_name(n)}.example.com:443",
                    "nvgrid_credentials_file": f"/secrets/{site_name(n)}/credentials",
                    "webhook_tokens_file": f"/secrets/{site_name(n)}/webhook-tokens",
                }
                for n in range(1, count + 1)
            }
        }
    )


def _curtailments(number: int) -> list[Curtailment]:
    """One site's: two a day per feed at its local peaks, and what goes on at DATA_NOW."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONES[number % len(ZONES)])
    rng = random.Random(f"fleet-{number}-{GENERATOR_VERSION}")
    first = (DATA_NOW - timedelta(days=DAYS + LOOK_BACK_DAYS)).astimezone(zone).date()
    found = []
    for day in range(DAYS + LOOK_BACK_DAYS + 1):
        date = first + timedelta(days=day)
        for hour, minute in PEAKS:
            for offset, (feed, prev) in enumerate(FEEDS.items()):
                local = datetime(date.year, date.month, date.day, hour, minute, tzinfo=zone)
                start = (local + timedelta(minutes=40 * offset + rng.randint(0, 20))).astimezone(
                    UTC
                )
                c = _curtailment(rng, feed, prev, start, down=(3, 12), hold=(45, 150))
                if c.end < DATA_NOW:
                    found.append(c)
    if number % 5 == 0:  # going on now: ramped down 40 minutes ago, held for hours
        start = DATA_NOW - timedelta(minutes=40)
        found.append(
            _curtailment(rng, "main_power_feed", 10.0, start, down=(6, 8), hold=(240, 300))
        )
    return found


def _curtailment(
    rng: random.Random,
    feed: str,
    prev: float,
    start: datetime,
    *,
    down: tuple[int, int],
    hold: tuple[int, int],
) -> Curtailment:
    target = round(prev * rng.uniform(0.5, 0.8), 1)
    missed = rng.random() < 0.125
    return Curtailment(
        feed=feed,
        correlation_id=f"dr-{feed.split('_')[0]}-{start:%Y%m%dT%H%M%S}",
        start=start,
        down=timedelta(minutes=rng.randint(*down)),
        hold=timedelta(minutes=rng.randint(*hold)),
        up=timedelta(minutes=rng.randint(*down)),
        prev_mw=prev,
        target_mw=target,
        reached_mw=round(target + rng.uniform(0.2, 0.8), 3) if missed else target,
    )


def site_events(number: int) -> Iterator[Any]:
    from gridhook.events import normalise

    site = site_name(number)
    rng = random.Random(f"fleet-receipts-{number}-{GENERATOR_VERSION}")
    for c in _curtailments(number):
        stalled = number % 10 == 0 and c.end >= DATA_NOW  # its end_ramp_down never comes
        for payload, received_at in c.payloads(rng):
            if received_at >= DATA_NOW or (stalled and payload["event"] != "start_ramp_down"):
                continue
            yield normalise(payload, received_at, site=site)


def site_samples(number: int, since: datetime) -> Iterator[Any]:
    from gridhook.store import LoadSample

    site = site_name(number)
    by_feed: dict[str, list[Curtailment]] = {feed: [] for feed in FEEDS}
    for c in _curtailments(number):
        by_feed[c.feed].append(c)
    for feed, listed in by_feed.items():
        listed.sort(key=lambda c: c.start)
        index = 0
        at = since + timedelta(minutes=1)
        while at < DATA_NOW:
            while index < len(listed) and listed[index].end <= at:
                index += 1
            current = listed[index] if index < len(listed) else None
            reading = current.load_at(at) if current is not None else None
            load, target = reading or (FEEDS[feed], FEEDS[feed])
            yield LoadSample(
                feed_tag=feed,
                sampled_at=at,
                calculated_w=round(load, 6) * 1e6,
                target_w=target * 1e6,
                correlation_id=current.correlation_id if reading and current else None,
                expires_at=at + timedelta(days=3650),
                site=site,
            )
            at += SAMPLE_EVERY


def registration(number: int) -> Any:
    from gridhook.store import SubscriptionRecord

    failing = number % 7 == 0
    at = DATA_NOW - timedelta(minutes=3 + number % 10)
    return SubscriptionRecord(
        subscription_id=f"sub-{site_name(number)}",
        url=f"https://example.com/receive_power_event/nvgrid/webhook/{site_name(number)}?token=REDACTED",
        events=("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up"),
        token_fingerprint="f1f2f3f4",
        desired=True,
        registered=not failing,
        last_attempt=at,
        last_success=None if failing else at,
        last_error="DPS unavailable: deadline exceeded" if failing else None,
        consecutive_failures=4 if failing else 0,
        site=site_name(number),
    )


# -- the stores ------------------------------------------------------------------------------


def cached_fleet_store(sites: int, progress: Callable[[str], None] = print) -> Path:
    """A SQLite store of the fleet's 30 days (and the look-back), generated on first use."""
    from gridhook.intervals.rollups import roll_up
    from gridhook.store.sqlite import _SAMPLES, SQLiteEventStore

    path = CACHE / f"fleet-{sites}-v{GENERATOR_VERSION}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob(f"{partial.name}*"):
        leftover.unlink()
    started = time.perf_counter()
    store = SQLiteEventStore(partial)
    try:
        conn = store._connection()  # loading speed only: renamed into place once whole
        conn.execute("PRAGMA synchronous=OFF")
        since = DATA_NOW - timedelta(days=DAYS + LOOK_BACK_DAYS)
        events = samples = 0
        for number in range(1, sites + 1):
            events += store.add_events(site_events(number))
            # The store's own table mapping, in one transaction per site (no bulk port).
            rows = [_SAMPLES.row(s) for s in site_samples(number, since)]
            with conn:
                conn.executemany(_SAMPLES.insert(), rows)
            samples += len(rows)
            # What sample_load leaves behind: every complete hour rolled up.
            roll_up(
                store, site=site_name(number), since=since, until=DATA_NOW, now=DATA_NOW,
                retention=timedelta(days=3650), cadence_s=SAMPLE_EVERY.total_seconds(),
            )  # fmt: skip
            store.put_subscription(registration(number))
            if number % 10 == 0:
                progress(f"    generating: {number} sites, {events:,} events, {samples:,} samples")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    partial.rename(path)
    progress(
        f"    generated {sites} sites in {time.perf_counter() - started:.0f} s "
        f"({events:,} events, {samples:,} samples, {path.stat().st_size / 2**20:.0f} MiB)"
    )
    return path


def _load_firestore(store: Any, sites: int) -> None:
    """What the fleet page reads, through the port: each site's last two days of events,
    its last hour of samples, its registration."""
    since = DATA_NOW - timedelta(days=2)
    with ThreadPoolExecutor(8) as pool:
        for number in range(1, sites + 1):
            recent = [e for e in site_events(number) if e.received_at >= since]
            list(pool.map(store.add_event, recent))
            hour = DATA_NOW - timedelta(hours=FIRESTORE_SAMPLE_HOURS)
            list(pool.map(store.add_sample, site_samples(number, hour)))
            store.put_subscription(registration(number))


# -- measuring -------------------------------------------------------------------------------


def _median(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = fn()  # warm: templates, matplotlib, the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _statements(store: Any, fn: Callable[[], Any]) -> int:
    """The SQL statements ``fn`` runs, sites read one after another (the trace is this
    thread's connection's)."""
    from gridhook import site_reads

    conn = store._connection()
    seen: list[str] = []
    readers, site_reads.READERS, site_reads._pool = site_reads.READERS, 1, None
    conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
        site_reads.READERS, site_reads._pool = readers, None
    return len(seen)


def _dev_clock() -> str:
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"0.000001@{DATA_NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


def _sqlite(sites: int, runs: int) -> dict[str, Any]:
    from gridhook.health import site_health
    from gridhook.report.fleet import build_fleet_report
    from gridhook.report.fleet_room import build_fleet_room
    from gridhook.report.render import render_fleet_room, render_html, render_json
    from gridhook.sites import load_sites
    from gridhook.store import open_store
    from tests.harness import function_app

    path = cached_fleet_store(sites)
    url = f"sqlite:///{path}"
    deployment = load_sites({"GRIDHOOK_SITES": sites_json(sites)})
    figures: dict[str, Any] = {"sites": sites, "feeds": sites * len(FEEDS)}
    env = {
        "GRIDHOOK_STORE": url,
        "GRIDHOOK_SITES": sites_json(sites),
        "GRIDHOOK_DEV_CLOCK": _dev_clock(),
        "GRIDHOOK_LOG_LEVEL": "WARNING",
    }
    with function_app("power_report", env) as app:

        def get(path: str) -> str:
            reply = app.get(path)
            if reply.status_code != 200:
                raise RuntimeError(f"{path}: {reply.status_code} {reply.text[:200]}")
            return reply.text

        figures["page_s"], html = _median(lambda: get("/"), runs)
        figures["page_kib"] = round(len(html.encode()) / 1024)
        figures["site_page_s"], _ = _median(lambda: get(f"/sites/{site_name(min(5, sites))}"), runs)

    store = open_store(url, create=False)
    try:
        deadline = RAMP_DEADLINE

        def room() -> Any:
            return build_fleet_room(store, deployment.sites, now=DATA_NOW, ramp_deadline=deadline)

        figures["page_build_s"], built = _median(room, runs)
        figures["page_render_s"], _ = _median(lambda: render_fleet_room(built), runs)
        figures["page_statements"] = _statements(store, room)
        figures["feeds_constrained"] = built.feeds_constrained
        figures["stalled"] = len(built.stalled)

        since = DATA_NOW - timedelta(days=DAYS)

        def report(of: tuple[Any, ...] = deployment.sites) -> Any:
            return build_fleet_report(
                store, of, since=since, until=DATA_NOW, now=DATA_NOW, ramp_deadline=deadline,
                several=True,
            )  # fmt: skip

        # One run each (a run of 50 sites takes a minute or more): the renderers and the
        # file's pages are warmed by one site's report first.
        warm = report(deployment.sites[:1])
        render_html(warm), render_json(warm)
        statements: list[str] = []
        conn = store._connection()
        conn.set_trace_callback(statements.append)
        try:
            started = time.perf_counter()
            fleet = report()
            figures["report_build_s"] = time.perf_counter() - started
        finally:
            conn.set_trace_callback(None)
        figures["report_statements"] = len(statements)
        started = time.perf_counter()
        html = render_html(fleet)
        figures["report_html_s"] = time.perf_counter() - started
        started = time.perf_counter()
        text = render_json(fleet)
        figures["report_json_s"] = time.perf_counter() - started
        figures["report_episodes"] = len(fleet.episodes)
        figures["report_samples"] = sum(f.timeline.sample_points for f in fleet.feeds)
        figures["report_points"] = sum(len(f.timeline.points) for f in fleet.feeds)
        figures["report_charts"] = 2 * len(fleet.feeds)
        figures["report_html_mib"] = round(len(html.encode()) / 2**20, 1)
        figures["report_json_mib"] = round(len(text.encode()) / 2**20, 1)
        figures["sites_command_s"], _ = _median(
            lambda: [
                site_health(store, s, now=DATA_NOW, ramp_deadline=deadline)
                for s in deployment.sites
            ],
            runs,
        )
    finally:
        store.close()
    return figures


def _firestore(sites: int, runs: int, emulator_host: str) -> dict[str, Any]:
    import os

    from gridhook.report.fleet_room import build_fleet_room
    from gridhook.sites import load_sites
    from tests.harness import counted_firestore_store

    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host
    deployment = load_sites({"GRIDHOOK_SITES": sites_json(sites)})
    store, counter = counted_firestore_store(f"bench-fleet-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        _load_firestore(store, sites)
        loaded = time.perf_counter() - started

        def room() -> Any:
            return build_fleet_room(
                store, deployment.sites, now=DATA_NOW, ramp_deadline=RAMP_DEADLINE
            )

        from gridhook import site_reads

        seconds, _ = _median(room, max(1, runs // 2))
        counter.calls.clear()
        room()
        rpcs = counter.total()
        # The same, one site after another: what reading READERS sites at once saves.
        readers, site_reads.READERS, site_reads._pool = site_reads.READERS, 1, None
        try:
            one_by_one, _ = _median(room, max(1, runs // 2))
        finally:
            site_reads.READERS, site_reads._pool = readers, None
        return {
            "page_build_s": seconds,
            "page_build_one_by_one_s": one_by_one,
            "readers": readers,
            "rpcs": rpcs,
            "load_s": loaded,
        }
    finally:
        store.close()


def bench_fleet_views(sites: int, runs: int, emulator_host: str | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"sqlite": _sqlite(sites, runs)}
    if emulator_host is not None:
        results["firestore"] = _firestore(sites, runs, emulator_host)
    return results


def fleet_views_table(results: dict[str, Any]) -> str:
    s = results["sqlite"]
    met = "met" if s["page_s"] <= TARGET_PAGE_S else "MISSED"
    lines = [
        f"fleet views: {s['sites']} sites x {len(FEEDS)} feeds, SQLite (medians of warm runs)",
        f"  fleet page GET /            {s['page_s'] * 1000:8.0f} ms   target <= "
        f"{TARGET_PAGE_S * 1000:.0f} ms: {met}  ({s['page_kib']} KiB)",
        f"    build / render            {s['page_build_s'] * 1000:8.0f} / "
        f"{s['page_render_s'] * 1000:.0f} ms   {s['page_statements']} SQL statements",
        f"    constrained now           {s['feeds_constrained']} feeds, {s['stalled']} stalled",
        f"  a site's page               {s['site_page_s'] * 1000:8.0f} ms",
        f"  30-day fleet report, build  {s['report_build_s']:8.2f} s    "
        f"{s['report_episodes']:,} episodes, {s['report_points']:,} points drawn, "
        f"{s['report_statements']} SQL statements",
        f"    HTML / JSON render        {s['report_html_s']:8.2f} / {s['report_json_s']:.2f} s "
        f"({s['report_charts']} charts, {s['report_html_mib']} MiB of HTML, "
        f"{s['report_json_mib']} MiB of JSON)",
        f"  gridhook sites (health)     {s['sites_command_s'] * 1000:8.0f} ms",
    ]
    if "firestore" in results:
        f = results["firestore"]
        lines.append(
            f"  fleet page on the Firestore emulator: build {f['page_build_s'] * 1000:.0f} ms "
            f"({f['readers']} sites at a time; one by one {f['page_build_one_by_one_s'] * 1000:.0f}"
            f" ms), {f['rpcs']} RPCs"
        )
    return "\n".join(lines)
