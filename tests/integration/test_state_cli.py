"""``gridhook state`` as a user runs it (a real process on a SQLite store holding the report
scenario's day): it says what ``gridhook episodes`` and the control room say — the stalled
ramp, and whether each feed's last target was met."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from gridhook.episodes.load import load_episodes
from gridhook.store import open_store
from tests.integration.test_report_cli import DAY_END, ORIGIN, dev_clock_at, gridhook
from tests.report_scenario import FEED_A, FEED_B, seed_day

DEADLINE = 1800  # GRIDHOOK_RAMP_DEADLINE_SECONDS's default


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('state') / 'events.db'}"
    store = open_store(url)
    try:
        seed_day(store, ORIGIN)
    finally:
        store.close()
    return url


def states_at(store_url: str, **env: str) -> dict[str, dict]:
    answer = gridhook(
        "state",
        "--store",
        store_url,
        "--format",
        "json",
        env={"GRIDHOOK_DEV_CLOCK": dev_clock_at(DAY_END), **env},
    )
    assert answer.returncode == 0, answer.stderr
    return {s["feed_tag"]: s for s in json.loads(answer.stdout)}


def test_state_shows_the_stalled_ramp_and_the_last_target_not_met(store_url: str) -> None:
    states = states_at(store_url)
    # FEED_A's last ramp down began at 20:00 and never ended: four hours later, stalled.
    a = states[FEED_A]
    assert (a["phase"], a["correlation_id"], a["stalled"], a["episode_status"]) == (
        "ramping_down",
        "dr-2000",
        True,
        "stalled",
    )
    assert a["compliant"] is None  # its ramp down never ended: not judged
    # FEED_B is back at its default after dr-1400, which asked 4.5 MW and reached 5.2 MW:
    # its ramp-up events carry compliant: true, but the target was not met.
    b = states[FEED_B]
    assert (b["phase"], b["correlation_id"], b["stalled"], b["episode_status"]) == (
        "steady",
        "dr-1400",
        False,
        "complete",
    )
    assert b["compliant"] is False

    # The episodes' own verdicts, derived by gridhook episodes' loader at the same moment.
    store = open_store(store_url)
    try:
        episodes = load_episodes(
            store, since=ORIGIN, until=DAY_END, now=DAY_END, ramp_deadline=DEADLINE
        )
    finally:
        store.close()
    by_id = {e.episode_id: e for e in episodes}
    for state in states.values():
        episode = by_id[state["episode_id"]]
        assert (state["correlation_id"], state["episode_status"], state["compliant"]) == (
            episode.correlation_id,
            episode.status,
            episode.compliant,
        )

    table = gridhook(
        "state", "--store", store_url, env={"GRIDHOOK_DEV_CLOCK": dev_clock_at(DAY_END)}
    )
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert re.search(r"\sramping_down\s.*\sdr-2000\s.*\sstalled$", rows[FEED_A])
    assert re.search(r"\ssteady\s.*\sdr-1400\s.*\sfalse\s+complete$", rows[FEED_B])


def test_state_judges_stalled_by_the_ramp_deadline_setting(store_url: str) -> None:
    day = str(int(timedelta(days=1).total_seconds()))
    a = states_at(store_url, GRIDHOOK_RAMP_DEADLINE_SECONDS=day)[FEED_A]
    assert (a["phase"], a["stalled"], a["episode_status"]) == ("ramping_down", False, "in_progress")
