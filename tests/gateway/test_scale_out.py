"""Two `gateway run` processes against one PostgreSQL and one Redis share what one process
alone would know (gateway/shared.py): a rate limit counted across both, the failed-
authentication throttle, a persisted query registered on one and used on the other, a
subscription on one hearing an event raised on the other, and an agency answer fetched by
one served to the other from the shared cache tier. (Jobs shared through PostgreSQL, with a
process killed mid-job, are shown in tests/gateway/inquiries/test_kill.py.)

Each test speaks from its own client address (X-Forwarded-For, from a trusted loopback
proxy), so that the limits it counts are its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import Backend, gateway_process, mint_key, redis_url
from tests.gateway.test_subscriptions import REVOKE, websocket

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


class Pair:
    def __init__(self, one: str, two: str, operator: str, postal: str) -> None:
        self.one = one
        self.two = two
        self.operator = operator
        self.postal = postal  # the sandbox postal company's base URL


@pytest.fixture(scope="module")
async def pair(backend: Backend, sandbox: SandboxAgencies) -> AsyncIterator[Pair]:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379 (CI has one)")
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        _, operator = await mint_key(databases, PrincipalKind.OPERATOR, "Scale-out operator")
    finally:
        await databases.dispose()
    shared = {
        "GATEWAY_REDIS_URL": url,
        "GATEWAY_REDIS_KEY_PREFIX": f"gwtest:{uuid.uuid4().hex}:",
        "GATEWAY_TRUSTED_PROXIES": json.dumps(["127.0.0.1"]),
        "GATEWAY_RATE_LIMIT_PUBLIC": "4/hour",
        "GATEWAY_AUTH_FAILURES_PER_IP": "3/hour",
        "GATEWAY_POSTAL_URL": sandbox.url("postal"),
        "GATEWAY_AGENCY_SHARED_CACHE": json.dumps(["postal"]),
        "GATEWAY_DATABASE_POOL_SIZE": "2",  # a shared server: few connections each
    }
    async with contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(gateway_process(backend, shared))
        two = await stack.enter_async_context(gateway_process(backend, shared))
        yield Pair(one, two, operator, sandbox.url("postal"))


async def _post(
    address: str,
    body: dict[str, Any],
    *,
    key: str | None = None,
    client: str = "10.9.0.1",
) -> httpx.Response:
    headers = {"X-Forwarded-For": client}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"http://{address}/graphql", json=body, headers=headers)


def _code(response: httpx.Response) -> str | None:
    errors = response.json().get("errors") or [{}]
    code: str | None = errors[0].get("extensions", {}).get("code")
    return code


PUBLIC = {"query": "{ parcels(first: 1) { totalCount } }"}


async def test_a_rate_limit_is_counted_across_both_processes(pair: Pair) -> None:
    client = "10.9.1.1"
    for address in (pair.one, pair.two, pair.one, pair.two):  # 4 in the hour: all served
        response = await _post(address, PUBLIC, client=client)
        assert response.status_code == 200, response.text
    for address in (pair.one, pair.two):  # the fifth, on either process, is refused
        response = await _post(address, PUBLIC, client=client)
        assert response.status_code == 429
        assert _code(response) == "RATE_LIMITED"
    # Another address has its own window.
    assert (await _post(pair.two, PUBLIC, client="10.9.1.2")).status_code == 200


async def test_failed_authentications_are_throttled_across_both_processes(pair: Pair) -> None:
    client = "10.9.2.1"
    wrong = "gw_000000000000_" + "x" * 43
    for address in (pair.one, pair.two, pair.one):  # three failures in the hour
        response = await _post(address, PUBLIC, key=wrong, client=client)
        assert response.status_code == 401
    # The fourth attempt, on the other process, is throttled before it is even checked.
    response = await _post(pair.two, PUBLIC, key=wrong, client=client)
    assert response.status_code == 429
    assert _code(response) == "RATE_LIMITED"
    # A valid key that process has never seen is throttled too: it is the address that failed.
    response = await _post(pair.two, PUBLIC, key=pair.operator, client=client)
    assert response.status_code == 429


async def test_a_persisted_query_registered_on_one_process_is_used_on_the_other(
    pair: Pair,
) -> None:
    query = "query ScaleOutCount { parcels(first: 1) { totalCount } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    # Unknown anywhere at first: the client is asked for the text.
    response = await _post(pair.two, {"extensions": persisted}, key=pair.operator)
    assert _code(response) == "PERSISTED_QUERY_NOT_FOUND"
    stored = await _post(pair.one, {"query": query, "extensions": persisted}, key=pair.operator)
    assert stored.status_code == 200, stored.text
    assert "errors" not in stored.json(), stored.text
    used = await _post(pair.two, {"extensions": persisted}, key=pair.operator)
    assert used.status_code == 200, used.text
    assert used.json()["data"] == stored.json()["data"]


async def test_a_subscription_on_one_process_hears_an_event_raised_on_the_other(
    pair: Pair, backend: Backend
) -> None:
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        name = f"Scale-out notary {uuid.uuid4().hex[:6]}"
        (_, key), (spare, _) = [
            await mint_key(databases, PrincipalKind.NOTARY, name) for _ in range(2)
        ]
    finally:
        await databases.dispose()
    async with websocket(pair.one, key) as listener:
        assert await listener.subscribe("1") == []  # live, and Redis has confirmed it
        revoked = await _post(
            pair.two, {"query": REVOKE, "variables": {"prefix": spare.prefix}}, key=key
        )
        assert revoked.json()["data"]["revokeApiKey"]["state"] == "REVOKED"
        heard = await listener.receive()
        assert heard["type"] == "next"
        assert heard["payload"]["data"]["apiKeyRevoked"]["prefix"] == spare.prefix


async def _postal_calls(postal: str, code: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        calls = (await http.get(f"{postal}/_calls")).json()["calls"]
    return sum(1 for call in calls if call["path"].endswith(f"/addresses/{code}"))


POSTAL = """query ($code: RenewalCode!) {
  parcel(renewalCode: $code) { postalCode postalAddress { city address } }
}"""


async def test_an_agency_answer_fetched_by_one_process_is_served_to_the_other(
    pair: Pair,
) -> None:
    listed = await _post(
        pair.one,
        {"query": "{ parcels(first: 1) { edges { node { renewalCode postalCode } } } }"},
        key=pair.operator,
    )
    node = listed.json()["data"]["parcels"]["edges"][0]["node"]
    variables = {"code": node["renewalCode"]}
    code = node["postalCode"]
    # The sandbox is the session's: other tests may have asked for this code before.
    before = await _postal_calls(pair.postal, code)
    first = await _post(pair.one, {"query": POSTAL, "variables": variables}, key=pair.operator)
    parcel = first.json()["data"]["parcel"]
    assert parcel["postalAddress"] is not None, first.text
    assert await _postal_calls(pair.postal, code) == before + 1
    # The other process has never asked: its own cache is empty, Redis's is not.
    second = await _post(pair.two, {"query": POSTAL, "variables": variables}, key=pair.operator)
    assert second.json()["data"] == first.json()["data"]
    assert await _postal_calls(pair.postal, code) == before + 1
