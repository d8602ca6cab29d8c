"""Redis commands that a cancelled request cannot poison (gateway/shared.py, `redis_call`).

coredis multiplexes the commands of many requests on one pooled connection. A command
cancelled mid-flight (its HTTP client went away) makes coredis drop that connection, failing
every other command in flight on it; with no timeout, a command whose reply never comes waits
for ever. The gateway's Redis users run each command shielded and bounded: these tests
cancel many in-flight commands against the real local Redis and check that the others and
the next one are answered, that an unanswering Redis is a bounded wait, and (over HTTP) that
a gateway whose requests were cancelled in flight answers the next request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import coredis
import coredis.exceptions
import httpx
import pytest
import uvloop

from gateway.edge.app import create_app
from gateway.shared import REDIS_COMMAND_TIMEOUT_S, redis_bytes, redis_call
from tests.conftest import Backend, make_backend, redis_url, settings_for

IN_FLIGHT = 40
BOUND_S = 5.0  # generous: the next command must answer well within it on a loaded machine


@pytest.fixture(scope="module")
def url() -> str:
    found = redis_url()
    if found is None:
        pytest.skip("no Redis on 127.0.0.1:6379 (CI has one)")
    return found


def prefix() -> str:
    return f"gwtest:p4:{uuid.uuid4().hex}:"


async def sent(client: coredis.Redis[bytes], key: str, call: bool) -> list[asyncio.Task[Any]]:
    """IN_FLIGHT GETs written to the one pooled connection, their replies not yet read."""
    await client.set(key, b"value", ex=60)  # connects, so the GETs below share the connection

    async def get() -> bytes | None:
        command = client.get(key)
        return await (redis_call(command, BOUND_S) if call else command)

    tasks = [asyncio.ensure_future(get()) for _ in range(IN_FLIGHT)]
    # One turn of the loop: each task writes its GET and waits for the reply, which cannot
    # be read before the next turn.
    await asyncio.sleep(0)
    return tasks


async def test_a_cancelled_raw_coredis_command_drops_the_shared_connection(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The cause: coredis drops the shared connection when one command is cancelled, and
    every other command in flight on it fails ("connection lost"; coredis retries them on
    new connections)."""
    caplog.set_level(logging.INFO, logger="coredis.retry")
    client: coredis.Redis[bytes] = coredis.Redis.from_url(url, decode_responses=False)
    tasks = await sent(client, prefix() + "k", call=False)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks[1::2], return_exceptions=True)
    assert lost(caplog), "coredis no longer drops the connection on cancel: revisit redis_call"


def lost(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]


async def test_cancelled_shielded_commands_leave_the_others_and_the_next_answered(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coredis.retry")
    client = redis_bytes(url)
    key = prefix() + "k"
    for _ in range(3):  # again and again, as wrk drops its connections at each run's end
        tasks = await sent(client, key, call=True)
        for task in tasks[::2]:
            task.cancel()
        outcomes = await asyncio.gather(*tasks[1::2], return_exceptions=True)
        assert outcomes == [b"value"] * len(outcomes)
        async with asyncio.timeout(BOUND_S):
            assert await redis_call(client.get(key)) == b"value"
    assert lost(caplog) == []  # the shared connection was never dropped
    await client.delete([key])


async def storm(url: str, key: str, errors: dict[str, int]) -> int:
    """Requests as the gateway's: counted, looked up and stored, 48 at a time, a third of
    them cancelled now and then (clients going away) and all of them at each round's end (wrk
    dropping its connections). Returns how many requests finished."""
    client = redis_bytes(url)
    done = 0
    value = b"x" * 20_000

    async def request(i: int) -> None:
        nonlocal done
        try:
            await redis_call(client.incrby(key + "count", 1))
            await redis_call(client.expire(key + "count", 60))
            if await redis_call(client.get(f"{key}{i % 20}")) is None:
                await redis_call(client.set(f"{key}{i % 20}", value, ex=60))
            done += 1
        except (coredis.exceptions.RedisError, OSError) as error:
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1

    loop = asyncio.get_running_loop()
    started = 0
    for round_ in range(8):
        running: set[asyncio.Task[None]] = set()
        for turn in range(40):
            while len(running) < 48:
                task = asyncio.ensure_future(request(started))
                started += 1
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.sleep(0)
            if turn % 7 == round_ % 7:
                for task in list(running)[::3]:
                    task.cancel()
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        began = loop.time()
        assert await redis_call(client.incrby(key + "count", 0), BOUND_S) >= 0
        assert loop.time() - began < BOUND_S
    await client.delete([key + "count", *(f"{key}{i}" for i in range(20))])
    return done


def test_a_cancellation_storm_under_uvloop_fails_no_command(url: str) -> None:
    """As the gateway serves (uvicorn on uvloop): without the shield, the same storm failed
    hundreds of commands (ConnectionError, and RuntimeError "the handler is closed")."""
    errors: dict[str, int] = {}
    done = uvloop.run(storm(url, prefix(), errors))
    assert errors == {}
    assert done > 0


@contextlib.asynccontextmanager
async def silent_redis() -> AsyncIterator[str]:
    """A server that accepts connections and reads, but never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in writers:
            writer.close()
        server.close()


async def test_a_redis_that_never_answers_is_a_bounded_wait() -> None:
    async with silent_redis() as silent:
        client = redis_bytes(silent)
        # The client's own deadline fails the command (and drops its connection) ...
        with pytest.raises(coredis.exceptions.TimeoutError):
            async with asyncio.timeout(BOUND_S):
                await client.get("k")
        # ... and a caller of redis_call waits no longer than its bound.
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await redis_call(client.get("k"), REDIS_COMMAND_TIMEOUT_S)
        assert loop.time() - started < BOUND_S


LOOKUP = "query Lookup($code: RenewalCode!) { parcel(renewalCode: $code) { renewalCode } }"


async def test_a_gateway_answers_after_many_requests_were_cancelled_in_flight(
    url: str, tmp_path: Path
) -> None:
    """Through HTTP: Redis-backed rate limits and response cache, requests cancelled
    mid-flight (their client went away), then each next request is answered."""
    backend: Backend
    backend, _ = await make_backend("sqlite", tmp_path, parcels=3)
    settings = settings_for(
        backend,
        redis_url=url,
        redis_key_prefix=prefix(),
        response_cache=True,
        rate_limit_public="100000/minute",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        listed = await http.post(
            "/graphql", json={"query": "{ parcels(first: 3) { edges { node { renewalCode } } } }"}
        )
        assert listed.status_code == 200, listed.text
        codes = [e["node"]["renewalCode"] for e in listed.json()["data"]["parcels"]["edges"]]

        def lookup(code: str) -> Any:
            return http.post("/graphql", json={"query": LOOKUP, "variables": {"code": code}})

        for round_ in range(3):
            tasks = [asyncio.ensure_future(lookup(codes[i % 3])) for i in range(IN_FLIGHT)]
            for _ in range(round_ + 1):  # cancelled at different points of their work
                await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            async with asyncio.timeout(BOUND_S):
                answered = await lookup(codes[round_])
            assert answered.status_code == 200, answered.text
            assert answered.json()["data"]["parcel"]["renewalCode"] == codes[round_]
