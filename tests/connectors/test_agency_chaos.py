"""Connectors against sandbox agencies in trouble: slow, failing, down, and back again.

No test here reads the wall clock: how long a timeout or a deadline takes is pinned on
virtual time in test_resilience.py; here, which of them acted shows in what was raised and
in how many calls reached the agency, and the breakers' reset is a FakeClock moved by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.errors import AgencyCircuitOpen, AgencyTimeout, AgencyUnavailable
from connectors.resilience import CallRecord
from connectors.soap.land_registry import Plate
from tests.clocks import FakeClock

PLATE = Plate(11, 125, 102)
POSTAL_CODE = "5715000001"


def cut_by_the_policy_timeout(error: AgencyTimeout) -> bool:
    """Whether the guard's own timeout ended the attempt (asyncio's TimeoutError), rather
    than the shared client's backstop (an httpx timeout) or the agency answering."""
    return type(error.__cause__) is TimeoutError


@pytest.mark.parametrize("agency", ["land_registry", "postal"])
async def test_an_agency_slower_than_the_timeout_times_out_on_time(
    make_agencies: Any, chaos: Any, quick_policy: Any, agency: str
) -> None:
    # The agency would answer after 1.5 s and the shared client waits 5 s: only the policy's
    # 0.4 s can end the call with a timeout.
    records: list[CallRecord] = []
    agencies = make_agencies(
        on_call=records.append, **{agency: {"policy": quick_policy(timeout_s=0.4)}}
    )
    await chaos(agency, latency_ms=1500)
    call = (
        agencies.postal.address(POSTAL_CODE)
        if agency == "postal"
        else agencies.land_registry.deed(PLATE)
    )
    with pytest.raises(AgencyTimeout) as caught:
        await call
    assert cut_by_the_policy_timeout(caught.value)
    assert [(r.outcome, r.attempts) for r in records] == [("timeout", 1)]


async def test_retries_stay_within_the_deadline(
    make_agencies: Any, chaos: Any, quick_policy: Any
) -> None:
    # Five retries are allowed, but an attempt starts only if its whole 0.3 s fits before
    # the 0.85 s deadline: the second starts near 0.3 s, a third could not start before
    # 0.6 s, too late. However slow the machine, never a third.
    policy = quick_policy(timeout_s=0.3, retries=5, deadline_s=0.85)
    agencies = make_agencies(civil_registry={"policy": policy})
    await chaos("civil_registry", latency_ms=1500)
    with pytest.raises(AgencyTimeout) as caught:
        await agencies.civil_registry.person("1234567891")
    assert cut_by_the_policy_timeout(caught.value)
    assert agencies.guards["civil_registry"].stats().underlying_calls == 2


async def test_a_down_agency_opens_the_breaker_fails_fast_and_recovers_by_itself(
    make_agencies: Any, chaos: Any, quick_policy: Any, calls: Any
) -> None:
    policy = quick_policy(timeout_s=1.0, breaker_failure_threshold=3, breaker_reset_s=30.0)
    clock = FakeClock()
    records: list[CallRecord] = []
    agencies = make_agencies(land_registry={"policy": policy}, clock=clock, on_call=records.append)
    registry = agencies.land_registry
    guard = agencies.guards["land_registry"]
    await chaos("land_registry", down=True)

    for _ in range(3):
        with pytest.raises(AgencyUnavailable) as caught:
            await registry.deed(PLATE)
        assert type(caught.value) is AgencyUnavailable
    assert guard.stats().state == "open"

    # Failing fast: none of 200 calls reaches the agency.
    records.clear()
    for sub in range(200):
        with pytest.raises(AgencyCircuitOpen):
            await registry.deed(Plate(11, 125, sub + 1))
    assert {(r.outcome, r.attempts) for r in records} == {("unavailable", 0)}
    assert len(records) == 200
    assert len(await calls("land_registry")) == 3

    await chaos("land_registry")
    clock.advance(policy.breaker_reset_s - 1)
    with pytest.raises(AgencyCircuitOpen):
        await registry.deed(PLATE)
    clock.advance(1)
    deed = await registry.deed(PLATE)
    assert deed is not None
    assert deed.plate == PLATE
    assert guard.stats().state == "closed"
    assert len(await calls("land_registry")) == 4


async def test_a_batch_of_deeds_fails_as_one_when_the_registry_is_down(
    make_agencies: Any, chaos: Any, quick_policy: Any
) -> None:
    agencies = make_agencies(land_registry={"policy": quick_policy()})
    await chaos("land_registry", down=True)
    with pytest.raises(AgencyUnavailable):
        await agencies.land_registry.deeds([Plate(11, 125, n) for n in range(1, 50)])


async def test_a_flaky_agency_is_retried_into_an_answer(
    make_agencies: Any, chaos: Any, quick_policy: Any
) -> None:
    # Seed 7's longest run of failures in its first 40 draws is 5. Ten retries leave room for
    # a draw taken by something other than these calls (an attempt that timed out on a loaded
    # machine after the agency drew for it): with six, one such draw once made a call fail.
    agencies = make_agencies(
        postal={"policy": quick_policy(retries=10, cache_ttl_s=0, breaker_failure_threshold=50)}
    )
    await chaos("postal", error_rate=0.5, seed=7)
    for _ in range(5):
        await agencies.postal.address(POSTAL_CODE)
    stats = agencies.guards["postal"].stats()
    assert stats.failures == 0
    assert stats.underlying_calls > 5
