"""An IPv6 caller is one caller across its /64 (issue 7, item 4: an address must not rotate).
A subscriber is given a whole /64 and may send from any of its 2**64 addresses, so the rate
limit and the failed-authentication throttle count the network, not the address; another
network is another caller, and an IPv4 address (mapped into IPv6 or not) counts alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.types import ASGIApp

from gateway.access.addresses import limit_key
from gateway.edge.app import create_app
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import Backend, settings_for

QUERY = {"query": "{ __typename }"}


@pytest.fixture(scope="module")
async def app(backend: Backend, sandbox: SandboxAgencies) -> AsyncIterator[ASGIApp]:
    made = create_app(
        settings_for(
            backend, sandbox, rate_limit_public="2/minute", auth_failures_per_ip="2/minute"
        )
    )
    async with made.router.lifespan_context(made):
        yield made


@pytest.fixture
def from_address(app: ASGIApp) -> Callable[[str], httpx.AsyncClient]:
    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")

    return client


async def _status(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> int:
    async with client:
        return (await client.post("/graphql", json=QUERY, headers=headers)).status_code


async def test_addresses_of_one_ipv6_network_share_one_window(
    from_address: Callable[[str], httpx.AsyncClient],
) -> None:
    network = "2001:db8:aa:1::"
    statuses = [await _status(from_address(f"{network}{n:x}")) for n in (1, 2, 0xBEEF)]
    assert statuses == [200, 200, 429]
    assert await _status(from_address("2001:db8:aa:2::1")) == 200  # another network


async def test_failed_keys_from_one_ipv6_network_are_throttled_together(
    from_address: Callable[[str], httpx.AsyncClient],
) -> None:
    bad = {"Authorization": "Bearer gw_nothing_nothing"}
    network = "2001:db8:bb:1::"
    statuses = [await _status(from_address(f"{network}{n:x}"), bad) for n in (1, 2, 3)]
    assert statuses == [401, 401, 429]


def test_the_unit_a_limit_counts() -> None:
    assert limit_key("2001:db8:cc:1:ffff:1:2:3") == "2001:db8:cc:1::/64"
    assert limit_key("2001:DB8:CC:1::9") == "2001:db8:cc:1::/64"
    assert limit_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert limit_key("192.0.2.7") == "192.0.2.7"
    assert limit_key("unknown") == "unknown"
