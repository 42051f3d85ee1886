"""The bench's split of a Firestore report's CPU (tests/bench/scale.py) counts what it says:
time inside the store's reads, and within them the Firestore client's decoding of query
results and copying of snapshots — on the real client against the emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridhook.store import SampleQuery, iter_samples, open_store
from tests.bench.scale import _cpu_accounting
from tests.bench.scale_data import DATA_NOW, samples

pytestmark = pytest.mark.firestore


def test_reads_decoding_and_copying_are_each_counted(firestore_env: dict[str, str]) -> None:
    store = open_store(firestore_env["GRIDHOOK_STORE"], timeout_seconds=10.0)
    try:
        written = list(samples(DATA_NOW - timedelta(hours=3)))  # 72: two pages of 50
        for sample in written:
            store.add_sample(sample)
        with _cpu_accounting(store) as seconds:
            read = list(iter_samples(store, SampleQuery(limit=50)))
        after = dict(seconds)
        list(iter_samples(store, SampleQuery(limit=50)))  # unwrapped again: nothing counted
    finally:
        store.close()
    assert len(read) == len(written) > 50  # more than one page
    assert after["decode"] > 0 and after["copy"] > 0
    assert after["store_reads"] >= after["decode"] + after["copy"]
    assert dict(seconds) == after
