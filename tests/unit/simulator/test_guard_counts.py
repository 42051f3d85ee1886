"""The interceptor counts every call, even when many gRPC threads call at once."""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace
from typing import Any

import grpc

from simulator.auth import TokenAuthority
from simulator.clock import SimClock
from simulator.faults import FaultKnobs
from simulator.service import GuardInterceptor

THREADS, CALLS = 8, 2000


class _Context:
    def send_initial_metadata(self, metadata: Any) -> None:
        pass


def test_concurrent_calls_are_all_counted() -> None:
    guard = GuardInterceptor(TokenAuthority({}, 60, 60), FaultKnobs(), SimClock())
    inner = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = SimpleNamespace(method="/nvidia.dcpower.v1.AuthService/Token")
    handler = guard.intercept_service(lambda _: inner, details)
    assert handler is not None
    start = threading.Barrier(THREADS)

    def call_many() -> None:
        start.wait()
        for _ in range(CALLS):
            handler.unary_unary(None, _Context())

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: lost updates show
    try:
        threads = [threading.Thread(target=call_many) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert guard.rpc_counts() == {"Token": THREADS * CALLS}
