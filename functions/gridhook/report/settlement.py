"""A settlement (``gridhook.intervals.settle.SettlementRun``) as HTML, JSON, CSV and the rows
of the command's table.

One row per episode — its whole figures and its share inside the range — then totals per
feed, per site and for the fleet, which count only what lies inside the range. A status
other than ``complete`` is shown as its word and its reason, never as a zero; every figure
says the method and the source (meter or samples) it used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import tzinfo
from typing import Any

from gridhook import csv_format
from gridhook.events import rfc3339
from gridhook.intervals.settle import FeedSettlement, SettlementRun, Unsettled
from gridhook.settlement import Settlement, SettlementTotals, range_totals

__all__ = [
    "CSV_COLUMNS",
    "csv_rows",
    "figures_known",
    "render_csv",
    "render_html",
    "render_json",
    "settlement_dict",
]

#: One CSV row per episode (``row`` = ``episode``), then a row of totals per feed, per site
#: and for the fleet (``row`` = ``feed``, ``site``, ``fleet``), whose ``*_in_range`` cells
#: hold the totals and whose per-episode cells are empty. ``delivered_mwh`` /
#: ``needed_mwh`` are the episode's whole figures; ``*_in_range`` their part inside the
#: range. ``shadow_delivered_mwh``: the same episode settled on DPS samples where meter
#: data was the source.
CSV_COLUMNS = (
    "row",
    "site",
    "feed",
    "episode_id",
    "event_start",
    "event_end",
    "event_start_local",
    "event_end_local",
    "target_mw",
    "method",
    "source",
    "resolution",
    "status",
    "reason",
    "delivered_mwh",
    "needed_mwh",
    "performance_factor",
    "performance_factor_uncapped",
    "intervals_at_or_below_target",
    "intervals_counted",
    "intervals_missing",
    "episodes",
    "delivered_mwh_in_range",
    "needed_mwh_in_range",
    "performance_factor_in_range",
    "shadow_source",
    "shadow_delivered_mwh",
)


def _factor(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def _local_rfc3339(moment: Any, zone: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(zone).isoformat()


def _shadow_of(feed: FeedSettlement) -> dict[str | None, Settlement]:
    return {s.episode_id: s for s in feed.shadow}


def _episode_csv(
    run: SettlementRun, s: Settlement, zone: tzinfo, shadow: Settlement | None
) -> dict[str, str]:
    share = range_totals([s], run.since, run.until)
    known = s.delivered_wh is not None  # without a baseline, no figure: empty, never 0
    return {
        "row": "episode",
        "site": s.site,
        "feed": s.feed,
        "episode_id": s.episode_id or "",
        "event_start": csv_format.when(s.event_start),
        "event_end": csv_format.when(s.event_end),
        "event_start_local": _local_rfc3339(s.event_start, zone),
        "event_end_local": _local_rfc3339(s.event_end, zone),
        "target_mw": csv_format.mw(s.target_w),
        "method": s.method,
        "source": s.source,
        "resolution": s.resolution,
        "status": s.status,
        "reason": s.reason,
        "delivered_mwh": csv_format.mwh(s.delivered_wh),
        "needed_mwh": csv_format.mwh(s.needed_wh),
        "performance_factor": _factor(s.performance_factor),
        "performance_factor_uncapped": _factor(s.performance_factor_uncapped),
        "intervals_at_or_below_target": ""
        if s.intervals_at_or_below_target is None
        else str(s.intervals_at_or_below_target),
        "intervals_counted": str(s.intervals_counted),
        "intervals_missing": str(s.intervals_missing),
        "episodes": "1" if share.episodes else "0",
        "delivered_mwh_in_range": csv_format.mwh(share.delivered_wh) if known else "",
        "needed_mwh_in_range": csv_format.mwh(share.needed_wh)
        if known and s.needed_wh is not None
        else "",
        "performance_factor_in_range": _factor(share.performance_factor),
        "shadow_source": "" if shadow is None else shadow.source,
        "shadow_delivered_mwh": "" if shadow is None else csv_format.mwh(shadow.delivered_wh),
    }


def figures_known(settlements: Iterable[Settlement]) -> bool:
    """Whether any of these has figures (a baseline): a total of none is unknown, not 0."""
    return any(s.delivered_wh is not None for s in settlements)


def _totals_csv(
    row: str,
    site: str,
    feed: str,
    totals: SettlementTotals,
    method: str,
    group: Iterable[Settlement],
) -> dict[str, str]:
    cells = dict.fromkeys(CSV_COLUMNS, "")
    known = figures_known(group)
    cells.update(
        row=row,
        site=site,
        feed=feed,
        method=method,
        status=" | ".join(f"{k}: {v}" for k, v in totals.statuses.items()),
        episodes=str(totals.episodes),
        delivered_mwh_in_range=csv_format.mwh(totals.delivered_wh) if known else "",
        needed_mwh_in_range=csv_format.mwh(totals.needed_wh) if known else "",
        performance_factor_in_range=_factor(totals.performance_factor),
    )
    return cells


def csv_rows(run: SettlementRun) -> Iterator[dict[str, str]]:
    """Each site's episodes by feed with the feed's totals after them, then the site's
    totals; the fleet's last."""
    for name, site in run.sites.items():
        for feed in site.feeds.values():
            shadows = _shadow_of(feed)
            for s in feed.settlements:
                yield _episode_csv(run, s, site.site.zone, shadows.get(s.episode_id))
            yield _totals_csv("feed", name, feed.feed, feed.totals, run.method, feed.settlements)
        yield _totals_csv("site", name, "", site.totals, run.method, site.settlements)
    yield _totals_csv("fleet", "", "", run.totals, run.method, run.settlements)


def render_csv(run: SettlementRun) -> str:
    return csv_format.text(CSV_COLUMNS, csv_rows(run))


# -- JSON ------------------------------------------------------------------------------------


def _settlement_json(run: SettlementRun, s: Settlement, zone: tzinfo) -> dict[str, Any]:
    data = s.to_dict()
    data["event_start_local"] = _local_rfc3339(s.event_start, zone) or None
    data["event_end_local"] = _local_rfc3339(s.event_end, zone) or None
    # Its part inside the range; None without figures (a status is never a zero).
    share = range_totals([s], run.since, run.until).to_dict()
    data["in_range"] = share if s.delivered_wh is not None else None
    return data


def settlement_dict(run: SettlementRun) -> dict[str, Any]:
    """The whole settlement as JSON data: by site, then feed, each episode with every
    interval, its days and its adjustment, and the totals at each level."""
    sites = []
    for name, site in run.sites.items():
        zone = site.site.zone
        feeds = []
        for feed in site.feeds.values():
            feeds.append(
                {
                    "feed": feed.feed,
                    "load": None if feed.load is None else feed.load.to_dict(),
                    "totals": feed.totals.to_dict(),
                    "settlements": [_settlement_json(run, s, zone) for s in feed.settlements],
                    "shadow": [_settlement_json(run, s, zone) for s in feed.shadow],
                }
            )
        sites.append(
            {
                "site": name,
                "timezone": site.site.timezone,
                "totals": site.totals.to_dict(),
                "feeds": feeds,
                "unsettled": [u.to_dict() for u in site.unsettled],
            }
        )
    return {
        "since": rfc3339(run.since),
        "until": rfc3339(run.until),
        "generated_at": rfc3339(run.generated_at),
        "method": run.method,
        "source": run.source,
        "resolution": run.resolution,
        "totals": run.totals.to_dict(),
        "sites": sites,
    }


def render_json(run: SettlementRun) -> str:
    body = settlement_dict(run)
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# -- HTML ------------------------------------------------------------------------------------


def _status_text(s: Settlement) -> str:
    return s.status.replace("_", " ")


def render_html(run: SettlementRun, *, several: bool = False, root: str = "") -> str:
    """The settlement as one self-contained, print-ready page (the report's styles): the
    totals, a "how to read" box, then each site's feeds and their episodes. ``several``:
    the deployment has more than one site (rows name their site); ``root``: the way back
    to power_report's root, for the link to the report (empty in a written file)."""
    from gridhook.report.render import _jinja

    one = None if several or len(run.sites) != 1 else next(iter(run.sites.values()))
    unsettled: list[Unsettled] = run.unsettled
    template = _jinja().get_template("settlement.html")
    return template.render(
        run=run,
        one=one,
        several=several,
        unsettled=unsettled,
        root=root,
        in_range=lambda s: range_totals([s], run.since, run.until),
        shadow_of=_shadow_of,
        status_text=_status_text,
        known=figures_known,
    )
