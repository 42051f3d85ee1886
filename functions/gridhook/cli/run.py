"""``gridhook run``: a gridhook function under the real functions-framework server, locally.

By default the webhook receiver: with no token configured it creates a development token
in ``var/`` (git-ignored) and prints the webhook URL and a curl line that works as printed.
``--function power_report`` serves the control room, reports and episodes instead.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
from pathlib import Path

from gridhook.settings import DEFAULT_STORE, ConfigError, load_settings

__all__ = ["DEV_TOKEN_PATH", "SEED_TEST_PAYLOAD", "register"]

DEV_TOKEN_PATH = Path("var/dev-webhook-token")
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
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument(
        "--function",
        choices=("receive_power_event", "power_report"),
        default="receive_power_event",
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
    env = dict(os.environ)
    env.setdefault("GRIDHOOK_STORE", DEFAULT_STORE)
    if args.function == "power_report":
        try:
            load_settings(env)
        except ConfigError as exc:
            print(f"gridhook run: {exc}", file=sys.stderr)
            return 2
        print(
            f"gridhook control room on http://localhost:{args.port}/  "
            f"(store: {env['GRIDHOOK_STORE']}, read-only)\n"
            f"Reports: http://localhost:{args.port}/report?since=30d&format=html  "
            f"Episodes: http://localhost:{args.port}/episodes?since=7d\n",
            flush=True,
        )
        return _serve(args, env)
    _ensure_dev_token(env)
    try:
        load_settings(env).require_webhook_auth()
    except ConfigError as exc:
        print(f"gridhook run: {exc}", file=sys.stderr)
        return 2
    url = f"http://localhost:{args.port}/nvgrid/webhook"
    token = _token_expression(env)
    auth = f' \\\n  -H "Authorization: Bearer {token}"' if token else ""
    print(
        f"gridhook receiver on {url}  (store: {env['GRIDHOOK_STORE']})\n"
        f"Send the seed's test event:\n"
        f"  curl -X POST {url}{auth} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{SEED_TEST_PAYLOAD}'\n"
        f"See what arrived:  .venv/bin/gridhook events\n",
        flush=True,
    )
    return _serve(args, env)


def _serve(args: argparse.Namespace, env: dict[str, str]) -> int:
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        "--source",
        str(MAIN_PY),
        "--target",
        args.function,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    # Replace this process, so signals (Ctrl-C) reach the server directly.
    os.execve(sys.executable, argv, env)  # noqa: S606 - argv is ours, no shell
    return 0  # not reached
