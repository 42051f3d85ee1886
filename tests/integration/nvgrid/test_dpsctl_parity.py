"""Every `dpsctl nvgrid` line NVIDIA documents runs verbatim as `gridhook nvgrid …` against the
simulator (connection flags aside; `...` = any RFC 3339 time, replaced by real ones)."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.cli.nvgrid import main
from gridhook.nvgrid.client import NvGridClient
from simulator import Simulator, load_feeds

REPO_ROOT = Path(__file__).resolve().parents[3]
# A verbatim copy of the documented lines, so this test never skips; the first test keeps
# it equal to the reference in ../shared/reference wherever that is present.
EXAMPLES = REPO_ROOT / "tests" / "fixtures" / "dpsctl-nvgrid-examples.txt"
# shared/ sits beside the clone (CI), or one level up from a worktree.
REFERENCES = [base / "shared" / "reference" / "nvgrid-api.md" for base in REPO_ROOT.parents[:2]]
MW = 1e6


def documented_lines() -> list[str]:
    return EXAMPLES.read_text(encoding="utf-8").splitlines()


def test_examples_are_the_documented_lines_verbatim() -> None:
    found = [path for path in REFERENCES if path.is_file()]
    if not found:
        pytest.skip(f"no reference at {REFERENCES[0]} to compare with")
    reference, in_code = [], False
    for line in found[0].read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("dpsctl nvgrid "):
            reference.append(line)
    assert documented_lines() == reference


@pytest.fixture
def sim(make_sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """The simulator with a feeds config that has the third example's feeds, and credentials
    in NVGRID_* as a dpsctl user would have them."""
    feeds = tmp_path / "feeds.json"
    feeds.write_text(
        json.dumps(
            {
                "feeds": [
                    {"tag": "main_power_feed", "min_cap": 2, "max_cap": 12,
                     "default_constraint": 10, "unit": "mw"},
                    {"tag": "feed-a1", "min_cap": 1, "max_cap": 8,
                     "default_constraint": 7, "unit": "mw"},
                    {"tag": "feed-a2", "min_cap": 1, "max_cap": 8,
                     "default_constraint": 6, "unit": "megawatt"},
                ]
            }
        )
    )  # fmt: skip
    monkeypatch.setenv("NVGRID_USERNAME", "admin")
    monkeypatch.setenv("NVGRID_PASSWORD", "password")
    return make_sim(feeds=load_feeds(feeds))


def as_gridhook(line: str, times: list[str]) -> list[str]:
    """``dpsctl nvgrid ARGS`` -> the argv of ``gridhook nvgrid ARGS``, each ``...`` a real time."""
    argv = shlex.split(line)
    assert argv[:2] == ["dpsctl", "nvgrid"]
    out = []
    for arg in argv[2:]:
        flag, eq, value = arg.partition("=")
        out.append(f"{flag}={times.pop(0)}" if eq and value == "..." else arg)
    return out


def test_every_documented_line_runs(sim: Simulator, capsys) -> None:
    connection = ["--host", sim.address, "--ca-cert-path", str(sim.ca_cert_path)]
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    times = [(base + timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in range(6)]
    answers = []
    for line in documented_lines():
        before = len(sim.schedule_targets())
        code = main(["nvgrid", *as_gridhook(line, times), *connection])
        out, err = capsys.readouterr()
        assert code == 0, f"{line}\n{err}"
        answers.append((line, json.loads(out), sim.schedule_targets()[before:]))
    assert times == [], "every ... was replaced"

    def added(index: int):
        line, answer, new = answers[index]
        assert answer["ok"] is True, line
        [target] = new
        return target

    first = added(0)
    assert (first.value_watts, first.requested_value, first.best_effort) == (6 * MW, 6.0, True)
    assert first.start == datetime(2025, 10, 24, 15, tzinfo=UTC) and first.feed_tags == ()

    second = added(1)
    assert (second.value_watts, second.correlation_id, second.best_effort) == (
        5 * MW, "curtailment-001", True,
    )  # fmt: skip

    third = added(2)
    assert (third.value_watts, third.feed_tags, third.best_effort) == (
        4.5 * MW, ("feed-a1", "feed-a2"), False,
    )  # fmt: skip

    # --default, --value=0 --unit=watt and a bare --default: each a null target.
    for index in (3, 4, 5):
        target = added(index)
        assert target.value_watts is None and target.requested_value is None, answers[index][0]
    assert added(3).end == datetime(2025, 10, 24, 20, tzinfo=UTC)
    assert added(5).end is None

    line, schedule, new = answers[6]
    assert new == []
    assert [(t["start_time"], t["end_time"], t["target_load"], t["best_effort"])
            for t in schedule["load_targets"]] == [
        ("2025-10-24T15:00:00Z", "2025-10-24T16:00:00Z", {"value": 6.0, "unit": "mw"}, True)
    ] * 3  # one per feed  # fmt: skip


@pytest.mark.parametrize(
    "flags, best_effort",
    [([], False), (["--best-effort"], True), (["--best-effort=true"], True),
     (["--best-effort=false"], False), (["--best-effort=1"], True),
     (["--best-effort", "--best-effort=false"], False)],
)  # fmt: skip
def test_booleans_take_go_style_values(sim: Simulator, capsys, flags, best_effort) -> None:
    connection = ["--host", sim.address, "--ca-cert-path", str(sim.ca_cert_path)]
    code = main(["nvgrid", "set-load-target", "--value=5", *flags, *connection])
    assert code == 0, capsys.readouterr().err
    assert sim.schedule_targets()[-1].best_effort is best_effort


def test_connection_booleans_take_go_style_values(make_sim, capsys, monkeypatch) -> None:
    sim = make_sim(insecure=True)
    monkeypatch.setenv("NVGRID_USERNAME", "admin")
    monkeypatch.setenv("NVGRID_PASSWORD", "password")
    plaintext = ["--host", "127.0.0.1", "--port", str(sim.port)]
    assert main(["nvgrid", "--insecure=true", "get-status", *plaintext]) == 0
    capsys.readouterr()
    # --insecure=false is TLS (verified), which a plaintext server cannot speak.
    code = main(["nvgrid", "get-status", "--insecure=false", "--timeout", "1", *plaintext])
    assert code == 4, capsys.readouterr()


def test_value_zero_in_any_unit_is_the_default_in_the_simulator(sim: Simulator, admin) -> None:
    """The RPC itself, not the CLI (which sends --value=0 as a null target): a zero value in
    any unit is scheduled exactly as a null target, not as 0 W below the feeds' caps."""
    from gridhook.nvgrid import make_endpoint

    endpoint = make_endpoint(sim.address, tls="verify", ca_cert_path=sim.ca_cert_path, environ={})
    with NvGridClient(endpoint, admin) as client:
        for unit in ("watt", "kw", "megawatt"):
            result = client.set_load_target(0, unit, feed_tags=["feed-a1"])
            assert result.ok, result
            target = sim.schedule_targets()[-1]
            assert (target.value_watts, target.requested_value) == (None, None)
        current = client.get_current_load_target()["feed-a1"]
        assert current.target_load is None
        # A non-zero value below the caps is still refused.
        from gridhook.nvgrid.errors import NvGridRejected

        with pytest.raises(NvGridRejected, match="outside feed feed-a1 caps"):
            client.set_load_target(1, "watt", feed_tags=["feed-a1"])


def test_default_and_value_are_mutually_exclusive_with_a_clear_message(capsys) -> None:
    for argv in (["--value=5", "--default"], ["--default=true", "--value", "5"]):
        with pytest.raises(SystemExit) as exit_:
            main(["nvgrid", "set-load-target", *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "--default and --value are mutually exclusive" in err
        assert "--value=0" in err  # says how the default can also be asked for
    with pytest.raises(SystemExit):
        main(["nvgrid", "set-load-target", "--default=false"])  # neither, in effect
    assert "give --value=N" in capsys.readouterr().err
