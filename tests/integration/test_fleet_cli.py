"""Every reading command over a fleet (tests/fleet_scenario.py: four sites, two of them with
feeds of the same names) on a real SQLite store: ``--site`` (repeatable; default every
site), a SITE column only when the deployment has several sites, ``site`` in JSON and
CSV, an unknown site refused in one line; ``gridhook sites``; the follower of several
sites; quarantine records found and replayed into their own site."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.cli import main
from gridhook.cli.events import EventFollower, FleetFollower
from gridhook.events import event_id, normalise
from gridhook.store import EventStore, QuarantinedPayload, open_store
from tests.fleet_scenario import AMS, AMS_ERROR, LAB, LONG, LONG_FEED, PHX, seed_fleet, sites_json
from tests.harness import SEED_PAYLOAD
from tests.report_scenario import FEED_A, FEED_B

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
NOW = ORIGIN + timedelta(hours=20, minutes=50)


def dev_clock() -> str:
    """gridhook's clock at the scenario's now, all but still (a microsecond a second), so
    "for 50 min" reads the same however long the tests take."""
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"0.000001@{NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


@pytest.fixture(scope="module")
def fleet_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('fleet') / 'events.db'}"
    store = open_store(url)
    try:
        seed_fleet(store, ORIGIN, NOW)
    finally:
        store.close()
    return url


@pytest.fixture
def fleet(fleet_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fleet's deployment: its sites, its store, gridhook's clock at the scenario's now."""
    monkeypatch.setenv("GRIDHOOK_SITES", sites_json())
    monkeypatch.setenv("GRIDHOOK_STORE", fleet_url)
    monkeypatch.setenv("GRIDHOOK_DEV_CLOCK", dev_clock())
    monkeypatch.setenv("GRIDHOOK_RAMP_DEADLINE_SECONDS", "1800")
    return fleet_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def table(text: str) -> tuple[list[str], list[str]]:
    """The header's column names and the body's lines of a table."""
    lines = text.rstrip("\n").splitlines()
    return re.split(r"\s{2,}", lines[0]), lines[1:]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# -- events ---------------------------------------------------------------------------------


def test_events_merge_every_site_newest_first_with_a_site_column(fleet: str, capsys) -> None:
    listed = json.loads(run(capsys, "events", "--format", "json", "--limit", "1000"))
    assert {e["site"] for e in listed} == {PHX, AMS}  # LONG and lab0 sent none
    received = [e["received_at"] for e in listed]
    assert received == sorted(received, reverse=True)
    assert len(listed) == 2 * 17  # each site's day: 5 curtailments, the last stalled

    latest = json.loads(run(capsys, "events", "--format", "json", "-n", "3"))
    assert [e["event_id"] for e in latest] == [e["event_id"] for e in listed[:3]]

    header, rows = table(run(capsys, "events", "-n", "4"))
    assert header[0] == "SITE" and len(rows) == 4
    assert all(row.split()[0] in (PHX, AMS) for row in rows)


def test_events_of_one_site_and_csv_carries_the_site(fleet: str, capsys) -> None:
    rows = csv_rows(run(capsys, "events", "--site", AMS, "--format", "csv", "-n", "1000"))
    assert len(rows) == 17 and {r["site"] for r in rows} == {AMS}
    assert list(rows[0])[:2] == ["site", "received_at"]
    # Repeated: both, each once.
    both = json.loads(
        run(capsys, "events", "--site", PHX, "--site", AMS, "--site", PHX, "--format", "json")
    )
    assert {e["site"] for e in both} == {PHX, AMS} and len(both) == 20


def test_an_unknown_site_is_one_line_naming_the_sites_served(fleet: str, capsys) -> None:
    for argv in (
        ["events", "--site", "phx9"],
        ["state", "--site", PHX, "--site", "phx9"],
        ["report", "--site", "phx9"],
        ["sites", "--site", "phx9"],
    ):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err == (
            f"gridhook {argv[0]}: --site: unknown site 'phx9': this deployment serves "
            f"{PHX}, {AMS}, {LONG}, {LAB}\n"
        )


def test_one_site_deployments_show_no_site_column(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GRIDHOOK_SITES", raising=False)
    url = f"sqlite:///{tmp_path}/one.db"
    store = open_store(url)
    store.add_event(normalise(copy.deepcopy(SEED_PAYLOAD), NOW))
    store.close()
    header, rows = table(run(capsys, "events", "--store", url))
    assert header[0] == "RECEIVED_AT" and len(rows) == 1
    header, _ = table(run(capsys, "state", "--store", url))
    assert header[0] == "FEED_TAG"
    # JSON and CSV carry the site all the same.
    assert json.loads(run(capsys, "events", "--store", url, "--format", "json"))[0]["site"] == (
        "default"
    )
    assert csv_rows(run(capsys, "events", "--store", url, "--format", "csv"))[0]["site"] == (
        "default"
    )


def test_following_several_sites(tmp_path: Path) -> None:
    """The backlog is the latest events of every site together; each poll prints every
    site's new writes once, in the order they were stored."""
    store = open_store(f"sqlite:///{tmp_path}/follow.db")

    def add(n: int, site: str, at: datetime) -> str:
        payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": f"c-{n}"}
        store.add_event(normalise(payload, at, site=site))
        return event_id(payload, site)

    older = [add(n, PHX, NOW + timedelta(seconds=n)) for n in range(0, 6, 2)]
    newer = [add(n, AMS, NOW + timedelta(seconds=n)) for n in range(1, 6, 2)]
    follower = FleetFollower([EventFollower(store, site=s) for s in (PHX, AMS)])
    # The latest 4 of both (receipt times 2, 3, 4, 5), oldest first.
    backlog = follower.start(4)
    assert [e.event_id for e in backlog] == [older[1], newer[1], older[2], newer[2]]
    assert follower.poll() == []

    first = add(10, AMS, NOW + timedelta(minutes=1))
    second = add(11, PHX, NOW - timedelta(days=1))  # a replay's old receipt time
    polled = follower.poll()
    assert [(e.event_id, e.site) for e in polled] == [(first, AMS), (second, PHX)]
    assert follower.poll() == []
    store.close()


# -- state, episodes, samples ----------------------------------------------------------------


def test_state_reads_each_site_apart(fleet: str, capsys) -> None:
    states = json.loads(run(capsys, "state", "--format", "json"))
    assert [(s["site"], s["feed_tag"]) for s in states] == [  # by site, then feed tag
        (PHX, FEED_A),
        (PHX, FEED_B),
        (AMS, FEED_A),
        (AMS, FEED_B),
    ]
    stalled = {(s["site"], s["feed_tag"]) for s in states if s["stalled"]}
    assert stalled == {(PHX, FEED_A), (AMS, FEED_A)}
    # Same feed names, different histories: phx1's last ramp down began 9 hours later.
    since = {(s["site"], s["feed_tag"]): s["since"] for s in states}
    assert since[(PHX, FEED_A)] == "2026-01-10T20:00:00Z"
    assert since[(AMS, FEED_A)] == "2026-01-10T11:00:00Z"

    header, rows = table(run(capsys, "state", "--site", AMS))
    assert header[0] == "SITE" and [r.split()[0] for r in rows] == [AMS, AMS]


def test_episodes_by_site_with_site_in_every_format(fleet: str, capsys) -> None:
    listed = json.loads(run(capsys, "episodes", "--since", "2d", "--format", "json"))
    assert [e["site"] for e in listed] == [PHX] * 5 + [AMS] * 5  # by site, then oldest first
    rows = csv_rows(run(capsys, "episodes", "--since", "2d", "--site", AMS, "--format", "csv"))
    assert {r["site"] for r in rows} == {AMS} and len(rows) == 5
    header = run(capsys, "episodes", "--since", "2d", "--site", PHX).splitlines()[0]
    assert header.startswith("SITE ") and "FEED" in header
    stalled = json.loads(
        run(capsys, "episodes", "--since", "2d", "--status", "stalled", "--format", "json")
    )
    assert [(e["site"], e["correlation_id"]) for e in stalled] == [
        (PHX, "dr-2000"),
        (AMS, "dr-2000"),
    ]


def test_samples_of_the_site_with_a_long_name(fleet: str, capsys) -> None:
    listed = json.loads(run(capsys, "samples", "--site", LONG, "--since", "2h", "--format", "json"))
    assert [(s["site"], s["feed_tag"]) for s in listed] == [(LONG, LONG_FEED)] * 3
    header, rows = table(run(capsys, "samples", "--since", "15m"))
    assert header[0] == "SITE"
    assert {r.split()[0] for r in rows} == {PHX, AMS, LONG}
    rows_csv = csv_rows(run(capsys, "samples", "--since", "15m", "--format", "csv"))
    assert list(rows_csv[0])[:2] == ["site", "sampled_at"]


# -- report ------------------------------------------------------------------------------------


def test_the_report_groups_by_site_then_feed_in_local_days(fleet: str, capsys) -> None:
    since = ["--since", "2026-01-09T00:00:00Z"]
    body = json.loads(run(capsys, "report", *since, "--format", "json"))
    assert [(s["site"], s["timezone"]) for s in body["sites"]] == [
        (PHX, "America/Phoenix"),
        (AMS, "Europe/Amsterdam"),
        (LONG, "Asia/Kolkata"),
        (LAB, "UTC"),
    ]
    assert [(f["site"], f["feed_tag"]) for f in body["feeds"]] == [
        (PHX, FEED_A),
        (PHX, FEED_B),
        (AMS, FEED_A),
        (AMS, FEED_B),
        (LONG, LONG_FEED),
    ]
    assert body["overall"]["episodes"] == 10
    # Each site's days are its own: from 00:00 UTC on Jan 9, Phoenix counts Jan 8 (from
    # 17:00 local), Kolkata Jan 9 (from 05:30) to Jan 11 (the scenario's now is 02:20 there).
    days = {f["site"]: [d["day"] for d in f["compliance_by_day"]] for f in body["feeds"]}
    assert days[PHX] == ["2026-01-08", "2026-01-09", "2026-01-10"]
    assert days[LONG] == ["2026-01-09", "2026-01-10", "2026-01-11"]

    csv_text = run(capsys, "report", *since, "--site", AMS, "--format", "csv")
    assert {r["site"] for r in csv_rows(csv_text)} == {AMS}


def test_the_html_report_names_sites_and_writes_local_times(
    fleet: str, capsys, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    main(["report", "--site", PHX, "--site", AMS, "--since", "1d", "--output", str(out)])
    assert "of 2 site(s)" in capsys.readouterr().err
    html = out.read_text()
    assert html.count('<section class="site"') == 2
    assert 'Site <span class="tag">phx1</span> <span class="muted">· America/Phoenix' in html
    # phx1's stalled ramp began at 20:00 UTC: 13:00 in Phoenix; ams2's at 11:00 UTC: 12:00.
    assert "13:00:00 UTC-07:00" in html and "12:00:00 UTC+01:00" in html
    assert "Time (America/Phoenix, UTC-07:00)" in html and "Time (Europe/Amsterdam" in html


# -- gridhook sites ----------------------------------------------------------------------------


def test_sites_lists_each_sites_health(fleet: str, capsys) -> None:
    health = {h["site"]: h for h in json.loads(run(capsys, "sites", "--format", "json"))}
    assert list(health) == [PHX, AMS, LONG, LAB]
    phx, ams, long, lab = (health[s] for s in (PHX, AMS, LONG, LAB))
    assert phx["registration"]["state"] == "registered"
    assert phx["registration"]["reconcile_outcome"] == "ok"
    assert phx["registration"]["last_reconcile"] == "2026-01-10T20:46:00Z"
    assert (phx["feeds"], phx["open_episodes"], phx["stalled_episodes"]) == (2, 1, 1)
    assert phx["last_event_at"] == "2026-01-10T20:00:00Z" and phx["last_event_feed"] == FEED_A
    assert phx["last_sample_at"] == "2026-01-10T20:43:00Z"
    assert ams["registration"]["state"] == "failing"
    assert ams["registration"]["last_error"] == AMS_ERROR
    assert ams["registration"]["consecutive_failures"] == 3
    assert (long["feeds"], long["last_event_at"]) == (0, None)
    assert long["last_sample_at"] == "2026-01-10T20:49:00Z"
    assert lab["registration"]["state"] == "never" and lab["last_sample_at"] is None

    text = run(capsys, "sites")
    header, rows = table(text)
    assert header[:3] == ["SITE", "TIMEZONE", "REGISTRATION"]
    assert re.match(rf"{AMS} +Europe/Amsterdam \(UTC\+01:00\) +failing \(3x\) +2026", rows[1])
    assert re.match(rf"{LAB} +UTC +never +never +never +never +never +0 +0 +0$", rows[3])
    assert f"{AMS}: last reconcile failed: {AMS_ERROR}" in text
    assert f"{PHX}: {FEED_A} stalled" in text and f"{LAB}: never reconciled" in text

    rows_csv = csv_rows(run(capsys, "sites", "--site", AMS, "--format", "csv"))
    assert [(r["site"], r["registration"], r["reconcile_error"]) for r in rows_csv] == [
        (AMS, "failing", AMS_ERROR)
    ]


def test_the_newest_sample_is_found_without_reading_the_history(tmp_path: Path) -> None:
    """Sampling stopped five days ago after a month of hourly samples: the newest is found
    by a few one-row queries and one short read, not by reading the month."""
    from gridhook.health import newest_sample
    from gridhook.store import LoadSample

    store = open_store(f"sqlite:///{tmp_path}/samples.db")
    stopped = NOW - timedelta(days=5, minutes=7)
    at, samples = stopped - timedelta(days=30), []
    while at <= stopped:
        samples.append(LoadSample("f", at, 5e6, None, None, at + timedelta(days=3650), site=PHX))
        at += timedelta(hours=1)
    for sample in samples:
        store.add_sample(sample)
    read: list[int] = []
    samples_of = store.samples

    def counted(query):  # the store's own read, counting the rows it returns
        page = samples_of(query)
        read.append(len(page.samples))
        return page

    store.samples = counted
    newest = newest_sample(store, PHX, NOW)
    assert newest is not None and newest.sampled_at == samples[-1].sampled_at
    assert len(read) < 20 and sum(read) < 20 < len(samples), (len(read), sum(read))
    assert newest_sample(store, AMS, NOW) is None  # another site's samples are not its
    store.close()


# -- quarantine --------------------------------------------------------------------------------


def quarantined(store: EventStore, site: str, n: int) -> QuarantinedPayload:
    """A body the receiver kept for ``site`` (one a newer schema accepts: replayable)."""
    body = json.dumps({**copy.deepcopy(SEED_PAYLOAD), "correlation_id": f"q-{site}-{n}"})
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    from gridhook.store import quarantine_id

    item = QuarantinedPayload(
        quarantine_id=quarantine_id(body.encode("utf-8"), site),
        received_at=NOW - timedelta(hours=n),
        expires_at=datetime.now(UTC) + timedelta(days=7),
        reason="schema_violation",
        errors=[{"path": "/target_load/unit", "message": "'gw' is not one of the units"}],
        body=body,
        body_bytes=len(body.encode("utf-8")),
        body_sha256=digest,
        site=site,
    )
    store.quarantine(item)
    return item


def test_quarantine_across_sites_replays_into_each_records_site(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDHOOK_SITES", sites_json())
    url = f"sqlite:///{tmp_path}/q.db"
    store = open_store(url)
    phx = quarantined(store, PHX, 1)
    ams = quarantined(store, AMS, 2)
    store.close()

    header, rows = table(run(capsys, "quarantine", "list", "--store", url))
    assert header[0] == "SITE" and [r.split()[0] for r in rows] == [PHX, AMS]  # newest first
    listed = json.loads(
        run(capsys, "quarantine", "list", "--store", url, "--site", AMS, "--format", "json")
    )
    assert [(q["site"], q["quarantine_id"]) for q in listed] == [(AMS, ams.quarantine_id)]

    shown = run(capsys, "quarantine", "show", "--store", url, ams.quarantine_id[:8])
    assert shown.splitlines()[0] == f"site           {AMS}"
    assert main(["quarantine", "show", "--store", url, "--site", PHX, ams.quarantine_id]) == 2
    assert "no quarantined payload" in capsys.readouterr().err

    replayed = [
        json.loads(line)
        for line in run(
            capsys, "quarantine", "replay", "--store", url, "--all", "--format", "json"
        ).splitlines()
    ]
    assert [(r["site"], r["status"]) for r in replayed] == [(PHX, "replayed"), (AMS, "replayed")]
    store = open_store(url)
    for item, result in zip((phx, ams), replayed, strict=True):
        stored = store.get_event(result["event_id"], site=item.site)
        assert stored is not None and stored.site == item.site
        other = AMS if item.site == PHX else PHX
        assert store.get_event(result["event_id"], site=other) is None
    store.close()
