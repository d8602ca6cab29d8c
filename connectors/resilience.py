"""The resilience every agency call goes through: one `AgencyGuard` per agency.

A call passes, in order: a TTL cache, de-duplication of identical calls in
flight, the circuit breaker, a concurrency cap, and a timeout around each
attempt, with retries (exponential backoff, full jitter) for idempotent reads.
Connectors raise `connectors.errors` exceptions; the guard adds AgencyTimeout
and AgencyCircuitOpen of its own and lets everything else pass unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_random_exponential,
)

from connectors.errors import (
    AgencyCircuitOpen,
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
)
from connectors.shared_cache import SharedTier

__all__ = [
    "AgencyGuard",
    "AgencyPolicy",
    "AgencyStats",
    "BreakerPermit",
    "BreakerState",
    "CallRecord",
    "CircuitBreaker",
    "Outcome",
    "current_request_id",
]

T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["ok", "cached", "rejected", "unavailable", "timeout", "cancelled", "error"]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Set by the gateway for each request, so that every CallRecord can be found from its logs.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

logger = logging.getLogger(__name__)
# A span per attempt when the process configured tracing; the shared transport passes its
# context on to the agency as W3C `traceparent`.
_tracer = trace.get_tracer("connectors")


def _tracing() -> bool:
    """Whether a tracer provider is installed. Without one, OpenTelemetry's API records
    nothing: its span would be the current one again, so the attempt runs without it."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


_NO_SPAN = contextlib.nullcontext()


@dataclass(frozen=True, slots=True)
class AgencyPolicy:
    """How patiently the gateway treats one agency.

    `deadline_s` bounds one `AgencyGuard.call` as a whole: waiting for a free
    slot, every attempt and the backoff between them. An attempt starts only if
    its whole `timeout_s` fits before the deadline, so no attempt is cut short.
    None means room for every attempt to time out, the longest backoff between
    them, and one more timeout's worth of waiting for a free slot.
    """

    timeout_s: float = 5.0
    retries: int = 2
    backoff_base_s: float = 0.1
    backoff_max_s: float = 2.0
    breaker_failure_threshold: int = 5
    breaker_reset_s: float = 30.0
    max_concurrency: int = 10
    cache_ttl_s: float = 0.0
    cache_max_entries: int = 1024
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff must not be negative")
        if self.breaker_failure_threshold < 1:
            raise ValueError("breaker_failure_threshold must be at least 1")
        if self.breaker_reset_s < 0:
            raise ValueError("breaker_reset_s must not be negative")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.cache_ttl_s < 0:
            raise ValueError("cache_ttl_s must not be negative")
        if self.cache_max_entries < 1:
            raise ValueError("cache_max_entries must be at least 1")
        if self.deadline_s is not None and self.deadline_s < self.timeout_s:
            raise ValueError("deadline_s must leave room for one attempt: at least timeout_s")

    @property
    def total_deadline_s(self) -> float:
        if self.deadline_s is not None:
            return self.deadline_s
        return self.timeout_s * (self.retries + 2) + self.backoff_max_s * self.retries


@dataclass(frozen=True, slots=True)
class BreakerPermit:
    """Leave to make one call; its result is reported back with the permit."""

    generation: int


class CircuitBreaker:
    """Stops calling an agency that keeps failing, and probes it again later.

    Closed: calls pass; `failure_threshold` consecutive failures open it.
    Open: calls fail fast for `reset_s`. Half-open: one probe at a time passes
    and the rest fail fast; the probe's success closes it, its failure opens it
    again. Every change of state starts a new generation, and results reported
    with a permit from an older one are ignored, so a slow call that began
    before the breaker opened cannot close it or count twice.
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_s: float,
        *,
        clock: Clock = time.monotonic,
        on_transition: Callable[[BreakerState], None] | None = None,
    ):
        self._on_transition = on_transition
        self._threshold = failure_threshold
        self._reset_s = reset_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False

    @property
    def state(self) -> BreakerState:
        self._refresh()
        return self._state

    def try_acquire(self) -> BreakerPermit | None:
        """A permit to call the agency, or None when the call must fail fast."""
        self._refresh()
        if self._state == "closed":
            return BreakerPermit(self._generation)
        if self._state == "half_open" and not self._probe_out:
            self._probe_out = True
            return BreakerPermit(self._generation)
        return None

    def record_success(self, permit: BreakerPermit) -> None:
        if permit.generation != self._generation:
            return
        if self._state == "half_open":
            self._move("closed")
        else:
            self._failures = 0

    def record_failure(self, permit: BreakerPermit) -> None:
        if permit.generation != self._generation:
            return
        if self._state == "half_open":
            self._move("open")
        elif self._state == "closed":
            self._failures += 1
            if self._failures >= self._threshold:
                self._move("open")

    def release(self, permit: BreakerPermit) -> None:
        """Return a permit whose call says nothing about the agency (cancelled, never sent)."""
        if permit.generation == self._generation and self._state == "half_open":
            self._probe_out = False

    def is_current(self, permit: BreakerPermit) -> bool:
        """Whether the breaker has stayed in the state it gave `permit` in."""
        self._refresh()
        return permit.generation == self._generation

    def _refresh(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self._reset_s:
            self._move("half_open")

    def _move(self, state: BreakerState) -> None:
        self._state = state
        self._generation += 1
        self._failures = 0
        self._probe_out = False
        if state == "open":
            self._opened_at = self._clock()
        if self._on_transition is not None:
            try:
                self._on_transition(state)
            except Exception:
                logger.exception("on_transition hook failed")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One `AgencyGuard.call`, for logs and metrics. Holds no key or argument.

    `attempts` counts the times this call itself reached the agency: 0 for a
    cache hit, a call that joined one already in flight, or one that failed fast.
    """

    agency: str
    operation: str
    duration_ms: float
    outcome: Outcome
    request_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class AgencyStats:
    """Health of one agency for operators.

    `calls`, `failures`, `underlying_calls` and `cache_hits` count since start;
    the `recent_` figures cover the last calls that were not served from the
    cache (latency as the caller saw it). A failure is an outcome of
    unavailable, timeout or error; a rejection is the agency working.
    """

    name: str
    state: BreakerState
    calls: int
    failures: int
    recent_latency_ms_p50: float | None
    recent_latency_ms_p95: float | None
    recent_error_rate: float
    underlying_calls: int
    cache_hits: int


class _Attempts:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _SharedCall:
    """A call in flight that identical calls join instead of repeating it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.waiters = 0


_Slot = tuple[str, Hashable]


def _is_transient(exc: BaseException) -> bool:
    # A fail-fast is not retried: the breaker has already decided.
    return isinstance(exc, AgencyUnavailable | AgencyTimeout) and not isinstance(
        exc, AgencyCircuitOpen
    )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class AgencyGuard:
    """Calls one agency through cache, de-duplication, breaker, cap, timeout and retries.

    Results are cached and identical calls shared only when `key` is given and
    the call is idempotent; `key` identifies the request within `operation`
    (say, a plate number) and is never logged. Cached results are handed to
    every caller as they are, so they should be immutable.
    """

    def __init__(
        self,
        name: str,
        policy: AgencyPolicy,
        *,
        on_call: Callable[[CallRecord], None] | None = None,
        on_transition: Callable[[str, BreakerState], None] | None = None,
        on_cache: Callable[[str, bool], None] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        window: int = 200,
        shared: SharedTier | None = None,
    ) -> None:
        """`on_transition(agency, state)` hears each change of the breaker's state and
        `on_cache(agency, hit)` each look-up in the cache (for metrics); neither may block.
        `shared`: a second cache tier, shared by every process (connectors/shared_cache.py),
        asked after this process's cache misses and told each answer fetched."""
        self.name = name
        self.shared = shared
        self.policy = policy
        self.breaker = CircuitBreaker(
            policy.breaker_failure_threshold,
            policy.breaker_reset_s,
            clock=clock,
            on_transition=None if on_transition is None else lambda s: on_transition(name, s),
        )
        self._on_cache = on_cache
        self._on_call = on_call
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(policy.max_concurrency)
        self._cache: OrderedDict[_Slot, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[_Slot, _SharedCall] = {}
        self._window: deque[tuple[float, bool]] = deque(maxlen=window)
        self._calls = 0
        self._failures = 0
        self._underlying_calls = 0
        self._cache_hits = 0

    async def call(
        self,
        operation: str,
        key: Hashable | None,
        fn: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        fresh: bool = False,
    ) -> T:
        """`fresh`: the answer must come from the agency now, neither from the cache nor from
        a call already in flight (which may have started before a change the caller must
        see); it still refreshes the cache for others."""
        started = self._clock()
        attempts = _Attempts()
        outcome: Outcome = "error"
        try:
            if key is None or not idempotent:
                result = await self._guarded(operation, fn, idempotent, attempts)
            elif fresh:
                result = await self._guarded(operation, fn, True, attempts)
                if self.policy.cache_ttl_s > 0:
                    self._cache_put((operation, key), result)
                    await self._share_answer(operation, key, result)
            else:
                slot: _Slot = (operation, key)
                found, cached = self._cache_get(slot)
                if found:
                    outcome = "cached"
                    return cast(T, cached)
                shared = self._inflight.get(slot)
                if shared is None:
                    shared = self._share(slot, self._fetch(operation, key, fn, attempts))
                result = cast(T, await self._join(slot, shared))
            outcome = "ok"
            return result
        except AgencyRejected:
            outcome = "rejected"
            raise
        except AgencyTimeout:
            outcome = "timeout"
            raise
        except AgencyUnavailable:
            outcome = "unavailable"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self._record(operation, outcome, self._clock() - started, attempts.count)

    def get_cached(self, operation: str, key: Hashable) -> tuple[bool, Any]:
        """(True, result) when `call(operation, key, …)` would answer from the cache now.

        For connectors whose batch calls answer many keys at once; not counted as a call.
        """
        return self._cache_get((operation, key))

    def put_cached(self, operation: str, key: Hashable, value: Any) -> None:
        """Cache `value` as the result of `call(operation, key, …)`, per the policy's TTL."""
        if self.policy.cache_ttl_s > 0:
            self._cache_put((operation, key), value)

    def stats(self) -> AgencyStats:
        latencies = sorted(ms for ms, _ in self._window)
        errors = sum(1 for _, failed in self._window if failed)
        return AgencyStats(
            name=self.name,
            state=self.breaker.state,
            calls=self._calls,
            failures=self._failures,
            recent_latency_ms_p50=_percentile(latencies, 0.50),
            recent_latency_ms_p95=_percentile(latencies, 0.95),
            recent_error_rate=errors / len(self._window) if self._window else 0.0,
            underlying_calls=self._underlying_calls,
            cache_hits=self._cache_hits,
        )

    # De-duplication and cache

    def _tier(self, operation: str) -> SharedTier | None:
        shared = self.shared
        if shared is None or self.policy.cache_ttl_s <= 0 or not shared.shares(operation):
            return None
        return shared

    async def _fetch(
        self, operation: str, key: Hashable, fn: Callable[[], Awaitable[T]], attempts: _Attempts
    ) -> T:
        """The shared tier's answer when it has one, else the agency's (then shared)."""
        tier = self._tier(operation)
        if tier is not None:
            found, value = await tier.get(operation, key)
            if found:
                self._cache_hits += 1
                return cast(T, value)
        result = await self._guarded(operation, fn, True, attempts)
        await self._share_answer(operation, key, result)
        return result

    async def _share_answer(self, operation: str, key: Hashable, result: Any) -> None:
        tier = self._tier(operation)
        if tier is None:
            return
        try:
            await tier.put(operation, key, result, self.policy.cache_ttl_s)
        except Exception:  # an answer not shared is asked again elsewhere, nothing worse
            logger.exception("could not share %s.%s's answer", self.name, operation)

    def _share(self, slot: _Slot, work: Coroutine[Any, Any, Any]) -> _SharedCall:
        # A task of its own, so that a caller's cancellation does not reach it.
        shared = _SharedCall(asyncio.create_task(work, name=f"agency {self.name}.{slot[0]}"))
        self._inflight[slot] = shared
        shared.task.add_done_callback(lambda _: self._settle(slot, shared))
        return shared

    async def _join(self, slot: _Slot, shared: _SharedCall) -> Any:
        shared.waiters += 1
        try:
            return await asyncio.shield(shared.task)
        finally:
            shared.waiters -= 1
            if shared.waiters == 0 and not shared.task.done():
                # Every caller was cancelled: nobody is left to want the answer.
                if self._inflight.get(slot) is shared:
                    del self._inflight[slot]
                shared.task.cancel()

    def _settle(self, slot: _Slot, shared: _SharedCall) -> None:
        if self._inflight.get(slot) is shared:
            del self._inflight[slot]
        if shared.task.cancelled():
            return
        if shared.task.exception() is None and self.policy.cache_ttl_s > 0:
            self._cache_put(slot, shared.task.result())

    def _cache_get(self, slot: _Slot) -> tuple[bool, Any]:
        if self.policy.cache_ttl_s <= 0:
            return False, None
        entry = self._cache.get(slot)
        if entry is not None and self._clock() >= entry[0]:
            del self._cache[slot]
            entry = None
        if self._on_cache is not None:
            try:
                self._on_cache(self.name, entry is not None)
            except Exception:
                logger.exception("on_cache hook failed for %s", self.name)
        if entry is None:
            return False, None
        self._cache.move_to_end(slot)
        return True, entry[1]

    def _cache_put(self, slot: _Slot, value: Any) -> None:
        self._cache[slot] = (self._clock() + self.policy.cache_ttl_s, value)
        self._cache.move_to_end(slot)
        while len(self._cache) > self.policy.cache_max_entries:
            self._cache.popitem(last=False)

    # Breaker, cap, timeout and retries

    async def _guarded(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        idempotent: bool,
        attempts: _Attempts,
    ) -> T:
        policy = self.policy
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.total_deadline_s

        async def attempt() -> T:
            return await self._attempt(operation, fn, deadline, attempts)

        if not idempotent or policy.retries == 0:
            return await attempt()
        # The first attempt runs outside tenacity: most calls succeed at once, and building
        # the retrying machinery cost a tenth of a call. A transient failure is handed to
        # tenacity as its own first attempt's outcome, so it decides (stop, wait, retry)
        # exactly as if it had made that attempt.
        try:
            return await attempt()
        except Exception as exc:
            if not _is_transient(exc):
                raise
            first: list[Exception] = [exc]

        async def replay() -> T:
            if first:
                raise first.pop()
            return await attempt()

        def give_up(state: RetryCallState) -> bool:
            # Retry only when a whole attempt still fits before the deadline.
            return (
                state.attempt_number > policy.retries
                or loop.time() + state.upcoming_sleep + policy.timeout_s > deadline
            )

        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=give_up,
            wait=wait_random_exponential(
                multiplier=policy.backoff_base_s, max=policy.backoff_max_s
            ),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        result: T = await retrying(replay)
        return result

    async def _attempt(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        deadline: float,
        attempts: _Attempts,
    ) -> T:
        permit = self.breaker.try_acquire()
        if permit is None:
            raise AgencyCircuitOpen(self.name, operation)
        timeout_s = self.policy.timeout_s
        try:
            if self._slots.locked():
                # An attempt starts only if its whole timeout fits before the deadline.
                # Waiting for a slot is our own congestion, not the agency's failure.
                async with asyncio.timeout_at(deadline - timeout_s):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()  # a free slot: taken at once, no timer needed
        except TimeoutError:
            self.breaker.release(permit)
            raise AgencyTimeout(self.name, operation) from None
        except BaseException:
            self.breaker.release(permit)
            raise
        try:
            if not self.breaker.is_current(permit):
                # The breaker opened while we queued: ask again rather than add to the pile.
                fresh = self.breaker.try_acquire()
                if fresh is None:
                    raise AgencyCircuitOpen(self.name, operation)
                permit = fresh
            attempts.count += 1
            self._underlying_calls += 1
            try:
                span = (
                    _tracer.start_as_current_span(
                        f"agency {self.name}.{operation}",
                        kind=SpanKind.CLIENT,
                        attributes={"agency.name": self.name, "agency.operation": operation},
                    )
                    if _tracing()
                    else _NO_SPAN
                )
                with span:
                    async with asyncio.timeout(timeout_s):
                        result = await fn()
            except TimeoutError as exc:
                self.breaker.record_failure(permit)
                raise AgencyTimeout(self.name, operation) from exc
            except (AgencyUnavailable, AgencyTimeout):
                self.breaker.record_failure(permit)
                raise
            except AgencyRejected:
                # The agency is up and answering; it just said no.
                self.breaker.record_success(permit)
                raise
            except BaseException:
                self.breaker.release(permit)
                raise
            self.breaker.record_success(permit)
            return result
        finally:
            self._slots.release()

    # Records and statistics

    def _record(self, operation: str, outcome: Outcome, seconds: float, attempts: int) -> None:
        duration_ms = seconds * 1000.0
        failed = outcome in ("unavailable", "timeout", "error")
        self._calls += 1
        if failed:
            self._failures += 1
        if outcome == "cached":
            self._cache_hits += 1
        elif outcome != "cancelled":
            self._window.append((duration_ms, failed))
        if self._on_call is None:
            return
        record = CallRecord(
            agency=self.name,
            operation=operation,
            duration_ms=duration_ms,
            outcome=outcome,
            request_id=current_request_id.get(),
            attempts=attempts,
        )
        try:
            self._on_call(record)
        except Exception:
            logger.exception("on_call hook failed for %s.%s", self.name, operation)
