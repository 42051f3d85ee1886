"""The fleet bench's plumbing at a small size (no figure is checked: the machine is shared):
`gridhook-sim --site-name … --feeds SITE=FILE` as a process, gridhook's NvGridClient on each
site's own CA, one all-sites `gridhook reconcile` registering each site's own path, a
curtailment on every site at once reaching the real receiver there, and the check that each
webhook was stored exactly once under its site."""

from __future__ import annotations

import pytest

from tests.bench.fleet import bench_fleet, fleet_table


@pytest.mark.slow
def test_the_fleet_bench_stores_every_sites_webhooks_exactly_once() -> None:
    results = bench_fleet(sites=2, runs=1, say=lambda _: None, idle_s=0.2, lead_s=1.5)
    assert results["curtailment"]["stored"] == {
        "events": 16,  # 2 sites x 2 feeds x 4 events
        "exactly_once": True,
        "missing": 0,
        "duplicated": 0,
        "foreign": 0,
    }
    assert results["curtailment"]["ramp_down_webhooks"] == 8
    reconcile = results["reconcile"]
    assert (reconcile["exit_code"], reconcile["ok"], reconcile["failed"]) == (0, 2, [])
    assert reconcile["registered_own_url"] == 2 and reconcile["within_deadline"] is True
    assert results["threads"] > 0 and results["start_s"] > 0
    assert "2 simulated DPS sites x 2 feeds" in fleet_table(results)
