"""The fleet's and the settlement's plain settings: read, defaulted and refused by name.

(The sites themselves, GRIDHOOK_SITES / GRIDHOOK_SITES_FILE / GRIDHOOK_TIMEZONE, are
parsed by gridhook.sites: tests/unit/test_sites.py.)
"""

from __future__ import annotations

import pytest

from gridhook.settings import BASELINE_METHODS, ENV_VARS, ConfigError, load_settings

STORE = {"GRIDHOOK_STORE": "sqlite:///var/gridhook.db"}


def test_every_fleet_and_settlement_setting_is_one_the_code_reads() -> None:
    assert {
        "GRIDHOOK_SITES",
        "GRIDHOOK_SITES_FILE",
        "GRIDHOOK_TIMEZONE",
        "GRIDHOOK_RECONCILE_CONCURRENCY",
        "GRIDHOOK_INTERVAL_MIN_COVERAGE",
        "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS",
        "GRIDHOOK_BASELINE_METHOD",
    } <= set(ENV_VARS)
    assert len(ENV_VARS) == len(set(ENV_VARS))


def test_defaults() -> None:
    settings = load_settings(STORE)
    assert settings.reconcile_concurrency == 8
    assert settings.interval_min_coverage == 0.8
    assert settings.raw_sample_retention_days == 35
    assert settings.baseline_method == "caiso-10-in-10"


def test_values_are_read() -> None:
    settings = load_settings(
        {
            **STORE,
            "GRIDHOOK_RECONCILE_CONCURRENCY": "3",
            "GRIDHOOK_INTERVAL_MIN_COVERAGE": "0.95",
            "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS": "14",
            "GRIDHOOK_BASELINE_METHOD": " PJM-High-4-of-5 ",
        }
    )
    assert settings.reconcile_concurrency == 3
    assert settings.interval_min_coverage == 0.95
    assert settings.raw_sample_retention_days == 14
    assert settings.baseline_method == "pjm-high-4-of-5"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GRIDHOOK_RECONCILE_CONCURRENCY", "0", "out of range [1, 64]"),
        ("GRIDHOOK_RECONCILE_CONCURRENCY", "eight", "is not an integer"),
        ("GRIDHOOK_INTERVAL_MIN_COVERAGE", "0", "out of range [0.01, 1.0]"),
        ("GRIDHOOK_INTERVAL_MIN_COVERAGE", "1.5", "out of range [0.01, 1.0]"),
        ("GRIDHOOK_INTERVAL_MIN_COVERAGE", "80%", "is not a number"),
        ("GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS", "0", "out of range [1, 3650]"),
        ("GRIDHOOK_BASELINE_METHOD", "10-in-10", "use one of caiso-10-in-10, pjm-high-4-of-5"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**STORE, name: value})
    assert name in str(caught.value) and message in str(caught.value)


def test_baseline_methods_are_the_settlement_methods() -> None:
    # settings.py spells them out so that reading settings never imports the settlement
    # package (numpy) into the receiver; the two lists must stay one.
    from gridhook.settlement import DEFAULT_METHOD, METHODS

    assert BASELINE_METHODS == METHODS
    assert load_settings(STORE).baseline_method == DEFAULT_METHOD


def test_min_coverage_default_is_the_settlement_default() -> None:
    from gridhook.settlement.intervals import DEFAULT_MIN_COVERAGE

    assert load_settings(STORE).interval_min_coverage == DEFAULT_MIN_COVERAGE
