"""Clocks for tests of timeouts, deadlines, backoff, breakers and caches; none of them is
the wall clock.

`FakeClock` is a clock a test moves by hand. `VirtualTimeLoop` is an event loop on virtual
time: its clock moves only when nothing is ready to run and nothing arrives on a socket:
then it jumps to the next timer, which fires at once. `loop.time()`, `asyncio.sleep`,
`asyncio.timeout` and everything built on them see the virtual clock, so a test of a
30-second timeout takes no time, and what it measures is exact: a call that times out
after 0.05 s took exactly 0.05 s, on a loaded machine too.

`@virtual_time` runs an async test on a fresh such loop; inside, pass `loop.time` as the
clock of whatever takes one (`AgencyGuard(clock=...)`), so every timer and every reading of
the time agree.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

P = ParamSpec("P")


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# With no timer pending and nothing to run, only another thread can wake the loop. A test
# on virtual time has none that would take this long: a longer wait is a deadlock.
_DEADLOCK_S = 30.0


class _Selector(selectors.DefaultSelector):
    """Polls without waiting, and when nothing is ready moves the clock instead of waiting."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            ready = super().select(_DEADLOCK_S)
            if not ready:
                raise RuntimeError("deadlock: nothing scheduled and nothing to wait for")
            return ready
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def virtual_time(
    test: Callable[P, Coroutine[Any, Any, None]],
) -> Callable[P, None]:
    """Runs an async test on a fresh VirtualTimeLoop (a sync test to pytest)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run


def now() -> float:
    """The running loop's time: virtual inside a `@virtual_time` test."""
    return asyncio.get_running_loop().time()


class Ticking:
    """A clock that moves on by `step` seconds every time it is read."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now
