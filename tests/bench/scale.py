"""Scale (issue 9): reports, episodes and feed state over a long history.

With the same recent period (tests/bench/scale_data.py) under histories of different
sizes, what a report, ``gridhook episodes --since 7d`` and ``gridhook state`` cost must
follow the range asked for, not the history: the columns of each size should match, and
the rows of each range grow with the range. On SQLite at each size; on the Firestore
emulator at a smaller one, with the RPCs each costs and where the 30-day report's time goes:
CPU in this process (the Firestore client decoding and copying snapshots, gridhook turning
them into records, deriving the report) and CPU in the emulator. Medians of warm runs (one
unmeasured run first: the file in the page cache, matplotlib and the templates loaded).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from tests.bench.scale_data import (
    DATA_NOW,
    FEEDS,
    GENERATOR_VERSION,
    RECENT_DAYS,
    RECENT_PER_FEED_PER_DAY,
    cached_sqlite_store,
    load_store,
    recent_event_count,
)
from tests.harness import REPO

__all__ = ["bench_scale", "scale_table"]

REPORT_DAYS = (7, 30, 90)
FIRESTORE_REPORT_DAYS = 30
RAMP_DEADLINE = timedelta(seconds=1800)
TARGET_REPORT_S = 1.0  # the 30-day HTML report, on SQLite, at the largest size
CLI_LIMIT_S = 300.0


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls after one unmeasured warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _sql_statements(store: Any, fn: Callable[[], Any]) -> int:
    """How many SQL statements ``fn`` makes the SQLite store run (its connection traced)."""
    conn = store._connection()  # white-box: this thread's connection
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    return len(statements)


# -- SQLite ---------------------------------------------------------------------------------


def _reports(store: Any, runs: int) -> dict[str, Any]:
    from gridhook.report import build_report
    from gridhook.report.render import render_html, render_json

    figures: dict[str, Any] = {}
    for days in REPORT_DAYS:

        def build(days: int = days) -> Any:
            return build_report(
                store,
                since=DATA_NOW - timedelta(days=days),
                until=DATA_NOW,
                now=DATA_NOW,
                ramp_deadline=RAMP_DEADLINE,
            )

        totals, builds, htmls, jsons = [], [], [], []
        for _ in range(runs + 1):
            started = time.perf_counter()
            report = build()
            built = time.perf_counter()
            html = render_html(report)
            rendered = time.perf_counter()
            render_json(report)
            done = time.perf_counter()
            builds.append(built - started)
            htmls.append(rendered - built)
            jsons.append(done - rendered)
            totals.append(rendered - started)
        # The first run also warms the renderers (matplotlib, templates): left out.
        figures[f"{days}d"] = {
            "html_total_s": statistics.median(totals[1:]),
            "build_s": statistics.median(builds[1:]),
            "render_html_s": statistics.median(htmls[1:]),
            "render_json_s": statistics.median(jsons[1:]),
            "episodes": len(report.episodes),
            "readings": sum(len(f.timeline.points) for f in report.feeds),
            "html_kib": round(len(html.encode()) / 1024),
            "queries": _sql_statements(store, build),
        }
    return figures


def _episodes_7d(store: Any) -> list[Any]:
    from gridhook.episodes.load import load_episodes

    return load_episodes(
        store,
        since=DATA_NOW - timedelta(days=7),
        until=DATA_NOW,
        now=DATA_NOW,
        ramp_deadline=RAMP_DEADLINE,
    )


def _states(store: Any) -> dict[str, Any]:
    from gridhook.state.load import current_feed_states

    states = current_feed_states(store, now=DATA_NOW, ramp_deadline=RAMP_DEADLINE)
    if set(states) != set(FEEDS):
        raise RuntimeError(f"current_feed_states saw {sorted(states)}, not {sorted(FEEDS)}")
    return states


def _episodes_and_state(store: Any, runs: int) -> dict[str, Any]:
    episodes_s, found = _timed(lambda: _episodes_7d(store), runs)
    state_s, _ = _timed(lambda: _states(store), max(runs, 20))  # milliseconds: more runs
    return {"episodes_7d_s": episodes_s, "episodes_7d": len(found), "state_s": state_s}


def _cli_env(store_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "GRIDHOOK_STORE": store_url,
        # Now is the generated history's end, so "7d" is its last week.
        "GRIDHOOK_DEV_CLOCK": f"1@{_rfc3339(DATA_NOW)}@{_rfc3339(datetime.now(UTC))}",
    }


def _cli_seconds(argv: list[str], store_url: str, runs: int) -> tuple[float, str]:
    """Median wall time of the real CLI in a fresh interpreter (one warm-up run first)."""
    times = []
    out = ""
    for run in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(
            argv,
            env=_cli_env(store_url),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=CLI_LIMIT_S,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])}: exit {done.returncode}\n{done.stderr}")
        out = done.stdout
        if run:
            times.append(elapsed)
    return statistics.median(times), out


def _gridhook() -> list[str]:
    script = Path(sys.executable).with_name("gridhook")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gridhook.cli import main; sys.exit(main())"]


def _cli(store_url: str, runs: int) -> dict[str, Any]:
    gridhook = _gridhook()
    episodes_s, out = _cli_seconds(
        [*gridhook, "episodes", "--since", "7d", "--format", "json"], store_url, runs
    )
    state_s, _ = _cli_seconds([*gridhook, "state"], store_url, runs)
    with tempfile.TemporaryDirectory(prefix="gridhook-bench-") as scratch:
        report = [*gridhook, "report", "--since", "30d", "--output", f"{scratch}/report.html"]
        report_s, _ = _cli_seconds(report, store_url, runs)
    return {
        "episodes_7d_s": episodes_s,
        "episodes_7d_listed": out.count('"episode_id"'),
        "state_s": state_s,
        "report_30d_s": report_s,
    }


def cli_start_up(runs: int) -> dict[str, Any]:
    """What any CLI run pays before touching data: a bare interpreter, the same commands
    on an empty store (interpreter, imports, opening the store), and importing matplotlib
    (which a report with charts adds)."""
    bare, _ = _cli_seconds([sys.executable, "-c", "pass"], "", runs)
    plotting = "import matplotlib.figure, matplotlib.backends.backend_agg, matplotlib.dates"
    matplotlib_s, _ = _cli_seconds([sys.executable, "-c", plotting], "", runs)
    with tempfile.TemporaryDirectory(prefix="gridhook-bench-") as scratch:
        empty = _cli(f"sqlite:///{scratch}/empty.db", runs)
    return {
        "interpreter_s": bare,
        "matplotlib_import_s": matplotlib_s - bare,
        "episodes_7d_empty_store_s": empty["episodes_7d_s"],
        "state_empty_store_s": empty["state_s"],
        "report_30d_empty_store_s": empty["report_30d_s"],
    }


def sqlite_figures(events: int, runs: int, cli_runs: int, say: Callable[[str], None]) -> dict:
    from gridhook.store.sqlite import SQLiteEventStore

    path = cached_sqlite_store(events, say)
    store = SQLiteEventStore(path)
    try:
        figures = {
            "events": events,
            "file_mib": round(path.stat().st_size / 2**20),
            "reports": _reports(store, runs),
            **_episodes_and_state(store, runs),
            "episodes_7d_queries": _sql_statements(store, lambda: _episodes_7d(store)),
            "state_queries": _sql_statements(store, lambda: _states(store)),
        }
    finally:
        store.close()
    figures["cli"] = _cli(f"sqlite:///{path}", cli_runs)
    return figures


# -- Firestore emulator -------------------------------------------------------------------

_STORE_READS = ("events", "samples", "latest_by_feed", "get_event")


def _process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) of process `pid` so far, from /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _cpu_accounting(store: Any) -> Iterator[defaultdict[str, float]]:
    """Thread CPU seconds spent inside the store's reads, and within them inside the Firestore
    client's decoding of each query result (protobuf to Python values) and its copy of each
    snapshot's data (`DocumentSnapshot.to_dict`). White-box and bench-only: the functions are
    wrapped for the duration; all run in the calling thread."""
    from google.cloud.firestore_v1 import query as query_module
    from google.cloud.firestore_v1.base_document import DocumentSnapshot

    seconds: defaultdict[str, float] = defaultdict(float)

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.thread_time() - started

        return wrapper

    with contextlib.ExitStack() as patches:
        decode = query_module._query_response_to_snapshot
        patches.enter_context(
            mock.patch.object(query_module, "_query_response_to_snapshot", timed("decode", decode))
        )
        copy = DocumentSnapshot.to_dict
        patches.enter_context(mock.patch.object(DocumentSnapshot, "to_dict", timed("copy", copy)))
        for name in _STORE_READS:
            patches.enter_context(
                mock.patch.object(store, name, timed("store_reads", getattr(store, name)))
            )
        yield seconds


def _report_time_split(
    report: Callable[[], Any], store: Any, emulator_pid: int | None, runs: int
) -> dict[str, Any]:
    """Where the 30-day report's build time goes: wall, CPU in this process (all threads) and
    CPU in the emulator's process, medians of `runs`; then one run with the CPU of this
    process's calling thread split by `_cpu_accounting`."""
    walls, ours, emulator = [], [], []
    for _ in range(runs):
        emulator_before = _process_cpu_s(emulator_pid)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        report()
        walls.append(time.perf_counter() - wall_before)
        ours.append(time.process_time() - cpu_before)
        emulator_after = _process_cpu_s(emulator_pid)
        if emulator_before is not None and emulator_after is not None:
            emulator.append(emulator_after - emulator_before)
    thread_before = time.thread_time()
    with _cpu_accounting(store) as seconds:
        report()
    thread_total = time.thread_time() - thread_before
    return {
        "wall_s": statistics.median(walls),
        "cpu_ours_s": statistics.median(ours),
        "cpu_emulator_s": statistics.median(emulator) if emulator else None,
        "accounted_run": {
            "thread_cpu_s": thread_total,
            "store_reads_cpu_s": seconds["store_reads"],
            "decode_cpu_s": seconds["decode"],
            "copy_cpu_s": seconds["copy"],
        },
    }


def firestore_figures(
    host: str,
    events: int,
    runs: int,
    say: Callable[[str], None],
    emulator_pid: int | None = None,
) -> dict:
    """The 30-day report, episodes and state on the emulator, with their RPCs and where the
    report's time goes."""
    from gridhook.report import build_report
    from gridhook.report.build import load_samples
    from gridhook.report.render import render_html
    from gridhook.store import SampleQuery, iter_samples
    from tests.harness import counted_firestore_store

    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    store, counter = counted_firestore_store(f"bench-scale-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        # Samples only as far back as the report reaches: each is one write to the emulator.
        load_store(store, events, sample_days=FIRESTORE_REPORT_DAYS + 1)
        loaded = time.perf_counter() - started
        say(f"    loaded {events:,} events into the emulator in {loaded:.0f} s")

        def counted(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
            counter.calls.clear()
            fn()
            return counter.total(), dict(counter.calls)

        def report() -> Any:
            return build_report(
                store,
                since=DATA_NOW - timedelta(days=FIRESTORE_REPORT_DAYS),
                until=DATA_NOW,
                now=DATA_NOW,
                ramp_deadline=RAMP_DEADLINE,
            )

        def samples() -> Any:
            return load_samples(
                store, since=DATA_NOW - timedelta(days=FIRESTORE_REPORT_DAYS), until=DATA_NOW
            )

        build_s, built = _timed(report, runs)
        html_s, _ = _timed(lambda: render_html(built), 1)
        report_rpcs, report_methods = counted(report)
        split = _report_time_split(report, store, emulator_pid, runs)
        samples_30d = sum(
            1
            for _ in iter_samples(
                store,
                SampleQuery(since=DATA_NOW - timedelta(days=FIRESTORE_REPORT_DAYS), until=DATA_NOW),
            )
        )
        figures = _episodes_and_state(store, runs)
        figures.update(
            events=events,
            load_s=round(loaded, 1),
            report_30d_samples=samples_30d,
            report_30d_time_split=split,
            report_30d_build_s=build_s,
            report_30d_html_total_s=build_s + html_s,
            report_30d_episodes=len(built.episodes),
            report_30d_rpcs=report_rpcs,
            report_30d_rpc_methods=report_methods,
            report_30d_sample_rpcs=counted(samples)[0],
        )
        figures["episodes_7d_rpcs"], _ = counted(lambda: _episodes_7d(store))
        figures["state_rpcs"], figures["state_rpc_methods"] = counted(lambda: _states(store))
        return figures
    finally:
        store.close()


# -- the section ------------------------------------------------------------------------------


def bench_scale(
    sizes: list[int],
    firestore_events: int,
    runs: int,
    cli_runs: int,
    emulator_host: str | None,
    say: Callable[[str], None] = print,
    emulator_pid: int | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "data": {
            "now": _rfc3339(DATA_NOW),
            "recent_days": RECENT_DAYS,
            "recent_curtailments_per_feed_per_day": RECENT_PER_FEED_PER_DAY,
            "recent_events": recent_event_count(),
            "feeds": list(FEEDS),
            "generator_version": GENERATOR_VERSION,
            "older": "one curtailment per feed every 30 min before the recent period",
            "samples": "one per feed every 5 min over the recent period",
        },
        "runs": runs,
        "cli_runs": cli_runs,
        "target_report_30d_s": TARGET_REPORT_S,
    }
    results["cli_start_up"] = None
    if sizes:
        say("  CLI start-up …")
        results["cli_start_up"] = cli_start_up(cli_runs)
    results["sqlite"] = {}
    for events in sorted(sizes):
        say(f"  SQLite, {events:,} events …")
        results["sqlite"][str(events)] = sqlite_figures(events, runs, cli_runs, say)
    if emulator_host and firestore_events > 0:
        say(f"  Firestore emulator, {firestore_events:,} events …")
        # Each emulator query sorts the whole collection: a few runs are plenty.
        results["firestore"] = firestore_figures(
            emulator_host, firestore_events, min(runs, 3), say, emulator_pid
        )
    if sizes:
        largest = results["sqlite"][str(max(sizes))]["reports"]["30d"]["html_total_s"]
        results["report_30d_met"] = largest <= TARGET_REPORT_S
    return results


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rows() -> list[tuple[str, Callable[[dict[str, Any]], Any], str]]:
    """(metric, how to read it from one size's figures, unit) for each row of the table."""

    def report(days: int, key: str) -> Callable[[dict[str, Any]], Any]:
        return lambda f: f["reports"][f"{days}d"][key]

    def counts(days: int) -> Callable[[dict[str, Any]], str]:
        return lambda f: (
            f"{f['reports'][f'{days}d']['episodes']} / {f['reports'][f'{days}d']['queries']}"
        )

    rows: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
        (f"report {days} d: build + HTML", report(days, "html_total_s"), "s")
        for days in REPORT_DAYS
    ]
    for days in REPORT_DAYS:
        rows += [
            (f"  {days} d: build (store, episodes, samples)", report(days, "build_s"), "s"),
            (f"  {days} d: HTML render (charts, templates)", report(days, "render_html_s"), "s"),
            (f"  {days} d: JSON render", report(days, "render_json_s"), "s"),
            (f"  {days} d: episodes / SQL statements", counts(days), ""),
        ]
    rows += [
        ("load_episodes 7 d", lambda f: f["episodes_7d_s"] * 1000, "ms"),
        (
            "  episodes / SQL statements",
            lambda f: f"{f['episodes_7d']} / {f['episodes_7d_queries']}",
            "",
        ),
        ("gridhook episodes --since 7d (CLI)", lambda f: f["cli"]["episodes_7d_s"] * 1000, "ms"),
        ("current_feed_states (gridhook state)", lambda f: f["state_s"] * 1000, "ms"),
        ("  feeds / SQL statements", lambda f: f"{len(FEEDS)} / {f['state_queries']}", ""),
        ("gridhook state (CLI)", lambda f: f["cli"]["state_s"] * 1000, "ms"),
        ("gridhook report --since 30d (CLI)", lambda f: f["cli"]["report_30d_s"], "s"),
    ]
    return rows


def scale_table(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """One row per figure, one column per history size, and the largest over the smallest."""
    by_size = results["sqlite"]
    sizes = sorted(by_size, key=int)
    rows: list[dict[str, Any]] = []
    for metric, pick, unit in _rows() if sizes else ():
        values = [pick(by_size[s]) for s in sizes]
        ratio = None
        if len(values) > 1 and isinstance(values[0], float) and values[0] > 0:
            ratio = values[-1] / values[0]
        target = "≤ 1 s" if metric == "report 30 d: build + HTML" else ""
        met = results["report_30d_met"] if target else None
        rows.append(
            {
                "metric": metric,
                "values": dict(zip(sizes, values, strict=True)),
                "ratio": ratio,
                "unit": unit,
                "target": target,
                "met": met,
            }
        )

    out: list[str] = []
    if sizes:
        out = _columns(sizes, rows)
        start = results["cli_start_up"]
        out += [
            "",
            f"SQLite; every size has the same last {RECENT_DAYS} days "
            f"({results['data']['recent_events']:,} events, {RECENT_PER_FEED_PER_DAY} "
            "curtailments per feed per day, a sample per feed every 5 min); medians of "
            f"{results['runs']} warm runs (CLI: {results['cli_runs']}).",
            f"CLI start-up: bare interpreter {start['interpreter_s'] * 1000:.0f} ms; on an empty "
            f"store (interpreter, imports, opening the store), episodes "
            f"{start['episodes_7d_empty_store_s'] * 1000:.0f} ms, state "
            f"{start['state_empty_store_s'] * 1000:.0f} ms, report "
            f"{start['report_30d_empty_store_s'] * 1000:.0f} ms; a report with charts also "
            f"imports matplotlib: {start['matplotlib_import_s'] * 1000:.0f} ms.",
        ]
    fs = results.get("firestore")
    if fs:
        out += [
            "",
            f"Firestore emulator, {fs['events']:,} events (same recent shape; loaded in "
            f"{fs['load_s']:.0f} s):",
            f"  report {FIRESTORE_REPORT_DAYS} d: build {fs['report_30d_build_s']:.3f} s, "
            f"build + HTML {fs['report_30d_html_total_s']:.3f} s, {fs['report_30d_rpcs']} RPCs "
            f"({fs['report_30d_sample_rpcs']} of them pages of samples; "
            f"{fs['report_30d_episodes']} episodes)",
            f"  load_episodes 7 d: {fs['episodes_7d_s'] * 1000:.0f} ms, {fs['episodes_7d_rpcs']} "
            f"RPCs; current_feed_states: {fs['state_s'] * 1000:.1f} ms, {fs['state_rpcs']} RPCs "
            f"for {len(FEEDS)} feeds",
            *_time_split_lines(fs),
        ]
    return "\n".join(out), rows


def _time_split_lines(fs: dict[str, Any]) -> list[str]:
    split = fs.get("report_30d_time_split")
    if not split:
        return []
    run = split["accounted_run"]
    emulator = split["cpu_emulator_s"]
    emulator_text = "—" if emulator is None else f"{emulator:.1f} s"
    return [
        f"  where the 30 d build's {split['wall_s']:.1f} s go ({fs['report_30d_episodes']} "
        f"episodes, {fs['report_30d_samples']:,} samples): CPU in this process "
        f"{split['cpu_ours_s']:.1f} s, CPU in the emulator {emulator_text}",
        f"    of this process's thread CPU ({run['thread_cpu_s']:.1f} s, one instrumented run): "
        f"store reads {run['store_reads_cpu_s']:.1f} s, of which the client decoding results "
        f"{run['decode_cpu_s']:.1f} s and copying snapshots (to_dict) {run['copy_cpu_s']:.1f} s",
    ]


def _columns(sizes: list[str], rows: list[dict[str, Any]]) -> list[str]:
    header = ["metric", *(f"{int(s):,} events" for s in sizes), "largest/smallest", "unit"]
    lines = [[*header, "target", "met"]]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        met = "" if r["met"] is None else _fmt(r["met"])
        lines.append(
            [r["metric"], *map(_fmt, r["values"].values()), ratio, r["unit"], r["target"], met]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    out.insert(1, "-" * len(out[0]))
    return out
