"""A report over several sites: each site's own report (its feeds, its local days), read
from that site alone, and their figures together.

Every store read names one site (docs/design.md, "Sites and the store"): a fleet report is
one ``build_report`` per site, merged here, so no site's events can reach another's section.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gridhook.report.build import build_report
from gridhook.report.model import FleetReport
from gridhook.report.summary import summarise
from gridhook.sites import Site
from gridhook.store import EventStore

if TYPE_CHECKING:
    from gridhook.report.settled import DeliveryOptions

__all__ = ["build_fleet_report"]


def build_fleet_report(
    store: EventStore,
    sites: Sequence[Site],
    *,
    since: datetime,
    until: datetime,
    feed_tag: str | None = None,
    now: datetime,
    ramp_deadline: timedelta,
    several: bool = False,
    delivery: DeliveryOptions | None = None,
) -> FleetReport:
    """The report of ``sites`` (in the order given) over [since, until), on one feed tag
    (each site's feed of that name) or all; ``several``: the deployment has more than one
    site, so the report names each row's site; ``delivery``: settle each curtailment
    against that baseline method. Raises StoreError and SettlementInputError."""
    if not sites:
        raise ValueError("a report needs at least one site")
    reports = tuple(
        build_report(
            store,
            since=since,
            until=until,
            feed_tag=feed_tag,
            now=now,
            ramp_deadline=ramp_deadline,
            site=site.name,
            zone=site.zone,
            delivery=delivery,
        )
        for site in sites
    )
    return FleetReport(
        since=since,
        until=until,
        generated_at=now,
        feed_filter=feed_tag,
        ramp_deadline_seconds=ramp_deadline.total_seconds(),
        sites=reports,
        overall=summarise([e for r in reports for e in r.episodes], since, until),
        several=several,
        delivery=delivery,
    )
