"""The demo's run: a day of curtailments, end to end, in about a minute.

It starts `gridhook-sim` on a fast clock and the receiver (`gridhook run`, the real
functions-framework server) on its store — SQLite in a fresh `var/demo/`, or the one
`GRIDHOOK_STORE` names (Firestore through the emulator, which it starts if none runs) — both
on the same `GRIDHOOK_DEV_CLOCK`; reconciles (registers the webhook) and keeps reconciling
every half second; schedules the day of `demo/plan.py` through NvGrid's SetLoadTarget; prints
a line per curtailment as its events reach the store; then writes `var/report.html`, prints
the episode table and stops everything it started, on Ctrl-C too (exit 130).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from demo.errors import DemoError
from demo.firestore_emulator import EmulatorError, FirestoreEmulator
from demo.plan import FEEDS, RAMP_RATE_MW_PER_MINUTE, DayPlan, PlannedCurtailment, plan_day
from demo.processes import (
    ChildProcess,
    ProcessExited,
    answers_http,
    free_port,
    port_accepts,
    port_is_free,
    wait_until,
)
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
COMMAND_TIMEOUT = 180.0  # real seconds for `gridhook report` / `episodes`
SCHEDULE_MARGIN = timedelta(minutes=15)  # simulated: the first target must still be ahead
DEMO_USER = "demo"
_LISTENING = re.compile(r"gridhook-sim listening on (?P<address>\S+) tls=on ca=(?P<ca>\S+)")


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

    # --- the whole run ------------------------------------------------------------------------

    def run(self) -> int:
        self.began = time.monotonic()
        try:
            try:
                self._prepare()
                sim, receiver = self._start_simulator(), self._start_receiver()  # side by side
                self._await_simulator(sim)
                self._await_receiver(receiver)
                self._connect()
                self._schedule()
                self._play_the_day()
            finally:
                self._stop_children()
                self._close()
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
        # The store before the plan: starting an emulator must not eat the start-up allowance.
        store_note = self._prepare_store()
        self.plan: DayPlan = plan_day(datetime.now(UTC), o.speed, o.startup_seconds)
        # Every clock (simulator, receiver, this process) parses this one string.
        self.clock_text = str(self.plan.clock)
        self.clock: DevClock = parse_dev_clock(self.clock_text)
        self.receiver_port = o.receiver_port or free_port()
        if o.receiver_port and not port_is_free(o.receiver_port):
            raise DemoError(
                f"port {o.receiver_port} is in use: stop what listens there, or leave "
                "--receiver-port out to pick a free port"
            )
        (self.dir / "feeds.json").write_text(json.dumps(FEEDS, indent=2) + "\n")
        (self.dir / "scenario.json").write_text(json.dumps(self.plan.to_dict(), indent=2) + "\n")
        self.token_path = self.dir / "webhook-token"
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as token_file:
            token_file.write(secrets.token_urlsafe(32) + "\n")
        self.password = secrets.token_urlsafe(16)
        self.env = _clean_environment()
        day_seconds = self.plan.real_seconds_until(self.plan.end)
        self.say(
            f"gridhook demo: the simulated day {self.plan.day} {_hm(self.plan.start)}-"
            f"{_hm(self.plan.end)} (local time) at {o.speed:g}x: about {day_seconds:.0f} s"
        )
        if store_note:
            self.say(store_note)

    def _prepare_store(self) -> str | None:
        """Start the Firestore emulator if the store needs one and none answers (and say so);
        refuse a store that already holds events (the demo's own is new)."""
        store = self.demo_store
        note = None
        if store.emulator_host:
            note = self._start_emulator_unless_running(store.emulator_host)
        if not store.own:
            require_empty(store)
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

    def _start_simulator(self) -> ChildProcess:
        self.tls_dir = self.dir / "sim-tls"
        argv = [
            sys.executable, "-m", "simulator.cli",
            "--host", "127.0.0.1",
            "--port", str(self.options.sim_port),
            "--tls-dir", str(self.tls_dir),
            "--clock", self.clock_text,
            "--feeds", str(self.dir / "feeds.json"),
            "--ramp-rate", f"{RAMP_RATE_MW_PER_MINUTE:g}",
            "--user", f"{DEMO_USER}:{self.password}",
            "--whitelist", "http://127.0.0.1/nvgrid/webhook",
            "--call-timeout", "10",
        ]  # fmt: skip
        for rule in self.plan.drop_rules:
            argv += ["--drop-event", str(rule)]
        return self._spawn("simulator", argv, self.env, stdout="pipe")

    def _await_simulator(self, sim: ChildProcess) -> None:
        line = self._read_first_line(sim)
        match = _LISTENING.search(line)
        if match is None:
            raise DemoError(self._died("the simulator did not start", sim))
        self.sim_address, self.ca_path = match["address"], match["ca"]
        self.say(f"  simulator  {self.sim_address} (TLS, CA {self.ca_path})   log {sim.log_path}")

    def _start_receiver(self) -> ChildProcess:
        env = {
            **self.env,
            **self.demo_store.env,
            "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(self.token_path),
            "GRIDHOOK_DEV_CLOCK": self.clock_text,
        }
        argv = [*_gridhook(), "run", "--host", "127.0.0.1", "--port", str(self.receiver_port)]
        self.webhook_url = f"http://127.0.0.1:{self.receiver_port}/nvgrid/webhook"
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
            f"  receiver   {self.webhook_url}   store {self.store_url}   log {receiver.log_path}"
        )
        self.say(f"  clock      GRIDHOOK_DEV_CLOCK={self.clock_text} (all three)")

    def _connect(self) -> None:
        from gridhook import clock, log
        from gridhook.settings import load_settings
        from gridhook.store import open_store

        # What the reconcile job reads from its environment, for this process.
        for name in [n for n in os.environ if n.startswith("NVGRID_")]:
            del os.environ[name]
        nvgrid = {
            "NVGRID_HOST": self.sim_address,
            "NVGRID_TLS": "verify",
            "NVGRID_CA_CERT": self.ca_path,
            "NVGRID_USERNAME": DEMO_USER,
            "NVGRID_PASSWORD": self.password,
        }
        os.environ.update(nvgrid)
        self.settings: Settings = load_settings(
            {
                **self.demo_store.env,
                **nvgrid,  # the default site's DPS, as settings read it
                "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(self.token_path),
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
        report = self._reconcile()
        if report.status != "ok" or not report.registered:
            raise DemoError(
                f"reconcile could not register the webhook: {report.error}; see "
                f"{self.reconcile_log.name} and {self.dir / 'simulator.log'}"
            )
        self.store = open_store(self.store_url)
        self.say(
            f"  reconcile  webhook registered {time.monotonic() - self.began:.1f} s after the "
            f"start; again every {RECONCILE_EVERY:g} s   log {self.reconcile_log.name}"
        )

    def _schedule(self) -> None:
        from gridhook.nvgrid import Load, LoadTarget, NvGridClient, NvGridError

        first = self.plan.curtailments[0]
        if self.clock.now() + SCHEDULE_MARGIN > first.start:
            raise DemoError(
                f"start-up took too long: the simulated clock already shows "
                f"{_hm(self.clock.now())}, too close to the first curtailment at "
                f"{_hm(first.start)}; run again with a larger --startup-seconds "
                f"(now {self.options.startup_seconds:g})"
            )
        targets = [
            LoadTarget(
                start_time=c.start,
                end_time=c.end,
                target_load=Load(c.target_mw, "mw"),
                feed_tags=(c.feed_tag,),
                correlation_id=c.correlation_id,
            )
            for c in self.plan.curtailments
        ]
        try:
            with NvGridClient.from_env() as nvgrid:
                nvgrid.set_load_targets(targets)
        except NvGridError as exc:
            raise DemoError(f"scheduling the day through SetLoadTarget failed: {exc}") from None
        self.say(
            f"  scheduled  {len(targets)} curtailments on 2 feeds, day-ahead "
            f"({self.dir / 'scenario.json'}):"
        )
        for c in self.plan.curtailments:
            note = "" if c.expectation == "target met" else f"   ({c.expectation})"
            self.say(
                f"     {_hm(c.start)}-{_hm(c.end)}  {c.feed_tag:<18} {c.label:<16} "
                f"{c.default_mw:g} -> {c.target_mw:g} MW{note}"
            )
        self.say()
        self.say("  as it happens (simulated local time):")

    # --- the day ------------------------------------------------------------------------------

    def _play_the_day(self) -> None:
        self.tracked = {c.correlation_id: Tracked(c) for c in self.plan.curtailments}
        self.seen: set[str] = set()
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

    def _reconcile(self) -> ReconcileReport:
        from gridhook.jobs import run_reconcile, run_sample
        from gridhook.sites import DEFAULT_SITE

        report = run_reconcile(self.settings).reports[DEFAULT_SITE]
        run_sample(self.settings)  # what each site's sample_load job does, here at each reconcile
        self.reconciles += 1
        if report.status != "ok":
            self.reconcile_failures += 1
            if self.reconcile_failures == 1:  # once: the log has every run
                self.problems.append(
                    f"reconcile failed ({report.error}); see {self.dir}/reconcile.log"
                )
        return report

    def _follow_store(self) -> None:
        from gridhook.store import EventQuery, iter_events

        store = self.store
        assert store is not None  # opened by _connect
        fresh = [
            e for e in iter_events(store, EventQuery(limit=500)) if e.event_id not in self.seen
        ]
        for event in sorted(fresh, key=lambda e: e.received_at):
            self.seen.add(event.event_id)
            tracked = self.tracked.get(event.correlation_id or "")
            if tracked is None:
                self.unexpected.append(event)
                continue
            tracked.events.setdefault(event.event, event)
            if event.event == "start_ramp_down" and not tracked.announced:
                tracked.announced = True
                c = tracked.plan
                self._line(
                    event.received_at,
                    tracked,
                    f"ramping down {c.default_mw:g} -> {c.target_mw:g} MW until {_hm(c.end)}",
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
        self.say(f"  {_hm(at)}  {c.feed_tag:<18} {c.label:<16} {text}")

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
        for child in self.children:  # the simulator first: nothing is sent to a stopped receiver
            child.stop()

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
        env = {**self.env, **self.demo_store.env, "GRIDHOOK_DEV_CLOCK": self.clock_text}
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

    def _gridhook(self, name: str, args: Sequence[str], env: dict[str, str]) -> str:
        """Run `gridhook ARGS` to completion (stoppable) and return its stdout."""
        output = self.dir / f"{name}.out"
        child = self._spawn(name, [*_gridhook(), *args], env, stdout=output)
        deadline = time.monotonic() + COMMAND_TIMEOUT
        try:
            while child.poll() is None:
                if time.monotonic() > deadline:
                    self.problems.append(f"gridhook {name} took over {COMMAND_TIMEOUT:g} s")
                    return ""
                self.stop.sleep(TICK)
        finally:
            child.stop()
            self.children.remove(child)
        if child.poll() != 0:
            self.problems.append(self._died(f"gridhook {name} failed", child))
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
        feeds: dict[str, int] = {}
        for tracked in self.tracked.values():
            feeds[tracked.plan.feed_tag] = feeds.get(tracked.plan.feed_tag, 0) + len(tracked.events)
        not_met = [t.plan for t in self.tracked.values() if _not_met(t)]
        stalled = [t.plan for t in self.tracked.values() if t.outcome == "stalled"]
        per_feed = ", ".join(f"{tag} {count}" for tag, count in feeds.items())
        self.say()
        self.say(
            f"Done in {wall_seconds:.1f} s: {len(self.seen)} power events stored ({per_feed}); "
            f"{len(self.tracked)} curtailments: {len(self.tracked) - len(not_met) - len(stalled)} "
            f"met, {len(not_met)} not met, {len(stalled)} stalled. "
            f"Reconcile ran {self.reconciles} times ({self.reconcile_failures} failed)."
        )
        if self.report_path.exists():
            url = self.report_path.resolve().as_uri()
            self.say(f"Report:  {self.report_path} (open it in a browser: {url})")
        else:
            self.say("Report:  not written (see the problems below)")
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
        # shows the simulated end of the day now (the demo's own clock runs 1440x on).
        after_the_day = DevClock(1.0, self.plan.clock.now(), datetime.now(UTC))
        settings = {**self.demo_store.env, "GRIDHOOK_DEV_CLOCK": str(after_the_day)}
        env = " ".join(f"{name}={value}" for name, value in settings.items())
        self.say(f"More:    export {env}")
        self.say("         .venv/bin/gridhook episodes --since 1d")
        self.say(
            "         .venv/bin/gridhook run --function power_report --port 8081"
            "   # the control room on http://localhost:8081/"
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

    def _read_first_line(self, child: ChildProcess) -> str:
        assert child.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            while not selector.select(TICK):
                self.stop.check()
                if child.poll() is not None or time.monotonic() > deadline:
                    return ""
        return child.stdout.readline().decode("utf-8", "replace")

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


def _not_met(tracked: Tracked) -> bool:
    end = tracked.events.get("end_ramp_down")
    return end is not None and end.compliant is False


def _hm(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M")


def _mw(event: StoredEvent) -> str:
    return f"{(event.calculated_w or 0) / 1e6:g}"


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
