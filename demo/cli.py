"""`python -m demo` (what `make demo` runs): flags, then the run, with its exit codes —
0 done, 1 something failed (the message says what), 2 bad flags, 128 + the signal on Ctrl-C,
SIGTERM or SIGHUP (after stopping everything it started).

    python -m demo [--speed 1440] [--startup-seconds 3] [--var-dir var]

The store is SQLite in var/demo/, or the one GRIDHOOK_STORE names: SQLite, or Firestore
through the emulator at FIRESTORE_EMULATOR_HOST (started by the demo if none runs there).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from demo.driver import DEFAULT_SPEED, Demo, Options
from demo.errors import DemoError
from demo.stop import Interrupted, StopFlag

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="A simulated day of curtailments on two sites in two time zones through "
        "gridhook, after importing 45 days of their meter history, in about a minute and a half. "
        "It plays into GRIDHOOK_STORE if set (sqlite:///PATH, or firestore://PROJECT/DATABASE "
        "with FIRESTORE_EMULATOR_HOST: the emulator is started if none runs there), else into "
        "a new SQLite store in VAR_DIR/demo/.",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help="simulated seconds per real second (default %(default)g: a day a minute)",
    )
    parser.add_argument(
        "--startup-seconds",
        type=float,
        default=Options.startup_seconds,
        help="real seconds allowed for starting the processes before the day begins "
        "(default %(default)g)",
    )
    parser.add_argument(
        "--var-dir", type=Path, default=Path("var"), help="where demo/ and report.html go"
    )
    parser.add_argument("--receiver-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--sim-port", type=int, default=0, help="default: a free port")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.speed <= 1_000_000 or args.startup_seconds < 0:
        build_parser().error("--speed must be 1 to 1000000 and --startup-seconds at least 0")
    options = Options(
        args.speed, args.startup_seconds, args.var_dir, args.receiver_port, args.sim_port
    )
    with StopFlag().installed() as stop:
        try:
            return Demo(options, stop).run()
        except Interrupted as interrupted:
            print(
                f"\ngridhook demo: interrupted ({interrupted}); stopped everything it started",
                file=sys.stderr,
                flush=True,
            )
            return 128 + interrupted.signum
        except DemoError as error:
            print(f"gridhook demo: FAILED: {error}", file=sys.stderr, flush=True)
            return 1
