"""The resilience layer every agency call goes through.

The tests run on virtual time (tests/clocks.py): timeouts, deadlines and backoff
elapse at once and are measured exactly, and the guard reads the same clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest

from connectors.errors import (
    AgencyCircuitOpen,
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
)
from connectors.resilience import (
    AgencyGuard,
    AgencyPolicy,
    CallRecord,
    CircuitBreaker,
    current_request_id,
)
from tests.clocks import FakeClock, now, virtual_time

AGENCY = "land_registry"
OPERATION = "deed_by_plate"


class Agency:
    """Stands in for a connector method: answers from a script, counts the calls that reach it.

    An answer is a value, an exception class from connectors.errors (raised for
    this agency and operation) or an exception; the last answer repeats. With a `gate`,
    every call waits for it to open; `asked` is set when the first call arrives.
    """

    def __init__(self, *answers: Any, gate: asyncio.Event | None = None) -> None:
        self.answers = list(answers) or ["deed"]
        self.gate = gate
        self.calls = 0
        self.asked = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        self.asked.set()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(answer, type) and issubclass(answer, AgencyError):
            raise answer(AGENCY, OPERATION)
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def hang() -> str:
    await asyncio.sleep(3600)
    return "never"


def make_guard(
    *,
    clock: Callable[[], float] | None = None,
    on_call: Callable[[CallRecord], None] | None = None,
    sleeps: list[float] | None = None,
    **overrides: Any,
) -> AgencyGuard:
    settings: dict[str, Any] = {
        "timeout_s": 1.0,
        "retries": 0,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.002,
        "breaker_failure_threshold": 3,
        "breaker_reset_s": 30.0,
        "max_concurrency": 10,
        "cache_ttl_s": 0.0,
    }
    settings.update(overrides)

    async def record_sleep(seconds: float) -> None:
        # Recorded, and waited out on the virtual clock.
        if sleeps is not None:
            sleeps.append(seconds)
        await asyncio.sleep(seconds)

    return AgencyGuard(
        AGENCY,
        AgencyPolicy(**settings),
        clock=clock or asyncio.get_running_loop().time,
        on_call=on_call,
        sleep=record_sleep,
    )


async def open_breaker(guard: AgencyGuard) -> None:
    failing = Agency(AgencyUnavailable)
    for _ in range(guard.policy.breaker_failure_threshold):
        with pytest.raises(AgencyUnavailable):
            await guard.call(OPERATION, None, failing)
    assert guard.stats().state == "open"


# Circuit breaker


@virtual_time
async def test_breaker_opens_after_consecutive_failures_and_then_fails_fast() -> None:
    guard = make_guard(breaker_failure_threshold=3)
    agency = Agency(AgencyUnavailable)
    for _ in range(2):
        with pytest.raises(AgencyUnavailable):
            await guard.call(OPERATION, None, agency)
    assert guard.stats().state == "closed"

    with pytest.raises(AgencyUnavailable):
        await guard.call(OPERATION, None, agency)
    assert guard.stats().state == "open"

    # Failing fast: not a moment of the timeout waited, the agency not asked.
    started = now()
    with pytest.raises(AgencyCircuitOpen) as caught:
        await guard.call(OPERATION, None, hang)
    assert now() == started
    assert caught.value.code == "AGENCY_UNAVAILABLE"
    assert agency.calls == 3


@virtual_time
async def test_a_success_resets_the_consecutive_failure_count() -> None:
    guard = make_guard(breaker_failure_threshold=3)
    agency = Agency(AgencyUnavailable, AgencyUnavailable, "deed", AgencyUnavailable)
    for _ in range(2):
        with pytest.raises(AgencyUnavailable):
            await guard.call(OPERATION, None, agency)
    assert await guard.call(OPERATION, None, agency) == "deed"
    for _ in range(2):
        with pytest.raises(AgencyUnavailable):
            await guard.call(OPERATION, None, agency)
    assert guard.stats().state == "closed"


@virtual_time
async def test_timeouts_count_as_failures_for_the_breaker() -> None:
    guard = make_guard(breaker_failure_threshold=2, timeout_s=0.01)
    for _ in range(2):
        with pytest.raises(AgencyTimeout):
            await guard.call(OPERATION, None, hang)
    assert guard.stats().state == "open"


@virtual_time
async def test_half_open_probe_success_closes_the_breaker() -> None:
    clock = FakeClock()
    guard = make_guard(clock=clock, breaker_reset_s=30.0)
    await open_breaker(guard)

    clock.advance(29.0)
    with pytest.raises(AgencyCircuitOpen):
        await guard.call(OPERATION, None, Agency("deed"))

    clock.advance(1.0)
    assert guard.stats().state == "half_open"
    probe = Agency("deed")
    assert await guard.call(OPERATION, None, probe) == "deed"
    assert probe.calls == 1
    assert guard.stats().state == "closed"


@virtual_time
async def test_half_open_probe_failure_opens_the_breaker_again() -> None:
    clock = FakeClock()
    guard = make_guard(clock=clock, breaker_reset_s=30.0)
    await open_breaker(guard)

    clock.advance(30.0)
    with pytest.raises(AgencyUnavailable):
        await guard.call(OPERATION, None, Agency(AgencyUnavailable))
    assert guard.stats().state == "open"

    agency = Agency("deed")
    with pytest.raises(AgencyCircuitOpen):
        await guard.call(OPERATION, None, agency)
    assert agency.calls == 0


@virtual_time
async def test_half_open_lets_one_probe_through_and_fails_the_rest_fast() -> None:
    clock = FakeClock()
    guard = make_guard(clock=clock)
    await open_breaker(guard)
    clock.advance(30.0)

    gate = asyncio.Event()
    probe = Agency("deed", gate=gate)
    probing = asyncio.create_task(guard.call(OPERATION, None, probe))
    await probe.asked.wait()

    other = Agency("deed")
    with pytest.raises(AgencyCircuitOpen):
        await guard.call(OPERATION, None, other)
    assert other.calls == 0

    gate.set()
    assert await probing == "deed"
    assert guard.stats().state == "closed"
    assert await guard.call(OPERATION, None, other) == "deed"


@virtual_time
async def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = FakeClock()
    guard = make_guard(clock=clock)
    await open_breaker(guard)
    clock.advance(30.0)

    probe = Agency("deed", gate=asyncio.Event())  # a gate that never opens
    probing = asyncio.create_task(guard.call(OPERATION, None, probe))
    await probe.asked.wait()
    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probing

    assert guard.stats().state == "half_open"
    assert await guard.call(OPERATION, None, Agency("deed")) == "deed"
    assert guard.stats().state == "closed"


@virtual_time
async def test_rejections_do_not_open_the_breaker() -> None:
    guard = make_guard(breaker_failure_threshold=2)
    agency = Agency(AgencyRejected(AGENCY, OPERATION, fault_code="PLATE_UNKNOWN"))
    for _ in range(5):
        with pytest.raises(AgencyRejected) as caught:
            await guard.call(OPERATION, None, agency)
        assert caught.value.fault_code == "PLATE_UNKNOWN"
    assert agency.calls == 5
    assert guard.stats().state == "closed"


@virtual_time
async def test_calls_queued_for_a_slot_fail_fast_once_the_breaker_opens() -> None:
    guard = make_guard(max_concurrency=1, breaker_failure_threshold=1)
    gate = asyncio.Event()
    failing_agency = Agency(AgencyUnavailable, gate=gate)
    failing = asyncio.create_task(guard.call(OPERATION, None, failing_agency))
    queued_agency = Agency("deed")
    queued = asyncio.create_task(guard.call(OPERATION, None, queued_agency))
    await failing_agency.asked.wait()
    assert not queued.done()

    gate.set()
    with pytest.raises(AgencyUnavailable):
        await failing
    with pytest.raises(AgencyCircuitOpen):
        await queued
    assert queued_agency.calls == 0


def test_a_late_result_from_before_the_breaker_opened_does_not_close_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_s=30.0, clock=clock)
    slow = breaker.try_acquire()
    failing = [breaker.try_acquire(), breaker.try_acquire()]
    assert slow is not None
    for permit in failing:
        assert permit is not None
        breaker.record_failure(permit)
    assert breaker.state == "open"

    breaker.record_success(slow)
    assert breaker.state == "open"
    assert breaker.try_acquire() is None


# Retries


@virtual_time
async def test_idempotent_calls_are_retried_on_transient_failures() -> None:
    sleeps: list[float] = []
    guard = make_guard(sleeps=sleeps, retries=3)
    agency = Agency(AgencyUnavailable, AgencyTimeout, "deed")
    assert await guard.call(OPERATION, None, agency) == "deed"
    assert agency.calls == 3
    assert len(sleeps) == 2
    assert guard.stats().underlying_calls == 3


@virtual_time
async def test_retries_back_off_exponentially_with_full_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    guard = make_guard(
        sleeps=sleeps,
        retries=4,
        backoff_base_s=0.5,
        backoff_max_s=3.0,
        breaker_failure_threshold=100,
    )
    agency = Agency(AgencyUnavailable)

    # Full jitter draws each wait from [0, min(max, base * 2**n)]: pin the draw to the top.
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    with pytest.raises(AgencyUnavailable):
        await guard.call(OPERATION, None, agency)
    assert sleeps == [0.5, 1.0, 2.0, 3.0]
    assert agency.calls == 5

    monkeypatch.undo()
    sleeps.clear()
    with pytest.raises(AgencyUnavailable):
        await guard.call(OPERATION, None, agency)
    assert len(sleeps) == 4
    assert all(0.0 <= s <= cap for s, cap in zip(sleeps, [0.5, 1.0, 2.0, 3.0], strict=True))


@virtual_time
async def test_calls_that_are_not_idempotent_are_never_retried() -> None:
    sleeps: list[float] = []
    guard = make_guard(sleeps=sleeps, retries=3)
    agency = Agency(AgencyUnavailable)
    with pytest.raises(AgencyUnavailable):
        await guard.call("submit_transfer", None, agency, idempotent=False)
    assert agency.calls == 1
    assert sleeps == []


@virtual_time
async def test_rejections_are_never_retried() -> None:
    sleeps: list[float] = []
    guard = make_guard(sleeps=sleeps, retries=3)
    agency = Agency(AgencyRejected)
    with pytest.raises(AgencyRejected):
        await guard.call(OPERATION, None, agency)
    assert agency.calls == 1
    assert sleeps == []


@virtual_time
async def test_retries_stop_once_the_breaker_opens() -> None:
    guard = make_guard(retries=10, breaker_failure_threshold=3)
    agency = Agency(AgencyUnavailable)
    with pytest.raises(AgencyCircuitOpen):
        await guard.call(OPERATION, None, agency)
    assert agency.calls == 3


@virtual_time
async def test_unexpected_exceptions_pass_through_unretried() -> None:
    guard = make_guard(retries=3)
    agency = Agency(ValueError("a bug in the connector"))
    with pytest.raises(ValueError, match="a bug"):
        await guard.call(OPERATION, None, agency)
    assert agency.calls == 1
    assert guard.stats().state == "closed"


# Timeouts and deadline


@virtual_time
async def test_a_hanging_agency_times_out_within_the_policy_timeout() -> None:
    guard = make_guard(timeout_s=0.05)
    started = now()
    with pytest.raises(AgencyTimeout) as caught:
        await guard.call(OPERATION, None, hang)
    assert now() - started == pytest.approx(0.05)
    assert caught.value.code == "AGENCY_TIMEOUT"
    assert guard.stats().failures == 1


@virtual_time
async def test_retries_never_run_past_the_overall_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Eleven attempts of 50 ms would take 550 ms; the deadline leaves room for two, and
    # after the second (at 101 ms) a third would end past it.
    sleeps: list[float] = []
    guard = make_guard(timeout_s=0.05, retries=10, deadline_s=0.13, sleeps=sleeps)
    starts: list[float] = []

    async def counted_hang() -> str:
        starts.append(now())
        return await hang()

    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    started = now()
    with pytest.raises(AgencyTimeout):
        await guard.call(OPERATION, None, counted_hang)
    assert [start - started for start in starts] == pytest.approx([0.0, 0.051])
    assert sleeps == [0.001]
    assert now() - started == pytest.approx(0.101)
    assert now() - started <= 0.13


@virtual_time
async def test_waiting_for_a_free_slot_past_the_deadline_is_not_held_against_the_agency() -> None:
    # A deadline of one timeout leaves no time at all to wait for a slot.
    guard = make_guard(
        max_concurrency=1, timeout_s=0.1, deadline_s=0.1, breaker_failure_threshold=1
    )

    gate = asyncio.Event()
    holding = Agency("deed", gate=gate)
    holder = asyncio.create_task(guard.call(OPERATION, None, holding))
    await holding.asked.wait()

    queued = Agency("deed")
    with pytest.raises(AgencyTimeout):
        await guard.call(OPERATION, None, queued)
    assert queued.calls == 0
    assert guard.stats().state == "closed"
    gate.set()
    assert await holder == "deed"


# Concurrency cap


@virtual_time
async def test_concurrency_cap_is_never_exceeded_under_fifty_concurrent_calls() -> None:
    guard = make_guard(max_concurrency=5)
    active = peak = 0

    async def busy() -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return "deed"

    results = await asyncio.gather(*(guard.call(OPERATION, None, busy) for _ in range(50)))
    assert results == ["deed"] * 50
    assert peak == 5


# Cache


@virtual_time
async def test_cached_results_are_served_within_the_ttl_and_fetched_again_after() -> None:
    clock = FakeClock()
    guard = make_guard(clock=clock, cache_ttl_s=60.0)
    agency = Agency("deed-1", "deed-2")

    assert await guard.call(OPERATION, "12-345", agency) == "deed-1"
    clock.advance(59.0)
    assert await guard.call(OPERATION, "12-345", agency) == "deed-1"
    assert agency.calls == 1

    clock.advance(1.0)
    assert await guard.call(OPERATION, "12-345", agency) == "deed-2"
    assert agency.calls == 2
    assert guard.stats().cache_hits == 1


@virtual_time
async def test_cache_is_keyed_by_operation_and_key() -> None:
    guard = make_guard(cache_ttl_s=60.0)
    agency = Agency("a", "b", "c")
    assert await guard.call(OPERATION, "12-345", agency) == "a"
    assert await guard.call(OPERATION, "67-890", agency) == "b"
    assert await guard.call("owner_by_plate", "12-345", agency) == "c"
    assert agency.calls == 3


@virtual_time
async def test_failures_are_not_cached() -> None:
    guard = make_guard(cache_ttl_s=60.0)
    agency = Agency(AgencyUnavailable, "deed")
    with pytest.raises(AgencyUnavailable):
        await guard.call(OPERATION, "12-345", agency)
    assert await guard.call(OPERATION, "12-345", agency) == "deed"
    assert agency.calls == 2


@virtual_time
async def test_nothing_is_cached_without_a_key_or_for_writes() -> None:
    guard = make_guard(cache_ttl_s=60.0)
    agency = Agency("deed")
    await guard.call(OPERATION, None, agency)
    await guard.call(OPERATION, None, agency)
    await guard.call("submit_transfer", "12-345", agency, idempotent=False)
    await guard.call("submit_transfer", "12-345", agency, idempotent=False)
    assert agency.calls == 4


@virtual_time
async def test_cache_holds_at_most_its_maximum_entries() -> None:
    guard = make_guard(cache_ttl_s=60.0, cache_max_entries=2)
    agency = Agency("deed")
    for key in ("a", "b", "c", "a"):
        await guard.call(OPERATION, key, agency)
    # "a" was evicted by "c" and fetched again.
    assert agency.calls == 4


# De-duplication


@virtual_time
async def test_twenty_identical_concurrent_calls_share_one_underlying_call() -> None:
    gate = asyncio.Event()
    guard = make_guard()
    agency = Agency("deed", gate=gate)
    calls = [asyncio.create_task(guard.call(OPERATION, "12-345", agency)) for _ in range(20)]
    await agency.asked.wait()
    gate.set()
    assert await asyncio.gather(*calls) == ["deed"] * 20
    assert agency.calls == 1
    assert guard.stats().underlying_calls == 1


@virtual_time
async def test_a_failing_shared_call_fails_every_waiter() -> None:
    gate = asyncio.Event()
    guard = make_guard()
    agency = Agency(AgencyUnavailable, gate=gate)
    calls = [asyncio.create_task(guard.call(OPERATION, "12-345", agency)) for _ in range(20)]
    await agency.asked.wait()
    gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(result, AgencyUnavailable) for result in results)
    assert agency.calls == 1


@virtual_time
async def test_cancelling_one_waiter_leaves_the_others_their_result() -> None:
    gate = asyncio.Event()
    guard = make_guard()
    agency = Agency("deed", gate=gate)
    calls = [asyncio.create_task(guard.call(OPERATION, "12-345", agency)) for _ in range(3)]
    await agency.asked.wait()

    calls[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await calls[0]
    gate.set()
    assert await asyncio.gather(*calls[1:]) == ["deed", "deed"]
    assert agency.calls == 1


@virtual_time
async def test_the_shared_call_is_cancelled_when_every_waiter_is() -> None:
    guard = make_guard()
    asked, cancelled = asyncio.Event(), asyncio.Event()

    async def watched() -> str:
        asked.set()
        try:
            return await hang()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    call = asyncio.create_task(guard.call(OPERATION, "12-345", watched))
    await asked.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(cancelled.wait(), timeout=1.0)

    # The next identical call starts afresh instead of joining the cancelled one.
    assert await guard.call(OPERATION, "12-345", Agency("deed")) == "deed"


# Statistics and records


@virtual_time
async def test_stats_reflect_outcomes() -> None:
    guard = make_guard(cache_ttl_s=60.0)
    await guard.call(OPERATION, "12-345", Agency("deed"))
    await guard.call(OPERATION, "12-345", Agency("deed"))
    with pytest.raises(AgencyRejected):
        await guard.call(OPERATION, None, Agency(AgencyRejected))
    with pytest.raises(AgencyUnavailable):
        await guard.call(OPERATION, None, Agency(AgencyUnavailable))

    stats = guard.stats()
    assert stats.name == AGENCY
    assert stats.state == "closed"
    assert stats.calls == 4
    assert stats.failures == 1
    assert stats.cache_hits == 1
    assert stats.underlying_calls == 3
    assert stats.recent_error_rate == pytest.approx(1 / 3)
    # Every answer was instant on the guard's clock (the cache hit is not in the window).
    assert (stats.recent_latency_ms_p50, stats.recent_latency_ms_p95) == (0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.calls = 0  # type: ignore[misc]


@virtual_time
async def test_latency_is_measured_on_the_guards_clock_as_the_caller_saw_it() -> None:
    guard = make_guard(timeout_s=1.0)

    def taking(seconds: float) -> Callable[[], Any]:
        async def answer() -> str:
            await asyncio.sleep(seconds)
            return "deed"

        return answer

    for ms in (40, 10, 30, 20, 50):
        await guard.call(OPERATION, None, taking(ms / 1000))
    with pytest.raises(AgencyTimeout):
        await guard.call(OPERATION, None, hang)  # a timeout counts at its full second
    stats = guard.stats()
    assert stats.recent_latency_ms_p50 == pytest.approx(30.0)
    assert stats.recent_latency_ms_p95 == pytest.approx(1000.0)
    assert stats.recent_error_rate == pytest.approx(1 / 6)


@virtual_time
async def test_stats_of_an_unused_guard_have_no_latency() -> None:
    stats = make_guard().stats()
    assert (stats.calls, stats.recent_latency_ms_p50, stats.recent_error_rate) == (0, None, 0.0)


@virtual_time
async def test_stats_cover_a_bounded_window_of_recent_calls() -> None:
    guard = AgencyGuard(AGENCY, AgencyPolicy(breaker_failure_threshold=100), window=10)
    for _ in range(10):
        with pytest.raises(AgencyUnavailable):
            await guard.call(OPERATION, None, Agency(AgencyUnavailable))
    for _ in range(10):
        await guard.call(OPERATION, None, Agency("deed"))
    stats = guard.stats()
    assert stats.recent_error_rate == 0.0
    assert (stats.calls, stats.failures) == (20, 10)


@virtual_time
async def test_every_call_is_recorded_with_its_request_id_and_no_key() -> None:
    records: list[CallRecord] = []
    sleeps: list[float] = []
    guard = make_guard(on_call=records.append, cache_ttl_s=60.0, retries=2, sleeps=sleeps)

    async def request() -> None:
        current_request_id.set("req-7f3a")
        await guard.call(OPERATION, "0012345678", Agency(AgencyTimeout, "deed"))
        await guard.call(OPERATION, "0012345678", Agency("deed"))

    await asyncio.create_task(request())
    assert [(r.outcome, r.attempts) for r in records] == [("ok", 2), ("cached", 0)]
    first = records[0]
    assert (first.agency, first.operation, first.request_id) == (AGENCY, OPERATION, "req-7f3a")
    # Both attempts answered at once: the call took the backoff between them.
    assert first.duration_ms == pytest.approx(sleeps[0] * 1000)
    assert records[1].duration_ms == 0.0
    assert "0012345678" not in repr(records)


@virtual_time
async def test_a_failing_hook_does_not_fail_the_call() -> None:
    def broken(record: CallRecord) -> None:
        raise RuntimeError("log sink down")

    guard = make_guard(on_call=broken)
    assert await guard.call(OPERATION, None, Agency("deed")) == "deed"


# Errors


def test_error_messages_name_only_the_agency_and_operation() -> None:
    error = AgencyRejected(AGENCY, OPERATION, fault_code="PLATE_UNKNOWN")
    assert str(error) == "land_registry.deed_by_plate: agency rejected the request"
    assert (error.code, error.agency, error.operation) == ("AGENCY_REJECTED", AGENCY, OPERATION)
    assert AgencyUnavailable.code == "AGENCY_UNAVAILABLE"
    assert AgencyCircuitOpen.code == "AGENCY_UNAVAILABLE"
    assert AgencyTimeout.code == "AGENCY_TIMEOUT"


def test_errors_survive_pickling() -> None:
    error = pickle.loads(pickle.dumps(AgencyRejected(AGENCY, OPERATION, fault_code="X")))
    assert (error.agency, error.operation, error.fault_code) == (AGENCY, OPERATION, "X")


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        AgencyPolicy(max_concurrency=0)
    with pytest.raises(ValueError, match="deadline_s"):
        AgencyPolicy(timeout_s=2.0, deadline_s=1.0)
    assert AgencyPolicy(timeout_s=2.0, retries=1, backoff_max_s=1.0).total_deadline_s == 7.0
