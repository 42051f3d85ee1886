"""The ``gridhook`` command: run the receiver locally and look at what it stored.

Each command group lives in its own module with a ``register(subparsers)`` function;
heavy imports (gRPC, Firestore) happen inside the command handlers, so ``--help`` is fast.
Whatever a user types, a refusal is one line on stderr and exit code 2 (``cli.args``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Modules that add command groups, in --help order.
_COMMAND_MODULES = (
    "gridhook.cli.run",
    "gridhook.cli.events",
    "gridhook.cli.quarantine",
    "gridhook.cli.state",
    "gridhook.cli.episodes",
    "gridhook.cli.report",
    "gridhook.cli.settlement",
    "gridhook.cli.sites",
    "gridhook.cli.meter",
    "gridhook.cli.nvgrid",
    "gridhook.cli.subscriptions",
)


def build_parser() -> argparse.ArgumentParser:
    from gridhook.cli.args import Parser

    parser = Parser(
        prog="gridhook",
        description="Receive, store and report DPS NvGrid power-event webhooks.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not an absent command group
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `gridhook events | head`
        return 0
    except CommandError as exc:
        print(f"gridhook {args.command}: {exc}", file=sys.stderr)
        return 2


class CommandError(Exception):
    """A failure the user can fix; printed as one line, exit code 2."""


if __name__ == "__main__":
    sys.exit(main())
