"""Feeds config parsing, TLS file generation/reuse, the simulated clock."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from simulator.clock import SimClock, rfc3339
from simulator.config import default_feeds, load_feeds, parse_feeds
from simulator.tls import ensure_tls_files


def test_default_feeds_are_two() -> None:
    feeds = default_feeds()
    assert [f.tag for f in feeds] == ["main_power_feed", "backup_power_feed"]
    assert feeds[0].default_watts == 10e6


def test_load_feeds_from_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.json"
    path.write_text(
        json.dumps(
            {
                "feeds": [
                    {
                        "tag": "f1",
                        "min_cap": 100,
                        "max_cap": 900,
                        "default_constraint": 800,
                        "unit": "kW",
                    }
                ]
            }
        )
    )
    [feed] = load_feeds(path)
    assert (feed.tag, feed.min_cap_watts, feed.max_cap_watts, feed.default_watts) == (
        "f1",
        100e3,
        900e3,
        800e3,
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"feeds": []}, "at least one feed"),
        ({"feeds": [{"tag": "a", "min_cap": 1, "max_cap": 2}]}, "missing 'default_constraint'"),
        (
            {"feeds": [{"tag": "a", "min_cap": 3, "max_cap": 2, "default_constraint": 2}]},
            "min_cap <=",
        ),
        (
            {
                "feeds": [
                    {"tag": "a", "min_cap": 1, "max_cap": 2, "default_constraint": 2, "unit": "hp"}
                ]
            },
            "unknown unit",
        ),
        (
            [
                {"tag": "a", "min_cap": 1, "max_cap": 2, "default_constraint": 2},
                {"tag": "a", "min_cap": 1, "max_cap": 2, "default_constraint": 2},
            ],
            "unique",
        ),
    ],
)
def test_bad_feeds_config_is_rejected_with_a_reason(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_feeds(document)


def test_tls_files_are_generated_then_reused(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path, ["localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (
        tmp_path / "server-key.pem"
    ).stat().st_mode & 0o077 == 0  # private key not readable by others
    ca_before = files.ca_cert.read_bytes()
    ensure_tls_files(tmp_path, ["localhost"])
    assert files.ca_cert.read_bytes() == ca_before  # reused: clients keep trusting the CA
    ensure_tls_files(tmp_path, ["localhost", "sim.internal"])
    assert files.ca_cert.read_bytes() != ca_before  # a new host name needs a new certificate


def test_clock_runs_at_speed_and_can_jump() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    clock = SimClock(speed=600, start=start)
    time.sleep(0.05)
    elapsed = clock.now() - start
    assert timedelta(seconds=20) <= elapsed < timedelta(seconds=600)
    clock.advance(timedelta(hours=1))
    assert clock.now() - start >= timedelta(hours=1, seconds=20)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))


def test_rfc3339_is_utc_with_z() -> None:
    assert rfc3339(datetime(2025, 10, 24, 17, 0, tzinfo=UTC)) == "2025-10-24T17:00:00Z"
    assert (
        rfc3339(datetime(2025, 10, 24, 17, 0, 0, 250000, tzinfo=UTC)) == "2025-10-24T17:00:00.250Z"
    )
