"""gridhook-sim: a DPS NvGrid simulator (gRPC AuthService + NvGrid, webhook dispatcher,
load-target schedule and ramp model, fault knobs). Development and tests only."""

from simulator.config import FeedConfig, SimulatorConfig, default_feeds, load_feeds
from simulator.faults import DropRule, FaultKnobs
from simulator.fleet import Fleet, fleet_configs, site_names, start_fleet
from simulator.load import LoadModel, LoadShape
from simulator.server import Simulator, start_simulator
from simulator.webhooks import Delivery, Registration, redact_url

__all__ = [
    "Delivery",
    "DropRule",
    "FaultKnobs",
    "FeedConfig",
    "Fleet",
    "LoadModel",
    "LoadShape",
    "Registration",
    "Simulator",
    "SimulatorConfig",
    "default_feeds",
    "fleet_configs",
    "load_feeds",
    "redact_url",
    "site_names",
    "start_fleet",
    "start_simulator",
]
