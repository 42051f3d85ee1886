"""``make bench``: gridhook against the seed's minimal Flask receiver, same machine, same run.

Figures (each with its baseline, measured in this run, and the ratio):

1. throughput and latency p50/p99, 32 concurrent keep-alive senders in a separate process,
   distinct valid events, under the real functions-framework server (gunicorn gthread,
   1 worker, functions-framework's default 4 threads per CPU) — gridhook on SQLite (on
   disk, ``synchronous=FULL``) and on the Firestore emulator vs the seed receiver served
   by the same server (tests/bench/seed_receiver.py). For information only, gridhook on
   SQLite on tmpfs, where fsync returns at once: what the durability costs.
2. cold start: process spawn → first 200 (for gridhook an ``accepted`` event, read back
   from the store afterwards), median of N; and the import time of functions/main.py in a
   fresh interpreter, median of N.
3. validation µs per valid payload: ``gridhook.schema.violations`` (the schema compiled
   into plain checks, jsonschema only to list violations) vs ``jsonschema.validate`` per
   call; jsonschema's own compiled validator for information.
4. Firestore round trips per new event and per duplicate, counted on the wire through the
   receiver (baseline: a read-then-write transaction, the usual way to insert-if-absent).
5. peak RSS (VmHWM) of the server's worker process under the load of (1).
6. scale (tests/bench/scale.py): reports, ``gridhook episodes --since 7d`` and
   ``gridhook state`` over histories of 100,000 and 1,000,000 events on SQLite (generated
   once, cached under var/bench/) and 10,000 on the Firestore emulator, with the RPCs.
7. fleet (tests/bench/fleet.py): 50 simulated DPS sites x 2 feeds in one process — their
   start, GetStatus across all of them, and a curtailment on all at once (400 webhooks to
   the receiver, each stored exactly once).
8. fleet views (tests/bench/fleet_views.py): the fleet control room and a 30-day fleet
   report over the same 50 sites x 2 feeds, on SQLite (target: the page in 1 s), and the
   fleet page on the Firestore emulator with its RPCs.
9. settlement (tests/bench/settlement.py, settlement_store.py): 60 days of 1-minute samples
   on 2 feeds (≈172k): the pure core (baselines, a 30-day settlement in memory), then
   through the store — rolled up, a 30-day settlement end to end on SQLite (≤ 1 s), and a
   30-day report and interval load on the Firestore emulator (≤ 2 s each, with their RPCs
   and documents).

Sizes come from the options below or GRIDHOOK_BENCH_* environment variables; the default
full run takes about ten minutes on a shared 2-core machine: the scale section about five
and a half of them, most of it loading the Firestore emulator (plus a minute and a half,
once, to generate the SQLite stores). Prints the tables and writes bench-results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.fleet import bench_fleet, fleet_table
from tests.bench.fleet_views import bench_fleet_views, fleet_views_table
from tests.bench.load import AUTH_HEADERS, Request, bench_bodies, bench_payload, send_all
from tests.bench.scale import bench_scale, scale_table
from tests.bench.settlement import bench_settlement, settlement_table
from tests.bench.settlement_store import bench_settlement_store, settlement_store_table
from tests.harness import (
    FUNCTIONS,
    REPO,
    TEST_TOKEN,
    FirestoreEmulator,
    FunctionServer,
    free_port,
)
from tests.harness import stop_process_group as stop_process

SEED_DOC = REPO / "tests" / "fixtures" / "seed-monitoring-power-events.txt"
SEED_SOURCE = Path(__file__).with_name("seed_receiver.py")
MAIN_SOURCE = FUNCTIONS / "main.py"
RESULTS = REPO / "bench-results.json"

SECTIONS = (
    "throughput",
    "cold_start",
    "import",
    "validation",
    "round_trips",
    "reliability",
    "scale",
    "fleet",
    "fleet_views",
    "settlement",
)

TARGETS = {
    "throughput_ratio_sqlite": 0.8,
    "cold_start_ratio": 1.5,
    "import_ms": 300.0,
    "validation_us": 30.0,
    "round_trips": 1,
}


# -- configuration ----------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--requests",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_REQUESTS", 3000),
        help="measured requests per load run (GRIDHOOK_BENCH_REQUESTS, 3000)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_ROUNDS", 3),
        help="load runs per server, interleaved; the median is reported (GRIDHOOK_BENCH_ROUNDS, 3)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_CONCURRENCY", 32),
        help="concurrent senders (GRIDHOOK_BENCH_CONCURRENCY, 32)",
    )
    p.add_argument(
        "--cold-runs",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_COLD_RUNS", 7),
        help="cold starts per receiver (GRIDHOOK_BENCH_COLD_RUNS, 7)",
    )
    p.add_argument(
        "--import-runs",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_IMPORT_RUNS", 10),
        help="fresh interpreters timing the import of main.py (GRIDHOOK_BENCH_IMPORT_RUNS, 10)",
    )
    p.add_argument(
        "--only",
        default=os.environ.get("GRIDHOOK_BENCH_ONLY", ""),
        help=f"comma list of sections: {','.join(SECTIONS)}",
    )
    p.add_argument(
        "--scale-events",
        default=os.environ.get("GRIDHOOK_BENCH_SCALE_EVENTS", "100000,1000000"),
        help="comma list of SQLite history sizes for the scale section "
        "(GRIDHOOK_BENCH_SCALE_EVENTS, 100000,1000000)",
    )
    p.add_argument(
        "--scale-firestore-events",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_SCALE_FIRESTORE_EVENTS", 10000),
        help="history size on the Firestore emulator; 0 skips it "
        "(GRIDHOOK_BENCH_SCALE_FIRESTORE_EVENTS, 10000)",
    )
    p.add_argument(
        "--scale-runs",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_SCALE_RUNS", 5),
        help="measured runs of each scale figure; the median is reported "
        "(GRIDHOOK_BENCH_SCALE_RUNS, 5)",
    )
    p.add_argument(
        "--reliability-requests",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_RELIABILITY_REQUESTS", 10000),
        help="tests/reliability's burst at this size (make test runs 2500); 0 skips it",
    )
    p.add_argument(
        "--receivers",
        default=os.environ.get("GRIDHOOK_BENCH_RECEIVERS", "sqlite,firestore,sqlite_tmpfs"),
        help="gridhook configurations to load (the seed baseline always runs too)",
    )
    p.add_argument(
        "--fleet-sites",
        type=int,
        default=_env_int("GRIDHOOK_BENCH_FLEET_SITES", 50),
        help="simulated DPS sites (2 feeds each) for the fleet section "
        "(GRIDHOOK_BENCH_FLEET_SITES, 50)",
    )
    p.add_argument("--output", type=Path, default=RESULTS)
    return p.parse_args(argv)


# -- the seed baseline --------------------------------------------------------------------


def check_seed_copy() -> str:
    """Fail loudly if seed_receiver.py no longer holds the seed document's code verbatim."""
    if not SEED_DOC.exists():
        return "seed document not found here; using the verbatim copy as is"
    text = SEED_DOC.read_text(encoding="utf-8")
    start = text.index("# Minimal webhook endpoint example (Flask)")
    end = text.index("app.run(host='0.0.0.0', port=8080)", start) + len(
        "app.run(host='0.0.0.0', port=8080)"
    )

    def squash(s: str) -> str:
        return re.sub(r"\s+", " ", s).strip()

    if squash(text[start:end]) not in squash(SEED_SOURCE.read_text(encoding="utf-8")):
        raise SystemExit(f"{SEED_SOURCE} no longer matches the seed's minimal receiver")
    return f"verbatim copy checked against {SEED_DOC.name}"


# -- servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receiver:
    """One receiver configuration under functions-framework."""

    name: str
    label: str
    target: str
    source: Path
    env: Callable[[Path], dict[str, str]]
    baseline: bool = False
    info_only: bool = False


def _gridhook_env(store: str) -> dict[str, str]:
    return {"GRIDHOOK_STORE": store, "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN}


def receivers(emulator: FirestoreEmulator) -> list[Receiver]:
    return [
        Receiver("seed", "seed Flask receiver", "seed_webhook", SEED_SOURCE, lambda d: {}, True),
        Receiver(
            "sqlite",
            "gridhook, SQLite (disk, fsync)",
            "receive_power_event",
            MAIN_SOURCE,
            lambda d: _gridhook_env(f"sqlite:///{d}/events.db"),
        ),
        Receiver(
            "firestore",
            "gridhook, Firestore emulator",
            "receive_power_event",
            MAIN_SOURCE,
            lambda d: {
                **_gridhook_env(f"firestore://bench-{uuid.uuid4().hex[:10]}/gridhook"),
                "FIRESTORE_EMULATOR_HOST": emulator.host,
            },
        ),
        Receiver(
            "sqlite_tmpfs",
            "gridhook, SQLite on tmpfs (no fsync cost; info)",
            "receive_power_event",
            MAIN_SOURCE,
            lambda d: _gridhook_env(f"sqlite:///{d}/events.db"),
            info_only=True,
        ),
    ]


@contextlib.contextmanager
def scratch_dir(tmpfs: bool) -> Iterator[Path]:
    base = "/dev/shm" if tmpfs and Path("/dev/shm").is_dir() else None
    path = Path(tempfile.mkdtemp(prefix="gridhook-bench-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def worker_pid(arbiter: int) -> int:
    """gunicorn's worker: the arbiter's child (the arbiter only supervises)."""
    for _ in range(100):
        children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("gunicorn worker not found")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


# -- 1 + 5: throughput, latency and memory -------------------------------------------------


def load_run(rx: Receiver, args: argparse.Namespace, round_no: int) -> dict[str, Any]:
    with scratch_dir(rx.name == "sqlite_tmpfs") as workdir:
        server = FunctionServer(rx.target, rx.env(workdir), cwd=workdir, source=rx.source)
        server.start()
        try:
            worker = worker_pid(server.pid or 0)
            # Warm-up: lazily built parts (validator, store connections) are not measured.
            warm = [Request(b) for b in bench_bodies(f"warm-{rx.name}-{round_no}", 200)]
            warm_replies = send_all("127.0.0.1", server.port, warm, args.concurrency)
            if any(r.status != 200 for r in warm_replies):
                raise RuntimeError(f"{rx.name}: warm-up failed\n{server.logs()[-2000:]}")
            spec = {
                "host": "127.0.0.1",
                "port": server.port,
                "prefix": f"bench-{rx.name}-{round_no}-{uuid.uuid4().hex[:6]}",
                "count": args.requests,
                "concurrency": args.concurrency,
            }
            # The load generator runs in its own process: its work shares no GIL with ours.
            out = subprocess.run(
                [sys.executable, "-m", "tests.bench.load", json.dumps(spec)],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["peak_rss_mib"] = peak_rss_mib(worker)
            if result["statuses"] != {"200": args.requests}:
                raise RuntimeError(f"{rx.name}: not every answer was 200: {result}")
            return result
        finally:
            server.stop()
            with contextlib.suppress(OSError):
                server.log_path.unlink()


def bench_throughput(rxs: list[Receiver], args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {rx.name: [] for rx in rxs}
    for round_no in range(args.rounds):
        # Rotate the order each round so that no receiver always runs first or last.
        order = rxs[round_no % len(rxs) :] + rxs[: round_no % len(rxs)]
        for rx in order:
            result = load_run(rx, args, round_no)
            runs[rx.name].append(result)
            print(
                f"  round {round_no + 1}/{args.rounds} {rx.label}: "
                f"{result['throughput_rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms, client CPU {result['client_cpu_share']:.2f}",
                flush=True,
            )
    summary: dict[str, Any] = {}
    for name, results in runs.items():
        ranked = sorted(results, key=lambda r: r["throughput_rps"])
        median = ranked[(len(ranked) - 1) // 2]  # the lower median: a real run, not an average
        summary[name] = {
            "throughput_rps": median["throughput_rps"],
            "p50_ms": median["p50_ms"],
            "p99_ms": median["p99_ms"],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "client_cpu_share": median["client_cpu_share"],
            "runs": results,
        }
    return summary


# -- 2: cold start and import time --------------------------------------------------------


COLD_START_LIMIT_S = 60.0  # a server that takes longer is broken, not slow


def cold_start_once(rx: Receiver, emulator: FirestoreEmulator) -> float:
    """Seconds from spawning the server process to its first 200 (an ``accepted`` event)."""
    with scratch_dir(False) as workdir:
        env = {**os.environ, **rx.env(workdir)}
        port = free_port()
        body = json.dumps(bench_payload(f"cold-{uuid.uuid4().hex}", 0)).encode()
        argv = [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(rx.source),
            "--target",
            rx.target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{rx.name} exited with {proc.returncode} at start-up")
                if time.perf_counter() - started > COLD_START_LIMIT_S:
                    raise RuntimeError(f"{rx.name}: no answer {COLD_START_LIMIT_S} s after spawn")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=COLD_START_LIMIT_S)
                try:
                    conn.request("POST", "/nvgrid/webhook", body, AUTH_HEADERS)
                    response = conn.getresponse()
                    reply = response.read()
                except ConnectionRefusedError:
                    time.sleep(0.002)  # not listening yet
                    continue
                finally:
                    conn.close()
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    raise RuntimeError(f"{rx.name}: first answer {response.status} {reply!r}")
                break
        finally:
            stop_process(proc, 10)
        if not rx.baseline:
            answer = json.loads(reply)
            if answer["status"] != "accepted" or not _stored(env["GRIDHOOK_STORE"], answer):
                raise RuntimeError(f"{rx.name}: first 200 was not a stored event: {answer}")
        return elapsed


def _stored(store_url: str, answer: dict[str, Any]) -> bool:
    from gridhook.store import open_store

    store = open_store(store_url, timeout_seconds=10)
    try:
        return store.get_event(answer["event_id"]) is not None
    finally:
        store.close()


def bench_cold_start(rxs: list[Receiver], emulator: FirestoreEmulator, runs: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {rx.name: [] for rx in rxs}
    for _ in range(runs):
        for rx in rxs:  # interleaved, so drifting machine load hits all alike
            samples[rx.name].append(cold_start_once(rx, emulator) * 1000)
    return {
        name: {"median_ms": statistics.median(ms), "runs_ms": [round(m, 1) for m in ms]}
        for name, ms in samples.items()
    }


_IMPORT_PROBE = (
    "import time\nt = time.perf_counter()\nimport {module}\nprint((time.perf_counter() - t) * 1000)"
)


def bench_import(runs: int) -> dict[str, Any]:
    """Import time of functions/main.py (and of the seed module) in fresh interpreters."""
    probes = {
        "main": (FUNCTIONS, "main"),
        "seed": (SEED_SOURCE.parent, "seed_receiver"),
    }
    samples: dict[str, list[float]] = {name: [] for name in probes}
    wall: dict[str, list[float]] = {name: [] for name in probes}
    with scratch_dir(False) as workdir:
        env = {
            **os.environ,
            "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
            "GRIDHOOK_STORE": f"sqlite:///{workdir}/events.db",
        }
        for _ in range(runs):
            for name, (path, module) in probes.items():
                started = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
                    env={**env, "PYTHONPATH": str(path)},
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                wall[name].append((time.perf_counter() - started) * 1000)
                samples[name].append(float(out.stdout.strip().splitlines()[-1]))
    return {
        name: {
            "median_ms": statistics.median(samples[name]),
            "process_median_ms": statistics.median(wall[name]),
            "runs_ms": [round(s, 1) for s in samples[name]],
        }
        for name in probes
    }


# -- 3: validation ------------------------------------------------------------------------


def bench_validation() -> dict[str, Any]:
    import jsonschema

    from gridhook.schema import load_schema, validator, violations

    payloads = [bench_payload("validate", i) for i in range(500)]
    invalid = {**payloads[0], "target_load": {"value": -1, "unit": "terawatt"}}
    schema = load_schema()
    validator()  # compiled once per process, at the first request

    def per_call_us(fn: Callable[[Any], Any], items: list[Any], repeat: int) -> float:
        best = float("inf")
        for _ in range(3):  # best of three: the least disturbed by other processes
            started = time.perf_counter()
            for _ in range(repeat):
                for item in items:
                    fn(item)
            best = min(best, (time.perf_counter() - started) / (repeat * len(items)))
        return best * 1e6

    ours = per_call_us(violations, payloads, 4)
    for p in payloads[:5]:
        assert violations(p) == []  # the bench measures valid payloads
    naive = per_call_us(lambda p: jsonschema.validate(p, schema), payloads[:60], 1)
    return {
        # gridhook.schema.violations: the compiled fast check, jsonschema only on a "no".
        "violations_us": ours,
        "jsonschema_validate_us": naive,
        # For information: jsonschema's own compiled validator, and an invalid payload
        # (fast check, then jsonschema listing every violation).
        "jsonschema_compiled_is_valid_us": per_call_us(validator().is_valid, payloads, 2),
        "violations_invalid_payload_us": per_call_us(violations, [invalid] * 200, 2),
    }


# -- 4: Firestore round trips --------------------------------------------------------------


def bench_round_trips(emulator: FirestoreEmulator, events: int = 20) -> dict[str, Any]:
    import flask
    from google.cloud import firestore

    from gridhook.receiver import Receiver as GridhookReceiver
    from gridhook.settings import Settings
    from tests.harness import counted_firestore_store

    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    store, counter = counted_firestore_store(f"bench-rt-{uuid.uuid4().hex[:8]}")
    client = store._client  # the same counted client, for the baseline transaction
    receiver = GridhookReceiver(Settings(webhook_tokens=(TEST_TOKEN,)), store=store)
    app = flask.Flask(__name__)
    new, dup = [], []
    for i in range(events):
        payload = bench_payload("round-trip", i)
        bodies = [json.dumps(payload), json.dumps(dict(reversed(payload.items())), indent=1)]
        for body, sink, expected in ((bodies[0], new, "accepted"), (bodies[1], dup, "duplicate")):
            with app.test_request_context(
                "/nvgrid/webhook", method="POST", data=body, headers=AUTH_HEADERS
            ):
                before = counter.total()
                response = receiver.handle(flask.request)
                sink.append(counter.total() - before)
                if response.get_json()["status"] != expected:
                    raise RuntimeError(f"round trips: {response.get_json()}")
    methods = dict(counter.calls)

    # Baseline: insert-if-absent the usual way, a transaction that reads, then writes.
    counter.calls.clear()
    base_new, base_dup = [], []

    @firestore.transactional
    def read_then_create(tx: Any, ref: Any, doc: dict[str, Any]) -> bool:
        if ref.get(transaction=tx).exists:
            return False
        tx.create(ref, doc)
        return True

    for i in range(events):
        ref = client.collection("baseline").document(f"e{i}")
        for sink in (base_new, base_dup):
            before = counter.total()
            read_then_create(client.transaction(), ref, {"i": i})
            sink.append(counter.total() - before)
    store.close()
    return {
        "per_new_event": statistics.mean(new),
        "per_duplicate": statistics.mean(dup),
        "max": max(new + dup),
        "methods": methods,
        "baseline_per_new_event": statistics.mean(base_new),
        "baseline_per_duplicate": statistics.mean(base_dup),
        "baseline_methods": dict(counter.calls),
    }


# -- the reliability harness at a larger size -----------------------------------------


RELIABILITY_LIMIT_S = 1800.0


def bench_reliability(requests: int) -> dict[str, Any]:
    """tests/reliability's burst and outage tests, larger than make test runs them."""
    env = {
        **os.environ,
        "GRIDHOOK_RELIABILITY_REQUESTS": str(requests),
        "GRIDHOOK_RELIABILITY_OUTAGE_REQUESTS": str(max(600, requests // 5)),
    }
    started = time.perf_counter()
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.Popen(
        [*argv, "-k", "burst or outage", "tests/reliability"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=RELIABILITY_LIMIT_S)
        passed, lines = proc.returncode == 0, stdout.strip().splitlines()
    except subprocess.TimeoutExpired:
        # SIGINT, not SIGKILL: pytest then tears down its fixtures, so the servers and the
        # emulator it started (each in its own session) are stopped, not orphaned.
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        passed, lines = False, [f"timed out after {RELIABILITY_LIMIT_S:.0f} s"]
    return {
        "requests": requests,
        "outage_requests": int(env["GRIDHOOK_RELIABILITY_OUTAGE_REQUESTS"]),
        "passed": passed,
        "summary": (lines or ["(no output)"])[-1],
        "duration_s": round(time.perf_counter() - started, 1),
    }


# -- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "functions_framework": version("functions-framework"),
        "gunicorn": version("gunicorn"),
        "server": "functions-framework → gunicorn gthread, 1 worker, "
        f"{int(os.environ.get('THREADS', (os.cpu_count() or 1) * 4))} threads",
        "load_average_at_start": os.getloadavg(),
    }


def _ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def table(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []

    def row(
        metric: str, ours: float, base: float | None, unit: str, target: str = "", met: Any = ""
    ) -> None:
        rows.append(
            {
                "metric": metric,
                "gridhook": ours,
                "baseline": base,
                "ratio": None if base is None else _ratio(ours, base),
                "unit": unit,
                "target": target,
                "met": met,
            }
        )

    tp = results.get("throughput")
    if tp:
        seed = tp["seed"]
        for name, label in (
            ("sqlite", "SQLite"),
            ("firestore", "Firestore emu"),
            ("sqlite_tmpfs", "SQLite tmpfs*"),
        ):
            if name not in tp:
                continue
            r = tp[name]
            ratio = _ratio(r["throughput_rps"], seed["throughput_rps"])
            if name == "sqlite":
                target, met = "≥ 0.8x seed", ratio >= TARGETS["throughput_ratio_sqlite"]
            else:
                target, met = "", ""
            row(
                f"throughput {label}",
                r["throughput_rps"],
                seed["throughput_rps"],
                "req/s",
                target,
                met,
            )
            row(f"latency p50 {label}", r["p50_ms"], seed["p50_ms"], "ms")
            row(f"latency p99 {label}", r["p99_ms"], seed["p99_ms"], "ms")
        for name, label in (("sqlite", "SQLite"), ("firestore", "Firestore emu")):
            if name in tp:
                row(f"peak RSS {label}", tp[name]["peak_rss_mib"], seed["peak_rss_mib"], "MiB")
    cs = results.get("cold_start")
    if cs:
        seed_ms = cs["seed"]["median_ms"]
        for name, label in (("sqlite", "SQLite"), ("firestore", "Firestore emu")):
            if name not in cs:
                continue
            ratio = _ratio(cs[name]["median_ms"], seed_ms)
            row(
                f"cold start {label}",
                cs[name]["median_ms"],
                seed_ms,
                "ms",
                "≤ 1.5x seed",
                ratio <= TARGETS["cold_start_ratio"],
            )
    imp = results.get("import")
    if imp:
        ms = imp["main"]["median_ms"]
        row(
            "import main.py",
            ms,
            imp["seed"]["median_ms"],
            "ms",
            "≤ 300 ms",
            ms <= TARGETS["import_ms"],
        )
    val = results.get("validation")
    if val:
        us = val["violations_us"]
        row(
            "validation",
            us,
            val["jsonschema_validate_us"],
            "µs/payload",
            "≤ 30 µs",
            us <= TARGETS["validation_us"],
        )
        row(
            "validation (jsonschema compiled)*",
            val["jsonschema_compiled_is_valid_us"],
            val["jsonschema_validate_us"],
            "µs/payload",
        )
    rt = results.get("round_trips")
    if rt:
        for key, label in (("per_new_event", "new event"), ("per_duplicate", "duplicate")):
            row(
                f"Firestore RPCs / {label}",
                rt[key],
                rt[f"baseline_{key}"],
                "RPCs",
                "= 1",
                rt[key] == TARGETS["round_trips"] and rt["max"] == TARGETS["round_trips"],
            )

    rel = results.get("reliability")
    if rel:
        rows.append(
            {
                "metric": f"reliability {rel['requests']}+{rel['outage_requests']} req",
                "gridhook": rel["summary"].split(" in ")[0],
                "baseline": None,
                "ratio": None,
                "unit": f"{rel['duration_s']:.0f} s",
                "target": "pass",
                "met": rel["passed"],
            }
        )

    def fmt(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float) and 0 < abs(v) < 0.1:
            return f"{v:.4f}"
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"
        return str(v)

    header = ("metric", "gridhook", "baseline", "ratio", "unit", "target", "met")
    lines = [list(header)]
    for r in rows:
        ratio = fmt(r["ratio"]) + ("x" if r["ratio"] is not None else "")
        cells = (r["metric"], fmt(r["gridhook"]), fmt(r["baseline"]), ratio, r["unit"])
        lines.append([*cells, r["target"], fmt(r["met"])])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    out.insert(1, "-" * len(out[0]))
    notes = [
        "baseline: the seed's minimal Flask receiver (tests/bench/seed_receiver.py) under the "
        "same functions-framework server; for round trips, a read-then-create transaction;",
        "for validation, jsonschema.validate(payload, schema) per call.",
        "* information only: SQLite on tmpfs, where fsync returns at once (not durable);",
        "  jsonschema's own compiled validator (what gridhook.schema used before).",
    ]
    return "\n".join([*out, "", *notes]), rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = sections - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    scale_sizes = [int(n) for n in args.scale_events.split(",") if n.strip()]
    started = time.perf_counter()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "requests": args.requests,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "cold_runs": args.cold_runs,
            "import_runs": args.import_runs,
            "scale_events": scale_sizes,
            "scale_firestore_events": args.scale_firestore_events,
            "scale_runs": args.scale_runs,
        },
        "seed": check_seed_copy(),
    }
    print(f"gridhook bench on {results['machine']['cpu']} x {results['machine']['cpus']}")
    emulator = FirestoreEmulator()
    emulator.start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host  # for reading stores back
    try:
        wanted = {"seed", *args.receivers.split(",")}
        rxs = [rx for rx in receivers(emulator) if rx.name in wanted]
        if "validation" in sections:
            print("validation …", flush=True)
            results["validation"] = bench_validation()
        if "import" in sections:
            print("import time …", flush=True)
            results["import"] = bench_import(args.import_runs)
        if "round_trips" in sections:
            print("Firestore round trips …", flush=True)
            results["round_trips"] = bench_round_trips(emulator)
        if "cold_start" in sections:
            print("cold start …", flush=True)
            results["cold_start"] = bench_cold_start(
                [rx for rx in rxs if not rx.info_only], emulator, args.cold_runs
            )
        if "throughput" in sections:
            print(f"throughput: {args.requests} requests x {args.rounds} rounds …", flush=True)
            results["throughput"] = bench_throughput(rxs, args)
        if "reliability" in sections and args.reliability_requests > 0:
            print(f"reliability at {args.reliability_requests} requests …", flush=True)
            results["reliability"] = bench_reliability(args.reliability_requests)
        if "scale" in sections and (scale_sizes or args.scale_firestore_events):
            print("scale …", flush=True)
            results["scale"] = bench_scale(
                scale_sizes,
                args.scale_firestore_events,
                args.scale_runs,
                cli_runs=max(3, args.scale_runs // 2),
                emulator_host=emulator.host,
                emulator_pid=emulator.pid,
            )
        if "fleet" in sections and args.fleet_sites > 0:
            print(f"fleet: {args.fleet_sites} simulated sites …", flush=True)
            results["fleet"] = bench_fleet(args.fleet_sites, runs=args.scale_runs)
        if "fleet_views" in sections and args.fleet_sites > 0:
            print(f"fleet views: {args.fleet_sites} sites …", flush=True)
            results["fleet_views"] = bench_fleet_views(
                args.fleet_sites, runs=args.scale_runs, emulator_host=emulator.host
            )
        if "settlement" in sections:
            print("settlement …", flush=True)
            results["settlement"] = {
                "core": bench_settlement(runs=args.scale_runs, say=lambda s: print(f"  {s}")),
                "store": bench_settlement_store(args.scale_runs, emulator.host),
            }
    finally:
        emulator.stop()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["duration_s"] = round(time.perf_counter() - started, 1)
    text, rows = table(results)
    results["table"] = rows
    if rows:
        print()
        print(text)
    if "scale" in results:
        scale_text, results["scale"]["table"] = scale_table(results["scale"])
        print()
        print(scale_text)
    if "fleet" in results:
        print()
        print(fleet_table(results["fleet"]))
    if "fleet_views" in results:
        print()
        print(fleet_views_table(results["fleet_views"]))
    if "settlement" in results:
        print()
        print(settlement_table(results["settlement"]["core"]))
        print(settlement_store_table(results["settlement"]["store"]))
    print(f"\n{results['duration_s']} s; results in {args.output}")
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
