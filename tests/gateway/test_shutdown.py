"""Graceful shutdown, with real processes: on SIGTERM a gateway of two workers stops accepting,
closes its WebSockets with 1012 (service restart), finishes every request in flight within
the grace period (their audit records written), and exits cleanly: zero failed requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from db.engines import Databases
from db.gateway import AuditRecord
from gateway.access.principals import PrincipalKind
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies
from tests.conftest import AGENCY_SECRETS, Backend, make_backend, mint_key
from tests.gateway.operations import agency_env, running_gateway

IN_FLIGHT = 6
LATENCY_MS = 1500  # each request waits this long on the land registry: in flight at SIGTERM
WAIT_S = 60  # safety nets against a hang, never measures
PAGE = (
    "query($after: String) { parcels(first: 1, after: $after) {"
    " edges { node { renewalCode owners { nationalCode share } deed { serial } } } } }"
)


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("shutdown"), parcels=12)
    return backend


@pytest.fixture
async def agencies(city: Backend) -> AsyncIterator[SandboxAgencies]:
    async with run_agencies(
        planning_url=city.urls["planning"],
        revenue_url=city.urls["revenue"],
        credentials=AGENCY_SECRETS,
    ) as running:
        yield running


async def _until_calls_started(
    http: httpx.AsyncClient, agencies: SandboxAgencies, count: int
) -> None:
    """Until the land registry (another server) has received `count` calls."""
    async with asyncio.timeout(WAIT_S):
        for _ in iter(int, 1):
            calls = (await http.get(f"{agencies.url('land_registry')}/_calls")).json()["calls"]
            if len(calls) >= count:
                return
            await asyncio.sleep(0.02)


async def test_sigterm_finishes_every_request_in_flight(
    city: Backend, agencies: SandboxAgencies, tmp_path: Path
) -> None:
    databases = Databases({"gateway": city.urls["gateway"]})
    try:
        _, notary = await mint_key(databases, PrincipalKind.NOTARY, "Shutdown notary")
    finally:
        await databases.dispose()
    auth = {"Authorization": f"Bearer {notary}"}
    env = {**agency_env(agencies), "GATEWAY_WORKERS": "2", "GATEWAY_SHUTDOWN_GRACE_S": "30"}
    async with (
        running_gateway(city, tmp_path / "stderr.log", env) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=WAIT_S) as http,
        httpx.AsyncClient(timeout=WAIT_S) as sandbox,
    ):
        first = await http.post(
            "/graphql", json={"query": "{ parcels(first: 12) { edges { cursor } } }"}, headers=auth
        )
        cursors = [None, *(e["cursor"] for e in first.json()["data"]["parcels"]["edges"])]
        land = agencies.url("land_registry")
        (await sandbox.put(f"{land}/_chaos", json={"latency_ms": LATENCY_MS})).raise_for_status()
        await sandbox.delete(f"{land}/_calls")
        address = gateway.url.removeprefix("http://")
        async with connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            subscribe = {"query": "subscription { apiKeyRevoked { prefix } }"}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))

            # Each on its own connection and its own page: no answer is shared or cached.
            async def one(after: str | None) -> httpx.Response:
                async with httpx.AsyncClient(base_url=gateway.url, timeout=WAIT_S) as own:
                    return await own.post(
                        "/graphql",
                        json={"query": PAGE, "variables": {"after": after}},
                        headers=auth,
                    )

            requests = [asyncio.create_task(one(after)) for after in cursors[:IN_FLIGHT]]
            await _until_calls_started(sandbox, agencies, IN_FLIGHT)
            # Every request is now waiting on the land registry, inside the gateway.
            gateway.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(WAIT_S):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1012  # service restart: come back elsewhere
        # Stopped accepting, both workers: a new connection is refused while the old ones finish.
        await gateway.until_logged("stopped accepting connections", 2)
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz", headers={"Connection": "close"}, extensions={})
        answers = await asyncio.gather(*requests)
        async with asyncio.timeout(WAIT_S):
            assert await gateway.process.wait() == 0
        await sandbox.delete(f"{land}/_chaos")
    assert [answer.status_code for answer in answers] == [200] * IN_FLIGHT
    for answer in answers:
        body = answer.json()
        assert "errors" not in body, body
        assert body["data"]["parcels"]["edges"][0]["node"]["deed"] is not None
    # Their reads of personal data were written to the audit trail before they answered.
    databases = Databases({"gateway": city.urls["gateway"]})
    try:
        async with databases.session("gateway") as session:
            audited = set(
                await session.scalars(
                    select(AuditRecord.request_id).where(
                        AuditRecord.request_id.in_([a.headers["x-request-id"] for a in answers])
                    )
                )
            )
    finally:
        await databases.dispose()
    assert audited == {answer.headers["x-request-id"] for answer in answers}
