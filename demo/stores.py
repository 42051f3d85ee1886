"""Which store the demo plays its day into: the one `GRIDHOOK_STORE` names (SQLite, or
Firestore through the emulator), else a fresh SQLite file of its own; and whether it may.

The demo writes a made-up day, so Firestore only ever means the emulator
(`FIRESTORE_EMULATOR_HOST`), and a store it did not make must hold no events yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from demo.errors import DemoError

__all__ = ["DemoStore", "choose_store", "emulator_address", "may_start_emulator", "require_empty"]

EXAMPLE_EMULATOR_HOST = "127.0.0.1:8085"
# Where the demo may start an emulator itself: start.js listens on 127.0.0.1 only.
_LOOPBACK_NAMES = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class DemoStore:
    url: str
    emulator_host: str | None = None  # FIRESTORE_EMULATOR_HOST, for a firestore:// store
    own: bool = False  # the demo's own file in var/demo/, made afresh each run

    @property
    def env(self) -> dict[str, str]:
        """What a process needs in its environment to use this store."""
        env = {"GRIDHOOK_STORE": self.url}
        if self.emulator_host:
            env["FIRESTORE_EMULATOR_HOST"] = self.emulator_host
        return env


def choose_store(environ: Mapping[str, str], own_path: Path) -> DemoStore:
    """`GRIDHOOK_STORE` if set, else SQLite at `own_path`; raises DemoError for a store the
    demo does not play into."""
    url = environ.get("GRIDHOOK_STORE", "").strip()
    if not url:
        return DemoStore(f"sqlite:///{own_path}", own=True)
    scheme = url.partition("://")[0]
    if scheme == "sqlite":
        return DemoStore(url)
    if scheme == "firestore":
        host = environ.get("FIRESTORE_EMULATOR_HOST", "").strip()
        if not host:
            raise DemoError(
                f"GRIDHOOK_STORE={url} without FIRESTORE_EMULATOR_HOST: the demo plays a "
                "made-up day, so into Firestore only through the emulator. Set "
                f"FIRESTORE_EMULATOR_HOST={EXAMPLE_EMULATOR_HOST} (the demo starts an "
                "emulator there if none runs)"
            )
        emulator_address(host)  # refused now, not after the processes have started
        return DemoStore(url, emulator_host=host)
    raise DemoError(
        f"GRIDHOOK_STORE={url}: the demo plays into SQLite (sqlite:///PATH) or the Firestore "
        "emulator (firestore://PROJECT/DATABASE with FIRESTORE_EMULATOR_HOST); unset "
        "GRIDHOOK_STORE for its own SQLite store"
    )


def emulator_address(host: str) -> tuple[str, int]:
    """`FIRESTORE_EMULATOR_HOST` (HOST:PORT) as (host, port); DemoError if it is not that."""
    try:
        parts = urlsplit(f"//{host}")
        name, port = parts.hostname, parts.port
    except ValueError:
        name, port = None, None
    if not name or port is None:
        raise DemoError(
            f"FIRESTORE_EMULATOR_HOST={host} is not HOST:PORT (e.g. {EXAMPLE_EMULATOR_HOST})"
        )
    return name, port


def may_start_emulator(host: str) -> bool:
    """Whether an emulator the demo starts would answer at `host`: loopback names only."""
    return emulator_address(host)[0] in _LOOPBACK_NAMES


def require_empty(store: DemoStore, sites: Sequence[str]) -> None:
    """Raise DemoError unless the store holds no events of `sites`: the demo's day would mix
    with them (its own store is new each run, so only a store named by GRIDHOOK_STORE can)."""
    from gridhook.store import EventQuery, StoreError, open_store

    try:
        opened = open_store(store.url, timeout_seconds=10.0)
    except ValueError as exc:
        raise DemoError(f"GRIDHOOK_STORE={store.url}: {exc}") from None
    try:
        held = [s for s in sites if opened.events(EventQuery(limit=1, site=s)).events]
    except StoreError as exc:
        raise DemoError(f"cannot read the store {store.url}: {exc}") from None
    finally:
        opened.close()
    if not held:
        return
    if store.emulator_host:
        fresh = "restart the emulator (it keeps nothing) or name another project"
    else:
        fresh = "name a new file, or unset GRIDHOOK_STORE for the demo's own (new each run)"
    raise DemoError(
        f"GRIDHOOK_STORE={store.url} already holds events of {', '.join(held)}: the demo plays "
        "its day into an "
        f"empty store, so as not to mix it with anything else; {fresh}"
    )
