"""The fleet views benchmark's data is what gridhook would store for a fleet: each site's
payloads pass the schema and carry its site, its curtailments fall at its local peaks, and
at the data's now the sites the bench counts on are constrained, stalled or failing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from gridhook.episodes import derive_episodes
from gridhook.schema import violations
from gridhook.state import feed_states
from tests.bench.fleet_views import (
    DATA_NOW,
    FEEDS,
    ZONES,
    registration,
    site_events,
    site_name,
    site_samples,
)

DEADLINE = timedelta(seconds=1800)


def test_each_sites_events_are_valid_its_own_and_at_its_local_peaks() -> None:
    for number in (1, 3):
        events = list(site_events(number))
        assert events and all(violations(e.payload) == [] for e in events)
        assert {e.site for e in events} == {site_name(number)}
        assert max(e.received_at for e in events) < DATA_NOW
        zone = ZoneInfo(ZONES[number % len(ZONES)])
        starts = Counter(
            e.received_at.astimezone(zone).hour for e in events if e.event == "start_ramp_down"
        )
        assert set(starts) <= {7, 8, 18, 19}  # the morning and evening peaks, local
        episodes = derive_episodes(events, now=DATA_NOW, ramp_deadline=DEADLINE)
        assert {e.status for e in episodes} == {"complete"}


def test_at_now_every_fifth_site_is_held_every_tenth_stalled() -> None:
    held = feed_states(site_events(5), now=DATA_NOW, ramp_deadline=DEADLINE)["main_power_feed"]
    assert held.phase in ("ramping_down", "constrained") and not held.stalled
    stalled = feed_states(site_events(10), now=DATA_NOW, ramp_deadline=DEADLINE)
    assert stalled["main_power_feed"].stalled
    quiet = feed_states(site_events(3), now=DATA_NOW, ramp_deadline=DEADLINE)
    assert {s.phase for s in quiet.values()} == {"steady"}
    assert registration(7).last_error and not registration(7).registered
    assert registration(6).registered and registration(6).last_error is None


def test_samples_every_five_minutes_per_feed_up_to_now() -> None:
    since = DATA_NOW - timedelta(hours=2)
    samples = list(site_samples(4, since))
    assert Counter(s.feed_tag for s in samples) == dict.fromkeys(FEEDS, 24)
    assert {s.site for s in samples} == {site_name(4)}
    assert max(s.sampled_at for s in samples) < DATA_NOW
