"""The EventStore contract: every backend (SQLite, Firestore emulator, DynamoDB on moto)
must pass it all."""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gridhook.events import normalise
from gridhook.store import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventOrder,
    EventQuery,
    EventStore,
    InvalidCursor,
    LoadSample,
    QuarantinedPayload,
    SampleQuery,
    SubscriptionRecord,
    iter_events,
    iter_quarantined,
    iter_samples,
)
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_event(i: int, feed: str = "feed_a", corr: str = "c1", at: datetime | None = None):
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload.update(feed_tag=feed, correlation_id=corr, seq=i)
    return normalise(payload, at or T0 + timedelta(seconds=i))


def test_add_then_duplicate(store: EventStore) -> None:
    event = make_event(1)
    assert store.add_event(event) is AddOutcome.ACCEPTED
    # A redelivery arrives later: it is the same event and is not stored again.
    again = normalise(copy.deepcopy(event.payload), T0 + timedelta(hours=1))
    assert again.event_id == event.event_id
    assert store.add_event(again) is AddOutcome.DUPLICATE
    page = store.events(EventQuery())
    assert [e.event_id for e in page.events] == [event.event_id]
    # The first receipt is kept.
    assert page.events[0].received_at == event.received_at


def test_round_trip_keeps_payload_and_derived_fields(store: EventStore) -> None:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["future_field"] = {"nested": [[1, 2], {"": "empty key"}], "n": None}
    event = normalise(payload, T0)
    store.add_event(event)
    got = store.get_event(event.event_id)
    assert got == event
    assert got.payload["future_field"]["nested"][0] == [1, 2]
    assert got.target_w == 6.5e6
    assert got.start_time == datetime(2025, 10, 24, 17, tzinfo=UTC)
    assert store.get_event("0" * 32) is None


def test_concurrent_deliveries_of_one_event_store_it_once(store: EventStore) -> None:
    event = make_event(7)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: store.add_event(event), range(16)))
    assert outcomes.count(AddOutcome.ACCEPTED) == 1
    assert outcomes.count(AddOutcome.DUPLICATE) == 15
    assert len(store.events(EventQuery()).events) == 1


def test_filters_by_feed_correlation_and_time(store: EventStore) -> None:
    events = [
        make_event(0, "feed_a", "c1"),
        make_event(1, "feed_b", "c1"),
        make_event(2, "feed_a", "c2"),
        make_event(3, "feed_b", "c2"),
        make_event(4, "feed_a", "c1"),
    ]
    for e in events:
        store.add_event(e)

    def ids(**kwargs) -> list[int]:
        return [e.payload["seq"] for e in store.events(EventQuery(**kwargs)).events]

    assert ids() == [0, 1, 2, 3, 4]
    assert ids(feed_tag="feed_a") == [0, 2, 4]
    assert ids(correlation_id="c2") == [2, 3]
    assert ids(feed_tag="feed_a", correlation_id="c1") == [0, 4]
    assert ids(since=T0 + timedelta(seconds=2)) == [2, 3, 4]  # inclusive
    assert ids(until=T0 + timedelta(seconds=2)) == [0, 1]  # exclusive
    assert ids(
        feed_tag="feed_b", since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3)
    ) == [1]
    assert ids(feed_tag="nope") == []


def test_paging_visits_every_event_once_in_order(store: EventStore) -> None:
    # Several events share a receipt time: the event id breaks the tie.
    events = [make_event(i, at=T0 + timedelta(seconds=i // 3)) for i in range(11)]
    for e in events:
        store.add_event(e)
    expected = sorted(events, key=lambda e: (e.received_at, e.event_id))
    first = store.events(EventQuery(limit=4))
    assert len(first.events) == 4 and first.next_cursor
    seen = list(iter_events(store, EventQuery(limit=4)))
    assert [e.event_id for e in seen] == [e.event_id for e in expected]
    # Paging composes with filters.
    feed_pages = list(
        iter_events(store, EventQuery(feed_tag="feed_a", limit=2, since=T0 + timedelta(seconds=1)))
    )
    assert [e.event_id for e in feed_pages] == [
        e.event_id for e in expected if e.received_at >= T0 + timedelta(seconds=1)
    ]


def test_last_page_has_no_cursor_and_bad_cursor_is_rejected(store: EventStore) -> None:
    for i in range(3):
        store.add_event(make_event(i))
    assert store.events(EventQuery(limit=3)).next_cursor is None
    with pytest.raises(InvalidCursor):
        store.events(EventQuery(cursor="not-a-cursor"))


def test_latest_by_feed(store: EventStore) -> None:
    assert store.latest_by_feed() == {}
    for e in [make_event(0, "feed_a"), make_event(5, "feed_b"), make_event(3, "feed_a")]:
        store.add_event(e)
    # An event without a feed tag belongs to no feed.
    no_feed = dict(SEED_PAYLOAD)
    del no_feed["feed_tag"]
    store.add_event(normalise(no_feed, T0 + timedelta(seconds=9)))
    latest = store.latest_by_feed()
    assert sorted(latest) == ["feed_a", "feed_b"]
    assert latest["feed_a"].payload["seq"] == 3
    assert latest["feed_b"].payload["seq"] == 5


def _quarantined(
    received_at: datetime, body: str, days: float, *, expires_at: datetime | None = None
) -> QuarantinedPayload:
    raw = body.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    return QuarantinedPayload(
        quarantine_id=digest[:32],
        received_at=received_at,
        expires_at=expires_at or received_at + timedelta(days=days),
        reason="schema_violation",
        errors=[{"path": "/event", "message": "'x' is required"}],
        body=body,
        body_bytes=len(raw),
        body_sha256=digest,
    )


def test_quarantine_keeps_unexpired_newest_first(store: EventStore) -> None:
    now = datetime.now(UTC)
    store.quarantine(_quarantined(now - timedelta(minutes=2), '{"a":1}', 7))
    store.quarantine(_quarantined(now - timedelta(minutes=1), '{"b":2}', 7))
    store.quarantine(_quarantined(now - timedelta(days=9), '{"old":1}', -2))  # expired
    items = store.quarantined().items
    assert [q.body for q in items] == ['{"b":2}', '{"a":1}']
    assert items[0].errors == [{"path": "/event", "message": "'x' is required"}]
    # Quarantine is not the event log.
    assert store.events(EventQuery()).events == []


def test_subscription_records_upsert_and_delete(store: EventStore) -> None:
    record = SubscriptionRecord(
        subscription_id="s1",
        url="https://example.test/nvgrid/webhook?token=REDACTED",
        events=("start_ramp_down", "end_ramp_down"),
        token_fingerprint="abc123",
        desired=True,
        registered=True,
        last_success=T0,
    )
    store.put_subscription(record)
    failed = SubscriptionRecord(
        **{
            **record.to_dict(),
            "events": record.events,
            "last_attempt": T0,
            "last_success": T0,
            "last_error": "boom",
            "consecutive_failures": 2,
        }
    )
    store.put_subscription(failed)
    assert store.subscriptions() == [failed]
    store.delete_subscription("s1")
    assert store.subscriptions() == []


def test_drift_records_newest_first(store: EventStore) -> None:
    for i in range(3):
        store.add_drift(
            DriftRecord(
                drift_id=f"d{i}",
                feed_tag="feed_a",
                detected_at=T0 + timedelta(minutes=i),
                message=f"drift {i}",
                dps_view={"target_w": 5e6},
                our_view={"phase": "steady"},
            )
        )
    assert [d.drift_id for d in store.drift()] == ["d2", "d1", "d0"]
    assert store.drift(limit=1)[0].dps_view == {"target_w": 5e6}


def test_event_query_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        EventQuery(limit=0)
    with pytest.raises(ValueError, match="timezone"):
        EventQuery(since=datetime(2026, 1, 1))


# -- newest first ---------------------------------------------------------------------


def _ids(events) -> list[str]:
    return [e.event_id for e in events]


def test_newest_first_composes_with_every_filter_and_page_size(store: EventStore) -> None:
    # Shared receipt times (the event id breaks ties), two feeds, three correlation ids.
    events = [
        make_event(i, f"feed_{'ab'[i % 2]}", f"c{i % 3}", at=T0 + timedelta(seconds=i // 3))
        for i in range(14)
    ]
    for e in events:
        store.add_event(e)
    newest = sorted(events, key=lambda e: (e.received_at, e.event_id), reverse=True)
    times = [None, T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)]
    for feed, corr, since, until, limit in itertools.product(
        [None, "feed_a"], [None, "c1"], times, times, [1, 4, 100]
    ):
        query = EventQuery(
            feed_tag=feed,
            correlation_id=corr,
            since=since,
            until=until,
            limit=limit,
            newest_first=True,
        )
        want = [
            e
            for e in newest
            if feed in (None, e.feed_tag)
            and corr in (None, e.correlation_id)
            and (since is None or e.received_at >= since)
            and (until is None or e.received_at < until)
        ]
        assert _ids(iter_events(store, query)) == _ids(want), query


def test_a_newest_first_cursor_continues_back_in_time(store: EventStore) -> None:
    events = [make_event(i, at=T0 + timedelta(seconds=i // 2)) for i in range(9)]
    for e in events:
        store.add_event(e)
    newest = sorted(events, key=lambda e: (e.received_at, e.event_id), reverse=True)
    first = store.events(EventQuery(limit=4, newest_first=True))
    assert _ids(first.events) == _ids(newest[:4]) and first.next_cursor
    second = store.events(EventQuery(limit=4, newest_first=True, cursor=first.next_cursor))
    assert _ids(second.events) == _ids(newest[4:8]) and second.next_cursor
    third = store.events(EventQuery(limit=4, newest_first=True, cursor=second.next_cursor))
    assert (_ids(third.events), third.next_cursor) == (_ids(newest[8:]), None)
    # A cursor is a position: oldest first from the same one lists what came after it,
    # which is how a follower picks up from the newest event it has shown.
    after = store.events(EventQuery(cursor=first.next_cursor)).events
    assert _ids(after) == _ids(reversed(newest[:3]))


# -- write order ----------------------------------------------------------------------


def test_write_order_lists_events_as_they_were_stored_whatever_their_receipt(
    store: EventStore,
) -> None:
    # Received in the opposite order to the one they were stored in (as replays are),
    # with shared write times (the event id breaks ties), two feeds, three episodes.
    events = [
        replace(
            make_event(i, f"feed_{'ab'[i % 2]}", f"c{i % 3}", at=T0 - timedelta(minutes=i)),
            stored_at=T0 + timedelta(seconds=i // 2),
        )
        for i in range(10)
    ]
    for e in events:
        assert store.add_event(e) is AddOutcome.ACCEPTED
    written = sorted(events, key=lambda e: (e.stored_at, e.event_id))
    times = [None, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)]
    for feed, corr, since, until, newest_first, limit in itertools.product(
        [None, "feed_a"], [None, "c1"], times, times, [False, True], [1, 3, 100]
    ):
        query = EventQuery(
            feed_tag=feed,
            correlation_id=corr,
            since=since,
            until=until,
            limit=limit,
            newest_first=newest_first,
            order=EventOrder.STORED,
        )
        want = [
            e
            for e in (written[::-1] if newest_first else written)
            if feed in (None, e.feed_tag)
            and corr in (None, e.correlation_id)
            and (since is None or e.stored_at >= since)
            and (until is None or e.stored_at < until)
        ]
        got = list(iter_events(store, query))
        assert _ids(got) == _ids(want), query
        assert [e.stored_at for e in got] == [e.stored_at for e in want]


def test_the_store_stamps_when_it_stores(store: EventStore) -> None:
    before = datetime.now(UTC)
    event = make_event(1, at=T0 - timedelta(days=30))  # received long ago: a replay
    assert event.stored_at is None
    store.add_event(event)
    got = store.get_event(event.event_id)
    assert got is not None and got.stored_at is not None
    assert before - timedelta(seconds=1) <= got.stored_at <= datetime.now(UTC)
    # A redelivery is not a write: the first write time stays.
    store.add_event(normalise(copy.deepcopy(event.payload), T0))
    assert store.get_event(event.event_id).stored_at == got.stored_at
    newest = store.events(EventQuery(order=EventOrder.STORED, newest_first=True, limit=1))
    assert _ids(newest.events) == [event.event_id]


# -- load samples ---------------------------------------------------------------------


def _sample(feed: str, second: int, *, days: float = 30, calc: float | None = 4.2e6):
    return LoadSample(
        feed_tag=feed,
        sampled_at=T0 + timedelta(seconds=second),
        calculated_w=calc,
        target_w=None if second % 2 else 5e6,  # None: the feed's default constraint
        correlation_id=None if second % 2 else f"c{second}",
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )


def test_samples_insert_if_absent_and_round_trip(store: EventStore) -> None:
    sample = _sample("feed_a", 0, calc=0.1)
    assert store.add_sample(sample) is AddOutcome.ACCEPTED
    # The same feed and DPS time is the same sample, whatever else it says.
    assert store.add_sample(replace_sample(sample, calc=9.9)) is AddOutcome.DUPLICATE
    odd = _sample("feed_a", 1, calc=None)
    assert store.add_sample(odd) is AddOutcome.ACCEPTED
    assert store.samples(SampleQuery()).samples == [sample, odd]


def replace_sample(sample: LoadSample, *, calc: float | None = None, days: float | None = None):
    return LoadSample(
        feed_tag=sample.feed_tag,
        sampled_at=sample.sampled_at,
        calculated_w=sample.calculated_w if calc is None else calc,
        target_w=sample.target_w,
        correlation_id=sample.correlation_id,
        expires_at=sample.expires_at if days is None else datetime.now(UTC) + timedelta(days=days),
    )


def test_samples_page_oldest_first_filtered_and_never_expired(store: EventStore) -> None:
    kept = []
    for second in range(12):
        feed = f"feed_{'ab'[second % 2]}"
        expired = second % 5 == 3  # interleaved with the live ones
        sample = _sample(feed, second // 2, days=-1 if expired else 30)
        # sampled_at repeats across feeds: the sample id breaks the tie.
        assert store.add_sample(sample) is AddOutcome.ACCEPTED
        if not expired:
            kept.append(sample)
    kept.sort(key=lambda s: (s.sampled_at, s.sample_id))
    times = [None, T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)]
    for feed, since, until, limit in itertools.product(
        [None, "feed_b"], times, times, [1, 2, 1000]
    ):
        query = SampleQuery(feed_tag=feed, since=since, until=until, limit=limit)
        want = [
            s
            for s in kept
            if feed in (None, s.feed_tag)
            and (since is None or s.sampled_at >= since)
            and (until is None or s.sampled_at < until)
        ]
        assert list(iter_samples(store, query)) == want, query
    first = store.samples(SampleQuery(limit=3))
    assert first.samples == kept[:3] and first.next_cursor
    assert store.samples(SampleQuery(limit=len(kept))).next_cursor is None
    with pytest.raises(InvalidCursor):
        store.samples(SampleQuery(cursor="not-a-cursor"))


def test_an_expired_sample_makes_way_for_a_new_one(store: EventStore) -> None:
    old = _sample("feed_a", 5, days=-1)
    assert store.add_sample(old) is AddOutcome.ACCEPTED
    assert store.samples(SampleQuery()).samples == []
    fresh = replace_sample(old, calc=1.5e6, days=30)
    assert fresh.sample_id == old.sample_id
    assert store.add_sample(fresh) is AddOutcome.ACCEPTED
    assert store.samples(SampleQuery()).samples == [fresh]


# -- alerts ---------------------------------------------------------------------------


def _alert(i: int, message: str = "ramp stalled") -> AlertRecord:
    return AlertRecord(
        alert_id=f"stalled-{i}",
        kind="episode_stalled",
        detected_at=T0 + timedelta(minutes=i),
        message=f"{message} {i}",
        feed_tag="feed_a" if i % 2 else None,
        correlation_id=f"c{i}",
        details={"deadline_s": 1800, "seen": [["start_ramp_down", 1]], "": "empty key"},
    )


def test_alerts_are_reported_once_and_listed_newest_first(store: EventStore) -> None:
    assert store.alerts() == []
    for i in range(4):
        assert store.add_alert(_alert(i)) is AddOutcome.ACCEPTED
    # Seen again by a later check: already reported, and the first report is kept.
    assert store.add_alert(_alert(2, "seen again")) is AddOutcome.DUPLICATE
    assert store.alerts() == [_alert(3), _alert(2), _alert(1), _alert(0)]
    assert store.alerts(limit=2) == [_alert(3), _alert(2)]


def test_concurrent_reports_of_one_alert_store_it_once(store: EventStore) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: store.add_alert(_alert(7, f"writer {i}")), range(16)))
    assert outcomes.count(AddOutcome.ACCEPTED) == 1
    assert outcomes.count(AddOutcome.DUPLICATE) == 15
    assert len(store.alerts()) == 1


# -- quarantine -----------------------------------------------------------------------


def test_quarantine_keeps_the_first_receipt(store: EventStore) -> None:
    now = datetime.now(UTC)
    first = _quarantined(now - timedelta(minutes=5), '{"event":1}', 7)
    assert store.quarantine(first) is AddOutcome.ACCEPTED
    again = _quarantined(now, '{"event":1}', 7)
    assert again.quarantine_id == first.quarantine_id
    assert store.quarantine(again) is AddOutcome.DUPLICATE
    assert store.get_quarantined(first.quarantine_id) == first
    assert store.quarantined().items == [first]
    assert store.get_quarantined("0" * 32) is None


def test_an_expired_quarantine_record_makes_way_for_a_new_receipt(store: EventStore) -> None:
    now = datetime.now(UTC)
    old = _quarantined(now - timedelta(days=9), '{"event":2}', 7)  # expired two days ago
    assert store.quarantine(old) is AddOutcome.ACCEPTED
    assert store.get_quarantined(old.quarantine_id) is None
    new = _quarantined(now, '{"event":2}', 7)
    assert store.quarantine(new) is AddOutcome.ACCEPTED
    assert store.get_quarantined(new.quarantine_id) == new
    assert store.quarantined().items == [new]


def test_quarantine_pages_both_ways_and_hides_the_expired(store: EventStore) -> None:
    now = datetime.now(UTC)
    live = []
    for i in range(9):
        received = now - timedelta(minutes=10 - i // 2)  # pairs share a receipt time
        expired = i % 4 == 1  # interleaved with the live ones
        item = _quarantined(
            received,
            f'{{"n":{i}}}',
            7,
            expires_at=now - timedelta(hours=1) if expired else None,
        )
        store.quarantine(item)
        if not expired:
            live.append(item)
    oldest = sorted(live, key=lambda q: (q.received_at, q.quarantine_id))
    for page_size in (1, 2, 100):
        assert list(iter_quarantined(store, newest_first=False, page_size=page_size)) == oldest
        assert list(iter_quarantined(store, page_size=page_size)) == oldest[::-1]
    first = store.quarantined(limit=3)
    assert first.items == oldest[::-1][:3] and first.next_cursor
    assert store.quarantined(limit=100).next_cursor is None
    with pytest.raises(InvalidCursor):
        store.quarantined(cursor="not-a-cursor")


def test_mark_replayed_is_kept_and_survives_a_second_rejection(store: EventStore) -> None:
    now = datetime.now(UTC)
    item = _quarantined(now - timedelta(minutes=1), '{"event":"future"}', 7)
    store.quarantine(item)
    assert store.get_quarantined(item.quarantine_id).replayed_at is None
    store.mark_replayed(item.quarantine_id, "e" * 32, T0)
    got = store.get_quarantined(item.quarantine_id)
    assert (got.replayed_at, got.replayed_event_id) == (T0, "e" * 32)
    assert store.quarantined().items == [got]
    # DPS sends the same body again: still the same record, still replayed.
    assert store.quarantine(_quarantined(now, '{"event":"future"}', 7)) is AddOutcome.DUPLICATE
    assert store.get_quarantined(item.quarantine_id) == got
    # Marking what is not kept creates nothing.
    store.mark_replayed("f" * 32, "e" * 32, T0)
    assert store.get_quarantined("f" * 32) is None
    assert store.quarantined().items == [got]


#: What each backend can hold of a quarantined body: None = any size.
RECORD_CAPS = {"sqlite": None, "firestore": 1_048_576, "dynamodb": 400 * 1024}


def test_a_body_within_the_default_limit_is_kept_whole(store: EventStore) -> None:
    # 64 KiB, the default GRIDHOOK_MAX_BODY_BYTES, with multi-byte characters in it.
    body = ('{"event":"x","pad":"' + "é€" * 13_000)[: 64 * 1024 - 2] + '"}'
    item = _quarantined(datetime.now(UTC), body, 7)
    store.quarantine(item)
    got = store.get_quarantined(item.quarantine_id)
    assert got == item and not got.truncated


def test_a_body_over_the_backends_cap_is_kept_as_a_flagged_prefix(
    store: EventStore, store_url: str
) -> None:
    # 10 MiB, the largest body the receiver accepts; 3-byte characters, so a cut on a
    # byte count would split one unless it keeps to character boundaries.
    body = '{"pad":"' + "€" * (10 * 1024 * 1024 // 3)
    item = _quarantined(datetime.now(UTC), body, 7)
    assert store.quarantine(item) is AddOutcome.ACCEPTED
    got = store.get_quarantined(item.quarantine_id)
    assert (got.body_bytes, got.body_sha256) == (item.body_bytes, item.body_sha256)
    cap = RECORD_CAPS[store_url.partition(":")[0]]
    if cap is None:
        assert got == item and not got.truncated
    else:
        kept = len(got.body.encode("utf-8"))
        assert got.truncated and body.startswith(got.body)
        assert 0.9 * cap < kept < cap  # the longest prefix that fits, with a margin
        assert got.errors == item.errors
    assert store.quarantined().items == [got]


# -- two sites: each read names one site, and sees nothing of another ------------------

#: Pairs of sites: the default site beside another, and two others.
SITE_PAIRS = [("default", "phx1"), ("phx1", "ams2")]


@pytest.fixture(params=SITE_PAIRS, ids="+".join)
def sites(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


def _on(site: str, i: int, feed: str = "main_power_feed", corr: str = "c1", **changes):
    """The same payload (by ``i``) delivered to ``site``, as the receiver's intake stores it."""
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload.update(feed_tag=feed, correlation_id=corr, seq=i, **changes)
    return normalise(payload, T0 + timedelta(seconds=i), site=site)


def test_the_same_payload_on_two_sites_is_two_events_in_two_states(
    store: EventStore, sites: tuple[str, str]
) -> None:
    from gridhook.state.load import current_feed_states

    a, b = sites
    on_a, on_b = _on(a, 1), _on(b, 1)
    assert on_a.payload == on_b.payload and on_a.event_id != on_b.event_id
    assert store.add_event(on_a) is AddOutcome.ACCEPTED
    assert store.add_event(on_b) is AddOutcome.ACCEPTED
    # A redelivery is a duplicate on its own site only.
    assert store.add_event(_on(a, 1)) is AddOutcome.DUPLICATE
    assert store.add_event(_on(b, 1)) is AddOutcome.DUPLICATE
    # Site b's feed of the same name then ends its ramp down; site a's does not.
    store.add_event(_on(b, 2, event="end_ramp_down"))
    for site, own in ((a, [on_a]), (b, [on_b])):
        got = store.events(EventQuery(site=site)).events
        assert [(e.event_id, e.site) for e in got[:1]] == [(own[0].event_id, site)]
    assert len(store.events(EventQuery(site=a)).events) == 1
    assert len(store.events(EventQuery(site=b)).events) == 2
    assert store.get_event(on_a.event_id, site=a) == on_a
    assert store.get_event(on_a.event_id, site=b) is None
    assert store.get_event(on_b.event_id, site=a) is None
    states = {
        site: current_feed_states(
            store, now=T0 + timedelta(minutes=1), ramp_deadline=3600, site=site
        )
        for site in (a, b)
    }
    assert states[a]["main_power_feed"].phase == "ramping_down"
    assert states[b]["main_power_feed"].phase == "constrained"


def test_the_same_event_id_on_two_sites_is_two_records(
    store: EventStore, sites: tuple[str, str]
) -> None:
    # Ids are unique within a site: even an id made elsewhere never collides across sites.
    a, b = sites
    event = _on(a, 1)
    elsewhere = replace(event, site=b, received_at=T0 + timedelta(hours=1))
    assert store.add_event(event) is AddOutcome.ACCEPTED
    assert store.add_event(elsewhere) is AddOutcome.ACCEPTED
    assert store.get_event(event.event_id, site=a) == event
    assert store.get_event(event.event_id, site=b) == elsewhere


def test_no_event_query_of_one_site_sees_another(store: EventStore, sites: tuple[str, str]) -> None:
    a, b = sites
    mine = [_on(a, i, f"feed_{'ab'[i % 2]}", f"c{i % 3}") for i in range(6)]
    theirs = [_on(b, i, f"feed_{'ab'[i % 2]}", f"c{i % 3}") for i in range(100, 104)]
    for e in mine + theirs:
        store.add_event(e)
    times = [None, T0 + timedelta(seconds=2)]
    for feed, corr, since, newest_first, order in itertools.product(
        [None, "feed_a"], [None, "c1"], times, [False, True], list(EventOrder)
    ):
        for site, own in ((a, mine), (b, theirs)):
            query = EventQuery(
                site=site,
                feed_tag=feed,
                correlation_id=corr,
                since=since if order is EventOrder.RECEIVED else None,
                newest_first=newest_first,
                order=order,
                limit=2,
            )
            want = {
                e.event_id
                for e in own
                if feed in (None, e.feed_tag)
                and corr in (None, e.correlation_id)
                and (query.since is None or e.received_at >= query.since)
            }
            got = list(iter_events(store, query))
            assert {e.event_id for e in got} == want, query
            assert {e.site for e in got} <= {site}
    latest = {site: store.latest_by_feed(site=site) for site in (a, b)}
    assert {t: e.payload["seq"] for t, e in latest[a].items()} == {"feed_a": 4, "feed_b": 5}
    assert {t: e.payload["seq"] for t, e in latest[b].items()} == {"feed_a": 102, "feed_b": 103}


def test_a_default_feed_tag_that_looks_like_another_sites_key_stays_apart(
    store: EventStore,
) -> None:
    # "phx1#main" is a valid feed tag (and correlation id) on the default site; it is also
    # how DynamoDB keys site phx1's "main". Neither site may see the other's event.
    default = _on("default", 1, feed="phx1#main", corr="phx1#c1")
    phx1 = _on("phx1", 2, feed="main", corr="c1")
    store.add_event(default)
    store.add_event(phx1)
    for site, feed, corr, own in (
        ("default", "phx1#main", "phx1#c1", default),
        ("phx1", "main", "c1", phx1),
    ):
        for query in (
            EventQuery(site=site, feed_tag=feed),
            EventQuery(site=site, correlation_id=corr),
            EventQuery(site=site, feed_tag=feed, correlation_id=corr),
            EventQuery(site=site, feed_tag=feed, order=EventOrder.STORED),
        ):
            assert _ids(store.events(query).events) == [own.event_id], query
        assert _ids(store.latest_by_feed(site=site).values()) == [own.event_id]
    assert store.events(EventQuery(site="phx1", feed_tag="phx1#main")).events == []
    now = datetime.now(UTC)
    for site, feed in (("default", "phx1#main"), ("phx1", "main")):
        store.add_sample(replace(_sample(feed, 1), site=site, expires_at=now + timedelta(days=1)))
    for site, feed in (("default", "phx1#main"), ("phx1", "main")):
        [sample] = store.samples(SampleQuery(site=site, feed_tag=feed)).samples
        assert (sample.site, sample.feed_tag) == (site, feed)


def test_samples_of_one_feed_and_moment_on_two_sites_are_two(
    store: EventStore, sites: tuple[str, str]
) -> None:
    a, b = sites
    on_a = replace(_sample("feed_a", 1, calc=1.0), site=a)
    on_b = replace(_sample("feed_a", 1, calc=2.0), site=b)
    assert on_a.sample_id != on_b.sample_id
    assert store.add_sample(on_a) is AddOutcome.ACCEPTED
    assert store.add_sample(on_b) is AddOutcome.ACCEPTED
    assert store.add_sample(replace(on_a, calculated_w=3.0)) is AddOutcome.DUPLICATE
    for site, own in ((a, on_a), (b, on_b)):
        assert store.samples(SampleQuery(site=site)).samples == [own]
        assert store.samples(SampleQuery(site=site, feed_tag="feed_a")).samples == [own]
        assert store.samples(SampleQuery(site=site, feed_tag="feed_b")).samples == []


def test_quarantine_keeps_each_sites_own(store: EventStore, sites: tuple[str, str]) -> None:
    from gridhook.store import quarantine_id

    a, b = sites
    now = datetime.now(UTC)
    body = '{"event":"from_the_future"}'
    on_a = replace(
        _quarantined(now - timedelta(minutes=1), body, 7),
        quarantine_id=quarantine_id(body.encode(), a),
        site=a,
    )
    on_b = replace(
        _quarantined(now, body, 7), quarantine_id=quarantine_id(body.encode(), b), site=b
    )
    assert on_a.quarantine_id != on_b.quarantine_id
    assert store.quarantine(on_a) is AddOutcome.ACCEPTED
    assert store.quarantine(on_b) is AddOutcome.ACCEPTED
    # The same id on another site is not that site's record either.
    same_id = replace(on_b, quarantine_id=on_a.quarantine_id)
    assert store.quarantine(same_id) is AddOutcome.ACCEPTED
    assert store.quarantined(site=a).items == [on_a]
    assert {q.quarantine_id for q in store.quarantined(site=b).items} == {
        on_a.quarantine_id,
        on_b.quarantine_id,
    }
    assert list(iter_quarantined(store, site=a)) == [on_a]
    assert store.get_quarantined(on_b.quarantine_id, site=a) is None
    store.mark_replayed(on_a.quarantine_id, "e" * 32, T0, site=a)
    assert store.get_quarantined(on_a.quarantine_id, site=a).replayed_at == T0
    assert store.get_quarantined(on_a.quarantine_id, site=b).replayed_at is None
    store.mark_replayed(on_b.quarantine_id, "e" * 32, T0, site=a)  # not site a's: nothing
    assert store.get_quarantined(on_b.quarantine_id, site=b) == on_b


def test_subscriptions_drift_and_alerts_of_one_id_on_two_sites_are_two(
    store: EventStore, sites: tuple[str, str]
) -> None:
    a, b = sites
    subscription = SubscriptionRecord(
        subscription_id="s1",
        url="https://example.test/nvgrid/webhook?token=REDACTED",
        events=("start_ramp_down",),
        token_fingerprint="abc123",
        desired=True,
        registered=True,
    )
    for site in (a, b):
        store.put_subscription(replace(subscription, site=site, url=f"https://{site}.test/hook"))
        store.add_drift(
            DriftRecord("d1", "feed_a", T0, f"drift on {site}", site=site, our_view={"s": site})
        )
        assert store.add_alert(replace(_alert(1, f"on {site}"), site=site)) is AddOutcome.ACCEPTED
    for site in (a, b):
        [got] = store.subscriptions(site=site)
        assert (got.site, got.url) == (site, f"https://{site}.test/hook")
        [drift] = store.drift(site=site)
        assert (drift.site, drift.message, drift.our_view) == (
            site,
            f"drift on {site}",
            {"s": site},
        )
        [alert] = store.alerts(site=site)
        assert (alert.site, alert.message) == (site, f"on {site} 1")
    store.delete_subscription("s1", site=a)
    assert store.subscriptions(site=a) == []
    assert [s.site for s in store.subscriptions(site=b)] == [b]


def test_a_read_names_a_valid_site() -> None:
    for bad in ("", "PHX1", "a/b", "phx1#x", "-x"):
        with pytest.raises(ValueError, match="not a site name"):
            EventQuery(site=bad)
        with pytest.raises(ValueError, match="not a site name"):
            SampleQuery(site=bad)
