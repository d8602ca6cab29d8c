"""AgencyGuard.get_cached / put_cached: how a batch call fills the cache of single calls."""

from __future__ import annotations

from connectors.resilience import AgencyGuard, AgencyPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def never() -> str:
    raise AssertionError("the agency should not be asked")


async def test_a_value_put_in_the_cache_answers_call_until_it_expires() -> None:
    clock = Clock()
    guard = AgencyGuard("agency", AgencyPolicy(cache_ttl_s=10.0), clock=clock)
    assert guard.get_cached("GetDeed", "plate-1") == (False, None)
    guard.put_cached("GetDeed", "plate-1", None)  # "no deed" is an answer worth keeping too
    assert guard.get_cached("GetDeed", "plate-1") == (True, None)
    assert await guard.call("GetDeed", "plate-1", never) is None
    assert guard.stats().underlying_calls == 0

    clock.now += 10.0
    assert guard.get_cached("GetDeed", "plate-1") == (False, None)


async def test_without_a_ttl_nothing_is_cached() -> None:
    guard = AgencyGuard("agency", AgencyPolicy(cache_ttl_s=0.0))
    guard.put_cached("GetDeed", "plate-1", "deed")
    assert guard.get_cached("GetDeed", "plate-1") == (False, None)
