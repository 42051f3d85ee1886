"""One job over several sites (gridhook.site_runs): at most ``concurrency`` sites at once,
each with its share of the deadline, a raising site only its own failure, the run's answer
at its deadline whatever a site does, and the status a mixed result answers with."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from gridhook.site_runs import EXIT_FAILED, EXIT_RETRY, SitesRun, run_on_sites, site_budget


@dataclass
class Done:
    site: str
    outcome: str = "ok"
    budget: float = 0.0
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.outcome, "site": self.site}


def overdue(site: str, why: str) -> Done:
    return Done(site, "unavailable", why=why)


def crashed(site: str, exc: Exception) -> Done:
    return Done(site, "unavailable", why=f"crashed: {exc}")


def test_no_more_sites_at_once_than_the_bound_and_every_site_once() -> None:
    lock = threading.Lock()
    running, most, seen = 0, 0, []
    names = [f"s{n:02d}" for n in range(1, 21)]

    def work(site: str, budget: float) -> Done:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            seen.append(site)
        threading.Event().wait(0.01)  # long enough for the pool to fill up
        with lock:
            running -= 1
        return Done(site, budget=budget)

    run = run_on_sites(names, work, concurrency=3, deadline_s=60, overdue=overdue, crashed=crashed)
    assert 1 < most <= 3
    assert sorted(seen) == names
    assert list(run.reports) == names  # in the order named, whatever order they ended in
    assert run.outcome == "ok" and run.http_status == 200 and run.exit_code == 0
    # 20 sites, 3 at a time: 7 turns of 60 s / 7 each.
    assert [r.budget for r in run.reports.values()] == [pytest.approx(60 / 7)] * 20
    assert set(run.seconds) == set(names)


@pytest.mark.parametrize(
    ("sites", "concurrency", "budget"),
    [(1, 8, 120.0), (8, 8, 120.0), (9, 8, 60.0), (50, 8, 120 / 7), (2, 1, 60.0), (0, 8, 120.0)],
)
def test_each_site_has_its_share_of_the_deadline(
    sites: int, concurrency: int, budget: float
) -> None:
    assert site_budget(120.0, sites, concurrency) == pytest.approx(budget)


def test_a_site_that_raises_is_only_its_own_failure() -> None:
    def work(site: str, budget: float) -> Done:
        if site == "broken":
            raise RuntimeError("a bug")
        return Done(site)

    run = run_on_sites(
        ["a", "broken", "b"], work, concurrency=2, deadline_s=30, overdue=overdue, crashed=crashed
    )
    assert run.sites_with("ok") == ["a", "b"]
    assert run.reports["broken"].why == "crashed: a bug"


def test_the_run_answers_at_its_deadline_whatever_a_site_does() -> None:
    """One site never finishes by itself; a second waits behind it for the only worker.
    The run answers at its deadline with both reported, and the others' reports intact."""
    release = threading.Event()

    def work(site: str, budget: float) -> Done:
        if site == "hangs":
            release.wait(30)  # far past the deadline: only the test lets it go
        return Done(site)

    try:
        run = run_on_sites(
            ["fast", "hangs", "queued"],
            work,
            concurrency=1,
            deadline_s=0.5,
            overdue=overdue,
            crashed=crashed,
        )
    finally:
        release.set()
    assert run.reports["fast"].outcome == "ok"
    assert run.reports["hangs"].why == "not finished within the run's deadline (0.5 s)"
    assert run.reports["queued"].why == "not started within the run's deadline (0.5 s)"
    assert run.sites_with("unavailable") == ["hangs", "queued"]


@pytest.mark.parametrize(
    ("outcomes", "status", "http", "exit_code"),
    [
        (["ok", "ok"], "ok", 200, 0),
        (["ok", "error"], "error", 200, EXIT_FAILED),  # a retry cannot fix it: no retry
        (["ok", "unavailable"], "unavailable", 503, EXIT_RETRY),  # Scheduler retries
        (["error", "unavailable"], "unavailable", 503, EXIT_FAILED),
        ([], "ok", 200, 0),
    ],
)
def test_a_mixed_result(outcomes: list[str], status: str, http: int, exit_code: int) -> None:
    names = [f"s{n}" for n in range(len(outcomes))]
    run = SitesRun({n: Done(n, o) for n, o in zip(names, outcomes, strict=True)})
    body = run.to_dict()
    assert (body["status"], run.http_status, run.exit_code) == (status, http, exit_code)
    assert body["ok"] == [n for n, o in zip(names, outcomes, strict=True) if o == "ok"]
    assert body["failed"] == [n for n, o in zip(names, outcomes, strict=True) if o != "ok"]
    assert body["retry"] == [n for n, o in zip(names, outcomes, strict=True) if o == "unavailable"]
    assert [s["site"] for s in body["sites"]] == names
    words = {"ok": "clean", "error": "incomplete", "unavailable": "incomplete"}
    assert run.to_dict(words.__getitem__)["status"] == words[status]
