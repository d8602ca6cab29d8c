"""Rate limits per caller, before GraphQL: 429 with Retry-After and RATE_LIMITED, one window
per API key (per IP for anonymous callers), in memory or shared by processes through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from gateway.shared import InProcessWindows
from tests.conftest import (
    Backend,
    gateway_process,
    make_backend,
    mint_key,
    redis_url,
    settings_for,
)

QUERY = {"query": "{ __typename }"}
LIMITS = {
    "rate_limit_public": "5/minute",
    "rate_limit_partner": "50/minute",
    "rate_limit_internal": "80/minute",
}


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """Empty databases of its own on each database (callers are known by their keys there);
    skipped where no server is configured."""
    folder = tmp_path_factory.mktemp(f"ratelimit-{request.param}")
    made, server = await make_backend(request.param, folder, parcels=0)
    yield made
    if server is not None:
        await server.drop_all()


@pytest.fixture(scope="module")
async def keys(backend: Backend) -> dict[str, str]:
    databases = Databases(backend.urls)
    try:
        return {
            name: (await mint_key(databases, kind, f"Rate limit {name}"))[1]
            for name, kind in (
                ("notary", PrincipalKind.NOTARY),
                ("bank", PrincipalKind.BANK),
                ("operator", PrincipalKind.OPERATOR),
            )
        }
    finally:
        await databases.dispose()


@contextlib.asynccontextmanager
async def serve(
    backend: Backend, client_ip: str = "10.1.2.3", **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, **{**LIMITS, **overrides}))
    transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        yield client


async def hammer(clients: list[httpx.AsyncClient], key: str | None, count: int) -> Counter[int]:
    """`count` requests, spread over the clients in turn, 50 at a time; statuses counted."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    statuses: Counter[int] = Counter()
    for start in range(0, count, 50):
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post("/graphql", json=QUERY, headers=headers)
                for i in range(start, min(start + 50, count))
            )
        )
        for response in responses:
            statuses[response.status_code] += 1
            if response.status_code == 429:
                assert_rate_limited(response)
    return statuses


def assert_rate_limited(response: httpx.Response) -> None:
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": retry_after}
    assert "RATE_LIMITED" in ERROR_CODES


async def test_one_key_is_limited_and_another_is_not(
    backend: Backend, keys: dict[str, str]
) -> None:
    async with serve(backend) as client:
        statuses = await hammer([client], keys["notary"], 1000)
        assert statuses == {200: 50, 429: 950}
        # Another partner has its own window; an internal caller has a larger limit.
        assert await hammer([client], keys["bank"], 60) == {200: 50, 429: 10}
        assert await hammer([client], keys["operator"], 100) == {200: 80, 429: 20}
        # The rest of the app is not limited.
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200


async def test_anonymous_callers_are_limited_by_client_ip(backend: Backend) -> None:
    app = create_app(settings_for(backend, None, **LIMITS))
    async with app.router.lifespan_context(app):
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://t"
            )
            for ip in ("10.0.0.1", "10.0.0.2")
        ]
        try:
            assert await hammer(clients[:1], None, 8) == {200: 5, 429: 3}
            assert await hammer(clients[1:], None, 5) == {200: 5}
        finally:
            for client in clients:
                await client.aclose()


async def test_a_batch_counts_each_of_its_operations(backend: Backend) -> None:
    async with serve(backend, client_ip="10.3.3.3") as client:  # 5/minute
        batch = await client.post("/graphql", json=[QUERY] * 3)
        assert batch.json() == [{"data": {"__typename": "Query"}}] * 3
        # Three of five are spent: two more operations, then the limit.
        assert await hammer([client], None, 3) == {200: 2, 429: 1}
    async with serve(backend, client_ip="10.3.3.4") as client:
        # A batch larger than what is left runs none of its operations; the request itself
        # still counts as one, as any refused request does.
        refused = await client.post("/graphql", json=[QUERY] * 6)
        assert refused.status_code == 429
        assert_rate_limited(refused)
        assert await hammer([client], None, 5) == {200: 4, 429: 1}


async def test_two_processes_share_the_limit_through_redis(
    backend: Backend, keys: dict[str, str]
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    shared = {"redis_url": url, "redis_key_prefix": f"gwtest:{uuid.uuid4().hex}:"}
    async with serve(backend, **shared) as one, serve(backend, **shared) as two:
        statuses = await hammer([one, two], keys["notary"], 1000)
        assert statuses == {200: 50, 429: 950}
        assert await hammer([two, one], keys["bank"], 60) == {200: 50, 429: 10}
    # Another prefix (another deployment on the same Redis) counts apart.
    elsewhere = {"redis_url": url, "redis_key_prefix": f"gwtest:{uuid.uuid4().hex}:"}
    async with serve(backend, **elsewhere) as three:
        assert await hammer([three], keys["notary"], 10) == {200: 10}


async def test_an_unreachable_redis_lets_requests_through(
    backend: Backend, keys: dict[str, str]
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with serve(backend, redis_url=f"redis://127.0.0.1:{port}/0") as client:
        assert await hammer([client], keys["notary"], 60) == {200: 60}


def test_a_malformed_limit_fails_at_start_up(backend: Backend) -> None:
    with pytest.raises(ValueError, match="GATEWAY_RATE_LIMIT_PARTNER"):
        create_app(settings_for(backend, rate_limit_partner="lots"))


async def test_two_gateway_processes_share_the_limit_through_redis(
    backend: Backend, keys: dict[str, str]
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    shared = {
        "GATEWAY_REDIS_URL": url,
        "GATEWAY_REDIS_KEY_PREFIX": f"gwtest:{uuid.uuid4().hex}:",
        **{f"GATEWAY_{name.upper()}": value for name, value in LIMITS.items()},
    }
    async with (
        gateway_process(backend, shared) as one,
        gateway_process(backend, shared) as two,
        httpx.AsyncClient(base_url=f"http://{one}") as first,
        httpx.AsyncClient(base_url=f"http://{two}") as second,
    ):
        statuses = await hammer([first, second], keys["notary"], 1000)
        assert statuses == {200: 50, 429: 950}
        assert await hammer([second, first], keys["bank"], 60) == {200: 50, 429: 10}


async def test_in_process_windows_are_cleared_without_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """limits' own in-process storage sends every clean-up of old entries to a thread; the
    gateway's clears them on the event loop's thread, and its windows decide as limits'
    do."""

    def no_thread(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a thread hop for the rate limits")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    storage = InProcessWindows()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/minute")
    assert [await limiter.hit(item, "a") for _ in range(4)] == [True, True, True, False]
    (key,) = storage.events
    # As if the minute had passed (limits keeps its entries on the system clock).
    for entry in storage.events[key]:
        entry.atime -= 120
        entry.expiry -= 120
    storage.expired_at = float("-inf")  # the next hit clears, whoever makes it
    assert await limiter.hit(item, "b")
    assert key not in storage.events
    assert [await limiter.hit(item, "a") for _ in range(4)] == [True, True, True, False]
