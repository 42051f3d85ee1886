"""Issue 14's scale: a fleet of simulated DPS sites (50 x 2 feeds by default) served by one
``gridhook-sim --sites`` process, each site a whole simulator with its own TLS CA, and one
gridhook deployment serving them all (``GRIDHOOK_SITES``: each site its DPS, CA, token file;
the real receiver process, SQLite on disk).

1. **start**: spawning ``gridhook-sim`` until every site has said it listens (a fresh CA and
   server certificate each), then what the idle fleet costs — its threads, memory, and CPU
   while nothing happens.
2. **GetStatus across all sites** through gridhook's own ``NvGridClient`` (TLS verified
   against each site's CA, a token each): cold (connect, handshake, token, call) and warm,
   one site after another and 8 at a time (``GRIDHOOK_RECONCILE_CONCURRENCY``'s default).
3. **one all-sites reconcile run** (``gridhook reconcile`` as a process, the defaults:
   GRIDHOOK_RECONCILE_CONCURRENCY 8, GRIDHOOK_RECONCILE_DEADLINE_SECONDS 120): every site
   registers ``…/nvgrid/webhook/<site>?token=<its token>`` with its DPS, then drift is
   checked; its time, each site's, and whether every site was done within the deadline.
4. **a curtailment on every site at once**: every site on one shared development clock
   schedules the same 1-minute target at the same instant, so its 4 webhooks per feed
   (start/end ramp down, start/end ramp up) — 400 for 50 x 2 — arrive together at the
   receiver, each at its site's path (registered by the reconcile run). Every site calls
   its feeds ``main`` and ``backup``; correlation ids are the site's (``fleet-s07``). The
   check: each site's store holds exactly its own 8 events, each once.

``python -m tests.bench --only fleet`` (``--fleet-sites N``) prints the table. The
machine is shared: absolute times are noisy (the load average is printed with them); the
checks (every call answered, every site reconciled, every webhook stored once under its
site) are not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gridhook.clock import DevClock
from gridhook.nvgrid import CallPolicy, Credentials, make_endpoint
from gridhook.nvgrid.client import NvGridClient
from gridhook.store import open_store
from gridhook.store.base import MAX_PAGE_SIZE, EventQuery, StoreNotFound, iter_events
from tests.harness import FUNCTIONS, REPO, FunctionServer, clean_env, stop_process_group

__all__ = ["bench_fleet", "fleet_table"]

SITES = 50
FEEDS_PER_SITE = 2
EVENTS = ("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up")
CONCURRENCY = 8  # GRIDHOOK_RECONCILE_CONCURRENCY's default
RECONCILE_DEADLINE_S = 120.0  # GRIDHOOK_RECONCILE_DEADLINE_SECONDS' default
FEED_TAGS = ("main", "backup")  # every site's: the sites keep them apart
SPEED = 60.0  # simulated seconds per real second
TARGET_MINUTES = 1.0  # simulated: the ramp up follows one real second after the ramp down
LEAD_S = 3.0  # real seconds between scheduling the targets and their common start
IDLE_S = 3.0
START_LIMIT_S = 120.0
DELIVERY_LIMIT_S = 120.0
ADMIN = Credentials("admin", "password")
POLICY = CallPolicy(call_timeout=20.0, overall_timeout=60.0)
LISTENING = re.compile(r"listening on (?P<address>\S+) tls=on ca=(?P<ca>\S+) site=(?P<site>\S+)")


@dataclass(frozen=True)
class Site:
    name: str
    address: str
    ca: Path


def site_name(number: int) -> str:
    return f"s{number:02d}"


def _feeds_file(site: str, directory: Path) -> Path:
    main, backup = FEED_TAGS
    feeds = [
        {"tag": main, "min_cap": 2, "max_cap": 12, "default_constraint": 10},
        {"tag": backup, "min_cap": 1, "max_cap": 10, "default_constraint": 8},
    ]
    path = directory / f"{site}.json"
    path.write_text(json.dumps({"feeds": feeds}))
    return path


def site_token(site: str) -> str:
    return f"bench-{site}-webhook-token-0123456789"


def sites_setting(sites: Sequence[Site], secrets: Path) -> str:
    """GRIDHOOK_SITES for the fleet: each site its DPS and CA, a token file of its own, the
    simulator's one admin user's credentials."""
    secrets.mkdir()
    credentials = secrets / "credentials"
    credentials.write_text(f"{ADMIN.username}:{ADMIN.password}")
    table = {}
    for site in sites:
        tokens = secrets / f"{site.name}-tokens"
        tokens.write_text(site_token(site.name) + "\n")
        table[site.name] = {
            "timezone": "UTC",
            "nvgrid_host": site.address,
            "nvgrid_tls": "verify",
            "nvgrid_ca_cert": str(site.ca),
            "nvgrid_credentials_file": str(credentials),
            "webhook_tokens_file": str(tokens),
        }
    return json.dumps({"sites": table})


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _proc_cpu_s(pid: int) -> float:
    # utime and stime, fields 14 and 15 of /proc/PID/stat (after the parenthesised name)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _listening_lines(process: subprocess.Popen[str], count: int) -> list[str]:
    """The first `count` lines on its stdout (one per site once all serve), or an error."""
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []

    def read() -> None:
        while len(lines) < count and (line := stdout.readline()):
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)  # readline cannot time out
    reader.start()
    reader.join(START_LIMIT_S)
    if len(lines) < count:
        raise RuntimeError(f"gridhook-sim: {len(lines)} of {count} sites started")
    return lines


@contextlib.contextmanager
def _fleet(
    sites: int, workdir: Path, clock: DevClock, idle_s: float
) -> Iterator[tuple[list[Site], dict]]:
    """`gridhook-sim` serving `sites` sites; yields them and the start figures."""
    names = [site_name(n) for n in range(1, sites + 1)]
    (workdir / "feeds").mkdir()
    argv = [
        sys.executable, "-m", "simulator.cli",
        "--port", "0", "--tls-dir", str(workdir / "tls"), "--clock", str(clock),
        "--ramp-rate", "600",  # 5 MW in half a simulated second: one tick
        "--call-timeout", "30", "--log-level", "WARNING",
    ]  # fmt: skip
    for name in names:
        argv += ["--site-name", name, "--feeds", f"{name}={_feeds_file(name, workdir / 'feeds')}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FUNCTIONS), str(REPO)])}
    log = (workdir / "simulator.log").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        lines = _listening_lines(process, sites)
        figures: dict[str, Any] = {
            "start_s": time.perf_counter() - started,
            "start_cpu_s": _proc_cpu_s(process.pid),
        }
        cpu, idle_started = _proc_cpu_s(process.pid), time.perf_counter()
        time.sleep(idle_s)
        figures["idle_cpu_share"] = (_proc_cpu_s(process.pid) - cpu) / (
            time.perf_counter() - idle_started
        )
        status = _proc_status(process.pid)
        figures["threads"] = int(status["Threads"])
        figures["rss_mib"] = int(status["VmRSS"].split()[0]) / 1024
        matches = [LISTENING.search(line) for line in lines]
        yield (
            [Site(m["site"], m["address"], Path(m["ca"])) for m in matches if m],
            figures,
        )
    finally:
        stop_process_group(process)
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def _clients(sites: Sequence[Site]) -> dict[str, NvGridClient]:
    return {
        site.name: NvGridClient(
            make_endpoint(
                site.address, tls="verify", ca_cert_path=site.ca, policy=POLICY, environ={}
            ),
            ADMIN,
        )
        for site in sites
    }


def _close(clients: dict[str, NvGridClient]) -> None:
    for client in clients.values():
        client.close()


def _each(
    clients: dict[str, NvGridClient], call: Callable[[str, NvGridClient], Any], workers: int
) -> tuple[float, list[float], list[Any]]:
    """Run `call` for every site, `workers` at a time: wall seconds, per-call seconds and
    results (in site order)."""

    def one(item: tuple[str, NvGridClient]) -> tuple[float, Any]:
        started = time.perf_counter()
        result = call(*item)
        return time.perf_counter() - started, result

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(one, clients.items()))
    return time.perf_counter() - started, [o[0] for o in outcomes], [o[1] for o in outcomes]


def _get_status(sites: Sequence[Site], runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    feeds = len(sites) * FEEDS_PER_SITE
    for workers, label in ((1, "sequential"), (CONCURRENCY, f"parallel_{CONCURRENCY}")):
        clients = _clients(sites)  # new channels: the first call connects and gets a token
        try:
            wall, calls, results = _each(clients, lambda _, c: c.get_status(), workers)
            if sum(len(r) for r in results) != feeds:
                raise RuntimeError(f"GetStatus ({label}): not every feed answered")
            figures[f"cold_{label}_s"] = wall
            figures[f"cold_{label}_p50_ms"] = statistics.median(calls) * 1e3
            walls, per_call = [], []
            for _ in range(runs):
                wall, calls, _results = _each(clients, lambda _, c: c.get_status(), workers)
                walls.append(wall)
                per_call.extend(calls)
            figures[f"warm_{label}_s"] = statistics.median(walls)
            figures[f"warm_{label}_p50_ms"] = statistics.median(per_call) * 1e3
            figures[f"warm_{label}_max_ms"] = max(per_call) * 1e3
        finally:
            _close(clients)
    return figures


def _gridhook() -> list[str]:
    script = Path(sys.executable).with_name("gridhook")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gridhook.cli import main; sys.exit(main())"]


def _reconcile_every_site(
    sites: Sequence[Site], env: dict[str, str], receiver: FunctionServer, workdir: Path
) -> dict[str, Any]:
    """One all-sites reconcile run, as ``gridhook reconcile`` (a fresh process: the run's
    own time is in its answer), with the default concurrency and deadline."""
    names = [site.name for site in sites]
    run_env = clean_env(
        **env,
        GRIDHOOK_WEBHOOK_URL=f"{receiver.url}/nvgrid/webhook",
        GRIDHOOK_LOG_LEVEL="WARNING",
        PYTHONPATH=str(FUNCTIONS),
    )
    started = time.perf_counter()
    with (workdir / "reconcile.log").open("wb") as log:
        done = subprocess.run(
            [*_gridhook(), "reconcile"], env=run_env, cwd=workdir, stdout=subprocess.PIPE,
            stderr=log, text=True, timeout=RECONCILE_DEADLINE_S + 60, check=False,
        )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1, 3) or not done.stdout:
        tail = (workdir / "reconcile.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"gridhook reconcile exited {done.returncode}:\n{tail}")
    body = json.loads(done.stdout)
    per_site = {item["site"]: item for item in body["sites"]}
    seconds = sorted(item["seconds"] for item in body["sites"])
    wanted = {name: f"{receiver.url}/nvgrid/webhook/{name}?token=REDACTED" for name in names}
    return {
        "exit_code": done.returncode,
        "run_s": body["seconds"],
        "process_s": wall,
        "site_p50_s": statistics.median(seconds),
        "site_max_s": seconds[-1],
        "ok": len(body["ok"]),
        "failed": body["failed"],
        # Each site registered its own path, and nothing else.
        "registered_own_url": sum(per_site[n]["registered"] == [wanted[n]] for n in names),
        "within_deadline": body["seconds"] <= RECONCILE_DEADLINE_S and not body["failed"],
    }


def _stored(store_url: str, sites: Sequence[str]) -> dict[str, list[Any]]:
    """Every site's events, read site by site."""
    try:
        store = open_store(store_url, create=False)
    except StoreNotFound:  # the receiver creates it with its first event
        return {site: [] for site in sites}
    try:
        return {
            site: list(iter_events(store, EventQuery(site=site, limit=MAX_PAGE_SIZE)))
            for site in sites
        }
    finally:
        store.close()


def _curtail_everywhere(
    sites: Sequence[Site], clock: DevClock, receiver: FunctionServer, lead_s: float
) -> dict[str, Any]:
    names = [site.name for site in sites]
    expected = len(sites) * FEEDS_PER_SITE * len(EVENTS)
    clients = _clients(sites)
    try:
        # One instant on the shared clock, a few real seconds ahead: every site's own clock
        # thread starts its ramp at that instant, none waits for an RPC.
        starts = clock.now() + timedelta(seconds=lead_s * SPEED)
        ends = starts + timedelta(minutes=TARGET_MINUTES)
        _each(
            clients,
            lambda site, c: c.set_load_target(
                5.0, start_time=starts, end_time=ends, correlation_id=f"fleet-{site}"
            ),
            8,
        )
    finally:
        _close(clients)
    starts_real = clock.real_origin + (starts - clock.sim_origin) / SPEED
    ends_real = clock.real_origin + (ends - clock.sim_origin) / SPEED
    store_url = receiver.env["GRIDHOOK_STORE"]
    deadline = time.monotonic() + DELIVERY_LIMIT_S
    by_site = _stored(store_url, names)
    while (count := sum(map(len, by_site.values()))) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{count} of {expected} webhooks stored within {DELIVERY_LIMIT_S:.0f} s"
            )
        time.sleep(0.2)
        by_site = _stored(store_url, names)
    time.sleep(1.0)  # anything more (a duplicate) would arrive now
    by_site = _stored(store_url, names)
    events = [event for stored in by_site.values() for event in stored]
    down = [e.received_at for e in events if e.event.endswith("ramp_down")]
    up = [e.received_at for e in events if e.event.endswith("ramp_up")]
    return {
        "webhooks": expected,
        # From the instant the targets start (resp. end) to the last of the burst stored.
        "ramp_down_burst_s": (max(down) - starts_real).total_seconds(),
        "ramp_up_burst_s": (max(up) - ends_real).total_seconds(),
        "ramp_down_webhooks": len(down),
        "ramp_up_webhooks": len(up),
        "stored": _stored_once(by_site),
    }


def _stored_once(by_site: dict[str, Sequence[Any]]) -> dict[str, Any]:
    """Every site's (feed, event) stored exactly once under that site, with the site's own
    correlation id: another site's event under it is ``foreign``."""
    missing = duplicated = foreign = events = 0
    for site, stored in by_site.items():
        counts = Counter((e.site, e.feed_tag, e.correlation_id, e.event) for e in stored)
        wanted = {(site, tag, f"fleet-{site}", event) for tag in FEED_TAGS for event in EVENTS}
        events += sum(counts.values())
        missing += len(wanted - set(counts))
        duplicated += sum(1 for n in counts.values() if n > 1)
        foreign += len(set(counts) - wanted)
    return {
        "events": events,
        "exactly_once": missing == duplicated == foreign == 0,
        "missing": missing,
        "duplicated": duplicated,
        "foreign": foreign,
    }


def bench_fleet(
    sites: int = SITES,
    runs: int = 5,
    say: Callable[[str], None] = print,
    *,
    idle_s: float = IDLE_S,
    lead_s: float = LEAD_S,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="gridhook-bench-fleet-"))
    now = datetime.now(UTC)
    clock = DevClock(speed=SPEED, sim_origin=now, real_origin=now)
    try:
        say(f"  gridhook-sim --sites {sites}, {FEEDS_PER_SITE} feeds each (TLS, a CA each) …")
        with _fleet(sites, workdir, clock, idle_s) as (fleet, results):
            results["sites"], results["feeds"] = sites, sites * FEEDS_PER_SITE
            results["load_average_before"] = os.getloadavg()
            say(f"  GetStatus across {sites} sites …")
            results["get_status"] = _get_status(fleet, runs)
            env = {
                "GRIDHOOK_STORE": f"sqlite:///{workdir}/events.db",
                "GRIDHOOK_SITES": sites_setting(fleet, workdir / "secrets"),
            }
            receiver = FunctionServer("receive_power_event", env, cwd=workdir)
            receiver.start()
            try:
                say(f"  one reconcile run over all {sites} sites …")
                results["reconcile"] = _reconcile_every_site(fleet, env, receiver, workdir)
                say(f"  a curtailment on all {sites} sites at once …")
                results["curtailment"] = _curtail_everywhere(fleet, clock, receiver, lead_s)
            finally:
                receiver.stop()
            results["load_average_after"] = os.getloadavg()
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def fleet_table(results: dict[str, Any]) -> str:
    status = results["get_status"]
    reconcile = results["reconcile"]
    curtail = results["curtailment"]
    stored = curtail["stored"]
    n = results["sites"]
    rows = [
        (f"start {n} sites (TLS, fresh CAs)", f"{results['start_s']:.2f} s",
         f"spawn → all listening; CPU {results['start_cpu_s']:.2f} s"),
        ("idle fleet", f"{results['idle_cpu_share'] * 100:.1f} % of a core",
         f"{results['threads']} threads, {results['rss_mib']:.0f} MiB RSS"),
        (f"GetStatus x {n}, cold, sequential", f"{status['cold_sequential_s']:.2f} s",
         f"p50 {status['cold_sequential_p50_ms']:.0f} ms (connect, TLS, token, call)"),
        (f"GetStatus x {n}, cold, {CONCURRENCY} at a time",
         f"{status[f'cold_parallel_{CONCURRENCY}_s']:.2f} s",
         f"p50 {status[f'cold_parallel_{CONCURRENCY}_p50_ms']:.0f} ms"),
        (f"GetStatus x {n}, warm, sequential", f"{status['warm_sequential_s']:.3f} s",
         f"p50 {status['warm_sequential_p50_ms']:.1f} ms, "
         f"max {status['warm_sequential_max_ms']:.1f} ms"),
        (f"GetStatus x {n}, warm, {CONCURRENCY} at a time",
         f"{status[f'warm_parallel_{CONCURRENCY}_s']:.3f} s",
         f"p50 {status[f'warm_parallel_{CONCURRENCY}_p50_ms']:.1f} ms, "
         f"max {status[f'warm_parallel_{CONCURRENCY}_max_ms']:.1f} ms"),
        (f"reconcile, all {n} sites, {CONCURRENCY} at a time", f"{reconcile['run_s']:.2f} s",
         f"per site p50 {reconcile['site_p50_s']:.2f} s, max {reconcile['site_max_s']:.2f} s; "
         f"{reconcile['process_s']:.2f} s as a process"),
        (f"  every site registered within the {RECONCILE_DEADLINE_S:.0f} s deadline",
         "yes" if reconcile["within_deadline"] else "NO",
         f"{reconcile['ok']} ok, {reconcile['registered_own_url']} at their own path, "
         f"failed: {', '.join(reconcile['failed']) or 'none'}"),
        (f"curtailment: {curtail['ramp_down_webhooks']} ramp-down webhooks at once",
         f"{curtail['ramp_down_burst_s']:.2f} s", "target start → last one stored"),
        (f"curtailment: {curtail['ramp_up_webhooks']} ramp-up webhooks at once",
         f"{curtail['ramp_up_burst_s']:.2f} s", "target end → last one stored"),
        (f"{curtail['webhooks']} webhooks stored exactly once, under their site",
         "yes" if stored["exactly_once"] else "NO",
         f"{stored['events']} stored, {stored['missing']} missing, "
         f"{stored['duplicated']} duplicated, {stored['foreign']} foreign"),
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    before = results.get("load_average_before") or (0.0, 0.0, 0.0)
    after = results.get("load_average_after") or (0.0, 0.0, 0.0)
    lines = [
        f"fleet: {n} simulated DPS sites x {FEEDS_PER_SITE} feeds (one gridhook-sim process); "
        f"one deployment of {n} sites (functions-framework receiver, SQLite on disk)",
        "-" * (sum(widths) + 4),
        *(f"{a.ljust(widths[0])}  {b.rjust(widths[1])}  {c}" for a, b, c in rows),
        f"(a shared {os.cpu_count()}-core machine, load average {before[0]:.1f} before and "
        f"{after[0]:.1f} after: absolute times are noisy)",
    ]
    return "\n".join(lines)


def main() -> int:
    print(fleet_table(bench_fleet()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
