"""No command-line input makes ``gridhook`` print a traceback (issue 15, item 9).

Every command's numeric, time and choice arguments are fed a hostile value: each answer is
exit code 2 and one line on stderr, ``gridhook COMMAND: --flag: what is wrong``, naming the
argument, with nothing on stdout. The commands run in-process on a real (empty) SQLite
store, so an exception that escaped would fail the test with its traceback.
"""

from __future__ import annotations

import argparse
import os

import pytest

from gridhook.cli import build_parser, main
from gridhook.store import open_store

INT64_PLUS_ONE = "9223372036854775808"  # 2**63: past what islice and SQLite take

CASES: list[tuple[list[str], str]] = [
    # events (also its --follow)
    (["events", "--limit", INT64_PLUS_ONE], "--limit"),
    (["events", "-f", "--limit", INT64_PLUS_ONE], "--limit"),
    (["events", "--limit", "-1"], "--limit"),
    (["events", "--limit", "ten"], "--limit"),
    (["events", "-f", "--interval", "nan"], "--interval"),
    (["events", "-f", "--interval", "1e309"], "--interval"),
    (["events", "-f", "--interval", "0"], "--interval"),
    (["events", "--since", "9999999d"], "--since"),
    (["events", "--until", "0001-01-01T00:00:00+01:00"], "--until"),
    (["events", "--since", "9999-12-31T23:59:59-01:00"], "--since"),
    (["events", "--since", "1d", "--since", "2d"], "--since"),
    (["events", "--correlation-id", ""], "--correlation-id"),
    (["events", "--feed", "a\x1b[2Jb"], "--feed"),
    (["events", "--format", "xml"], "--format"),
    # quarantine
    (["quarantine", "list", "--limit", INT64_PLUS_ONE], "--limit"),
    (["quarantine", "list", "--format", "yaml"], "--format"),
    (["quarantine", "show", "e6"], "ID"),
    (["quarantine", "replay", "e6"], "ID"),
    # state
    (["state", "--format", "yaml"], "--format"),
    # episodes
    (["episodes", "--status", "late"], "--status"),
    (["episodes", "--since", "401d"], "--since"),
    (["episodes", "--since", "1d", "--until", "2099-01-01T00:00:00Z"], "--until"),
    (["episodes", "--until", "9999-12-31T23:59:59-01:00"], "--until"),
    (["episodes", "--correlation-id", ""], "--correlation-id"),
    (["episodes", "--format", "xml"], "--format"),
    # samples
    (["samples", "--since", "0001-01-01T00:00:00+01:00"], "--since"),
    (["samples", "--since", "1h", "--until", "2h"], "--until"),
    (["samples", "--format", "xml"], "--format"),
    (["samples", "rollup", "--since", "0001-01-01T00:00:00+01:00"], "--since"),
    (["samples", "rollup", "--since", "1d", "--since", "2d"], "--since"),
    (["samples", "rollup", "--since", "1h", "--until", "2h"], "--until"),
    (["samples", "rollup", "--site", "Not A Site"], "--site"),
    (["samples", "rollup", "--format", "csv"], "--format"),
    # meter
    (["meter", "import", "m.csv", "--feed", ""], "--feed"),
    (["meter", "import", "m.csv", "--feed", "a\x1b[2Jb"], "--feed"),
    (["meter", "import", "m.csv", "--feed", "a", "--site", "phx1"], "--site"),
    (["meter", "import", "m.csv", "--feed", "a", "--site", "a", "--site", "b"], "--site"),
    (["meter", "import", "m.csv", "--feed", "a", "--format", "yaml"], "--format"),
    # report
    # settlement and baseline
    (["settlement", "--since", "401d"], "--since"),
    (["settlement", "--method", "x" * 300], "--method"),
    (["settlement", "--interval", "1e309"], "--interval"),
    (["settlement", "--site", "a\x1b[2Jb"], "--site"),
    (["settlement", "--format", "pdf"], "--format"),
    (
        ["baseline", "--feed", "a", "--event-start", "9999999d", "--event-end", "1d"],
        "--event-start",
    ),
    (["baseline", "--feed", "a", "--event-start", "2d", "--event-end", "3d"], "--event-end"),
    (
        ["baseline", "--feed", "a", "--event-start", "2d", "--event-end", "1d", "--site", "phx9"],
        "--site",
    ),
    (["baseline", "--feed", "a\x1b[2Jb", "--event-start", "2d", "--event-end", "1d"], "--feed"),
    (["report", "--since", "401d"], "--since"),
    (["report", "--since", "1d", "--since", "2d"], "--since"),
    (["report", "--until", "99999999999999999999d"], "--until"),
    (["report", "--feed", "x" * 300], "--feed"),
    (["report", "--format", "pdf"], "--format"),
    # nvgrid (refused before anything connects)
    (["nvgrid", "--port", "99999999", "get-status"], "--port"),
    (["nvgrid", "get-status", "--timeout", "nan"], "--timeout"),
    (["nvgrid", "get-status", "--timeout", "-1"], "--timeout"),
    (["nvgrid", "set-load-target", "--value", "nan"], "--value"),
    (["nvgrid", "set-load-target", "--value", "-5"], "--value"),
    (["nvgrid", "set-load-target", "--value", "5", "--unit", "furlong"], "--unit"),
    (
        ["nvgrid", "set-load-target", "--default", "--start-time", "0001-01-01T00:00:00+01:00"],
        "--start-time",
    ),
    (["nvgrid", "get-schedule", "--end-time", "+99999999999d"], "--end-time"),
    # subscriptions
    (["subscriptions", "--drift", INT64_PLUS_ONE], "--drift"),
    (["subscriptions", "--drift", "-1"], "--drift"),
    (["subscriptions", "--site", "phx9"], "--site"),
    # the jobs (a site not served is refused before anything is read or called)
    (["reconcile", "--site", "phx9"], "--site"),
    (["teardown", "--site", "default", "--site", "x" * 300], "--site"),
    (["sample-load", "--site", "../default"], "--site"),
    # sites, and --site on every reading command (the deployment here: one `default` site)
    (["sites", "--format", "xml"], "--format"),
    (["sites", "--site", "phx9"], "--site"),
    (["events", "--site", "phx9"], "--site"),
    (["events", "-f", "--site", "default", "--site", "x" * 70], "--site"),
    (["state", "--site", ""], "--site"),
    (["episodes", "--site", "Default"], "--site"),
    (["samples", "--site", "a\x1b[2Jb"], "--site"),
    (["report", "--site", "phx9"], "--site"),
    (["quarantine", "list", "--site", "phx9"], "--site"),
    (["quarantine", "replay", "--all", "--site", "phx9"], "--site"),
    # run (refused before it would replace this process with the server)
    (["run", "--port", "70000"], "--port"),
    (["run", "--port", "0"], "--port"),
    (["run", "--function", "nope"], "--function"),
    (["run", "--host", "a" * 64], "--host"),  # a DNS label is at most 63 characters
]


@pytest.fixture
def empty_store(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/events.db"
    open_store(url).close()
    monkeypatch.setenv("GRIDHOOK_STORE", url)  # every command's --store default
    # Should a hostile value ever get past the arguments, nvgrid fails fast, not hangs.
    monkeypatch.setenv("NVGRID_HOST", "127.0.0.1:1")
    monkeypatch.setenv("NVGRID_TLS", "plaintext")
    monkeypatch.delenv("PORT", raising=False)
    # A `run` that got past its checks would replace this process with the server: not a
    # stand-in for anything under test, only a guard that turns that into a failure.
    monkeypatch.setattr(os, "execve", _would_start_the_server)
    return url


def _would_start_the_server(*args: object) -> None:
    raise AssertionError("gridhook run accepted its arguments and would start the server")


@pytest.mark.parametrize(("argv", "named"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_a_hostile_value_is_one_line_and_exit_2(
    empty_store: str, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's way out
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"gridhook {argv[0]}") and f": {named}: " in err, err
    assert "Traceback" not in err and "usage:" not in err


def test_a_hostile_port_from_the_environment_is_refused_the_same_way(
    empty_store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "http")
    with pytest.raises(SystemExit) as exit_:
        main(["run"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--port: 'http'" in err


def test_every_command_is_swept() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {argv[0] for argv, _ in CASES}


def test_a_quarantine_prefix_of_six_characters_is_looked_up(
    empty_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 15, item 12: six characters are a prefix; "e6" is refused for being short.
    assert main(["quarantine", "show", "e6e6e6"]) == 2
    assert "no quarantined payload 'e6e6e6'" in capsys.readouterr().err
