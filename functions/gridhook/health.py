"""Each site's health: is it registered with its DPS, did its last reconcile succeed, when did
it last deliver a webhook and a load sample, which of its episodes are open or stalled.

``gridhook sites`` prints it and the fleet control room shows its warnings. It reads, per
site, the subscription records, the newest event of each feed, one page of each feed's
newest events (its state) and the newest load sample: O(sites x feeds), never the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gridhook.events import rfc3339
from gridhook.sites import Site
from gridhook.state import FeedState
from gridhook.store import EventStore, LoadSample, SampleQuery, SubscriptionRecord, iter_samples

__all__ = [
    "RECENT_SAMPLES",
    "Registration",
    "SiteHealth",
    "newest_sample",
    "recent_samples",
    "registration",
    "site_health",
]

#: How far back the newest load sample is looked for first: ``sample_load`` runs every
#: minute, so this holds a few of each feed's samples when sampling works.
RECENT_SAMPLES = timedelta(minutes=15)
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Registration:
    """What a site's subscription records say of its registration with its DPS.

    ``state``: ``registered`` (the last attempt succeeded), ``failing`` (the last attempt
    failed: ``last_error``, ``consecutive_failures``), ``pending`` (recorded, never
    attempted) or ``never`` (no record: reconcile has not run for the site).
    ``stale``: registrations reconcile still has to remove (an old token's URL).
    """

    state: str
    url: str | None = None  # redacted: never a token
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    stale: int = 0

    @property
    def reconcile_outcome(self) -> str:
        """The last reconcile's outcome for the registration: ok, failed or never."""
        if self.last_attempt is None:
            return "never"
        return "failed" if self.last_error else "ok"

    @property
    def healthy(self) -> bool:
        return self.state == "registered" and not self.stale

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "url": self.url,
            "last_reconcile": rfc3339(self.last_attempt),
            "reconcile_outcome": self.reconcile_outcome,
            "last_success": rfc3339(self.last_success),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "stale": self.stale,
        }


def _attempted(record: SubscriptionRecord) -> datetime:
    return record.last_attempt or _NEVER


def registration(records: list[SubscriptionRecord]) -> Registration:
    """A site's registration from its subscription records (reconcile writes them): the
    desired registration's last attempt, and the stale ones still to remove."""
    desired = [r for r in records if r.desired]
    stale = [r for r in records if not r.desired]
    failed_removals = [r for r in stale if r.last_error]
    if not desired:
        if not stale:
            return Registration("never")
        # Only registrations to remove are left (a teardown that could not finish).
        newest = max(stale, key=_attempted)
        return Registration(
            "failing" if failed_removals else "pending",
            last_attempt=newest.last_attempt,
            last_error=newest.last_error,
            consecutive_failures=newest.consecutive_failures,
            stale=len(stale),
        )
    record = max(desired, key=_attempted)
    if record.last_attempt is None:
        state = "pending"
    elif record.last_error or not record.registered:
        state = "failing"
    else:
        state = "registered"
    error = record.last_error
    if error is None and failed_removals:
        # The run registered the URL, then failed to remove an old one: its error too.
        latest = max(failed_removals, key=_attempted)
        if _attempted(latest) >= _attempted(record):
            error = latest.last_error
    return Registration(
        state,
        url=record.url,
        last_attempt=record.last_attempt,
        last_success=record.last_success,
        last_error=error,
        consecutive_failures=record.consecutive_failures,
        stale=len(stale),
    )


def recent_samples(store: EventStore, site: str, now: datetime) -> list[LoadSample]:
    """``site``'s samples of the last RECENT_SAMPLES (and any stamped after ``now``: DPS's
    clock may run ahead), oldest first: a few per feed."""
    query = SampleQuery(site=site, since=now - RECENT_SAMPLES, limit=1000)
    return list(iter_samples(store, query))


def newest_sample(store: EventStore, site: str, now: datetime) -> LoadSample | None:
    """``site``'s newest load sample, without reading its history.

    Samples are listed oldest first only, so when none is recent the newest is found by
    bisection: "the first sample at or after t" is one indexed query of one row, and about
    16 of them narrow 400 days down to RECENT_SAMPLES, which is then read.
    """
    recent = recent_samples(store, site, now)
    if recent:
        return recent[-1]

    def first_from(moment: datetime | None) -> LoadSample | None:
        page = store.samples(SampleQuery(site=site, since=moment, limit=1))
        return page.samples[0] if page.samples else None

    low = first_from(None)  # the oldest kept: none at all, or the newest lies after it
    high = now - RECENT_SAMPLES  # nothing at or after this (the recent read found none)
    if low is None:
        return None
    while high - low.sampled_at > RECENT_SAMPLES:
        found = first_from(low.sampled_at + (high - low.sampled_at) / 2)
        if found is None:
            high = low.sampled_at + (high - low.sampled_at) / 2
        else:
            low = found
    tail = list(iter_samples(store, SampleQuery(site=site, since=low.sampled_at, limit=1000)))
    return tail[-1] if tail else low


@dataclass(frozen=True, slots=True)
class SiteHealth:
    """One site now: its registration, its newest event and sample, its feeds' episodes."""

    site: Site
    checked_at: datetime
    registration: Registration
    feeds: tuple[FeedState, ...]
    last_sample: LoadSample | None

    @property
    def last_event(self) -> FeedState | None:
        """The state of the feed that received the site's newest event."""
        received = [f for f in self.feeds if f.last_received_at is not None]
        return max(received, key=lambda f: f.last_received_at or _NEVER, default=None)

    @property
    def open_episodes(self) -> int:
        return sum(1 for f in self.feeds if f.episode_open)

    @property
    def stalled_episodes(self) -> int:
        return sum(1 for f in self.feeds if f.stalled)

    def to_dict(self) -> dict[str, Any]:
        event, sample = self.last_event, self.last_sample
        return {
            "site": self.site.name,
            "timezone": self.site.timezone,
            "checked_at": rfc3339(self.checked_at),
            "registration": self.registration.to_dict(),
            "feeds": len(self.feeds),
            "last_event_at": rfc3339(event.last_received_at) if event else None,
            "last_event_feed": event.feed_tag if event else None,
            "last_sample_at": rfc3339(sample.sampled_at) if sample else None,
            "last_sample_feed": sample.feed_tag if sample else None,
            "open_episodes": self.open_episodes,
            "stalled_episodes": self.stalled_episodes,
            "stalled_feeds": [f.feed_tag for f in self.feeds if f.stalled],
        }


def site_health(
    store: EventStore, site: Site, *, now: datetime, ramp_deadline: timedelta | float
) -> SiteHealth:
    """``site``'s health now; raises StoreError."""
    from gridhook.state.load import current_feed_states

    states = current_feed_states(store, now=now, ramp_deadline=ramp_deadline, site=site.name)
    return SiteHealth(
        site=site,
        checked_at=now,
        registration=registration(store.subscriptions(site=site.name)),
        feeds=tuple(states[tag] for tag in sorted(states)),
        last_sample=newest_sample(store, site.name, now),
    )
