"""A load client that does not become the bottleneck: threads, each with its own
keep-alive ``http.client`` connection, sending prepared bodies as fast as the server
answers (closed loop, like DPS delivering 32 webhooks at a time).

Used in-process by tests/reliability and, for the benchmark, in a separate process
(``python -m tests.bench.load SPEC_JSON``) so that the client's work does not share a GIL
with anything measured.
"""

from __future__ import annotations

import copy
import http.client
import itertools
import json
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.harness import SEED_PAYLOAD, TEST_TOKEN

__all__ = ["Client", "Reply", "Request", "bench_bodies", "percentile", "send_all"]

WEBHOOK = "/nvgrid/webhook"
AUTH_HEADERS = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Request:
    body: bytes
    method: str = "POST"
    path: str = WEBHOOK
    headers: Mapping[str, str] = field(default_factory=lambda: AUTH_HEADERS)


@dataclass(slots=True)
class Reply:
    status: int  # 0 when the connection failed before any answer
    body: bytes
    headers: dict[str, str]
    latency: float  # seconds, send → whole answer read
    error: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection; reconnects after a failure (which it reports)."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> Reply:
        # A kept-alive connection may have been closed by the server while idle (gunicorn
        # drops them after 2 s); like urllib3, resend once on a fresh one when a reused
        # connection fails before any answer. A fresh connection's failure is reported.
        reused = self._conn is not None
        reply = self._send_once(request)
        if reply.status == 0 and reused:
            reply = self._send_once(request)
        return reply

    def _send_once(self, request: Request) -> Reply:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            self._conn.request(request.method, request.path, request.body, dict(request.headers))
            response = self._conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Reply(0, b"", {}, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
        reply = Reply(
            response.status, body, dict(response.getheaders()), time.perf_counter() - started
        )
        if response.will_close:
            self.close()
        return reply

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def send_all(
    host: str,
    port: int,
    requests: Sequence[Request],
    concurrency: int = 32,
    send: Callable[[Client, Request], Reply] | None = None,
) -> list[Reply]:
    """Send every request with ``concurrency`` senders; replies in request order.

    ``send`` may wrap ``Client.send`` (the outage test gates and checks around it).
    """
    replies: list[Reply | None] = [None] * len(requests)
    counter = itertools.count()  # next() on a count is atomic under the GIL
    do_send = send or Client.send

    def sender() -> None:
        client = Client(host, port)
        try:
            while (i := next(counter)) < len(requests):
                replies[i] = do_send(client, requests[i])
        finally:
            client.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is not None for r in replies)
    return replies  # type: ignore[return-value]


def bench_payload(prefix: str, i: int) -> dict[str, Any]:
    """A distinct, valid power event (the seed's payload with its own correlation id)."""
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["correlation_id"] = f"{prefix}-{i:07d}"
    payload["calculated_load"]["value"] = round(5 + (i % 500) / 100, 2)
    return payload


def bench_bodies(prefix: str, count: int) -> list[bytes]:
    return [json.dumps(bench_payload(prefix, i)).encode() for i in range(count)]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def run_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Run one measured load (the benchmark's subprocess mode) and summarise it."""
    requests = [Request(b) for b in bench_bodies(spec["prefix"], spec["count"])]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    replies = send_all(spec["host"], spec["port"], requests, spec["concurrency"])
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    latencies = sorted(r.latency for r in replies)
    bodies = Counter(
        json.loads(r.body).get("status", "?") if r.status == 200 else "-" for r in replies
    )
    return {
        "requests": len(replies),
        "elapsed_s": elapsed,
        "throughput_rps": len(replies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "statuses": dict(Counter(str(r.status) for r in replies)),
        "outcomes": dict(bodies),
        "errors": sorted({r.error for r in replies if r.error})[:5],
        # Client CPU per wall second: well under 1.0 means the client was not the limit.
        "client_cpu_share": cpu / elapsed,
    }


if __name__ == "__main__":
    print(json.dumps(run_spec(json.loads(sys.argv[1]))))
