"""Chaos: latency, a failure rate and a down switch on every agency; DELETE resets it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import zeep.exceptions

from db.demo import KNOWN_NATIONAL_CODE
from sandbox.chaos import Chaos
from sandbox.run import AGENCIES, Agencies
from sandbox.soap import read_fault
from tests.clocks import now, virtual_time

CIVIL = "urn:ir:sabteahval:civil-registry:v1"
GET_PERSON = (
    f'<GetPerson xmlns="{CIVIL}"><nationalCode>{KNOWN_NATIONAL_CODE}</nationalCode></GetPerson>'
)


@pytest.fixture(autouse=True)
async def calm(agencies: Agencies, http: httpx.AsyncClient) -> AsyncIterator[None]:
    yield
    for name in AGENCIES:
        await http.delete(f"{agencies.url(name)}/_chaos")


async def put_chaos(http: httpx.AsyncClient, url: str, **settings: Any) -> httpx.Response:
    response = await http.put(f"{url}/_chaos", json=settings)
    assert response.status_code == 200, response.text
    return response


@virtual_time
async def test_latency_delays_each_call_by_exactly_its_setting_until_reset() -> None:
    chaos = Chaos()
    chaos.update({"latency_ms": 300})
    for _ in range(2):
        started = now()
        await chaos.delay()
        assert now() - started == pytest.approx(0.3)
    chaos.reset()
    started = now()
    await chaos.delay()
    assert now() == started


async def test_latency_is_set_over_http_and_reset_by_delete(
    agencies: Agencies, http: httpx.AsyncClient, post_soap: Any
) -> None:
    await put_chaos(http, agencies.civil_registry, latency_ms=300)
    slow = await post_soap("civil_registry", GET_PERSON)
    # The delay is pinned exactly above; here only what cannot come early is checked.
    slowest = await http.get(f"{agencies.civil_registry}/_calls")
    assert slowest.json()["calls"][-1]["durationMs"] >= 300
    await http.delete(f"{agencies.civil_registry}/_chaos")
    assert (await http.get(f"{agencies.civil_registry}/_chaos")).json()["latency_ms"] == 0
    fast = await post_soap("civil_registry", GET_PERSON)
    assert slow.status_code == fast.status_code == 200


async def test_error_rate_one_makes_every_call_a_server_fault(
    agencies: Agencies, http: httpx.AsyncClient, soap_service: Any
) -> None:
    await put_chaos(http, agencies.civil_registry, error_rate=1.0)

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("civil_registry").GetPerson(nationalCode=KNOWN_NATIONAL_CODE)

    assert raised.value.code == "soap:Server"
    assert raised.value.detail.findtext("{*}ServiceFault/{*}code") == "SERVICE_UNAVAILABLE"


async def test_error_rate_follows_the_seed(
    agencies: Agencies, http: httpx.AsyncClient, post_soap: Any
) -> None:
    async def outcomes() -> list[int]:
        return [(await post_soap("civil_registry", GET_PERSON)).status_code for _ in range(20)]

    await put_chaos(http, agencies.civil_registry, error_rate=0.5, seed=7)
    first = await outcomes()
    await put_chaos(http, agencies.civil_registry, seed=7)
    second = await outcomes()

    assert first == second
    assert set(first) == {200, 500}


async def test_postal_errors_are_503_json(agencies: Agencies, http: httpx.AsyncClient) -> None:
    await put_chaos(http, agencies.postal, error_rate=1.0)

    response = await http.get(f"{agencies.postal}/addresses/1234567890")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


@pytest.mark.parametrize("agency", AGENCIES)
async def test_down_answers_503_like_a_proxy_but_chaos_and_calls_still_work(
    agencies: Agencies, http: httpx.AsyncClient, agency: str
) -> None:
    url = agencies.url(agency)
    await put_chaos(http, url, down=True)

    if agency == "postal":
        response = await http.get(f"{url}/addresses/1234567890")
    else:
        response = await http.post(f"{url}/", content=b"<x/>")
    chaos = await http.get(f"{url}/_chaos")
    calls = await http.get(f"{url}/_calls")
    await http.delete(f"{url}/_chaos")
    after = await http.get(f"{url}/_chaos")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert read_fault(response.content) is None
    assert chaos.json()["down"] is True
    assert calls.status_code == 200
    assert after.json() == {"latency_ms": 0, "error_rate": 0.0, "down": False, "seed": 0}


async def test_down_soap_agency_serves_no_wsdl(agencies: Agencies, http: httpx.AsyncClient) -> None:
    await put_chaos(http, agencies.bank, down=True)

    assert (await http.get(f"{agencies.bank}/?wsdl")).status_code == 503


async def test_put_merges_into_the_current_settings(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    await put_chaos(http, agencies.bank, latency_ms=5)
    merged = await put_chaos(http, agencies.bank, error_rate=0.25)

    assert merged.json() == {"latency_ms": 5, "error_rate": 0.25, "down": False, "seed": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -1},
        {"latency_ms": True},
        {"error_rate": 2},
        {"down": "yes"},
        {"jitter": 1},
        [1, 2],
    ],
)
async def test_bad_settings_are_400_and_change_nothing(
    agencies: Agencies, http: httpx.AsyncClient, body: Any
) -> None:
    response = await http.put(f"{agencies.bank}/_chaos", json=body)

    assert response.status_code == 400
    assert (await http.get(f"{agencies.bank}/_chaos")).json()["latency_ms"] == 0


def test_same_seed_draws_the_same_failures() -> None:
    first, second = Chaos(seed=3), Chaos(seed=3)
    first.update({"error_rate": 0.3})
    second.update({"error_rate": 0.3})

    assert [first.should_fail() for _ in range(50)] == [second.should_fail() for _ in range(50)]
