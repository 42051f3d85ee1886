"""``gridhook run``: a gridhook function under the real functions-framework server, locally.

By default the webhook receiver: with no token configured it creates a development token
in ``var/`` (git-ignored) and prints the webhook URL and a curl line that works as printed.
With sites settings (GRIDHOOK_SITES_FILE / GRIDHOOK_SITES) it checks each site's token file
and prints each site's webhook URL and a curl line for the first.
It listens on all interfaces, because DPS must reach it (every request needs the token).
``--function power_report`` serves the control room, reports and episodes instead, on
127.0.0.1 only: it has no authentication of its own (in the cloud, IAM guards it), so
sharing it (``--host 0.0.0.0``) is a choice to make knowingly.

The port is checked before anything is printed: a port in use is one line and exit code 1.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shlex
import socket
import sys
from pathlib import Path

from gridhook.cli import args as arg
from gridhook.settings import DEFAULT_STORE, ConfigError, Settings, load_settings

__all__ = ["DEV_TOKEN_PATH", "SEED_TEST_PAYLOAD", "register"]

DEV_TOKEN_PATH = Path("var/dev-webhook-token")
FUNCTIONS = ("receive_power_event", "power_report")
#: Where each function listens unless --host says otherwise: DPS must reach the receiver;
#: the control room has no authentication of its own.
DEFAULT_HOSTS = {"receive_power_event": "0.0.0.0", "power_report": "127.0.0.1"}
EXIT_CANNOT_LISTEN = 1
_ALL_INTERFACES = ("0.0.0.0", "::", "")
MAIN_PY = Path(__file__).resolve().parents[2] / "main.py"

# The seed document's own curl test payload (it has no feed_tag).
SEED_TEST_PAYLOAD = (
    '{"event": "start_ramp_down", "start_time": "2025-10-24T17:00:00Z", '
    '"end_time": "2025-10-24T18:00:00Z", "strategy": "best_effort", '
    '"target_load": {"value": 6.5, "unit": "mw"}, '
    '"prev_target_load": {"value": 10.0, "unit": "mw"}, '
    '"calculated_load": {"value": 9.8, "unit": "mw"}, '
    '"compliant": false, "correlation_id": "test-001"}'
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="serve the webhook receiver locally (functions-framework, SQLite by default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=arg.port,
        action=arg.Once,
        default=os.environ.get("PORT", "8080"),  # a string: argparse checks it like --port
        help="port to listen on (default: $PORT, else 8080)",
    )
    parser.add_argument(
        "--host",
        action=arg.Once,
        help="address to listen on (default: 0.0.0.0, all interfaces, for the receiver, which "
        "DPS must reach; 127.0.0.1 for power_report, which has no authentication of its own)",
    )
    parser.add_argument(
        "--function",
        type=arg.choice("function", FUNCTIONS),
        action=arg.Once,
        default="receive_power_event",
        metavar="{" + ",".join(FUNCTIONS) + "}",
        help="which function to serve: the webhook receiver (default) or the control room "
        "and reports (read-only)",
    )
    parser.set_defaults(handler=_run)


def _ensure_dev_token(env: dict[str, str]) -> str | None:
    """Point the receiver at a development token file unless tokens are configured."""
    configured = env.get("GRIDHOOK_WEBHOOK_TOKENS") or env.get("GRIDHOOK_WEBHOOK_TOKENS_FILE")
    if configured or env.get("GRIDHOOK_ALLOW_UNAUTHENTICATED", "").lower() in ("1", "true"):
        return None
    if not DEV_TOKEN_PATH.exists():
        DEV_TOKEN_PATH.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(DEV_TOKEN_PATH, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    env["GRIDHOOK_WEBHOOK_TOKENS_FILE"] = str(DEV_TOKEN_PATH)
    return str(DEV_TOKEN_PATH)


def _token_expression(env: dict[str, str]) -> str | None:
    """A shell expression that yields the current token, so the secret is never printed."""
    if env.get("GRIDHOOK_WEBHOOK_TOKENS_FILE"):
        path = shlex.quote(env["GRIDHOOK_WEBHOOK_TOKENS_FILE"])
        return f"$(head -n1 {path} | cut -d, -f1)"
    if env.get("GRIDHOOK_WEBHOOK_TOKENS"):
        return "${GRIDHOOK_WEBHOOK_TOKENS%%,*}"
    return None


def _run(args: argparse.Namespace) -> int:
    host = DEFAULT_HOSTS[args.function] if args.host is None else args.host
    problem = _cannot_listen(host, args.port)
    if problem is not None:
        message, code = problem
        print(f"gridhook run: {message}", file=sys.stderr)
        return code
    env = dict(os.environ)
    env.setdefault("GRIDHOOK_STORE", DEFAULT_STORE)
    base = f"http://{_url_host(host)}:{args.port}"
    if args.function == "power_report":
        try:
            load_settings(env)
        except ConfigError as exc:
            print(f"gridhook run: {exc}", file=sys.stderr)
            return 2
        reach = (
            f"Listening on all interfaces ({host or '0.0.0.0'}): anyone who can reach this "
            "machine can read it (it has no authentication of its own)"
            if host in _ALL_INTERFACES
            else f"Listening on {host} only: it has no authentication of its own (in the cloud, "
            "IAM guards it); --host 0.0.0.0 shares it with your network"
        )
        print(
            f"gridhook control room on {base}/  "
            f"(store: {env['GRIDHOOK_STORE']}, read-only)\n"
            f"{reach}\n"
            f"Reports: {base}/report?since=30d&format=html  "
            f"Episodes: {base}/episodes?since=7d\n",
            flush=True,
        )
        return _serve(args, host, env)
    reach = (
        f"Listening on all interfaces ({host or '0.0.0.0'}), so DPS can reach it"
        if host in _ALL_INTERFACES
        else f"Listening on {host} only: DPS must be able to reach that address"
    )
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"gridhook run: {exc}", file=sys.stderr)
        return 2
    if not settings.sites.legacy:
        return _run_sites(args, host, env, settings, base, reach)
    _ensure_dev_token(env)
    try:
        load_settings(env).require_webhook_auth()
    except ConfigError as exc:
        print(f"gridhook run: {exc}", file=sys.stderr)
        return 2
    url = f"{base}/nvgrid/webhook"
    token = _token_expression(env)
    auth = f' \\\n  -H "Authorization: Bearer {token}"' if token else ""
    guard = "every request needs the webhook token" if token else "no token is required"
    print(
        f"gridhook receiver on {url}  (store: {env['GRIDHOOK_STORE']})\n"
        f"{reach}; {guard}\n"
        f"Send the seed's test event:\n"
        f"  curl -X POST {url}{auth} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{SEED_TEST_PAYLOAD}'\n"
        f"See what arrived:  .venv/bin/gridhook events\n",
        flush=True,
    )
    return _serve(args, host, env)


def _run_sites(
    args: argparse.Namespace,
    host: str,
    env: dict[str, str],
    settings: Settings,
    base: str,
    reach: str,
) -> int:
    """The receiver of several sites: each site's token file checked, each site's URL shown."""
    from gridhook.receiver import site_verifiers

    try:
        verifiers = site_verifiers(settings)
    except ConfigError as exc:
        print(f"gridhook run: {exc}", file=sys.stderr)
        return 2
    width = max(len(site.name) for site in settings.sites)
    lines = []
    for site in settings.sites:
        guard = "its token" if verifiers[site.name].enabled else "no token"
        lines.append(f"  {site.name:<{width}}  {base}{site.webhook_path}  ({guard})")
    first = settings.sites.sites[0]
    auth = ""
    if verifiers[first.name].enabled and first.webhook_tokens_file:
        token = f"$(head -n1 {shlex.quote(first.webhook_tokens_file)} | cut -d, -f1)"
        auth = f' \\\n  -H "Authorization: Bearer {token}"'
    print(
        f"gridhook receiver for {len(settings.sites)} site(s) (store: {env['GRIDHOOK_STORE']}; "
        f"{settings.sites.source})\n"
        f"{reach}; each site's deliveries need that site's token\n"
        + "\n".join(lines)
        + f"\nSend the seed's test event to {first.name}:\n"
        f"  curl -X POST {base}{first.webhook_path}{auth} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{SEED_TEST_PAYLOAD}'\n",
        flush=True,
    )
    return _serve(args, host, env)


def _url_host(host: str) -> str:
    if host in _ALL_INTERFACES:
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _cannot_listen(host: str, port: int) -> tuple[str, int] | None:
    """Why the server could not listen on host:port (message, exit code), or None.

    Binds and closes a probe socket the way the server will bind (SO_REUSEADDR, so a port in
    TIME_WAIT is free and one with a listener is not), so a busy port is said in one line
    before any banner, not in a server traceback after it.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return f"--host: cannot listen on {host[:80]!r}: {exc.strerror}", 2
    except (UnicodeError, ValueError):  # a name too long for DNS, or with a NUL in it
        return f"--host: {host[:80]!r} is not an address or host name", 2
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} is in use on {host or '0.0.0.0'}: stop what listens there, "
                    "or choose another port with --port (or PORT)",
                    EXIT_CANNOT_LISTEN,
                )
            return f"cannot listen on {host} port {port}: {exc.strerror}", EXIT_CANNOT_LISTEN
    return None


def _serve(args: argparse.Namespace, host: str, env: dict[str, str]) -> int:
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        "--source",
        str(MAIN_PY),
        "--target",
        args.function,
        "--host",
        host,
        "--port",
        str(args.port),
    ]
    # Replace this process, so signals (Ctrl-C) reach the server directly.
    os.execve(sys.executable, argv, env)  # noqa: S606 - argv is ours, no shell
    return 0  # not reached
