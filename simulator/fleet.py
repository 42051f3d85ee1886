"""A fleet: several simulated DPS sites in one process, each on its own port.

Each site is a whole `Simulator` — its own feeds, schedule, registrations, webhook
dispatcher, users and tokens, fault knobs, clock and load model (seeded by the site's name
too, so two sites never draw the same load). Nothing is shared but the process: stopping or
faulting one site leaves the others answering.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

from simulator.config import FeedConfig, SimulatorConfig, check_site_name
from simulator.faults import FaultKnobs
from simulator.server import Simulator, start_simulator

__all__ = ["Fleet", "fleet_configs", "site_names", "start_fleet"]


def site_names(count: int | None = None, names: Sequence[str] = ()) -> list[str]:
    """The fleet's site names: `names` if given (checked, unique; `count`, if also given,
    must agree), else `site-1` … `site-COUNT`. ValueError says what is wrong."""
    if names:
        for name in names:
            check_site_name(name)
        if len(set(names)) != len(names):
            raise ValueError(f"site names must be unique: {', '.join(names)}")
        if count is not None and count != len(names):
            raise ValueError(f"--sites {count} but {len(names)} site name(s) given")
        return list(names)
    count = 1 if count is None else count
    if count < 1:
        raise ValueError("a fleet needs at least one site")
    return [f"site-{number}" for number in range(1, count + 1)]


def fleet_configs(
    base: SimulatorConfig,
    sites: Sequence[str],
    *,
    timezones: Mapping[str, str] | None = None,
    users: Mapping[str, Mapping[str, str]] | None = None,
    feeds: Mapping[str, Sequence[FeedConfig]] | None = None,
    fault_sites: Collection[str] | None = None,
) -> list[SimulatorConfig]:
    """One config per site from `base`: site i listens on `base.port + i` (any free port when
    `base.port` is 0) and, with several sites, keeps its TLS files (its own CA) in
    `base.tls_dir/<site>`. `timezones`, `users` and `feeds` override `base` per site;
    `base.faults` apply to the sites in `fault_sites` (None: all), each with its own copy."""
    timezones = timezones or {}
    users = users or {}
    feeds = feeds or {}
    named = set(timezones) | set(users) | set(feeds) | set(fault_sites or ())
    unknown = sorted(named - set(sites))
    if unknown:
        raise ValueError(f"unknown site(s) {', '.join(unknown)}; the sites are {', '.join(sites)}")
    several = len(sites) > 1
    configs = []
    for index, site in enumerate(sites):
        faulted = fault_sites is None or site in fault_sites
        tls_dir = base.tls_dir
        if several and tls_dir is not None:
            tls_dir = Path(tls_dir) / site
        configs.append(
            dataclasses.replace(
                base,
                site=site,
                port=base.port + index if base.port else 0,
                tls_dir=tls_dir,
                timezone=timezones.get(site, base.timezone),
                users=dict(users.get(site, base.users)),
                feeds=feeds.get(site, base.feeds),
                faults=base.faults.copy() if faulted else FaultKnobs(seed=base.faults.seed),
            )
        )
    return configs


class Fleet:
    """Running simulators by site name, in order. Always `stop()` it (or use `with`)."""

    def __init__(self, simulators: Sequence[Simulator]) -> None:
        self.sites: dict[str, Simulator] = {sim.site: sim for sim in simulators}

    def __getitem__(self, site: str) -> Simulator:
        try:
            return self.sites[site]
        except KeyError:
            raise KeyError(f"no site {site!r}; the sites are {', '.join(self.sites)}") from None

    def __iter__(self) -> Iterator[Simulator]:
        return iter(self.sites.values())

    def __len__(self) -> int:
        return len(self.sites)

    def stop(self, grace: float = 1.0) -> None:
        """Stop every site (a site already stopped is left as it is)."""
        for sim in self.sites.values():
            sim.stop(grace)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Fleet({', '.join(f'{s.site}@{s.address}' for s in self)})"


def start_fleet(configs: Sequence[SimulatorConfig]) -> Fleet:
    """Start one simulator per config, in order; returns once all accept connections. If one
    cannot start, those already started are stopped and the error (with several sites)
    names the site; a single site's error is the simulator's own."""
    names = [config.site for config in configs]
    if not names:
        raise ValueError("a fleet needs at least one site")
    if len(set(names)) != len(names):
        raise ValueError(f"site names must be unique: {', '.join(names)}")
    if len(configs) == 1:
        return Fleet([start_simulator(configs[0])])
    started: list[Simulator] = []
    try:
        for config in configs:
            try:
                started.append(start_simulator(config))
            except OSError as error:
                raise OSError(f"site {config.site}: {error}") from error
            except ValueError as error:
                raise ValueError(f"site {config.site}: {error}") from error
    except BaseException:
        for sim in started:
            sim.stop(grace=0)
        raise
    return Fleet(started)
