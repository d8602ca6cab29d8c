"""SIGKILL while citizens register: a `gateway run` on PostgreSQL is killed with 16 clients
registering through submitCitizenRequest, and started again. Every registration that was
acknowledged is there exactly once, under the tracking code the client was given; a client
that lost its answer sends the same idempotency key again and gets the same request (or,
when the first attempt never committed, a new one), never a second."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.requests.records import HISTORY, REQUESTS
from tests.conftest import cli_env, make_backend, mint_key
from tests.gateway.inquiries.test_kill import Gateway, start_gateway
from tests.gateway.requests.registration_world import CENTRE

CLIENTS = 16
ACKNOWLEDGED_BEFORE_KILL = 40  # the work is well under way, with registrations in flight
WAIT_S = 60  # a safety net against a hang, never a measure
SUBMIT = """
mutation ($input: SubmitCitizenRequestInput!) {
  submitCitizenRequest(input: $input) { trackingCode }
}"""


@dataclass
class Ledger:
    """What the clients were told: tracking codes by idempotency key; keys in flight."""

    acknowledged: dict[str, str] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    enough: asyncio.Event = field(default_factory=asyncio.Event)


def _input(key: str, number: int) -> dict[str, object]:
    return {
        "kind": "COMPLAINT",
        "serviceCode": "pothole",
        "description": f"چاله شماره {number}",
        "latitude": CENTRE[0] + (number % 50) * 0.0004,
        "longitude": CENTRE[1],
        "citizenName": "شهروند آزمون",
        "citizenMobile": f"0912{number:07d}",
        "idempotencyKey": key,
    }


async def _client(base: str, token: str, index: int, ledger: Ledger) -> None:
    """Registers one request after another until the connection breaks (the kill)."""
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=WAIT_S
    ) as http:
        for number in range(index, 10_000, CLIENTS):
            key = f"kill-{index}-{number}"
            ledger.sent.add(key)
            try:
                answer = await http.post(
                    "/graphql", json={"query": SUBMIT, "variables": {"input": _input(key, number)}}
                )
            except httpx.TransportError:
                return
            body = answer.json()
            assert "errors" not in body, body
            ledger.acknowledged[key] = body["data"]["submitCitizenRequest"]["trackingCode"]
            if len(ledger.acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                ledger.enough.set()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[Databases, dict[str, str], str]]:
    backend, server = await make_backend("postgres", tmp_path / "databases")  # skips unset
    assert server is not None
    databases = Databases(backend.urls)
    _, token = await mint_key(
        databases, PrincipalKind.DEPARTMENT, f"kill {uuid.uuid4().hex[:6]}", "contact137"
    )
    env = {
        **cli_env(backend),
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_SEED_PARCELS": "0",
        "GATEWAY_LOG_LEVEL": "info",  # uvicorn says when the application has started
        "GATEWAY_RATE_LIMIT_INTERNAL": "100000/minute",
        "GATEWAY_RATE_LIMIT_PARTNER": "100000/minute",
    }
    try:
        yield databases, env, token
    finally:
        await databases.dispose()
        await server.drop_all()


async def test_every_acknowledged_registration_survives_a_kill_exactly_once(
    site: tuple[Databases, dict[str, str], str],
) -> None:
    databases, env, token = site
    ledger = Ledger()
    gateway: Gateway = await start_gateway(env)
    try:
        clients = [
            asyncio.create_task(_client(f"http://{gateway.address}", token, i, ledger))
            for i in range(CLIENTS)
        ]
        async with asyncio.timeout(WAIT_S):
            await ledger.enough.wait()
        gateway.kill()
        async with asyncio.timeout(WAIT_S):
            await asyncio.gather(*clients)
        await gateway.stop()
        lost = ledger.sent - set(ledger.acknowledged)
        assert lost, "the kill found no registration in flight"

        gateway = await start_gateway(env)
        # The clients that lost their answer try again with the same keys.
        async with httpx.AsyncClient(
            base_url=f"http://{gateway.address}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=WAIT_S,
        ) as http:
            for key in sorted(lost):
                number = int(key.rsplit("-", 1)[1])
                answer = await http.post(
                    "/graphql", json={"query": SUBMIT, "variables": {"input": _input(key, number)}}
                )
                body = answer.json()
                assert "errors" not in body, body
                ledger.acknowledged[key] = body["data"]["submitCitizenRequest"]["trackingCode"]
            # And an acknowledged one, replayed, is the same request.
            replayed_key = sorted(ledger.acknowledged)[0]
            number = int(replayed_key.rsplit("-", 1)[1])
            replay = await http.post(
                "/graphql",
                json={"query": SUBMIT, "variables": {"input": _input(replayed_key, number)}},
            )
            assert (
                replay.json()["data"]["submitCitizenRequest"]["trackingCode"]
                == ledger.acknowledged[replayed_key]
            )
    finally:
        await gateway.stop()

    async with databases.engine("contact").connect() as connection:
        stored = {
            row.idempotency_key: row.tracking_code
            for row in await connection.execute(
                select(REQUESTS.c.idempotency_key, REQUESTS.c.tracking_code).where(
                    REQUESTS.c.idempotency_key.like("kill-%")
                )
            )
        }
        total = await connection.scalar(
            select(func.count())
            .select_from(REQUESTS)
            .where(REQUESTS.c.idempotency_key.like("kill-%"))
        )
        steps = await connection.scalar(
            select(func.count())
            .select_from(HISTORY.join(REQUESTS, HISTORY.c.request_id == REQUESTS.c.id))
            .where(REQUESTS.c.idempotency_key.like("kill-%"))
        )
    # Exactly once: one row a key, each under the code its client was given, each with its
    # first two steps of history (registered, routed), committed with it or not at all.
    assert total == len(stored) == len(ledger.acknowledged)
    assert stored == ledger.acknowledged
    assert steps == 2 * total
