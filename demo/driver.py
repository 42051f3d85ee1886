"""The demo's run: a day of curtailments on two sites, end to end, in about a minute.

It writes the fleet's settings into a fresh `var/demo/` (a sites file, each site's webhook
tokens and NvGrid credentials); writes 45 days of meter history from the simulator's load
model (`gridhook-sim --history`) and imports it with `gridhook meter import`; starts
`gridhook-sim` serving both sites on a fast clock and the receiver (`gridhook run`, the real
functions-framework server) on its store — SQLite in `var/demo/`, or the one `GRIDHOOK_STORE`
names (Firestore through the emulator, which it starts if none runs) — both on the same
`GRIDHOOK_DEV_CLOCK`; reconciles every site (registers its webhook) and keeps reconciling and
sampling every half second; schedules each site's day of `demo/plan.py` through its DPS's
SetLoadTarget; prints a line per curtailment as its events reach the store; once the
simulator has stopped, imports the day's meter data it wrote (`gridhook-sim --meter-out`: the
load each feed served, as a utility delivers it after the day); then writes
`var/report.html` and `var/settlement.html`, prints the episode table, the day's settlement
and where to look, and stops everything it started, on Ctrl-C too (exit 130).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from demo.errors import DemoError
from demo.firestore_emulator import EmulatorError, FirestoreEmulator
from demo.plan import (
    FEEDS,
    LOAD_SEED,
    RAMP_RATE_MW_PER_MINUTE,
    SITES,
    DayPlan,
    DemoSite,
    PlannedCurtailment,
    plan_day,
)
from demo.processes import (
    ChildProcess,
    ProcessExited,
    answers_http,
    free_port,
    port_accepts,
    port_is_free,
    wait_until,
)
from demo.settings import SitesFiles, write_sites
from demo.stop import TICK, StopFlag
from demo.stores import DemoStore, choose_store, emulator_address, may_start_emulator, require_empty
from gridhook.clock import DevClock, parse_dev_clock
from gridhook.events import rfc3339

if TYPE_CHECKING:
    from gridhook.events import StoredEvent
    from gridhook.settings import Settings
    from gridhook.store import EventStore
    from gridhook.subscriptions import ReconcileReport

__all__ = ["DEFAULT_SPEED", "Demo", "Options"]

DEFAULT_SPEED = 1440.0  # a day in a minute
RECONCILE_EVERY = 0.5  # real seconds
START_TIMEOUT = 60.0  # real seconds a child may take to come up
DAY_OVERRUN = 15.0  # real seconds to wait past the day's end for missing events
COMMAND_TIMEOUT = 180.0  # real seconds for `gridhook report` / `episodes` / the history
HISTORY_DAYS = 45  # the meter history imported before the day: the baselines' lookback
# Hourly meter intervals: the baselines' default interval, and a quarter of the records of
# 15-minute data, which keeps the import into the Firestore emulator short.
HISTORY_INTERVAL = "1h"
SIMULATOR_STOP_TIMEOUT = 30.0  # real seconds to stop and write its meter data (--meter-out)
IMPORT_ATTEMPTS = 3  # an import is idempotent: one that timed out half-way is run again
SCHEDULE_MARGIN = timedelta(minutes=15)  # simulated: the first target must still be ahead
_LISTENING = re.compile(
    r"gridhook-sim listening on (?P<address>\S+) tls=on ca=(?P<ca>\S+) site=(?P<site>\S+)"
)
# Which of the simulator's two meter formats each site imports: a US utility's Green Button
# download for Phoenix, gridhook's own CSV for Amsterdam (both are read by the same command).
METER_FORMATS = {"phx1": "green-button", "ams1": "csv"}


@dataclass(frozen=True)
class Options:
    speed: float = DEFAULT_SPEED
    startup_seconds: float = 3.0
    var_dir: Path = Path("var")
    receiver_port: int = 0
    sim_port: int = 0


@dataclass
class Tracked:
    """What the store has shown of one planned curtailment so far."""

    plan: PlannedCurtailment
    events: dict[str, StoredEvent] = field(default_factory=dict)
    announced: bool = False
    outcome: str | None = None  # "recovered" | "stalled"


class Demo:
    def __init__(self, options: Options, stop: StopFlag, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.stop = stop
        self.out = out
        self.cwd = Path.cwd()
        self.dir = options.var_dir / "demo"
        self.report_path = options.var_dir / "report.html"
        self.settlement_path = options.var_dir / "settlement.html"
        self.settled: list[dict[str, Any]] = []  # the day's settlements (gridhook's JSON)
        # Chosen now, so that a store the demo does not play into is refused before anything.
        self.demo_store: DemoStore = choose_store(os.environ, self.dir / "gridhook.db")
        self.store_url = self.demo_store.url
        self.emulator: FirestoreEmulator | None = None  # one the demo started itself
        self.children: list[ChildProcess] = []
        self.problems: list[str] = []
        self.reconciles = 0
        self.reconcile_failures = 0
        self.store: EventStore | None = None
        self.reconcile_log: TextIO | None = None
        self.meter_intervals: dict[tuple[str, str], int] = {}  # (site, feed): imported
        self.day_meter_intervals: dict[tuple[str, str], int] = {}  # the day's, after it
        self.meter_dir = self.dir / "meter"

    # --- the whole run ------------------------------------------------------------------------

    def run(self) -> int:
        self.began = time.monotonic()
        try:
            try:
                self._prepare()
                self._import_history()
                # The day starts after its history is in: the start-up allowance is for the
                # processes alone.
                self._start_the_clock()
                sim, receiver = self._start_simulator(), self._start_receiver()  # side by side
                self._await_simulator(sim)
                self._await_receiver(receiver)
                self._connect()
                self._schedule()
                self._play_the_day()
            finally:
                self._stop_children()
                self._close()
            self._import_the_days_meter()
            self._report()
            self._summary(time.monotonic() - self.began)
        finally:
            self._stop_emulator()  # last: the report reads the store
        return 1 if self.problems else 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    # --- set-up -------------------------------------------------------------------------------

    def _prepare(self) -> None:
        o = self.options
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.report_path.unlink(missing_ok=True)  # never show last run's report as this one's
        self.settlement_path.unlink(missing_ok=True)
        # The store before the plan: starting an emulator must not eat the start-up allowance.
        store_note = self._prepare_store()
        self.plan: DayPlan = plan_day(datetime.now(UTC), o.speed, o.startup_seconds)
        self.receiver_port = o.receiver_port or free_port()
        if o.receiver_port and not port_is_free(o.receiver_port):
            raise DemoError(
                f"port {o.receiver_port} is in use: stop what listens there, or leave "
                "--receiver-port out to pick a free port"
            )
        # The sites' DPS ports are chosen now: the sites file names them before either
        # process starts (the simulator serves site i on PORT + i - 1).
        self.sim_port = o.sim_port or _free_ports(len(self.plan.sites))
        self.tls_dir = self.dir / "sim-tls"
        self.webhook_url = f"http://127.0.0.1:{self.receiver_port}/nvgrid/webhook"
        (self.dir / "feeds.json").write_text(json.dumps(FEEDS, indent=2) + "\n")
        (self.dir / "scenario.json").write_text(json.dumps(self.plan.to_dict(), indent=2) + "\n")
        self.sites: SitesFiles = write_sites(
            self.dir, self.plan.sites, sim_port=self.sim_port, tls_dir=self.tls_dir
        )
        self.env = _clean_environment()
        self.say(
            f"gridhook demo: the simulated day {self.plan.day}, 05:00-22:00 at each of "
            f"{len(self.plan.sites)} sites ({_site_list(self.plan.sites)}), at {o.speed:g}x"
        )
        if store_note:
            self.say(store_note)
        self.say(f"  sites      {self.sites.path} (tokens and credentials beside it)")

    def _start_the_clock(self) -> None:
        o = self.options
        now = datetime.now(UTC)
        self.plan = self.plan.starting_at(now + timedelta(seconds=o.startup_seconds))
        # Every clock (simulator, receiver, this process) parses this one string.
        self.clock_text = str(self.plan.clock)
        self.clock: DevClock = parse_dev_clock(self.clock_text)
        (self.dir / "scenario.json").write_text(json.dumps(self.plan.to_dict(), indent=2) + "\n")
        day_seconds = self.plan.real_seconds_until(self.plan.end)
        self.say(
            f"  the day    {_hm_utc(self.plan.start)}-{_hm_utc(self.plan.end)} UTC "
            f"(from {self.plan.sites[-1].name}'s 05:00 to {self.plan.sites[0].name}'s 22:00): "
            f"about {day_seconds:.0f} s"
        )

    # --- the history --------------------------------------------------------------------------

    def _import_history(self) -> None:
        """45 days of meter data before the day, from the load model the simulator serves,
        written by `gridhook-sim --history` and stored with `gridhook meter import`."""
        began = time.monotonic()
        out = self.dir / "history"
        argv = [
            sys.executable, "-m", "simulator.cli", *self._fleet_flags(),
            "--clock", str(self.plan.clock),  # its SIM_TIME: the history ends where the day begins
            "--history", str(HISTORY_DAYS), "--history-interval", HISTORY_INTERVAL,
            "--out", str(out),
        ]  # fmt: skip
        self._run_to_end("history", argv, self.env, what="gridhook-sim --history")
        files = self._import_meter_files(out, "gridhook-sim --history", self.meter_intervals)
        total = sum(self.meter_intervals.values())
        self.say(
            f"  history    {HISTORY_DAYS} days of meter data imported: {total} intervals of "
            f"{len(files)} feeds ({time.monotonic() - began:.1f} s)   files {out}"
        )
        for file in files:
            count = self.meter_intervals[(file["site"], file["feed"])]
            self.say(
                f"     {file['site']:<5} {file['feed']:<18} {count} intervals "
                f"({_meter_format(file['format'])})"
            )

    def _import_the_days_meter(self) -> None:
        """The day's own meter data, which the simulator wrote as it stopped (`--meter-out`:
        the load each feed served, held under its targets), imported like the history: the
        utility's interval data that arrives after the day. The settlement reads it for the
        day's actual load, the history for its baselines. A failure is one of the run's
        problems: the report is still written."""
        began = time.monotonic()
        try:
            files = self._import_meter_files(
                self.meter_dir, "gridhook-sim --meter-out", self.day_meter_intervals
            )
        except DemoError as error:
            self.problems.append(str(error))
            return
        self.say()
        self.say(
            f"Meter:   the day's meter data, written by the simulator as it stopped, imported: "
            f"{sum(self.day_meter_intervals.values())} intervals of {len(files)} feeds "
            f"({time.monotonic() - began:.1f} s)   files {self.meter_dir}"
        )

    def _import_meter_files(
        self, out: Path, what: str, counts: dict[tuple[str, str], int]
    ) -> list[dict[str, Any]]:
        """Import each site's and feed's file listed in `out/index.json` (`what` wrote it),
        in the site's format (METER_FORMATS), counting the intervals into `counts`."""
        try:
            index = json.loads((out / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DemoError(f"{what} wrote no index ({exc}); see {out}") from None
        files = [f for f in index["files"] if METER_FORMATS.get(f["site"], "csv") == f["format"]]
        for file in files:
            counts[(file["site"], file["feed"])] = self._meter_import(
                Path(file["path"]), file["site"], file["feed"]
            )
        return files

    def _meter_import(self, path: Path, site: str, feed: str) -> int:
        """`gridhook meter import PATH --site SITE --feed FEED`, in-process: the command's
        own code path (its parsing, its refusals), without a process per file."""
        from gridhook.cli import main as gridhook_main

        argv = ["meter", "import", str(path), "--site", site, "--feed", feed]
        argv += ["--store", self.store_url, "--format", "json"]
        settings = {**self.demo_store.env, "GRIDHOOK_SITES_FILE": str(self.sites.path)}
        for _ in range(IMPORT_ATTEMPTS):
            self.stop.check()
            stdout, stderr = io.StringIO(), io.StringIO()
            with (
                _environment(settings),
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
            ):
                code = gridhook_main(argv)
            if code == 0:
                break
        else:
            raise DemoError(
                f"gridhook {' '.join(argv)} failed {IMPORT_ATTEMPTS} times: "
                f"{stderr.getvalue().strip()}"
            )
        done = json.loads(stdout.getvalue())
        return int(done["intervals"])

    def _prepare_store(self) -> str | None:
        """Start the Firestore emulator if the store needs one and none answers (and say so);
        refuse a store that already holds events (the demo's own is new)."""
        store = self.demo_store
        note = None
        if store.emulator_host:
            note = self._start_emulator_unless_running(store.emulator_host)
        if not store.own:
            require_empty(store, [site.name for site in SITES])
        return note

    def _start_emulator_unless_running(self, host: str) -> str | None:
        name, port = emulator_address(host)
        if port_accepts(port, name):
            return None  # the user's emulator: used, and left running
        if not may_start_emulator(host):
            raise DemoError(
                f"nothing answers at FIRESTORE_EMULATOR_HOST={host}, and the demo starts an "
                "emulator only on this machine (127.0.0.1:PORT or localhost:PORT)"
            )
        self.emulator = FirestoreEmulator(
            port, log_path=self.dir / "firestore-emulator.log", cwd=self.cwd
        )
        try:
            self.emulator.start(sleep=self.stop.sleep)
        except EmulatorError as exc:
            raise DemoError(str(exc)) from None
        return (
            f"  firestore  emulator started on {self.emulator.host} (none answered at "
            f"FIRESTORE_EMULATOR_HOST); stopped at the end   log {self.emulator.log_path}"
        )

    def _fleet_flags(self) -> list[str]:
        """The fleet the simulator plays, the same for its history and its live day."""
        flags = []
        for site in self.plan.sites:
            flags += ["--site-name", site.name, "--timezone", f"{site.name}={site.timezone}"]
        return [*flags, "--feeds", str(self.dir / "feeds.json"), "--load-seed", str(LOAD_SEED)]

    def _start_simulator(self) -> ChildProcess:
        argv = [
            sys.executable, "-m", "simulator.cli", *self._fleet_flags(),
            "--host", "127.0.0.1",
            "--port", str(self.sim_port),
            "--tls-dir", str(self.tls_dir),
            "--clock", self.clock_text,
            "--ramp-rate", f"{RAMP_RATE_MW_PER_MINUTE:g}",
            "--whitelist", "http://127.0.0.1/nvgrid/webhook",
            "--call-timeout", "10",
            # The day's meter data, written as it stops (imported after the day).
            "--meter-out", str(self.meter_dir), "--meter-interval", HISTORY_INTERVAL,
        ]  # fmt: skip
        for site in self.sites.sites:  # each site's DPS its own user
            argv += ["--user", f"{site.name}={site.username}:{site.password}"]
        for rule in self.plan.drop_rules:
            argv += ["--drop-event", str(rule)]
        return self._spawn("simulator", argv, self.env, stdout="pipe")

    def _await_simulator(self, sim: ChildProcess) -> None:
        lines = self._read_lines(sim, len(self.sites.sites))
        for site, line in zip(self.sites.sites, lines, strict=True):  # one per site, in order
            match = _LISTENING.search(line)
            if match is None:
                raise DemoError(self._died("the simulator did not start", sim))
            if (match["site"], match["address"]) != (site.name, site.nvgrid_host) or Path(
                match["ca"]
            ).resolve() != site.ca_cert:
                raise DemoError(
                    f"the simulator serves {match['site']} at {match['address']} with CA "
                    f"{match['ca']}, not {site.name} at {site.nvgrid_host} with CA "
                    f"{site.ca_cert} as {self.sites.path} says"
                )
            self.say(
                f"  simulator  {site.name} at {site.nvgrid_host} (TLS, CA {match['ca']})"
                f"   log {sim.log_path}"
            )

    def _start_receiver(self) -> ChildProcess:
        env = {
            **self.env,
            **self.demo_store.env,
            "GRIDHOOK_SITES_FILE": str(self.sites.path),
            "GRIDHOOK_DEV_CLOCK": self.clock_text,
        }
        argv = [*_gridhook(), "run", "--host", "127.0.0.1", "--port", str(self.receiver_port)]
        return self._spawn("receiver", argv, env)

    def _await_receiver(self, receiver: ChildProcess) -> None:
        try:
            wait_until(
                lambda: answers_http(self.webhook_url),
                what="answering HTTP",
                timeout=START_TIMEOUT,
                process=receiver,
                sleep=self.stop.sleep,
            )
        except ProcessExited:
            raise DemoError(self._died("the receiver exited", receiver)) from None
        except TimeoutError:
            raise DemoError(
                self._died(f"the receiver did not answer within {START_TIMEOUT:.0f} s", receiver)
            ) from None
        self.say(
            f"  receiver   {self.webhook_url}/<site>   store {self.store_url}   "
            f"log {receiver.log_path}"
        )
        self.say(f"  clock      GRIDHOOK_DEV_CLOCK={self.clock_text} (all three)")

    def _connect(self) -> None:
        from gridhook import clock, log
        from gridhook.settings import load_settings
        from gridhook.store import open_store

        self.settings: Settings = load_settings(
            {
                **self.demo_store.env,
                # Each site's DPS, credentials and tokens, as the jobs read them.
                "GRIDHOOK_SITES_FILE": str(self.sites.path),
                "GRIDHOOK_WEBHOOK_URL": self.webhook_url,
                "GRIDHOOK_DEV_CLOCK": self.clock_text,
                # Short RPC deadlines: a stuck call must not hold up the demo (or a Ctrl-C).
                "GRIDHOOK_RECONCILE_DEADLINE_SECONDS": "8",
                # Simulated seconds: at 1440x and more a webhook's few real milliseconds in
                # flight are minutes, and the default 120 s would report them as drift.
                "GRIDHOOK_DRIFT_GRACE_SECONDS": "900",
            }
        )
        clock.configure(self.settings.dev_clock)
        self.reconcile_log = open(self.dir / "reconcile.log", "w", buffering=1)  # noqa: SIM115
        log.configure(self.settings.log_level, stream=self.reconcile_log)
        reports = self._reconcile()
        for site, report in reports.items():
            if report.status != "ok" or not report.registered:
                raise DemoError(
                    f"reconcile could not register site {site}'s webhook: {report.error}; "
                    f"see {self.reconcile_log.name} and {self.dir / 'simulator.log'}"
                )
        self.store = open_store(self.store_url)
        self.say(
            f"  reconcile  {len(reports)} sites' webhooks registered "
            f"({', '.join(f'{site} {self.webhook_url}/{site}' for site in reports)}) "
            f"{time.monotonic() - self.began:.1f} s after the start; again every "
            f"{RECONCILE_EVERY:g} s   log {self.reconcile_log.name}"
        )

    def _schedule(self) -> None:
        from gridhook.jobs import open_nvgrid
        from gridhook.nvgrid import Load, LoadTarget, NvGridError

        first = self.plan.curtailments[0]
        if self.clock.now() + SCHEDULE_MARGIN > first.start:
            raise DemoError(
                f"start-up took too long: the simulated clock already shows "
                f"{_hm_utc(self.clock.now())} UTC, too close to the first curtailment at "
                f"{_hm_utc(first.start)} UTC; run again with a larger --startup-seconds "
                f"(now {self.options.startup_seconds:g})"
            )
        for site in self.plan.sites:
            targets = [
                LoadTarget(
                    start_time=c.start,
                    end_time=c.end,
                    target_load=Load(c.target_mw, "mw"),
                    feed_tags=(c.feed_tag,),
                    correlation_id=c.correlation_id,
                )
                for c in self.plan.of_site(site.name)
            ]
            try:
                with open_nvgrid(self.settings, site.name) as nvgrid:  # the site's own DPS
                    nvgrid.set_load_targets(targets)
            except NvGridError as exc:
                raise DemoError(
                    f"scheduling site {site.name}'s day through SetLoadTarget failed: {exc}"
                ) from None
        self.say(
            f"  scheduled  {len(self.plan.curtailments)} curtailments on 2 sites x 2 feeds, "
            f"day-ahead, each site's in its local time ({self.dir / 'scenario.json'}):"
        )
        for c in self.plan.curtailments:
            note = "" if c.expectation == "target met" else f"   ({c.expectation})"
            self.say(
                f"     {c.site:<5} {_hm(c.start, c.zone)}-{_hm(c.end, c.zone)} "
                f"{_zone_name(c.start, c.zone):<4} {c.feed_tag:<18} {c.label:<16} "
                f"-> {c.target_mw:g} MW{note}"
            )
        self.say()
        self.say("  as it happens (simulated time, each site's local time):")

    # --- the day ------------------------------------------------------------------------------

    def _play_the_day(self) -> None:
        self.tracked = {c.correlation_id: Tracked(c) for c in self.plan.curtailments}
        self.seen: set[tuple[str, str]] = set()  # (site, event id)
        self.unexpected: list[StoredEvent] = []
        next_reconcile = time.monotonic() + RECONCILE_EVERY
        overrun_deadline: float | None = None
        while True:
            self.stop.check()
            for child in self.children:
                if child.poll() is not None:
                    raise DemoError(self._died(f"the {child.name} exited", child))
            if time.monotonic() >= next_reconcile:
                self._reconcile()
                next_reconcile = time.monotonic() + RECONCILE_EVERY
            self._follow_store()
            if self.clock.now() >= self.plan.end:
                if all(t.outcome for t in self.tracked.values()):
                    return
                overrun_deadline = overrun_deadline or time.monotonic() + DAY_OVERRUN
                if time.monotonic() > overrun_deadline:
                    self._missing_events()
                    return
            self.stop.sleep(TICK * 2)

    def _reconcile(self) -> dict[str, ReconcileReport]:
        """One all-sites reconcile run (the sites in parallel, as `gridhook reconcile`)
        and one all-sites sampling run (each site's sample_load job)."""
        from gridhook.jobs import run_reconcile, run_sample

        reports = run_reconcile(self.settings).reports
        run_sample(self.settings)
        self.reconciles += 1
        failed = {site: r.error for site, r in reports.items() if r.status != "ok"}
        if failed:
            self.reconcile_failures += 1
            if self.reconcile_failures == 1:  # once: the log has every run
                self.problems.append(f"reconcile failed ({failed}); see {self.dir}/reconcile.log")
        return reports

    def _follow_store(self) -> None:
        from gridhook.store import EventQuery, iter_events

        store = self.store
        assert store is not None  # opened by _connect
        fresh = [  # every store read names one site: each site's, merged
            e
            for site in self.plan.sites
            for e in iter_events(store, EventQuery(limit=500, site=site.name))
            if (e.site, e.event_id) not in self.seen
        ]
        for event in sorted(fresh, key=lambda e: e.received_at):
            self.seen.add((event.site, event.event_id))
            tracked = self.tracked.get(event.correlation_id or "")
            if tracked is None or tracked.plan.site != event.site:
                self.unexpected.append(event)
                continue
            tracked.events.setdefault(event.event, event)
            if event.event == "start_ramp_down" and not tracked.announced:
                tracked.announced = True
                c = tracked.plan
                self._line(
                    event.received_at,
                    tracked,
                    f"ramping down {_mw(event)} -> {c.target_mw:g} MW until {_hm(c.end, c.zone)}",
                )
            if event.event == "end_ramp_up" and tracked.outcome != "recovered":
                # Late (after the stall deadline) on a busy machine: then it did recover.
                late = tracked.outcome == "stalled"
                tracked.outcome = "recovered"
                result = "end_ramp_up arrived late" if late else self._ramp_down_result(tracked)
                self._line(event.received_at, tracked, f"{result}; back at {_mw(event)} MW")
        deadline = timedelta(seconds=self.settings.ramp_deadline_seconds)
        now = self.clock.now()
        for tracked in self.tracked.values():
            ramp_up = tracked.events.get("start_ramp_up")
            if tracked.outcome is None and ramp_up and now - ramp_up.received_at > deadline:
                tracked.outcome = "stalled"
                self._line(
                    ramp_up.received_at + deadline,
                    tracked,
                    f"{self._ramp_down_result(tracked)}; ramp-up STALLED: no end_ramp_up "
                    f"{deadline.total_seconds() / 60:g} min after it began",
                )

    def _ramp_down_result(self, tracked: Tracked) -> str:
        start, end = tracked.events.get("start_ramp_down"), tracked.events.get("end_ramp_down")
        if end is None:
            return "end_ramp_down never arrived"
        took = f"{_minutes(end.received_at - start.received_at)} min" if start else "?"
        if end.compliant:
            return f"{_mw(end)} MW reached in {took} (target met)"
        target = tracked.plan.target_mw
        return f"stopped at {_mw(end)} MW after {took}: target {target:g} MW NOT met"

    def _line(self, at: datetime, tracked: Tracked, text: str) -> None:
        c = tracked.plan
        self.say(
            f"  {c.site:<5} {_hm(at, c.zone)} {_zone_name(at, c.zone):<4} {c.feed_tag:<18} "
            f"{c.label:<16} {text}"
        )

    def _missing_events(self) -> None:
        for tracked in self.tracked.values():
            if tracked.outcome is None:
                missing = [e for e in tracked.plan.expected_events if e not in tracked.events]
                self.problems.append(
                    f"{tracked.plan.correlation_id}: no {', '.join(missing) or 'outcome'} stored "
                    f"{DAY_OVERRUN:g} s after the day ended (see {self.dir}/simulator.log and "
                    f"{self.dir}/receiver.log)"
                )

    # --- the end ------------------------------------------------------------------------------

    def _stop_children(self) -> None:
        if hasattr(self, "clock"):  # the simulated moment the day's processes stopped at
            self.stopped_at = self.clock.now()
        for child in self.children:  # the simulator first: nothing is sent to a stopped receiver
            # The simulator writes the day's meter data as it stops: give it the time to.
            child.stop(SIMULATOR_STOP_TIMEOUT if child.name == "simulator" else 5.0)

    def _stop_emulator(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()

    def _close(self) -> None:
        if self.store is not None:
            self.store.close()
        if self.reconcile_log is not None:
            self.reconcile_log.close()

    def _report(self) -> None:
        self._check_against_plan()
        env = {
            **self.env,
            **self.demo_store.env,
            "GRIDHOOK_SITES_FILE": str(self.sites.path),
            "GRIDHOOK_DEV_CLOCK": self.clock_text,
        }
        self.say()
        # The report covers the simulated day (from an hour before it began), not a fixed
        # age, so its charts show the day rather than two days with one busy half.
        since = rfc3339(self.plan.start - timedelta(hours=1))
        self._gridhook(
            "report",
            ["report", "--since", since, "--format", "html", "--output", str(self.report_path)],
            env,
        )
        self.say(f"Episodes (gridhook episodes --since {since}):")
        self.say(self._gridhook("episodes", ["episodes", "--since", since], env))
        self._settle(since, env)

    def _settle(self, since: str, env: dict[str, str]) -> None:
        """The day's settlement (`gridhook settlement`, source auto: the meter data, history
        and day alike): `var/settlement.html`, and a line per curtailment printed from its
        JSON, checked against the plan (the curtailment below the floor delivers less than
        needed)."""
        args = ["settlement", "--since", since]
        html = ["--format", "html", "--output", str(self.settlement_path)]
        self._gridhook("settlement-html", [*args, *html], env)
        text = self._gridhook("settlement", [*args, "--format", "json"], env)
        if not text:
            return
        run = json.loads(text)
        by_start = {(c.site, c.feed_tag, c.start): c for c in self.plan.curtailments}
        self.settled = [
            {**settlement, "plan": by_start.get((site["site"], feed["feed"], _instant(settlement)))}
            for site in run["sites"]
            for feed in site["feeds"]
            for settlement in feed["settlements"]
        ]
        self.settled.sort(key=_instant)
        self.say()
        self.say(
            f"Settlement (gridhook settlement --since {since}): baseline {run['method']} on "
            f"{run['resolution']} intervals from the {HISTORY_DAYS} days of meter history, actual "
            "load from the day's meter data"
        )
        self.say(
            f"  {'SITE':<5} {'START':<9} {'FEED':<18} {'CURTAILMENT':<16} {'TARGET':>7}  "
            f"{'SOURCE':<7} {'STATUS':<9} {'DELIVERED':>9}  {'NEEDED':>9}  {'L<=T':>5}  "
            "PERFORMANCE"
        )
        for settled in self.settled:
            self.say("  " + _settlement_line(settled))
            self._check_settlement(settled)
        totals = run["totals"]
        if totals["delivered_mwh"] is not None:
            self.say(
                f"  fleet: {_mwh(totals['delivered_mwh'])} delivered of "
                f"{_mwh(totals['needed_mwh'])} needed, performance factor {_factor(totals)}. "
                "A target met delivers all but its ramp down's minutes; L<=T: the intervals "
                "whose load was at or below the target"
            )

    def _check_settlement(self, settled: dict[str, Any]) -> None:
        """Each curtailment settled on the meter's data; the one below its floor delivered
        less than it needed (the day is made that way)."""
        plan: PlannedCurtailment | None = settled["plan"]
        name = plan.correlation_id if plan else f"{settled['site']} {settled['episode_id']}"
        if (settled["status"], settled["source"]) != ("complete", "meter"):
            self.problems.append(
                f"{name}: settled {settled['status']} on {settled['source']} data, expected "
                f"complete on meter data ({settled['reason']})"
            )
        elif plan is not None and plan.below_floor and not _short(settled):
            self.problems.append(f"{name}: settled as delivering what it needed, expected less")

    def _gridhook(self, name: str, args: Sequence[str], env: dict[str, str]) -> str:
        """Run `gridhook ARGS` to completion (stoppable) and return its stdout; a failure
        is one of the run's problems."""
        try:
            return self._run_to_end(name, [*_gridhook(), *args], env, what=f"gridhook {name}")
        except DemoError as error:
            self.problems.append(str(error))
            return ""

    def _run_to_end(self, name: str, argv: Sequence[str], env: dict[str, str], what: str) -> str:
        """Run `argv` (`what`, its log `name`.log) to completion, stoppable, and return its
        stdout; DemoError if it fails or takes longer than COMMAND_TIMEOUT."""
        output = self.dir / f"{name}.out"
        child = self._spawn(name, argv, env, stdout=output)
        deadline = time.monotonic() + COMMAND_TIMEOUT
        try:
            while child.poll() is None:
                if time.monotonic() > deadline:
                    raise DemoError(f"{what} took over {COMMAND_TIMEOUT:g} s")
                self.stop.sleep(TICK)
        finally:
            child.stop()
            self.children.remove(child)
        if child.poll() != 0:
            raise DemoError(self._died(f"{what} failed", child))
        return output.read_text(encoding="utf-8", errors="replace").rstrip()

    def _check_against_plan(self) -> None:
        for tracked in self.tracked.values():
            c = tracked.plan
            end = tracked.events.get("end_ramp_down")
            if end is not None and end.compliant is c.below_floor:
                self.problems.append(
                    f"{c.correlation_id}: end_ramp_down compliant={end.compliant}, expected "
                    f"{not c.below_floor}"
                )
            if tracked.outcome and (tracked.outcome == "stalled") is not c.webhook_dropped:
                self.problems.append(f"{c.correlation_id}: {tracked.outcome}, not as planned")
        for event in self.unexpected:
            self.problems.append(f"unexpected event {event.event} {event.correlation_id}")

    def _summary(self, wall_seconds: float) -> None:
        sites: dict[str, int] = {site.name: 0 for site in self.plan.sites}
        for tracked in self.tracked.values():
            sites[tracked.plan.site] += len(tracked.events)
        not_met = [t.plan for t in self.tracked.values() if _not_met(t)]
        stalled = [t.plan for t in self.tracked.values() if t.outcome == "stalled"]
        per_site = ", ".join(f"{site} {count}" for site, count in sites.items())
        self.say()
        self.say(
            f"Done in {_duration(wall_seconds)}: {len(self.seen)} power events stored "
            f"({per_site}); {len(self.tracked)} curtailments: "
            f"{len(self.tracked) - len(not_met) - len(stalled)} met, {len(not_met)} not met, "
            f"{len(stalled)} stalled. Reconcile ran {self.reconciles} times "
            f"({self.reconcile_failures} failed)."
        )
        for c in (t.plan for t in self.tracked.values() if _not_met(t)):
            self.say(
                f"Short:   {c.site} {c.feed_tag} {c.label} delivered less than needed: "
                f"{c.target_mw:g} MW asked, {c.floor_mw:g} MW is as low as it goes"
            )
            for settled in (s for s in self.settled if s["plan"] is c and _short(s)):
                self.say(
                    f"         settled: {_mwh(settled['delivered_mwh'])} delivered of "
                    f"{_mwh(settled['needed_mwh'])} needed against the baseline "
                    f"({settled['method']}), performance factor {_factor(settled)}"
                )
        if self.report_path.exists():
            url = self.report_path.resolve().as_uri()
            self.say(f"Report:  {self.report_path} (open it in a browser: {url})")
        else:
            self.say("Report:  not written (see the problems below)")
        if self.settlement_path.exists():
            url = self.settlement_path.resolve().as_uri()
            self.say(f"Settled: {self.settlement_path} (open it in a browser: {url})")
        if self.emulator is not None:
            self.say(
                f"Store:   {self.store_url} is in the Firestore emulator the demo started, which "
                "stops now and keeps nothing. To look further afterwards, start one yourself, in "
                "another terminal (make emulator && node tools/firestore-emulator/start.js "
                f"{self.emulator.port}), and run the demo again: it plays into that one, leaves "
                "it running, and says how to look."
            )
        else:
            self._how_to_look_further()
        logs = "simulator.log, receiver.log, reconcile.log"
        if self.emulator is not None:
            logs += ", firestore-emulator.log"
        self.say(f"Logs:    {self.dir}/{logs}")
        for problem in self.problems:
            print(f"gridhook demo: problem: {problem}", file=sys.stderr, flush=True)

    def _how_to_look_further(self) -> None:
        # The control room, as if right after the demo day: a clock at normal speed that
        # shows now when the simulator and the receiver stopped (the demo's own clock has run
        # on at 1440x while the report was made; the last reconcile and sample came then).
        after_the_day = DevClock(1.0, self.stopped_at, datetime.now(UTC))
        settings = {
            **self.demo_store.env,
            "GRIDHOOK_SITES_FILE": str(self.sites.path),
            "GRIDHOOK_DEV_CLOCK": str(after_the_day),
        }
        env = " ".join(f"{name}={value}" for name, value in settings.items())
        self.say(f"More:    export {env}")
        self.say(
            "         .venv/bin/gridhook sites; .venv/bin/gridhook episodes --since 2d; "
            ".venv/bin/gridhook settlement --since 2d"
        )
        self.say(
            "         .venv/bin/gridhook run --function power_report --port 8081"
            "   # the control room:"
        )
        self.say("           http://localhost:8081/   the fleet: both sites' feeds now")
        for site in self.plan.sites:
            self.say(
                f"           http://localhost:8081/sites/{site.name}   {site.name}'s page, in "
                f"{site.timezone} time"
            )

    # --- helpers ------------------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: Sequence[str], env: dict[str, str], stdout: Any = "log"
    ) -> ChildProcess:
        child = ChildProcess(
            name, argv, env=env, cwd=self.cwd, log_path=self.dir / f"{name}.log", stdout=stdout
        )
        self.children.append(child)
        return child

    def _read_lines(self, child: ChildProcess, count: int) -> list[str]:
        """The first `count` lines of the child's stdout (fewer, padded with "", if it
        exits or START_TIMEOUT passes first). Read from the file descriptor itself: a
        buffered readline could take several lines at once and leave the next wait blind."""
        assert child.stdout is not None
        fd = child.stdout.fileno()
        received = b""
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while received.count(b"\n") < count:
                self.stop.check()
                if time.monotonic() > deadline:
                    break
                if selector.select(TICK):
                    chunk = os.read(fd, 65536)
                    if not chunk:  # it closed its stdout: it has exited
                        break
                    received += chunk
                elif child.poll() is not None:
                    break
        lines = received.decode("utf-8", "replace").splitlines()[:count]
        return lines + [""] * (count - len(lines))

    def _died(self, what: str, child: ChildProcess) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(2.0)  # its output may end a moment before its exit status is known
        code = child.poll()
        status = "" if code is None else f" (exit code {code})"
        tail = child.tail()
        hint = ""
        if "address already in use" in tail.lower() or "port in use" in tail.lower():
            hint = " - its port is in use"
        return f"{what}{status}{hint}; the end of {child.log_path}:\n{tail}"


def _instant(settled: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(settled["event_start"])


def _short(settled: dict[str, Any]) -> bool:
    """Settled, and delivered less than it needed."""
    delivered, needed = settled["delivered_mwh"], settled["needed_mwh"]
    return delivered is not None and needed is not None and delivered < needed


def _mwh(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} MWh"


def _factor(figures: dict[str, Any]) -> str:
    """The performance factor, capped at 1, and uncapped where that differs."""
    capped, uncapped = figures["performance_factor"], figures["performance_factor_uncapped"]
    if capped is None:
        return "-"
    if uncapped is not None and round(uncapped, 2) != round(capped, 2):
        return f"{capped:.2f} ({uncapped:.2f} uncapped)"
    return f"{capped:.2f}"


def _settlement_line(settled: dict[str, Any]) -> str:
    """A curtailment's settlement in the demo's words: its site's local time and label."""
    plan: PlannedCurtailment | None = settled["plan"]
    start = _instant(settled)
    zone = plan.zone if plan else ZoneInfo("UTC")
    label = plan.label if plan else settled["episode_id"]
    # Intervals whose load was at or below the target, of those counted: a target held.
    held = f"{settled['intervals_at_or_below_target']}/{settled['intervals_counted']}"
    figures = (
        f"{_mwh(settled['delivered_mwh']):>9}  {_mwh(settled['needed_mwh']):>9}  {held:>5}  "
        f"{_factor(settled)}"
        if settled["status"] == "complete"
        else settled["reason"]
    )
    return (
        f"{settled['site']:<5} {_hm(start, zone)} {_zone_name(start, zone):<3} "
        f"{settled['feed']:<18} {label:<16} {settled['target_w'] / 1e6:>4.3g} MW  "
        f"{settled['source']:<7} {settled['status']:<9} {figures}"
    )


def _not_met(tracked: Tracked) -> bool:
    end = tracked.events.get("end_ramp_down")
    return end is not None and end.compliant is False


def _hm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _hm_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


def _zone_name(moment: datetime, zone: ZoneInfo) -> str:
    """The zone's abbreviation at `moment` (MST, CET): which local time a line shows."""
    return moment.astimezone(zone).strftime("%Z")


def _site_list(sites: Sequence[DemoSite]) -> str:
    return ", ".join(f"{site.name} {site.timezone}" for site in sites)


def _meter_format(name: str) -> str:
    return "Green Button CSV, local times" if name == "green-button" else "gridhook CSV, UTC"


def _duration(seconds: float) -> str:
    """`54.3 s`, or `9 min 54 s` from a minute on: as the demo prints a run's length."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _free_ports(count: int) -> int:
    """A free port followed by `count - 1` more free ones (the simulator's sites), checked
    now; the simulator says so if one is taken by the time it listens."""
    for _ in range(50):
        first = free_port()
        if all(port_is_free(first + i) for i in range(1, count)):
            return first
    raise DemoError(f"found no {count} consecutive free ports for the simulator's sites")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block (what a command run in-process reads), then
    as before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _mw(event: StoredEvent) -> str:
    return f"{round((event.calculated_w or 0) / 1e6, 1):g}"


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f}"


def _gridhook() -> list[str]:
    """The `gridhook` command of this Python (its console script, next to the interpreter)."""
    script = Path(sys.executable).with_name("gridhook")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gridhook.cli import main; sys.exit(main())"]


def _clean_environment() -> dict[str, str]:
    """This environment without gridhook / NvGrid / Firestore settings, and loopback never
    sent through a proxy."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRIDHOOK_", "NVGRID_", "FIRESTORE_"))
    }
    for name in ("no_proxy", "NO_PROXY"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env["PYTHONUNBUFFERED"] = "1"
    return env
