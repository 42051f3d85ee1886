"""``gridhook nvgrid …``: call DPS NvGrid from the command line, like ``dpsctl nvgrid``.

    gridhook nvgrid --host api.dps --ca-cert-path ca.pem get-status
    gridhook nvgrid set-load-target --value 6.5 --unit mw --start-time +1m --end-time +1h \\
        --feed-tags main_power_feed --correlation-id curtail-1
    gridhook nvgrid register-webhook --url https://hooks.example/nvgrid/webhook \\
        --events start_ramp_down,end_ramp_down

Every ``dpsctl nvgrid`` line NVIDIA documents runs as it is: booleans are Go-style like
dpsctl's (``--best-effort``, ``--best-effort=true``, ``--best-effort=false``), and ``--value=0``
with any unit means the default constraint, as ``--default`` does.

Connection flags may come before or after the command. Unset flags fall back to
``NVGRID_HOST`` / ``NVGRID_PORT`` (default 443) / ``NVGRID_TLS`` / ``NVGRID_CA_CERT``; credentials
to ``NVGRID_USERNAME`` / ``NVGRID_PASSWORD`` or ``NVGRID_CREDENTIALS_FILE``.

Relative times (``now``, ``+30s``, ``+5m``, ``+1h``, ``+1d``) are resolved against DPS's clock when
DPS reports it (the gridhook simulator does, in ``x-gridhook-sim-now`` metadata, learned with one
GetMetadata call first), else against the local clock.

The result is JSON on stdout. A failure is one line on stderr and a non-zero exit code:
2 bad flags/configuration, 3 authentication, 4 DPS unreachable (or TLS), 5 DPS rejected the
request (its JSON answer is still printed on stdout), 1 any other gRPC error.
gRPC is imported only when a command runs, so ``gridhook --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gridhook.log import redact_url

if TYPE_CHECKING:
    from gridhook.nvgrid import NvGridClient

__all__ = ["main", "register"]

EXIT_OK = 0
EXIT_CALL_ERROR = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_UNAVAILABLE = 4
EXIT_REJECTED = 5

# Go's flag package (dpsctl is a Go program) reads --flag, --flag=true and --flag=false,
# with strconv.ParseBool's spellings.
_GO_TRUE = ("true", "True", "TRUE", "t", "T", "1")
_GO_FALSE = ("false", "False", "FALSE", "f", "F", "0")

_RELATIVE_TIME = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd])$")
_SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# --- argument parsing ------------------------------------------------------------------------


class _GoBool(argparse.Action):
    """A boolean flag that also takes ``=true`` / ``=false`` (Go style): the value is read
    from the option string itself, because argparse matches a whole option string such as
    ``--best-effort=false`` before it splits one at ``=``."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        default: Any = None,
        required: bool = False,
        help: str | None = None,
    ) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=default, required=required, help=help
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, (option_string or "").partition("=")[2] not in _GO_FALSE)


def _go_bool(
    parser: argparse._ActionsContainer,
    flag: str,
    *,
    help_: str,
    default: Any = False,
    exclusive: argparse._MutuallyExclusiveGroup | None = None,
) -> None:
    """Add ``flag``, ``flag=true`` and ``flag=false``. In a mutually exclusive group
    (``exclusive``) only the spellings that set it true take part: ``--x=false`` is as if
    the flag were absent."""
    dest = flag.lstrip("-").replace("-", "_")
    target = exclusive or parser
    target.add_argument(
        flag, dest=dest, action=_GoBool, default=default, help=f"{help_} [=true|false]"
    )
    # The spellings with a value, hidden from --help (it would list twelve of them).
    target.add_argument(
        *(f"{flag}={value}" for value in _GO_TRUE),
        dest=dest,
        action=_GoBool,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        *(f"{flag}={value}" for value in _GO_FALSE),
        dest=dest,
        action=_GoBool,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


def _connection_flags() -> argparse.ArgumentParser:
    """Flags shared by the group and each command (SUPPRESS: a later copy must not reset them)."""
    flags = argparse.ArgumentParser(add_help=False)
    conn = flags.add_argument_group("connection (defaults from NVGRID_* variables)")
    conn.add_argument(
        "--host",
        default=argparse.SUPPRESS,
        help="DPS API host, may carry :port (NVGRID_HOST, default localhost)",
    )
    conn.add_argument(
        "--port",
        type=int,
        default=argparse.SUPPRESS,
        help="DPS API port (NVGRID_PORT, default 443)",
    )
    conn.add_argument(
        "--ca-cert-path",
        default=argparse.SUPPRESS,
        help="PEM of the CA that signed DPS's certificate (NVGRID_CA_CERT)",
    )
    mode = conn.add_mutually_exclusive_group()
    _go_bool(
        conn,
        "--insecure",
        default=argparse.SUPPRESS,
        help_="plaintext gRPC, no TLS (NVGRID_TLS=plaintext)",
        exclusive=mode,
    )
    _go_bool(
        conn,
        "--insecure-tls-skip-verify",
        default=argparse.SUPPRESS,
        help_="TLS without checking DPS's certificate, development only (NVGRID_TLS=skip-verify)",
        exclusive=mode,
    )
    conn.add_argument("--username", default=argparse.SUPPRESS, help="DPS user (NVGRID_USERNAME)")
    conn.add_argument(
        "--password",
        default=argparse.SUPPRESS,
        help="DPS password (prefer NVGRID_PASSWORD: command lines are visible to other users)",
    )
    conn.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        help="deadline per RPC in seconds (default 10)",
    )
    return flags


def _list_arg(values: Sequence[str] | None) -> list[str]:
    """``--x a,b --x c`` -> ``['a', 'b', 'c']``."""
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nvgrid`` command group to the ``gridhook`` parser."""
    flags = _connection_flags()
    group = subparsers.add_parser(
        "nvgrid",
        parents=[flags],
        help="call DPS NvGrid (like dpsctl nvgrid)",
        description="Call DPS NvGrid from the command line, like dpsctl nvgrid.",
        epilog="Output is JSON on stdout; errors are one line on stderr with a non-zero exit "
        "code (2 config, 3 auth, 4 unreachable/TLS, 5 rejected by DPS, 1 other).",
    )
    commands = group.add_subparsers(dest="nvgrid_command", metavar="COMMAND", required=True)

    def command(
        name: str, action: Callable[[NvGridClient, argparse.Namespace], Any], help_: str
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[flags], help=help_, description=help_)
        parser.set_defaults(handler=_run, nvgrid_action=action, nvgrid_check=None)
        return parser

    set_target = command(
        "set-load-target", _set_load_target, "schedule a load target (or --default to reset)"
    )
    set_target.add_argument(
        "--value", type=float, help="target load, in --unit; 0 in any unit means --default"
    )
    _go_bool(
        set_target,
        "--default",
        help_="null target: back to the data-center default constraint",
    )
    # Checked here rather than by an argparse group, to say what each flag means.
    set_target.set_defaults(nvgrid_check=lambda args: _check_value_or_default(set_target, args))
    set_target.add_argument(
        "--unit", default="mw", help="w, kw or mw, or watt, kilowatt, megawatt (default mw)"
    )
    _time_flags(set_target, start_help="when it takes effect (default now)")
    set_target.add_argument(
        "--feed-tags", action="append", help="feeds it applies to, comma-separated (default all)"
    )
    set_target.add_argument("--correlation-id", default="", help="id tying its events together")
    _go_bool(set_target, "--best-effort", help_="strategy: best effort (not enforced)")

    schedule = command("get-schedule", _get_schedule, "the effective load-target schedule")
    _time_flags(schedule, start_help="from (default now)")
    schedule.add_argument("--feed-tags", action="append", help="only these feeds, comma-separated")

    command("get-current", _get_current, "the load target in effect now, per feed")
    command("get-metadata", _get_metadata, "every feed and its caps / default constraint")
    command("get-status", _get_status, "current target and calculated load, per feed")

    register_hook = command(
        "register-webhook", _register_webhook, "subscribe a URL to power events"
    )
    register_hook.add_argument("--url", required=True, help="where DPS POSTs the events")
    register_hook.add_argument(
        "--events",
        action="append",
        help="start_ramp_up,end_ramp_up,start_ramp_down,end_ramp_down (default all)",
    )
    unregister_hook = command(
        "unregister-webhook", _unregister_webhook, "remove a URL's subscription"
    )
    unregister_hook.add_argument("--url", required=True, help="the registered URL")


def _time_flags(parser: argparse.ArgumentParser, *, start_help: str) -> None:
    time_help = "RFC 3339 (2025-10-24T17:00:00Z), 'now', or relative '+30s', '+5m', '+1h', '+1d'"
    parser.add_argument("--start-time", help=f"{start_help}; {time_help}")
    parser.add_argument("--end-time", help=f"(default open-ended); {time_help}")


def parse_time(raw: str | None, *, flag: str, now: datetime | None = None) -> datetime | None:
    """``--start-time`` / ``--end-time`` values; naive times are UTC."""
    from gridhook.nvgrid.errors import NvGridConfigError

    if raw is None:
        return None
    now = now or datetime.now(UTC)
    text = raw.strip()
    if text.lower() == "now":
        return now
    relative = _RELATIVE_TIME.match(text)
    if relative:
        amount, unit = relative.groups()
        try:
            return now + timedelta(seconds=float(amount) * _SECONDS_PER[unit])
        except OverflowError:
            raise NvGridConfigError(f"{flag} {raw!r} is too far in the future") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise NvGridConfigError(
            f"{flag} {raw!r} is not a time: use RFC 3339 (2025-10-24T17:00:00Z), 'now' or '+5m'"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def is_relative_time(raw: str | None) -> bool:
    """True for the values resolved against a clock: ``now`` and ``+5m``-style offsets."""
    if raw is None:
        return False
    text = raw.strip()
    return text.lower() == "now" or _RELATIVE_TIME.match(text) is not None


# --- commands --------------------------------------------------------------------------------


def _resolve_times(
    client: NvGridClient, start: str | None, end: str | None
) -> tuple[datetime | None, datetime | None]:
    """``--start-time`` / ``--end-time`` as datetimes. Relative ones are resolved against DPS's
    clock when it tells us (the simulator does, and may run faster than real time), else
    against ours; learning it costs one cheap call, made only when a relative time is given.
    Malformed values are reported before anything is sent."""
    parse_time(start, flag="--start-time")
    parse_time(end, flag="--end-time")
    now = None
    if is_relative_time(start) or is_relative_time(end):
        now = client.sync_server_clock()
    return (
        parse_time(start, flag="--start-time", now=now),
        parse_time(end, flag="--end-time", now=now),
    )


def _check_value_or_default(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.default and args.value is not None:
        parser.error(
            "--default and --value are mutually exclusive: --default (or --value=0) resets to "
            "the default constraint, --value=N sets a limit of N --unit"
        )
    if not args.default and args.value is None:
        parser.error(
            "give --value=N (with --unit) for a limit, or --default to reset to the default "
            "constraint"
        )


def _set_load_target(client: NvGridClient, args: argparse.Namespace) -> Any:
    # An omitted --start-time means "now", resolved like an explicit one.
    start_time, end_time = _resolve_times(client, args.start_time or "now", args.end_time)
    # DPS: "--value=0 with any unit also sets the default constraint", as a null target does.
    return client.set_load_target(
        None if args.default or args.value == 0 else args.value,
        args.unit,
        start_time=start_time,
        end_time=end_time,
        feed_tags=_list_arg(args.feed_tags),
        correlation_id=args.correlation_id,
        best_effort=args.best_effort,
    )


def _get_schedule(client: NvGridClient, args: argparse.Namespace) -> Any:
    # An omitted --start-time is left to DPS, which takes its own now.
    start_time, end_time = _resolve_times(client, args.start_time, args.end_time)
    targets = client.get_load_schedule(start_time, end_time, _list_arg(args.feed_tags))
    return {"load_targets": targets}


def _get_current(client: NvGridClient, args: argparse.Namespace) -> Any:
    return {"load_targets": client.get_current_load_target()}


def _get_metadata(client: NvGridClient, args: argparse.Namespace) -> Any:
    return {"metadata": client.get_metadata()}


def _get_status(client: NvGridClient, args: argparse.Namespace) -> Any:
    return {"statuses": client.get_status()}


def _register_webhook(client: NvGridClient, args: argparse.Namespace) -> Any:
    events = _list_arg(args.events)
    result = client.register_webhook(args.url, events)
    # The URL may carry the webhook token: output can end up in logs, so it is redacted.
    return {"url": redact_url(args.url), "events": events or "all", "result": result}


def _unregister_webhook(client: NvGridClient, args: argparse.Namespace) -> Any:
    return {"url": redact_url(args.url), "result": client.unregister_webhook(args.url)}


# --- running ---------------------------------------------------------------------------------


def _client_from_args(args: argparse.Namespace) -> NvGridClient:
    from gridhook.nvgrid import CallPolicy, NvGridClient, credentials_from_env, make_endpoint

    if getattr(args, "insecure", False):
        tls = "plaintext"
    elif getattr(args, "insecure_tls_skip_verify", False):
        tls = "skip-verify"
    else:
        tls = None  # NVGRID_TLS, default verify
    timeout = getattr(args, "timeout", None)
    policy = None
    if timeout is not None:
        # Room for the retries of a slow call, never less than the default overall budget.
        policy = CallPolicy(call_timeout=timeout, overall_timeout=max(30.0, 3 * timeout))
    endpoint = make_endpoint(
        getattr(args, "host", None),
        port=getattr(args, "port", None),
        tls=tls,
        ca_cert_path=getattr(args, "ca_cert_path", None),
        policy=policy,
    )
    credentials = credentials_from_env(
        username=getattr(args, "username", None), password=getattr(args, "password", None)
    )
    return NvGridClient(endpoint, credentials)


def _print_json(value: Any) -> None:
    from gridhook.nvgrid.models import to_jsonable

    json.dump(to_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"gridhook nvgrid {args.nvgrid_command}: error: {message}", file=sys.stderr)
    return code


def _quiet_grpc_core() -> None:
    """Keep stderr to our one line: gRPC's C core logs e.g. TLS handshake failures itself, and
    retries are logged as warnings (both are in the error message anyway)."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # read when grpc is first imported
    retries = logging.getLogger("gridhook.nvgrid")
    if not retries.handlers and not logging.getLogger().handlers:
        retries.addHandler(logging.NullHandler())
        retries.propagate = False


def _run(args: argparse.Namespace) -> int:
    """Run one nvgrid command; map each failure to one stderr line and its exit code."""
    _quiet_grpc_core()
    from gridhook.nvgrid.errors import (
        NvGridAuthError,
        NvGridConfigError,
        NvGridError,
        NvGridRejected,
        NvGridUnavailable,
    )
    from gridhook.nvgrid.models import ActionResult

    if args.nvgrid_check is not None:
        args.nvgrid_check(args)  # flag combinations argparse cannot check: before connecting
    try:
        with _client_from_args(args) as client:
            result = args.nvgrid_action(client, args)
    except NvGridConfigError as exc:
        return _fail(args, str(exc), EXIT_CONFIG)
    except NvGridAuthError as exc:
        return _fail(args, str(exc), EXIT_AUTH)
    except NvGridUnavailable as exc:
        return _fail(args, str(exc), EXIT_UNAVAILABLE)
    except NvGridRejected as exc:
        # Scripts still get DPS's answer (diag_msg and per-target details) as JSON.
        _print_json(ActionResult("STATUS_CODE_ERROR", exc.diag_msg, exc.details))
        return _fail(args, str(exc), EXIT_REJECTED)
    except NvGridError as exc:
        return _fail(args, str(exc), EXIT_CALL_ERROR)
    _print_json(result)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``gridhook nvgrid …`` on its own (for tests and ``python -m gridhook.cli.nvgrid``)."""
    parser = argparse.ArgumentParser(prog="gridhook")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
