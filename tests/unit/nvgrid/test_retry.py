"""Retry policy: which codes are retried, backoff with full jitter, attempt and time bounds.

A stand-in RpcError is used here because exact timing and code sequences cannot be produced
deterministically by a real server; the integration tests cover the same paths over real gRPC.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from gridhook.nvgrid import (
    CallPolicy,
    NvGridAuthError,
    NvGridCallError,
    NvGridTlsError,
    NvGridUnavailable,
    make_endpoint,
)
from gridhook.nvgrid.retry import call_with_retry

Code = grpc.StatusCode


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes: grpc.StatusCode | str, fake: FakeTime, cost: float = 0.0):
    """An invoke() that fails with each code in turn, then returns the final string."""
    calls: list[float] = []

    def invoke(timeout: float) -> str:
        calls.append(timeout)
        fake.now += cost
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, grpc.StatusCode):
            raise FakeRpcError(outcome, f"{outcome.name} from the fake")
        return outcome

    return invoke, calls


def run(
    invoke: Callable[[float], str],
    fake: FakeTime,
    policy: CallPolicy,
    *,
    upper_bound: bool = True,
    on_unauthenticated: Callable[[], bool] | None = None,
) -> str:
    endpoint = make_endpoint("dps.test", port=443, policy=policy, environ={})
    return call_with_retry(
        invoke,
        endpoint=endpoint,
        rpc="NvGrid.GetStatus",
        on_unauthenticated=on_unauthenticated,
        sleep=fake.sleep,
        clock=fake.clock,
        # Always the top of the jitter range, so the cap is what is being checked.
        uniform=(lambda low, high: high) if upper_bound else (lambda low, high: low),
    )


POLICY = CallPolicy(
    call_timeout=10, overall_timeout=60, max_attempts=5, initial_backoff=0.5, max_backoff=2
)


def test_unavailable_and_deadline_are_retried_with_capped_exponential_backoff() -> None:
    fake = FakeTime()
    invoke, calls = scripted(
        Code.UNAVAILABLE,
        Code.DEADLINE_EXCEEDED,
        Code.UNAVAILABLE,
        Code.UNAVAILABLE,
        "ok",
        fake=fake,
    )
    assert run(invoke, fake, POLICY) == "ok"
    assert len(calls) == 5
    assert fake.sleeps == [0.5, 1.0, 2.0, 2.0]  # doubled each time, capped at max_backoff


def test_full_jitter_draws_from_zero_to_the_cap() -> None:
    fake = FakeTime()
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return (low + high) / 2

    invoke, _ = scripted(Code.UNAVAILABLE, Code.UNAVAILABLE, "ok", fake=fake)
    call_with_retry(
        invoke,
        endpoint=make_endpoint("dps.test", policy=POLICY, environ={}),
        rpc="x",
        sleep=fake.sleep,
        clock=fake.clock,
        uniform=uniform,
    )
    assert seen == [(0.0, 0.5), (0.0, 1.0)]


def test_attempts_are_bounded() -> None:
    fake = FakeTime()
    invoke, calls = scripted(*[Code.UNAVAILABLE] * 5, fake=fake)
    with pytest.raises(NvGridUnavailable) as failure:
        run(invoke, fake, POLICY)
    assert len(calls) == 5 and failure.value.attempts == 5
    message = str(failure.value)
    assert "dps.test:443" in message and "after 5 attempt(s)" in message


def test_overall_deadline_bounds_retries_and_shrinks_the_last_call_timeout() -> None:
    fake = FakeTime()
    policy = CallPolicy(
        call_timeout=4, overall_timeout=11, max_attempts=100, initial_backoff=1, max_backoff=1
    )
    invoke, calls = scripted(*[Code.DEADLINE_EXCEEDED] * 100, fake=fake, cost=4)
    with pytest.raises(NvGridUnavailable, match="DEADLINE_EXCEEDED"):
        run(invoke, fake, policy)
    # 0-4 call, 4-5 backoff, 5-9 call, 9-10 backoff, then a call with the 1 s that is left.
    assert calls == [4, 4, 1]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (Code.INVALID_ARGUMENT, NvGridCallError),
        (Code.INTERNAL, NvGridCallError),
        (Code.UNIMPLEMENTED, NvGridCallError),
        (Code.PERMISSION_DENIED, NvGridAuthError),
        (Code.UNAUTHENTICATED, NvGridAuthError),
    ],
)
def test_other_codes_are_not_retried(code: grpc.StatusCode, error: type[Exception]) -> None:
    fake = FakeTime()
    invoke, calls = scripted(code, "never", fake=fake)
    with pytest.raises(error, match=r"dps\.test:443"):
        run(invoke, fake, POLICY)
    assert len(calls) == 1 and fake.sleeps == []


def test_tls_handshake_failure_is_not_retried() -> None:
    fake = FakeTime()

    def invoke(timeout: float) -> str:
        raise FakeRpcError(
            Code.UNAVAILABLE,
            "Tls handshake failed (TSI_PROTOCOL_FAILURE): CERTIFICATE_VERIFY_FAILED",
        )

    with pytest.raises(NvGridTlsError, match="NVGRID_CA_CERT"):
        run(invoke, fake, POLICY)
    assert fake.sleeps == []


def test_unauthenticated_gets_one_recovery_and_one_repeat() -> None:
    fake = FakeTime()
    recoveries: list[int] = []

    def recover() -> bool:
        recoveries.append(1)
        return True

    invoke, calls = scripted(Code.UNAUTHENTICATED, "ok", fake=fake)
    assert run(invoke, fake, POLICY, on_unauthenticated=recover) == "ok"
    assert len(recoveries) == 1 and len(calls) == 2 and fake.sleeps == []

    fake = FakeTime()
    invoke, calls = scripted(Code.UNAUTHENTICATED, Code.UNAUTHENTICATED, "never", fake=fake)
    with pytest.raises(NvGridAuthError):
        run(invoke, fake, POLICY, on_unauthenticated=recover)
    assert len(calls) == 2


def test_repeat_after_recovery_does_not_use_up_an_attempt() -> None:
    fake = FakeTime()
    policy = CallPolicy(max_attempts=2, initial_backoff=0.1)
    invoke, calls = scripted(Code.UNAUTHENTICATED, Code.UNAVAILABLE, "ok", fake=fake)
    assert run(invoke, fake, policy, on_unauthenticated=lambda: True) == "ok"
    assert len(calls) == 3
