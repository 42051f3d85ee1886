"""Delivered against needed, per episode, for the report and the control rooms: each feed's
curtailments settled against a customer baseline (``gridhook.settlement``), as plain data.

A :class:`FeedDelivery` is one feed's settlements over a report's range: each listed
curtailment's :class:`~gridhook.settlement.Settlement` (or, when it cannot be settled, the
reason in words), the figures of each inside ``[since, until)`` and their totals — counted
by the report's rule: only what lies inside the range, so adjacent ranges add up.

No plotting, no templating, no store here: ``gridhook.report.settled`` reads the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gridhook.events import rfc3339
from gridhook.settlement import Settlement, SettlementTotals, range_totals

if TYPE_CHECKING:
    from gridhook.episodes import Episode as EpisodeLike

__all__ = ["DeliveryTotals", "EpisodeBar", "FeedDelivery", "LiveDelivery", "delivery_totals"]


@dataclass(frozen=True)
class DeliveryTotals:
    """Delivered and needed inside a range over some settlements (``totals``), and how many
    of them have figures at all: when none has, the page says their statuses in words,
    never a total of 0."""

    totals: SettlementTotals
    with_figures: int  # settlements in the range with a baseline (so with figures)
    not_settled: int  # episodes listed that could not be settled

    @property
    def shown(self) -> bool:
        """Whether there is a figure to show (some settlement has one)."""
        return self.with_figures > 0

    @property
    def words(self) -> str:
        """The statuses in words, for when no figure is shown."""
        parts = [status.replace("_", " ") for status in self.totals.statuses]
        if self.not_settled:
            parts.append("not settled")
        return " · ".join(parts) or "nothing to settle"

    def to_dict(self) -> dict[str, Any]:
        body = self.totals.to_dict()
        if not self.shown:  # nothing had figures: no total, not a total of 0
            body.update(delivered_mwh=None, needed_mwh=None)
        return {**body, "with_figures": self.with_figures, "not_settled": self.not_settled}


@dataclass(frozen=True, slots=True)
class EpisodeBar:
    """One episode on the delivered-against-needed chart: its figures, or (``word``) why it
    has none."""

    started_at: datetime
    correlation_id: str | None
    delivered_mwh: float | None
    needed_mwh: float | None
    status: str | None  # the settlement's status; None: not settled
    word: str | None  # shown instead of a bar: the status, or "not settled"


@dataclass(frozen=True)
class LiveDelivery:
    """What a constrained feed delivers now: baseline - actual at the latest interval of its
    open episode with both (``delivered_w``), or why there is no such figure (``reason``)."""

    method: str
    resolution: str
    source: str | None  # meter | samples; None: no load was read
    delivered_w: float | None
    baseline_w: float | None
    actual_w: float | None
    interval_start: datetime | None
    interval_end: datetime | None
    status: str | None  # the open episode's settlement status
    reason: str  # why there is no figure ("" when there is)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "resolution": self.resolution,
            "source": self.source,
            "delivered_w": self.delivered_w,
            "baseline_w": self.baseline_w,
            "actual_w": self.actual_w,
            "interval_start": rfc3339(self.interval_start),
            "interval_end": rfc3339(self.interval_end),
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FeedDelivery:
    """One feed's curtailments settled over ``[since, until)``.

    ``settlements``: of the listed curtailments that could be settled, oldest first;
    ``not_settled``: the others by episode id, each with the reason in words (a load
    increase, no target interval, no feed tag, the load could not be read).
    """

    site: str
    feed_tag: str | None
    since: datetime
    until: datetime
    method: str
    resolution: str
    source: str | None  # what the series was read from (meter | samples); None: not read
    requested_source: str  # auto | meter | samples, as asked
    settlements: tuple[Settlement, ...] = ()
    not_settled: dict[str, str] = field(default_factory=dict)
    # Why nothing of the feed could be settled at all (its site's time zone cannot carry
    # the interval grid, say); "" when it could.
    unavailable: str = ""
    _by_episode: dict[str, Settlement] = field(init=False, repr=False, compare=False)
    _in_range: dict[str, SettlementTotals] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_episode = {s.episode_id: s for s in self.settlements if s.episode_id is not None}
        object.__setattr__(self, "_by_episode", by_episode)
        in_range = {
            episode_id: range_totals((s,), self.since, self.until)
            for episode_id, s in by_episode.items()
        }
        object.__setattr__(self, "_in_range", in_range)

    def of(self, episode_id: str) -> Settlement | None:
        """The episode's settlement, if it was settled."""
        return self._by_episode.get(episode_id)

    def reason_not_settled(self, episode_id: str) -> str | None:
        return self.not_settled.get(episode_id) or self.unavailable or None

    def in_range(self, episode_id: str) -> SettlementTotals | None:
        """The episode's figures inside ``[since, until)``."""
        return self._in_range.get(episode_id)

    @property
    def totals(self) -> DeliveryTotals:
        """Delivered and needed inside ``[since, until)``, every settlement of the feed."""
        return delivery_totals([self], self.since, self.until)

    @property
    def with_baseline(self) -> int:
        return sum(1 for s in self.settlements if s.delivered_wh is not None)

    def baseline_steps(
        self, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, float | None]]:
        """The baseline over each settled interval, clipped to ``[start, end)``, in time
        order; an interval without a baseline is None (a gap in the line)."""
        steps: list[tuple[datetime, datetime, float | None]] = []
        for s in sorted(self.settlements, key=lambda s: s.event_start):
            if s.delivered_wh is None and all(i.baseline_w is None for i in s.intervals):
                continue
            for row in s.intervals:
                lo, hi = max(row.interval_start, start), min(row.interval_end, end)
                if hi > lo:
                    steps.append((lo, hi, row.baseline_w))
        return steps

    def bars(self, episodes: Sequence[EpisodeLike]) -> list[EpisodeBar]:
        """The chart's bars: each curtailment of ``episodes`` (oldest first) with its whole
        delivered and needed MWh; without a figure, its status word instead."""
        bars = []
        for episode in episodes:
            if episode.kind != "curtailment":
                continue
            s = self.of(episode.episode_id)
            delivered = None if s is None else s.delivered_mwh
            needed = None if s is None else s.needed_mwh
            word = None
            if s is None:
                word = "not settled"
            elif delivered is None:
                word = s.status.replace("_", " ")
            bars.append(
                EpisodeBar(
                    episode.started_at,
                    episode.correlation_id,
                    delivered,
                    needed,
                    None if s is None else s.status,
                    word,
                )
            )
        return bars

    def live(self, episode_id: str | None) -> LiveDelivery:
        """What the open episode ``episode_id`` delivers at its latest interval with a
        baseline and an actual load, or why nothing can be said."""
        settlement = None if episode_id is None else self.of(episode_id)
        if settlement is None:
            reason = (
                self.reason_not_settled(episode_id)
                if episode_id is not None and self.reason_not_settled(episode_id)
                else "no curtailment of this feed to settle"
            )
            return LiveDelivery(
                self.method,
                self.resolution,
                self.source,
                None,
                None,
                None,
                None,
                None,
                None,
                reason or "no curtailment of this feed to settle",
            )
        counted = [i for i in settlement.intervals if i.delivered_w is not None]
        latest = counted[-1] if counted else None
        if latest is None:
            has_baseline = any(i.baseline_w is not None for i in settlement.intervals)
            if settlement.status == "insufficient_history" or not has_baseline:
                reason = settlement.reason or f"no baseline ({settlement.status})"
            else:
                reason = (
                    f"no complete {settlement.resolution} interval of the event with an actual "
                    f"load yet"
                )
            return LiveDelivery(
                settlement.method,
                settlement.resolution,
                settlement.source,
                None,
                None,
                None,
                None,
                None,
                settlement.status,
                reason,
            )
        return LiveDelivery(
            settlement.method,
            settlement.resolution,
            settlement.source,
            latest.delivered_w,
            latest.baseline_w,
            latest.actual_w,
            latest.interval_start,
            latest.interval_end,
            settlement.status,
            "",
        )

    def episode_dict(self, episode_id: str) -> dict[str, Any]:
        """An episode's delivered figures as JSON data (``settlement`` None when it was not
        settled, with ``reason``)."""
        settlement = self.of(episode_id)
        if settlement is None:
            return {
                "method": self.method,
                "status": None,
                "reason": self.reason_not_settled(episode_id) or "not settled",
                "settlement": None,
                "in_range": None,
            }
        share = self.in_range(episode_id)
        return {
            "method": settlement.method,
            "status": settlement.status,
            "reason": settlement.reason,
            "settlement": settlement.to_dict(),
            "in_range": None
            if share is None or settlement.delivered_wh is None
            else {"delivered_mwh": share.delivered_mwh, "needed_mwh": share.needed_mwh},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "resolution": self.resolution,
            "source": self.source,
            "requested_source": self.requested_source,
            "totals": self.totals.to_dict(),
            "not_settled": dict(self.not_settled),
            "unavailable": self.unavailable or None,
        }


def delivery_totals(
    deliveries: Sequence[FeedDelivery], since: datetime, until: datetime
) -> DeliveryTotals:
    """Delivered and needed inside ``[since, until)`` over several feeds (or sites)."""
    settlements = [s for d in deliveries for s in d.settlements]
    totals = range_totals(settlements, since, until)
    with_figures = sum(
        1
        for d in deliveries
        for s in d.settlements
        if s.delivered_wh is not None
        and (episode := d.in_range(s.episode_id or "")) is not None
        and episode.episodes
    )
    return DeliveryTotals(totals, with_figures, sum(len(d.not_settled) for d in deliveries))
