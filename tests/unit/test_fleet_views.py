"""The fleet views' pure parts: which sites a parameter names, a site's local times and
days, a fleet report's grouping, what the fleet page counts, a site's registration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gridhook.display import format_local, format_offset, zone_label
from gridhook.health import registration
from gridhook.report import assemble_report
from gridhook.report.fleet_room import FeedNow
from gridhook.report.model import FleetReport
from gridhook.report.params import (
    BadParameter,
    episode_params,
    parse_sites,
    report_params,
    single_values,
)
from gridhook.report.render import render_csv, render_json
from gridhook.report.summary import compliance_by_day, summarise
from gridhook.sites import Site, Sites
from gridhook.state import FeedState
from gridhook.store import LoadSample, SubscriptionRecord
from tests.report_scenario import hand_built_episode

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
FLEET = Sites(
    (
        Site("phx1", timezone="America/Phoenix"),
        Site("ams2", timezone="Europe/Amsterdam"),
        Site("blr3", timezone="Asia/Kolkata"),
    ),
    "GRIDHOOK_SITES",
)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


# -- site parameters ------------------------------------------------------------------------


def test_no_site_means_every_site_in_the_deployments_order() -> None:
    assert [s.name for s in report_params({}, now=NOW, sites=FLEET).sites] == [
        "phx1",
        "ams2",
        "blr3",
    ]
    # Asked in another order, and one twice: each once, in the deployment's order.
    asked = report_params({"site": ("blr3", "phx1", "blr3")}, now=NOW, sites=FLEET)
    assert [s.name for s in asked.sites] == ["phx1", "blr3"]
    one = episode_params({"site": "ams2"}, now=NOW, sites=FLEET)
    assert [s.name for s in one.sites] == ["ams2"]


def test_without_a_deployment_the_one_site_is_default() -> None:
    assert [s.name for s in report_params({}, now=NOW).sites] == ["default"]


@pytest.mark.parametrize("bad", ["phx9", "PHX1", "phx1 ", "x" * 300])
def test_an_unknown_site_names_itself_and_the_sites_served(bad: str) -> None:
    with pytest.raises(BadParameter) as caught:
        report_params({"site": ("phx1", bad)}, now=NOW, sites=FLEET)
    assert caught.value.name == "site"
    assert "unknown site" in caught.value.message
    assert caught.value.message.endswith("this deployment serves phx1, ams2, blr3")
    assert len(caught.value.message) < 200  # a 300-character name is not echoed whole


def test_an_empty_site_is_refused() -> None:
    with pytest.raises(BadParameter, match="is empty"):
        parse_sites([""], FLEET)


def test_site_is_the_one_parameter_that_may_be_repeated() -> None:
    values = single_values({"site": ["phx1", "ams2"], "since": ["2d"]}, ("since", "site"))
    assert values == {"site": ("phx1", "ams2"), "since": "2d"}
    with pytest.raises(BadParameter, match="more than once") as caught:
        single_values({"since": ["2d", "3d"]}, ("since", "site"))
    assert caught.value.name == "since"
    with pytest.raises(BadParameter, match="is empty") as caught:
        single_values({"site": ["phx1", ""]}, ("since", "site"))
    assert caught.value.name == "site"
    # A repeatable value handed to a parameter that is not: refused by the parser too.
    with pytest.raises(BadParameter, match="more than once"):
        report_params({"feed": ("a", "b")}, now=NOW)  # a tuple where one value belongs


# -- local times ------------------------------------------------------------------------------


def test_local_times_carry_their_offset() -> None:
    moment = datetime(2026, 1, 10, 20, 50, tzinfo=UTC)
    assert format_local(moment) == "2026-01-10 20:50:00 UTC"
    assert format_local(moment, ZoneInfo("UTC")) == "2026-01-10 20:50:00 UTC"
    assert format_local(moment, ZoneInfo("America/Phoenix")) == "2026-01-10 13:50:00 UTC-07:00"
    assert format_local(moment, ZoneInfo("Asia/Kolkata"), seconds=False) == (
        "2026-01-11 02:20 UTC+05:30"
    )
    # London in winter is at UTC's time, and still says whose time it is.
    assert format_offset(moment, ZoneInfo("Europe/London")) == "UTC+00:00"
    assert format_local(None) == "—"


def test_a_zone_label_shows_both_offsets_across_a_clock_change() -> None:
    spring = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # Amsterdam: 02:00 CET -> 03:00 CEST
    assert zone_label(AMSTERDAM, spring - timedelta(days=1), spring - timedelta(hours=1)) == (
        "Europe/Amsterdam, UTC+01:00"
    )
    assert zone_label(AMSTERDAM, spring - timedelta(days=1), spring + timedelta(days=1)) == (
        "Europe/Amsterdam, UTC+01:00/+02:00"
    )
    # Two changes in a year's range, each offset named once.
    year = zone_label(AMSTERDAM, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert year == "Europe/Amsterdam, UTC+01:00/+02:00"
    assert zone_label(ZoneInfo("UTC"), spring, spring + timedelta(days=3)) == "UTC"


# -- local days -------------------------------------------------------------------------------


def test_compliance_by_day_counts_the_sites_local_days() -> None:
    # 23:30 UTC on March 28 is 00:30 on March 29 in Amsterdam, the day of 23 hours.
    late = hand_built_episode(start=datetime(2026, 3, 28, 23, 20, tzinfo=UTC), down_s=600)
    since = datetime(2026, 3, 27, 23, 0, tzinfo=UTC)  # March 28, 00:00 in Amsterdam
    until = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # March 30, 00:00 (CEST)

    local = compliance_by_day([late], since, until, AMSTERDAM)
    assert [(d.day, d.judged) for d in local] == [(date(2026, 3, 28), 0), (date(2026, 3, 29), 1)]

    in_utc = compliance_by_day([late], since, until)
    assert [(d.day, d.judged) for d in in_utc] == [
        (date(2026, 3, 27), 0),
        (date(2026, 3, 28), 1),
        (date(2026, 3, 29), 0),
    ]


# -- a fleet report ----------------------------------------------------------------------------


def test_a_fleet_report_groups_by_site_then_feed_and_totals_every_site() -> None:
    since, until = NOW - timedelta(days=2), NOW
    phx = hand_built_episode(
        start=NOW - timedelta(hours=30), feed="main", correlation_id="a", site="phx1"
    )
    ams = hand_built_episode(
        start=NOW - timedelta(hours=10), feed="main", correlation_id="b", site="ams2"
    )
    reports = tuple(
        assemble_report(
            [episode],
            [],
            since=since,
            until=until,
            now=NOW,
            ramp_deadline_seconds=1800,
            site=name,
            zone=ZoneInfo(zone),
        )
        for episode, name, zone in ((phx, "phx1", "America/Phoenix"), (ams, "ams2", "UTC"))
    )
    fleet = FleetReport(
        since=since,
        until=until,
        generated_at=NOW,
        feed_filter=None,
        ramp_deadline_seconds=1800,
        sites=reports,
        overall=summarise([phx, ams], since, until),
        several=True,
    )
    body = fleet.to_dict()
    assert [(f["site"], f["feed_tag"]) for f in body["feeds"]] == [
        ("phx1", "main"),
        ("ams2", "main"),
    ]
    assert [(s["site"], s["timezone"]) for s in body["sites"]] == [
        ("phx1", "America/Phoenix"),
        ("ams2", "UTC"),
    ]
    assert body["overall"]["episodes"] == 2 and body["sites"][0]["overall"]["episodes"] == 1
    # Phoenix's days: March 27 (from 17:00 local on the 27th) to March 29.
    days = [d["day"] for d in body["feeds"][0]["compliance_by_day"]]
    assert days == ["2026-03-27", "2026-03-28", "2026-03-29"]
    assert '"site": "phx1"' in render_json(fleet)
    rows = render_csv(fleet).splitlines()
    assert rows[0].startswith("site,feed_tag,") and rows[1].startswith("phx1,main,")
    assert rows[2].startswith("ams2,main,")


def test_one_sites_report_is_a_fleet_report_of_that_site() -> None:
    report = assemble_report(
        [hand_built_episode(start=NOW - timedelta(hours=3))],
        [],
        since=NOW - timedelta(days=1),
        until=NOW,
        now=NOW,
        ramp_deadline_seconds=1800,
    )
    fleet = FleetReport.of(report)
    assert not fleet.several and fleet.sites == (report,) and fleet.overall == report.overall
    assert report.to_dict() == fleet.to_dict()
    assert report.to_dict()["feeds"][0]["site"] == "default"


# -- the fleet page's figures -------------------------------------------------------------------


def _state(phase: str, target_mw: float | None, prev_mw: float | None, **kw: object) -> FeedState:
    fields: dict = {
        "feed_tag": "main",
        "phase": phase,
        "since": NOW - timedelta(minutes=20),
        "correlation_id": "c1",
        "target_w": None if target_mw is None else target_mw * 1e6,
        "prev_target_w": None if prev_mw is None else prev_mw * 1e6,
        "calculated_w": 9e6,
        "compliant": None,
        "last_event": "start_ramp_down",
        "last_event_id": "e1",
        "last_received_at": NOW - timedelta(minutes=20),
        "episode_open": phase != "steady",
    }
    fields.update(kw)
    return FeedState(**fields)


def _sample(minutes_ago: float, load_mw: float) -> LoadSample:
    at = NOW - timedelta(minutes=minutes_ago)
    return LoadSample("main", at, load_mw * 1e6, 6e6, None, at + timedelta(days=1))


def test_a_constrained_feed_counts_its_requested_reduction_and_its_newest_load() -> None:
    feed = FeedNow("phx1", "main", _state("constrained", 6, 10), _sample(1, 6.5))
    assert feed.constrained and feed.requested_off_w == 4e6
    assert feed.sampled and feed.load_w == 6.5e6 and feed.over_target
    # A sample older than the last webhook is not the newest reading.
    stale = FeedNow("phx1", "main", _state("constrained", 6, 10), _sample(30, 6.0))
    assert not stale.sampled and stale.load_w == 9e6


def test_a_feed_ramping_down_on_time_is_not_over_its_target_yet() -> None:
    ramping = FeedNow("s", "main", _state("ramping_down", 6, 10), _sample(1, 9))
    assert not ramping.over_target
    stalled = FeedNow("s", "main", _state("ramping_down", 6, 10, stalled=True), _sample(1, 9))
    assert stalled.over_target and stalled.stalled
    within = FeedNow("s", "main", _state("constrained", 6, 10), _sample(1, 6.02))
    assert not within.over_target  # within 0.5 %


@pytest.mark.parametrize(
    ("phase", "target", "prev", "off"),
    [
        ("ramping_down", 6, 10, 4e6),  # asked for already, while DPS ramps
        ("ramping_up", 10, 6, None),  # released: nothing requested off
        ("steady", 10, 6, None),
        ("constrained", 6, None, None),  # from the default constraint: its MW are unknown
        ("constrained", 0, 10, None),  # to the default (zero is DPS's other spelling)
    ],
)
def test_what_is_requested_off(
    phase: str, target: float, prev: float | None, off: float | None
) -> None:
    assert FeedNow("s", "main", _state(phase, target, prev), None).requested_off_w == off


def test_a_feed_with_samples_only_is_steady_with_dps_target() -> None:
    feed = FeedNow("blr3", "main", None, _sample(2, 41.25))
    assert (feed.phase, feed.constrained, feed.episode_open, feed.stalled) == (
        "steady",
        False,
        False,
        False,
    )
    assert feed.load_w == 41.25e6 and feed.target_w == 6e6 and feed.requested_off_w is None


# -- registration, from the subscription records ---------------------------------------------------


def _record(**kw: object) -> SubscriptionRecord:
    fields: dict = {
        "subscription_id": "s1",
        "url": "https://x/nvgrid/webhook/phx1?token=REDACTED",
        "events": ("start_ramp_down",),
        "token_fingerprint": "f1",
        "desired": True,
        "registered": True,
        "last_attempt": NOW,
        "last_success": NOW,
    }
    fields.update(kw)
    return SubscriptionRecord(**fields)


def test_registration_from_the_records() -> None:
    assert registration([]).state == "never" and registration([]).reconcile_outcome == "never"
    ok = registration([_record()])
    assert (ok.state, ok.reconcile_outcome, ok.healthy) == ("registered", "ok", True)
    failing = registration(
        [_record(registered=False, last_error="DPS unavailable", consecutive_failures=3)]
    )
    assert (failing.state, failing.reconcile_outcome, failing.consecutive_failures) == (
        "failing",
        "failed",
        3,
    )
    pending = registration([_record(registered=False, last_attempt=None, last_success=None)])
    assert pending.state == "pending"
    # Registered, but an old token's registration could not be removed in the same run.
    stale = _record(
        subscription_id="s0", desired=False, last_error="cannot unregister", last_attempt=NOW
    )
    mixed = registration([_record(), stale])
    assert (mixed.state, mixed.stale, mixed.last_error, mixed.healthy) == (
        "registered",
        1,
        "cannot unregister",
        False,
    )


# -- reading several sites at once ------------------------------------------------------------


def test_sites_are_read_at_once_answered_in_order_and_a_failure_waits_for_the_rest() -> None:
    import threading
    import time

    from gridhook.site_reads import READERS, for_each

    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def read(n: int) -> int:
        with lock:
            running.append(n)
            most[0] = max(most[0], len(running))
        time.sleep(0.02)
        with lock:
            running.remove(n)
        return n * 10

    assert for_each(read, list(range(20))) == [n * 10 for n in range(20)]
    assert 1 < most[0] <= READERS

    finished: list[int] = []

    def failing(n: int) -> int:
        time.sleep(0.01 * (n % 3))
        if n == 2:
            raise LookupError("site 2's store is down")
        finished.append(n)
        return n

    with pytest.raises(LookupError, match="site 2"):
        for_each(failing, list(range(12)))
    assert sorted(finished) == [n for n in range(12) if n != 2]  # none left running
    assert for_each(read, [7]) == [70] and for_each(read, []) == []
