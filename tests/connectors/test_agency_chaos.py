"""Connectors against sandbox agencies in trouble: slow, failing, down, and back again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors.errors import AgencyCircuitOpen, AgencyTimeout, AgencyUnavailable
from connectors.soap.land_registry import Plate

PLATE = Plate(11, 125, 102)
POSTAL_CODE = "5715000001"
MARGIN_S = 0.3


@pytest.mark.parametrize("agency", ["land_registry", "postal"])
async def test_an_agency_slower_than_the_timeout_times_out_on_time(
    make_agencies: Any, chaos: Any, quick_policy: Any, agency: str
) -> None:
    timeout_s = 0.4
    agencies = make_agencies(**{agency: {"policy": quick_policy(timeout_s=timeout_s)}})
    await chaos(agency, latency_ms=1500)
    started = time.perf_counter()
    call = (
        agencies.postal.address(POSTAL_CODE)
        if agency == "postal"
        else agencies.land_registry.deed(PLATE)
    )
    with pytest.raises(AgencyTimeout):
        await call
    elapsed = time.perf_counter() - started
    assert timeout_s <= elapsed < timeout_s + MARGIN_S


async def test_retries_stay_within_the_deadline(
    make_agencies: Any, chaos: Any, quick_policy: Any
) -> None:
    policy = quick_policy(timeout_s=0.3, retries=5, deadline_s=0.7)
    agencies = make_agencies(civil_registry={"policy": policy})
    await chaos("civil_registry", latency_ms=1500)
    started = time.perf_counter()
    with pytest.raises(AgencyTimeout):
        await agencies.civil_registry.person("1234567891")
    assert time.perf_counter() - started < 0.7 + MARGIN_S
    assert agencies.guards["civil_registry"].stats().underlying_calls == 2


async def test_a_down_agency_opens_the_breaker_fails_fast_and_recovers_by_itself(
    make_agencies: Any, chaos: Any, quick_policy: Any, calls: Any
) -> None:
    policy = quick_policy(timeout_s=1.0, breaker_failure_threshold=3, breaker_reset_s=0.3)
    agencies = make_agencies(land_registry={"policy": policy})
    registry = agencies.land_registry
    guard = agencies.guards["land_registry"]
    await chaos("land_registry", down=True)

    for _ in range(3):
        with pytest.raises(AgencyUnavailable) as caught:
            await registry.deed(PLATE)
        assert type(caught.value) is AgencyUnavailable
    assert guard.stats().state == "open"

    started = time.perf_counter()
    for sub in range(200):
        with pytest.raises(AgencyCircuitOpen):
            await registry.deed(Plate(11, 125, sub + 1))
    assert time.perf_counter() - started < policy.timeout_s / 4
    assert len(await calls("land_registry")) == 3

    await chaos("land_registry")
    await asyncio.sleep(policy.breaker_reset_s)
    assert await registry.deed(PLATE) is not None
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
    agencies = make_agencies(
        postal={"policy": quick_policy(retries=6, cache_ttl_s=0, breaker_failure_threshold=50)}
    )
    await chaos("postal", error_rate=0.5, seed=7)
    for _ in range(5):
        await agencies.postal.address(POSTAL_CODE)
    stats = agencies.guards["postal"].stats()
    assert stats.failures == 0
    assert stats.underlying_calls > 5
