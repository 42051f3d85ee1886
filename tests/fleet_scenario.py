"""A fleet for the fleet views' tests (CLI, HTTP, browser): four sites in four time zones,
written into a real store through the real event normalisation.

- ``phx1`` (America/Phoenix, UTC-07:00): the report scenario's day (tests/report_scenario.py)
  at its UTC times; its main feed's last ramp down stalls. Registered with its DPS.
- ``ams2`` (Europe/Amsterdam, UTC+01:00 in January): the same day nine hours earlier, on
  feeds of the *same names* as phx1's (two sites, two feeds each, never mixed); its last
  ramp down stalls too. Its registration is failing.
- ``LONG`` (Asia/Kolkata, UTC+05:30): a site with a name of the full 63 characters whose
  DPS is sampled but has sent no power event: one feed, steady, sampled a minute ago.
- ``lab0`` (UTC): nothing at all, never reconciled.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from gridhook.store import EventStore, LoadSample, SubscriptionRecord
from tests.report_scenario import seed_day

PHX = "phx1"
AMS = "ams2"
LONG = "north-campus-7-substation-grid-interconnect-and-busbar-a-site-1"
LAB = "lab0"
SITES = {PHX: "America/Phoenix", AMS: "Europe/Amsterdam", LONG: "Asia/Kolkata", LAB: "UTC"}
AMS_SHIFT = timedelta(hours=9)  # ams2's day began this much before phx1's
LONG_FEED = "kolkata-main-incomer"
AMS_ERROR = "DPS unavailable: failed to connect to all addresses (10.20.0.7:50051)"

assert len(LONG) == 63


def sites_json() -> str:
    """GRIDHOOK_SITES for the fleet (the functions that read these views open no file of it)."""
    return json.dumps(
        {
            "sites": {
                name: {
                    "timezone": zone,
                    "nvgrid_host": f"dps.{name[:20]}.example.com:443",
                    "nvgrid_credentials_file": f"/secrets/{name}/credentials",
                    "webhook_tokens_file": f"/secrets/{name}/webhook-tokens",
                }
                for name, zone in SITES.items()
            }
        }
    )


def _subscription(site: str, at: datetime, error: str | None, failures: int) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=f"sub-{site[:16]}",
        url=f"https://example.com/receive_power_event/nvgrid/webhook/{site}?token=REDACTED",
        events=("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up"),
        token_fingerprint="f1f2f3f4",
        desired=True,
        registered=error is None,
        last_attempt=at,
        last_success=at if error is None else at - timedelta(hours=2),
        last_error=error,
        consecutive_failures=failures,
        site=site,
    )


def seed_fleet(store: EventStore, origin: datetime, now: datetime) -> None:
    """The fleet's day: phx1's from ``origin``, ams2's from ``origin - AMS_SHIFT``, up to
    ``now``; LONG's samples; the subscription records reconcile would have left."""
    hours = (now - origin).total_seconds() / 3600
    seed_day(store, origin, hours=hours, site=PHX)
    seed_day(store, origin - AMS_SHIFT, hours=hours + AMS_SHIFT.total_seconds() / 3600, site=AMS)
    for minutes in (61, 31, 1):
        at = now - timedelta(minutes=minutes)
        store.add_sample(
            LoadSample(
                feed_tag=LONG_FEED,
                sampled_at=at,
                calculated_w=41.25e6,
                target_w=None,
                correlation_id=None,
                expires_at=at + timedelta(days=3650),
                site=LONG,
            )
        )
    store.put_subscription(_subscription(PHX, now - timedelta(minutes=4), None, 0))
    store.put_subscription(_subscription(AMS, now - timedelta(minutes=4), AMS_ERROR, 3))
    store.put_subscription(_subscription(LONG, now - timedelta(minutes=9), None, 0))
