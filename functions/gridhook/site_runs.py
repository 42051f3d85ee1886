"""One job run over several sites: in parallel with a bound, each site within the run's
deadline, one site's failure only its own.

A run names its sites (or all of them) and a piece of work per site. At most
``concurrency`` sites are worked on at once; each gets a share of the run's deadline
large enough for every site to have its turn even if every site hangs for its whole share
(``site_budget``), so a DPS that never answers costs its own site that share and nothing
else. Whatever a site's work raises becomes that site's failure. The run answers at its
deadline at the latest: a site still working then, or not yet started, is reported as
``deadline_exceeded`` (its thread ends when its own calls time out).

The outcome of each site is ``ok``, ``error`` (a retry cannot fix it: credentials, a URL
DPS refuses, settings) or ``unavailable`` (a retry may fix it: DPS or the store
unreachable, the deadline). The run's HTTP status is 503 when some site is
``unavailable`` (Cloud Scheduler retries; re-running a site that went well is harmless:
every job is idempotent), else 200; the CLI's exit code is 1 when some site needs a fix
(``error``), 3 when the only failures are ones a retry may fix, else 0.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "EXIT_FAILED",
    "EXIT_RETRY",
    "OUTCOMES",
    "SiteReport",
    "SitesRun",
    "run_on_sites",
    "site_budget",
]

#: A site's outcome, from best to worst: the run's is its worst site's.
OUTCOMES = ("ok", "error", "unavailable")
#: CLI exit codes: some site needs a fix; only failures a retry may fix.
EXIT_FAILED = 1
EXIT_RETRY = 3
#: Below this many seconds left, a site is not started: no call could finish.
_TOO_LITTLE_S = 0.2


class SiteReport(Protocol):
    """What one site's part of a job reports."""

    @property
    def site(self) -> str: ...

    @property
    def outcome(self) -> str:
        """``ok``, ``error`` (a retry cannot fix it) or ``unavailable`` (a retry may)."""

    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=SiteReport)


@dataclass
class SitesRun(Generic[R]):
    """Every site's report of one run, in the order the sites were named, and how long
    each took (seconds, to the millisecond)."""

    reports: dict[str, R]
    seconds: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def outcome(self) -> str:
        """The worst site's outcome (``ok`` for a run of no site)."""
        found = {report.outcome for report in self.reports.values()}
        return max(found, key=OUTCOMES.index, default="ok")

    def sites_with(self, *outcomes: str) -> list[str]:
        return [name for name, report in self.reports.items() if report.outcome in outcomes]

    @property
    def http_status(self) -> int:
        """503 when a retry may fix some site (Cloud Scheduler retries), else 200."""
        return 503 if self.outcome == "unavailable" else 200

    @property
    def exit_code(self) -> int:
        if self.sites_with("error"):
            return EXIT_FAILED
        return EXIT_RETRY if self.sites_with("unavailable") else 0

    def to_dict(self, status: Callable[[str], str] | None = None) -> dict[str, Any]:
        """The fleet answer: the run's status (``status`` maps the worst outcome to the
        job's own word), which sites went well, which failed and which of those a retry
        may fix, then every site's report with the seconds it took."""
        return {
            "status": (status or str)(self.outcome),
            "ok": self.sites_with("ok"),
            "failed": self.sites_with("error", "unavailable"),
            "retry": self.sites_with("unavailable"),
            "seconds": round(self.elapsed, 3),
            "sites": [
                {**report.to_dict(), "seconds": self.seconds.get(name)}
                for name, report in self.reports.items()
            ],
        }


def site_budget(deadline_s: float, sites: int, concurrency: int) -> float:
    """Seconds one site may take so that every site has its turn within the deadline even
    if each takes all of its share: the deadline over the number of turns
    (``ceil(sites / concurrency)``); the whole deadline for one site or one turn."""
    turns = math.ceil(max(1, sites) / max(1, concurrency))
    return deadline_s / turns


def run_on_sites(
    names: Sequence[str],
    work: Callable[[str, float], R],
    *,
    concurrency: int,
    deadline_s: float,
    overdue: Callable[[str, str], R],
    crashed: Callable[[str, Exception], R],
    monotonic: Callable[[], float] = time.monotonic,
) -> SitesRun[R]:
    """``work(site, budget_s)`` for every site in ``names``, ``concurrency`` at a time,
    answering by ``deadline_s`` at the latest. ``overdue(site, why)`` reports a site the
    deadline left unfinished or unstarted; ``crashed(site, exc)`` one whose work raised."""
    started = monotonic()
    ends = started + deadline_s
    budget = site_budget(deadline_s, len(names), concurrency)
    seconds: dict[str, float] = {}
    timing = threading.Lock()  # a late site's thread may still write while the run answers

    def one(name: str) -> R:
        began = monotonic()
        try:
            left = ends - began
            if left < _TOO_LITTLE_S:
                return overdue(name, "not started before the run's deadline")
            return work(name, min(budget, left))
        except Exception as exc:  # one site's failure, whatever it is, is only its own
            return crashed(name, exc)
        finally:
            with timing:
                seconds[name] = round(monotonic() - began, 3)

    pool = ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(names))), thread_name_prefix="gridhook-site"
    )
    try:
        futures: dict[str, Future[R]] = {name: pool.submit(one, name) for name in names}
        wait(futures.values(), timeout=max(0.0, ends - monotonic()))
    finally:
        # Answer now: a site still working ends when its own calls time out.
        pool.shutdown(wait=False, cancel_futures=True)
    reports: dict[str, R] = {}
    for name, future in futures.items():
        if future.done() and not future.cancelled():
            reports[name] = future.result()
        else:
            why = "not started" if future.cancelled() else "not finished"
            reports[name] = overdue(name, f"{why} within the run's deadline ({deadline_s:g} s)")
            with timing:
                seconds[name] = round(monotonic() - started, 3)
    with timing:
        took = dict(seconds)
    return SitesRun(reports, took, monotonic() - started)
