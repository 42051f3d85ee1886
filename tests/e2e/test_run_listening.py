"""Where `gridhook run` listens, and what it does when it cannot (issue 15, items 7 and 8).

The control room (power_report) has no authentication of its own: locally it listens on
127.0.0.1 only unless --host says otherwise. The receiver listens on every interface, since
DPS must reach it, and its banner says so. A port in use is one line and exit code 1, said
before any banner or curl line. Each test runs the real `gridhook` process; "every
interface" is told apart from "loopback only" by connecting to 127.0.0.2, which Linux
routes to the loopback device but a socket bound to 127.0.0.1 does not accept.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gridhook.store import open_store
from tests.harness import free_port, wait_for_port

GRIDHOOK = Path(sys.executable).parent / "gridhook"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="127.0.0.2 is loopback on Linux"
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDHOOK_", "FIRESTORE_"))}
    env.pop("PORT", None)
    env.update(extra)
    return env


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


@contextmanager
def running(argv: list[str], cwd: Path, port: int, **env: str) -> Iterator[list[str]]:
    """`gridhook run …` until it listens; yields its banner (the lines before the server's)."""
    server = subprocess.Popen(
        [str(GRIDHOOK), "run", *argv, "--port", str(port)],
        cwd=cwd,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        banner = []
        while line := server.stdout.readline():  # type: ignore[union-attr]
            if not line.strip():
                break  # the banner ends with an empty line
            banner.append(line.rstrip("\n"))
        wait_for_port(port, 30, proc=server)
        yield banner
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def store_in(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/events.db"
    open_store(url).close()
    return url


def test_the_control_room_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    url = store_in(tmp_path)
    with running(["--function", "power_report"], tmp_path, port, GRIDHOOK_STORE=url) as banner:
        assert reachable("127.0.0.1", port)
        assert not reachable("127.0.0.2", port)
    assert banner[0].startswith(f"gridhook control room on http://127.0.0.1:{port}/")
    assert banner[1].startswith("Listening on 127.0.0.1 only: it has no authentication")


def test_the_receiver_listens_on_every_interface_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    with running([], tmp_path, port, GRIDHOOK_STORE=store_in(tmp_path)) as banner:
        assert reachable("127.0.0.2", port)
    assert banner[1].startswith("Listening on all interfaces (0.0.0.0), so DPS can reach it")


@pytest.mark.parametrize("function", ["receive_power_event", "power_report"])
def test_a_port_in_use_is_one_line_before_any_banner(tmp_path: Path, function: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(GRIDHOOK), "run", "--function", function, "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(GRIDHOOK_STORE=store_in(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # no banner, no curl line
    assert result.stderr == (
        f"gridhook run: port {port} is in use on "
        f"{'0.0.0.0' if function == 'receive_power_event' else '127.0.0.1'}: stop what listens "
        "there, or choose another port with --port (or PORT)\n"
    )
    assert not (tmp_path / "var").exists()  # nothing set up for a server that never started
