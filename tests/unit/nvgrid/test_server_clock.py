"""The server's clock: read from ``x-gridhook-sim-now`` when an answer carries it, local
otherwise, and used by the CLI to resolve ``now`` / ``+5m`` (no DPS needed here)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

import gridhook.nvgrid
from gridhook.cli import nvgrid as cli
from gridhook.nvgrid import ActionResult, Credentials, make_endpoint
from gridhook.nvgrid.client import (
    SERVER_NOW_METADATA_KEY,
    NvGridClient,
    server_now_from_metadata,
)

LOCAL = datetime(2025, 10, 24, 17, tzinfo=UTC)
EIGHT_PM = datetime(2025, 10, 24, 20, tzinfo=UTC)
KEY = SERVER_NOW_METADATA_KEY
SERVER = LOCAL + timedelta(hours=3, seconds=0.25)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([(KEY, "2025-10-24T20:00:00Z")], EIGHT_PM),
        ([(KEY, "2025-10-24T20:00:00.250Z")], SERVER),
        ([("X-GridHook-Sim-Now", b"2025-10-24T20:00:00+00:00")], EIGHT_PM),
        ([(KEY, "2025-10-24T22:00:00+02:00")], EIGHT_PM),
        ([(KEY, "2025-10-24T20:00:00")], EIGHT_PM),  # naive = UTC
        ([("other", "x"), (KEY, "yesterday")], None),
        ([("x-dps-version", "1.2")], None),  # a real DPS: no clock
        ([], None),
        (None, None),
    ],
)
def test_server_now_from_metadata(metadata: Any, expected: datetime | None) -> None:
    assert server_now_from_metadata(metadata) == expected


class FakeCall:
    def __init__(self, metadata: Any) -> None:
        self._metadata = metadata

    def initial_metadata(self) -> Any:
        if isinstance(self._metadata, Exception):
            raise self._metadata
        return self._metadata


@pytest.fixture
def local_clock() -> list[datetime]:
    return [LOCAL]


@pytest.fixture
def client(local_clock: list[datetime]) -> Iterator[NvGridClient]:
    """A client on a channel that is never used (nothing listens there)."""
    endpoint = make_endpoint("127.0.0.1:9", tls="plaintext", environ={})
    with grpc.insecure_channel(endpoint.address) as channel:
        yield NvGridClient(
            endpoint, Credentials("u", "p"), channel=channel, local_clock=lambda: local_clock[0]
        )


def test_without_the_servers_time_the_local_clock_is_used(client, local_clock) -> None:
    assert client.server_clock_offset is None
    assert client.server_now() == LOCAL
    client._note_server_time(FakeCall([("x-dps-version", "1.2")]))
    local_clock[0] += timedelta(seconds=5)
    assert client.server_clock_offset is None and client.server_now() == local_clock[0]


def test_the_last_servers_time_seen_sets_the_offset(client, local_clock) -> None:
    client._note_server_time(FakeCall([(SERVER_NOW_METADATA_KEY, "2025-10-24T20:00:00.250Z")]))
    assert client.server_clock_offset == SERVER - LOCAL
    assert client.server_now() == SERVER
    local_clock[0] += timedelta(seconds=2)  # the estimate moves with the local clock
    assert client.server_now() == SERVER + timedelta(seconds=2)
    # a newer answer replaces it; an unreadable one or a failing call leaves it alone
    client._note_server_time(FakeCall([(SERVER_NOW_METADATA_KEY, "2025-10-24T21:00:02.250Z")]))
    client._note_server_time(FakeCall([(SERVER_NOW_METADATA_KEY, "soon")]))
    client._note_server_time(FakeCall(RuntimeError("call cancelled")))
    assert client.server_clock_offset == timedelta(hours=4, seconds=0.25)


def test_the_key_matches_the_simulators_without_importing_it() -> None:
    from simulator.service import SIM_NOW_METADATA_KEY

    assert SIM_NOW_METADATA_KEY == SERVER_NOW_METADATA_KEY
    # The client is deployable; the simulator is not: no import of it anywhere in the package.
    package = Path(gridhook.nvgrid.__file__).parent
    for source in [*package.glob("*.py"), Path(cli.__file__)]:
        for line in source.read_text().splitlines():
            assert not re.match(r"\s*(from|import)\s+simulator\b", line), (source, line)


# --- the CLI ---------------------------------------------------------------------------------


class FakeClient:
    """Stands in for NvGridClient in the CLI; its server runs three hours ahead of us."""

    def __init__(self) -> None:
        self.syncs = 0
        self.calls: list[tuple[str, Any]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def sync_server_clock(self) -> datetime:
        self.syncs += 1
        return SERVER

    def set_load_target(self, value: Any, unit: str, **kwargs: Any) -> ActionResult:
        self.calls.append(("set_load_target", kwargs))
        return ActionResult("STATUS_CODE_SUCCESS", "scheduled")

    def get_load_schedule(self, start: Any, end: Any, feed_tags: Any) -> list[Any]:
        self.calls.append(("get_load_schedule", {"start_time": start, "end_time": end}))
        return []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(cli, "_client_from_args", lambda args: client)
    return client


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    try:
        code = cli.main(["nvgrid", *argv])
    except SystemExit as exc:  # a flag refused while parsing
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


@pytest.mark.parametrize(
    ("flags", "start", "end"),
    [
        (["--start-time", "now", "--end-time", "+5m"], SERVER, SERVER + timedelta(minutes=5)),
        (["--start-time", "+30s"], SERVER + timedelta(seconds=30), None),
        ([], SERVER, None),  # an omitted start is "now" on the server's clock too
        (["--end-time", "+1h"], SERVER, SERVER + timedelta(hours=1)),
    ],
)
def test_set_load_target_resolves_relative_times_on_the_servers_clock(
    fake: FakeClient, capsys, flags: list[str], start: datetime, end: datetime | None
) -> None:
    code, result, _ = run(capsys, "set-load-target", "--value", "6", *flags)
    assert code == 0 and result["ok"] is True
    assert fake.syncs == 1
    [(_, sent)] = fake.calls
    assert (sent["start_time"], sent["end_time"]) == (start, end)


def test_absolute_times_need_no_clock_call(fake: FakeClient, capsys) -> None:
    code, _, _ = run(
        capsys,
        "set-load-target", "--value", "6",
        "--start-time", "2025-10-24T18:00:00Z", "--end-time", "2025-10-24T19:00:00Z",
    )  # fmt: skip
    assert code == 0 and fake.syncs == 0
    assert fake.calls[0][1]["start_time"] == datetime(2025, 10, 24, 18, tzinfo=UTC)

    code, _, _ = run(capsys, "get-schedule")  # DPS takes its own now for an omitted start
    assert code == 0 and fake.syncs == 0
    assert fake.calls[1][1] == {"start_time": None, "end_time": None}


def test_get_schedule_resolves_relative_times_on_the_servers_clock(fake, capsys) -> None:
    code, _, _ = run(capsys, "get-schedule", "--start-time", "now", "--end-time", "+2h")
    assert code == 0 and fake.syncs == 1
    assert fake.calls[0][1] == {"start_time": SERVER, "end_time": SERVER + timedelta(hours=2)}


def test_a_malformed_time_is_reported_before_any_call(fake, capsys) -> None:
    code, _, err = run(
        capsys, "set-load-target", "--value", "6", "--start-time", "now", "--end-time", "later"
    )
    assert code == cli.EXIT_CONFIG and "--end-time: 'later'" in err
    assert fake.syncs == 0 and fake.calls == []
