"""The WebSocket path attacked as /graphql is (issue 7, items 1, 4 and 7 on the surface
subscriptions added), through a real uvicorn:

- opening a connection is charged to the caller's rate limit as one operation, by the
  connection's address, so rotating X-Forwarded-For does not help;
- a client address holds at most GATEWAY_WEBSOCKETS_PER_ADDRESS open connections in a process:
  an idle connection costs nothing to keep, and without a cap one address could hold every
  socket the process may open; a closed one frees its place;
- both refusals are the documented 429 RATE_LIMITED body, with the gateway's X-Request-Id;
- a subscription document fanning fragments out thirty levels is refused at once, without a
  key, while /healthz answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.exceptions import InvalidStatus

from gateway.edge.app import create_app
from tests.conftest import Backend, settings_for
from tests.gateway.test_subscriptions import websocket

FAN_OUT = (
    'subscription { requestUpdated(trackingCode: "1234567890123452", mobileLast4: "1234") '
    "{ ...F0 } } "
    + " ".join(
        f"fragment F{i} on CitizenRequest {{ status ...F{i + 1} ...F{i + 1} }}" for i in range(30)
    )
    + " fragment F30 on CitizenRequest { status }"
)


@contextlib.asynccontextmanager
async def gateway(backend: Backend, **overrides: Any) -> AsyncIterator[str]:
    """The app behind a real uvicorn on loopback, with forwarded headers left to the app as
    `gateway run` leaves them (gateway/edge/serve.py); yields host:port."""
    app = create_app(settings_for(backend, **overrides))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    host, port = sock.getsockname()
    config = uvicorn.Config(app, log_level="warning", lifespan="on", proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _refusal(refused: pytest.ExceptionInfo[InvalidStatus]) -> dict[str, object]:
    response = refused.value.response
    assert response.status_code == 429
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"]
    (error,) = json.loads(response.body)["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    extensions: dict[str, object] = error["extensions"]
    return extensions


async def test_an_address_holds_only_so_many_open_connections(backend: Backend) -> None:
    async with (
        gateway(backend, websockets_per_address=3) as address,
        websocket(address) as one,
        websocket(address),
        websocket(address),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with websocket(address, init=False):
                pass
        extensions = _refusal(refused)
        assert extensions["limit"] == "websocketsPerAddress"
        assert extensions["max"] == 3
        # Another address's header changes nothing: the connection's peer is the address.
        with pytest.raises(InvalidStatus) as refused:
            async with websocket(
                address, init=False, additional_headers={"X-Forwarded-For": "203.0.113.9"}
            ):
                pass
        _refusal(refused)
        await one.ws.close()
        await one.ws.wait_closed()
        # The server frees the place once it has seen the close.
        async with asyncio.timeout(20):
            while True:
                try:
                    async with websocket(address) as again:
                        assert await again.subscribe("1", FAN_OUT) != []
                    break
                except InvalidStatus:
                    await asyncio.sleep(0.05)


async def test_opening_a_connection_is_charged_to_the_rate_limit(backend: Backend) -> None:
    async with gateway(backend, rate_limit_public="3/minute") as address:
        for number in range(3):
            headers = {"X-Forwarded-For": f"198.51.100.{number}"}
            async with websocket(address, additional_headers=headers):
                pass
        with pytest.raises(InvalidStatus) as refused:
            async with websocket(address, additional_headers={"X-Forwarded-For": "192.0.2.1"}):
                pass
        extensions = _refusal(refused)
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert extensions["retryAfter"] >= 1  # type: ignore[operator]


async def test_a_fan_out_in_a_subscription_is_refused_at_once_while_healthz_answers(
    backend: Backend,
) -> None:
    async with gateway(backend) as address, httpx.AsyncClient() as http:
        async with websocket(address) as anonymous:
            (refused,) = await anonymous.subscribe("1", FAN_OUT)
            health = await http.get(f"http://{address}/healthz")
        assert health.status_code == 200
        assert refused["type"] == "error"
        (error,) = refused["payload"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == "fields"
