"""Subscriptions over WebSocket (graphql-transport-ws) on every backend: authenticated at
connection_init with the HTTP path's keys (refused with 4403), under the same limits, rate
limits and caps; apiKeyRevoked heard by the key's holder alone, from the mutation or the CLI;
and, through Redis, by a client of one `gateway run` process when another raised it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from db.engines import Databases
from gateway.access import keys as api_keys
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from gateway.events import Events, RedisEvents, listening
from gateway.guards.documents import register_operation
from gateway.schema import build_schema
from tests.conftest import (
    Backend,
    GraphQLClient,
    cli_env,
    gateway_process,
    mint_key,
    redis_url,
    settings_for,
)

PROTOCOL = "graphql-transport-ws"
REVOKED = "subscription Revoked { apiKeyRevoked { id prefix state revokedAt holderName } }"
REVOKE = "mutation Revoke($prefix: String!) { revokeApiKey(prefix: $prefix) { state } }"
FIXED_NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
WAIT_S = 20  # a guard against a hang, never a condition of the test


def _name(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def databases(backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": backend.urls["gateway"]})
    yield databases
    await databases.dispose()


async def _holder(databases: Databases, keys: int = 2) -> list[tuple[api_keys.KeyInfo, str]]:
    name = _name("Notary office")
    return [await mint_key(databases, PrincipalKind.NOTARY, name) for _ in range(keys)]


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The app behind a real uvicorn on loopback, in this event loop; yields host:port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until the app has started
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def gateway(backend: Backend, **overrides: Any) -> AsyncIterator[str]:
    app = create_app(settings_for(backend, **overrides), wall_clock=lambda: FIXED_NOW)
    async with serving(app) as address:
        yield address


class Subscriber:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT_S))
        return message

    async def closed_with(self) -> int | None:
        """The close code the server ended the connection with."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), WAIT_S)
        assert self.ws.close_code is not None
        return self.ws.close_code

    async def init(self, key: str | None = None, **payload: Any) -> dict[str, Any]:
        if key is not None:
            payload["Authorization"] = f"Bearer {key}"
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def subscribe(
        self, id: str, query: str = REVOKED, variables: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Subscribes, then pings: the pong says the subscription listens. Returns what came
        before the pong (an `error` when the subscribe was refused)."""
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": id, "type": "subscribe", "payload": payload})
        await self.send({"type": "ping"})
        before = []
        while (message := await self.receive())["type"] != "pong":
            before.append(message)
        return before

    async def complete(self, id: str) -> None:
        await self.send({"id": id, "type": "complete"})
        await self.send({"type": "ping"})
        assert (await self.receive())["type"] == "pong"


@contextlib.asynccontextmanager
async def websocket(
    address: str, key: str | None = None, *, init: bool = True, **options: Any
) -> AsyncIterator[Subscriber]:
    async with connect(f"ws://{address}/graphql", subprotocols=[PROTOCOL], **options) as ws:  # type: ignore[list-item]
        subscriber = Subscriber(ws)
        if init:
            assert await subscriber.init(key) == {"type": "connection_ack"}
        yield subscriber


def _code(message: dict[str, Any]) -> str:
    assert message["type"] == "error", message
    (error,) = message["payload"]
    code: str = error["extensions"]["code"]
    assert code in ERROR_CODES
    return code


async def _revoke(address: str, key: str, prefix: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        body: dict[str, Any] = await GraphQLClient(http, key)(REVOKE, {"prefix": prefix})
    return body


async def test_a_holder_hears_its_own_keys_revoked_and_no_one_else_does(
    backend: Backend, databases: Databases
) -> None:
    (holder, key), (spare, _) = await _holder(databases)
    (_, other_key), (other_spare, _) = await _holder(databases)
    async with (
        gateway(backend) as address,
        websocket(address, key) as mine,
        websocket(address, other_key) as theirs,
    ):
        assert await mine.subscribe("1") == []
        assert await theirs.subscribe("1") == []
        revoked = await _revoke(address, key, spare.prefix)
        assert revoked["data"]["revokeApiKey"]["state"] == "REVOKED"
        heard = await mine.receive()
        assert heard["type"] == "next"
        assert heard["id"] == "1"
        assert "errors" not in heard["payload"]
        key_heard = heard["payload"]["data"]["apiKeyRevoked"]
        assert key_heard["prefix"] == spare.prefix
        assert key_heard["state"] == "REVOKED"
        assert key_heard["holderName"] == holder.principal_name
        # The other office did not hear it: the first thing it hears is its own revocation.
        await _revoke(address, other_key, other_spare.prefix)
        first = await theirs.receive()
        assert first["payload"]["data"]["apiKeyRevoked"]["prefix"] == other_spare.prefix


async def test_a_websocket_without_a_valid_key_is_refused_at_connection_init(
    backend: Backend, databases: Databases
) -> None:
    (info, key), (_, spare_key) = await _holder(databases)
    await api_keys.revoke_key(databases, info.prefix)
    async with gateway(backend) as address:
        for payload in (
            {"Authorization": f"Bearer {key}"},  # revoked
            {"Authorization": f"Bearer {spare_key[:-2]}xx"},  # wrong secret
            {"Authorization": "Bearer gw_nonsense"},
            {"Authorization": f"Basic {spare_key}"},  # a valid key under another scheme
            {"Authorization": 42},
        ):
            async with websocket(address, init=False) as ws:
                await ws.send({"type": "connection_init", "payload": payload})
                assert await ws.closed_with() == 4403, payload
                assert ws.ws.close_reason == "Forbidden"
        # A subscribe before connection_init is refused by the protocol itself.
        async with websocket(address, init=False) as ws:
            await ws.send({"id": "1", "type": "subscribe", "payload": {"query": REVOKED}})
            assert await ws.closed_with() == 4401
        # The valid key is accepted; an upgrade's bad Authorization header is refused at once.
        async with websocket(address, spare_key) as ws:
            assert await ws.subscribe("1") == []
        with pytest.raises(InvalidStatus) as refused:
            async with websocket(address, additional_headers={"Authorization": "Bearer gw_x"}):
                pass
        assert refused.value.response.status_code == 401


async def test_failed_attempts_at_connection_init_are_throttled(
    backend: Backend, databases: Databases
) -> None:
    ((_, key),) = await _holder(databases, 1)
    async with gateway(backend, auth_failures_per_ip="2/minute") as address:
        codes = []
        for _ in range(3):
            async with websocket(address, init=False) as ws:
                await ws.send(
                    {"type": "connection_init", "payload": {"Authorization": "Bearer gw_x"}}
                )
                codes.append(await ws.closed_with())
        assert codes == [4403, 4403, 4429]
        # Shared with HTTP: the same address is throttled there too, for unknown credentials.
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await GraphQLClient(http, key).post("{ viewer { name } }")
        assert response.status_code == 429


async def test_an_anonymous_connection_hears_public_events_only(backend: Backend) -> None:
    async with gateway(backend) as address, websocket(address) as anonymous:
        (refused,) = await anonymous.subscribe("1")
        assert _code(refused) == "FORBIDDEN"
        assert refused["payload"][0]["extensions"]["scope"] == "keys:read"


async def test_subscriptions_are_rate_limited_and_capped(
    backend: Backend, databases: Databases
) -> None:
    ((_, key),) = await _holder(databases, 1)
    limits = {
        "subscriptions_per_connection": 2,
        "subscriptions_per_principal": 3,
        "rate_limit_partner": "6/minute",
    }
    async with (
        gateway(backend, **limits) as address,
        websocket(address, key) as one,
        websocket(address, key) as two,
        websocket(address, key) as three,
    ):
        assert await one.subscribe("a") == []
        assert await one.subscribe("b") == []  # 2 counted
        (refused,) = await one.subscribe("c")
        assert _code(refused) == "RATE_LIMITED"
        assert refused["payload"][0]["extensions"]["limit"] == "subscriptionsPerConnection"
        assert await two.subscribe("d") == []  # 3
        (refused,) = await two.subscribe("e")
        assert refused["payload"][0]["extensions"] == {
            "code": "RATE_LIMITED",
            "limit": "subscriptionsPerPrincipal",
            "max": 3,
        }
        await one.complete("a")  # a slot is free again
        assert await two.subscribe("e") == []  # 4
        await one.complete("b")
        assert await three.subscribe("f") == []  # 5
        await three.complete("f")
        assert await three.subscribe("g") == []  # 6
        await three.complete("g")
        (refused,) = await three.subscribe("h")  # the 7th operation this minute
        assert _code(refused) == "RATE_LIMITED"
        assert refused["payload"][0]["extensions"]["retryAfter"] >= 1


async def test_subscriptions_pass_the_same_guards_as_queries(
    backend: Backend, databases: Databases
) -> None:
    ((_, key), (spare, _)) = await _holder(databases)
    deep = "subscription { apiKeyRevoked { " + "id " * 3 + "} " + "}"
    async with gateway(backend, max_query_depth=1) as address, websocket(address, key) as ws:
        (refused,) = await ws.subscribe("1", deep.replace("id id id", "prefix"))
        assert _code(refused) == "QUERY_TOO_COMPLEX"
    async with gateway(backend) as address, websocket(address, key) as ws:
        (refused,) = await ws.subscribe("1", "subscription { apiKeyRevoked { prefix }")
        assert _code(refused) == "GRAPHQL_PARSE_FAILED"
        (refused,) = await ws.subscribe("2", "subscription { apiKeyRevoked { secret } }")
        assert _code(refused) == "GRAPHQL_VALIDATION_FAILED"
        # Queries and mutations go over HTTP, where reads and changes are accounted for.
        (refused,) = await ws.subscribe("3", "{ viewer { name } }")
        assert _code(refused) == "BAD_REQUEST"
        (refused,) = await ws.subscribe("4", REVOKE, {"prefix": spare.prefix})
        assert _code(refused) == "BAD_REQUEST"
        listed = {k.id: k for k in await api_keys.list_keys(databases)}
        assert listed[spare.id].state == "active"
        # A subscribe that is not one is a protocol error: the socket closes (4400).
        await ws.send({"id": "5", "type": "subscribe", "payload": {"query": 42}})
        assert await ws.closed_with() == 4400


async def test_partners_in_production_subscribe_only_with_registered_documents(
    backend: Backend, databases: Databases
) -> None:
    ((_, key),) = await _holder(databases, 1)
    settings = settings_for(backend, env="production", registered_operations_refresh_s=0)
    document = "subscription Unregistered { apiKeyRevoked { prefix } }"
    async with gateway(backend, env="production", registered_operations_refresh_s=0) as address:
        async with websocket(address, key) as ws:
            (refused,) = await ws.subscribe("1", document)
            assert _code(refused) == "PERSISTED_QUERY_NOT_FOUND"
        await register_operation(databases, build_schema(settings)._schema, document)
        async with websocket(address, key) as ws:
            assert await ws.subscribe("1", document) == []


async def test_a_connection_whose_key_is_revoked_is_closed(
    backend: Backend, databases: Databases
) -> None:
    (doomed, doomed_key), (_, key) = await _holder(databases)
    async with (
        gateway(backend, auth_cache_s=0) as address,
        websocket(address, doomed_key) as compromised,
        websocket(address, key) as owner,
    ):
        assert await compromised.subscribe("1") == []
        assert await owner.subscribe("1") == []
        await _revoke(address, key, doomed.prefix)
        heard = await owner.receive()
        assert heard["payload"]["data"]["apiKeyRevoked"]["prefix"] == doomed.prefix
        # The connection that stood on the revoked key hears nothing more: it is closed.
        assert await compromised.closed_with() == 4403


async def test_cors_origins_apply_to_websocket_upgrades(
    backend: Backend, databases: Databases
) -> None:
    ((_, key),) = await _holder(databases, 1)
    allowed = "https://counter.example.ir"
    async with gateway(backend, cors_allowed_origins=[allowed]) as address:
        with pytest.raises(InvalidStatus) as refused:
            async with websocket(address, key, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with websocket(address, key, origin=allowed) as ws:  # type: ignore[arg-type]
            assert await ws.subscribe("1") == []
        async with websocket(address, key) as ws:  # no Origin: not a browser
            assert await ws.subscribe("1") == []


async def test_websocket_messages_are_bounded(backend: Backend, databases: Databases) -> None:
    ((_, key),) = await _holder(databases, 1)
    async with (
        gateway(backend, websocket_max_message_bytes=2048) as address,
        websocket(address, key) as ws,
    ):
        padding = "#" + "x" * 3000 + "\n"
        await ws.send({"id": "1", "type": "subscribe", "payload": {"query": padding + REVOKED}})
        assert await ws.closed_with() == 1009


async def test_the_cli_revocation_reaches_subscribers_through_redis(
    backend: Backend, databases: Databases
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    (_, key), (spare, _) = await _holder(databases)
    async with (
        gateway(backend, redis_url=url, redis_key_prefix=prefix) as address,
        websocket(address, key) as ws,
    ):
        assert await ws.subscribe("1") == []
        env = {**cli_env(backend), "GATEWAY_REDIS_URL": url, "GATEWAY_REDIS_KEY_PREFIX": prefix}
        result = await _gateway_command(env, "keys", "revoke", spare.prefix)
        assert result.returncode == 0, result.stderr
        heard = await ws.receive()
        assert heard["payload"]["data"]["apiKeyRevoked"]["prefix"] == spare.prefix
        assert heard["payload"]["data"]["apiKeyRevoked"]["state"] == "REVOKED"


async def test_an_event_raised_in_one_gateway_process_reaches_a_client_of_another(
    backend: Backend, databases: Databases
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    (_, key), (spare, _) = await _holder(databases)
    shared = {
        **cli_env(backend),
        "GATEWAY_REDIS_URL": url,
        "GATEWAY_REDIS_KEY_PREFIX": f"gwtest:{uuid.uuid4().hex}:",
    }
    async with (
        gateway_process(backend, shared) as one,
        gateway_process(backend, shared) as two,
        websocket(one, key) as listener,
    ):
        assert await listener.subscribe("1") == []  # live, and Redis has confirmed its channel
        revoked = await _revoke(two, key, spare.prefix)
        assert revoked["data"]["revokeApiKey"]["state"] == "REVOKED"
        heard = await listener.receive()
        assert heard["type"] == "next"
        assert heard["payload"]["data"]["apiKeyRevoked"]["prefix"] == spare.prefix


class _Finished:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


async def _gateway_command(env: dict[str, str], *args: str) -> _Finished:
    """The real `gateway` command in a process of its own (it runs its own event loop)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gateway"),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S * 3)
    assert process.returncode is not None
    return _Finished(process.returncode, stdout.decode(), stderr.decode())


# --- the event bus itself ----------------------------------------------------------------


async def _listening(events: Events, audience: str) -> tuple[AsyncIterator[Any], asyncio.Task[Any]]:
    """A listener of KEY_REVOKED for `audience`, registered (and confirmed by Redis) when this
    returns; its first event is the task's result."""
    started = asyncio.Event()
    token = listening.set(started)
    heard = events.listen(api_keys.KEY_REVOKED, audience)
    first = asyncio.ensure_future(anext(heard))  # the task copies `listening` from here
    listening.reset(token)
    waiting = asyncio.ensure_future(started.wait())
    await asyncio.wait({waiting, first}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert started.is_set()
    return heard, first


async def test_events_reach_their_audience_only_and_a_listener_that_falls_behind_ends() -> None:
    events = Events(max_pending=2)
    heard, first = await _listening(events, "7")
    await events.publish(api_keys.KEY_REVOKED, "8", api_keys.KeyRevoked(key_id=1, prefix="a"))
    await events.publish(api_keys.KEY_REVOKED, "7", api_keys.KeyRevoked(key_id=2, prefix="b"))
    assert await first == api_keys.KeyRevoked(key_id=2, prefix="b")
    for n in range(3):  # never read: the third finds two waiting, and ends the listener
        await events.publish(api_keys.KEY_REVOKED, "7", api_keys.KeyRevoked(key_id=n, prefix="c"))
    with pytest.raises(StopAsyncIteration):
        await anext(heard)
    assert events.listeners(api_keys.KEY_REVOKED, "7") == 0


async def test_events_cross_processes_through_redis() -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    here, there = RedisEvents(url, prefix), RedisEvents(url, prefix)
    try:
        heard, first = await _listening(here, "7")
        # Garbage on the channel is dropped, not delivered and not fatal.
        await there.client.publish(f"{prefix}events:{api_keys.KEY_REVOKED.name}", "{not json")
        await there.publish(api_keys.KEY_REVOKED, "8", api_keys.KeyRevoked(key_id=1, prefix="a"))
        await there.publish(api_keys.KEY_REVOKED, "7", api_keys.KeyRevoked(key_id=2, prefix="b"))
        assert await asyncio.wait_for(first, WAIT_S) == api_keys.KeyRevoked(key_id=2, prefix="b")
        # Another deployment's prefix is another channel.
        elsewhere = RedisEvents(url, f"gwtest:{uuid.uuid4().hex}:")
        await elsewhere.publish(api_keys.KEY_REVOKED, "7", api_keys.KeyRevoked(3, "x"))
        await elsewhere.close()
        await there.publish(api_keys.KEY_REVOKED, "7", api_keys.KeyRevoked(key_id=4, prefix="d"))
        assert await asyncio.wait_for(anext(heard), WAIT_S) == api_keys.KeyRevoked(4, "d")
        await heard.aclose()  # type: ignore[attr-defined]
    finally:
        await here.close()
        await there.close()
