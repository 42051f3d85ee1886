"""Reading several sites at once: a view of the fleet asks each site on its own (every store
read names one site), and the answers of a networked store are round trips, so the sites are
asked up to ``READERS`` at a time rather than one after another.

The threads are kept for the process (made on first use, never at import): a store may keep
a connection per thread (SQLite does), so a pool made per request would open new ones every
time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["READERS", "for_each"]

#: How many sites are read at once: round trips overlap, the process's CPU stays one core's.
READERS = 8

_T = TypeVar("_T")
_S = TypeVar("_S")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _readers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(READERS, thread_name_prefix="gridhook-site-read")
    return _pool


def for_each(read: Callable[[_S], _T], sites: Sequence[_S]) -> list[_T]:
    """``read(site)`` for each site, in the order given, up to READERS at a time; the first
    failure (a StoreError, say) is raised once every read has ended."""
    if len(sites) <= 1 or READERS <= 1:  # one at a time: in the caller's thread
        return [read(site) for site in sites]
    futures = [_readers().submit(read, site) for site in sites]
    errors = [f.exception() for f in futures]  # waits for every read: none left running
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]
