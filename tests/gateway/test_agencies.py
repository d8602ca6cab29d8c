"""The outside agencies in the graph, over real SOAP and REST on loopback."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.routing import Route

from connectors.agencies import Agencies
from db.engines import Databases
from db.revenue import Payment
from gateway.access.principals import PrincipalKind
from gateway.agencies import agency_configs, build_http_client, record_call
from gateway.edge.app import create_app
from gateway.edge.view import GatewayGraphQL
from sandbox.run import Agencies as SandboxAgencies
from tests.clocks import FakeClock
from tests.conftest import (
    AGENCY_SECRETS,
    Backend,
    GraphQLClient,
    make_backend,
    mint_key,
    settings_for,
)

DEEDS_OF_TWO = "{ parcels(first: 2) { edges { node { renewalCode deed { serial } } } } }"
PAGE_WITH_DEEDS = (
    "{ parcels(first: 100) { edges { node { renewalCode registryPlate owners { nationalCode }"
    " deed { serial area owners { nationalCode share } seizures { issuer } } } } } }"
)


@pytest.fixture
async def chaos(sandbox: SandboxAgencies) -> AsyncIterator[Any]:
    """Sets chaos on agencies for one test and always resets it."""

    async def set_chaos(agency: str, **knobs: Any) -> None:
        async with httpx.AsyncClient() as http:
            (await http.put(f"{sandbox.url(agency)}/_chaos", json=knobs)).raise_for_status()

    yield set_chaos
    async with httpx.AsyncClient() as http:
        for agency in ("land_registry", "civil_registry", "bank", "postal"):
            await http.delete(f"{sandbox.url(agency)}/_chaos")


BREAKER_RESET_S = 30.0


@pytest.fixture
def agency_clock() -> FakeClock:
    """The clock of the fresh app's agency guards (breakers, caches): the test moves it."""
    return FakeClock()


@pytest.fixture
async def fresh_gql(
    backend: Backend, sandbox: SandboxAgencies, keys: dict[str, str], agency_clock: FakeClock
) -> AsyncIterator[GraphQLClient]:
    """An app of its own: empty agency caches, and breakers on `agency_clock`."""
    settings = settings_for(backend, sandbox, agency_breaker_reset_s=BREAKER_RESET_S)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        build_http_client(settings) as agency_http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        # The agencies as the lifespan builds them, but with guards on the test's clock.
        (view,) = [
            route.endpoint
            for route in app.routes
            if isinstance(route, Route) and route.path == "/graphql"
        ]
        assert isinstance(view, GatewayGraphQL)
        view.agencies = Agencies(
            agency_configs(settings), agency_http, on_call=record_call, clock=agency_clock
        )
        yield GraphQLClient(http, keys["operator"])


async def agency_calls(sandbox: SandboxAgencies, agency: str) -> list[dict[str, Any]]:
    """The calls an agency has received since its log was last cleared, oldest first."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox.url(agency)}/_calls")
    calls: list[dict[str, Any]] = response.json()["calls"]
    return calls


async def clear_calls(sandbox: SandboxAgencies, *agencies: str) -> None:
    async with httpx.AsyncClient() as http:
        for agency in agencies:
            (await http.delete(f"{sandbox.url(agency)}/_calls")).raise_for_status()


async def test_a_page_of_deeds_takes_one_batch_call_then_none(fresh_gql: Any) -> None:
    first = await fresh_gql(PAGE_WITH_DEEDS, cost=True)
    assert "errors" not in first, first.get("errors")
    edges = first["data"]["parcels"]["edges"]
    assert all(e["node"]["deed"] is not None for e in edges)
    assert 1 <= first["extensions"]["cost"]["agencyCalls"] <= 3
    again = await fresh_gql(PAGE_WITH_DEEDS, cost=True)
    assert again["data"] == first["data"]
    assert again["extensions"]["cost"]["agencyCalls"] == 0


async def test_deeds_show_the_registry_view_including_discrepancies(gql: Any) -> None:
    edges = (await gql(PAGE_WITH_DEEDS))["data"]["parcels"]["edges"]
    nodes = [e["node"] for e in edges]
    agreeing = [
        n
        for n in nodes
        if sorted(o["nationalCode"] for o in n["owners"])
        == sorted(o["nationalCode"] for o in n["deed"]["owners"])
    ]
    assert len(agreeing) > 80  # most deeds agree with planning
    assert len(agreeing) < len(nodes)  # and some name a different owner, on purpose
    assert any(n["deed"]["seizures"] for n in nodes)
    for n in nodes:
        shares = sum(float(o["share"]) for o in n["deed"]["owners"])
        assert abs(shares - 6) < 1e-6


async def test_civil_record_and_postal_address(gql: Any) -> None:
    body = await gql(
        '{ person(nationalCode: "۰۰۸۴۵۷۵۹۴۸") { firstName lastName nationalCode'
        "   civilRecord { nationalCode firstName lastName alive birthDate { iso jalali } } }"
        "  parcels(first: 5) { edges { node { postalCode region { number }"
        "   postalAddress { postalCode region city latitude longitude } } } } }"
    )
    assert "errors" not in body, body.get("errors")
    person = body["data"]["person"]
    record = person["civilRecord"]
    assert record["nationalCode"] == person["nationalCode"]
    assert (record["firstName"], record["lastName"]) == (person["firstName"], person["lastName"])
    assert record["alive"] is True
    for edge in body["data"]["parcels"]["edges"]:
        node = edge["node"]
        assert node["postalAddress"]["postalCode"] == node["postalCode"]
        assert node["postalAddress"]["region"] == node["region"]["number"]


async def _payment_references(backend: Backend) -> tuple[str, str]:
    """A payment the bank settled, and one it never saw (sandbox rule: id % 19 == 7)."""
    databases = Databases({"revenue": backend.urls["revenue"]})
    try:
        async with databases.revenue.connect() as connection:
            rows = (
                await connection.execute(
                    select(Payment.id, Payment.bank_reference).order_by(Payment.id).limit(200)
                )
            ).all()
    finally:
        await databases.dispose()
    settled = next(
        r.bank_reference for r in rows if r.id % 19 != 7 and r.id % 17 != 5 and r.id % 41 != 13
    )
    never = next(r.bank_reference for r in rows if r.id % 19 == 7)
    return settled, never


async def test_verify_payment_against_the_bank(gql: Any, backend: Backend) -> None:
    settled, never = await _payment_references(backend)
    query = (
        "query($r: String!) { verifyPayment(reference: $r) { reference consistent"
        " recorded { renewalCode amount kind period } bank { status amount } } }"
    )
    good = (await gql(query, {"r": settled}))["data"]["verifyPayment"]
    assert good["consistent"] is True
    assert good["bank"]["amount"] == good["recorded"]["amount"]
    assert good["bank"]["status"] == "SETTLED"
    missing = await gql(query, {"r": never})
    check = missing["data"]["verifyPayment"]
    assert check["recorded"] is not None
    assert check["consistent"] is False
    unknown = await gql(query, {"r": "999999999999"})
    assert unknown["data"]["verifyPayment"]["recorded"] is None
    bad = await gql(query, {"r": "12ab"})
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "reference"}


async def test_three_slow_agencies_are_called_concurrently(
    fresh_gql: Any, chaos: Any, sandbox: SandboxAgencies
) -> None:
    slow = ("land_registry", "civil_registry", "postal")
    for agency in slow:
        await chaos(agency, latency_ms=300)
    await clear_calls(sandbox, *slow)
    query = (
        '{ parcel(renewalCode: "1-1-1-1") { id } '
        " parcels(first: 1) { edges { node { deed { serial } postalAddress { city } } } }"
        ' person(nationalCode: "0084575948") { civilRecord { alive } } }'
    )
    body = await fresh_gql(query, cost=True)
    assert "errors" not in body, body.get("errors")
    assert body["extensions"]["cost"]["agencyCalls"] == 3
    # Concurrent, as the agencies saw it: each call arrived before any answer left (one
    # after another, each would have arrived after the 300 ms of the one before).
    spans = []
    for agency in slow:
        (call,) = await agency_calls(sandbox, agency)
        arrived = dt.datetime.fromisoformat(call["at"])
        spans.append((arrived, arrived + dt.timedelta(milliseconds=call["durationMs"])))
    assert max(arrived for arrived, _ in spans) < min(left for _, left in spans), spans


async def test_a_down_agency_nulls_only_its_fields_and_recovers(
    fresh_gql: Any, chaos: Any, sandbox: SandboxAgencies, agency_clock: FakeClock
) -> None:
    await chaos("land_registry", down=True)
    query = "{ parcels(first: 3) { edges { node { renewalCode deed { serial } } } } }"
    body = await fresh_gql(query)
    nodes = [e["node"] for e in body["data"]["parcels"]["edges"]]
    assert all(n["renewalCode"] and n["deed"] is None for n in nodes)
    codes = {(e["extensions"]["code"], e["extensions"]["agency"]) for e in body["errors"]}
    assert codes == {("AGENCY_UNAVAILABLE", "land_registry")}
    assert all(e["path"][-1] == "deed" for e in body["errors"])
    # Repeated failures open the breaker: later requests fail fast.
    for _ in range(6):
        await fresh_gql(query)
    status = await fresh_gql("{ agencies { name state } }")
    states = {a["name"]: a["state"] for a in status["data"]["agencies"]}
    assert states["land_registry"] == "OPEN"
    assert states["bank"] == "CLOSED"
    # Failing fast: the registry is not asked at all.
    await clear_calls(sandbox, "land_registry")
    fast = await fresh_gql(query, cost=True)
    assert fast["errors"][0]["extensions"]["code"] == "AGENCY_UNAVAILABLE"
    assert fast["extensions"]["cost"]["agencyCalls"] == 0
    assert await agency_calls(sandbox, "land_registry") == []
    # Once the agency is back and the breaker's reset has passed, fields return by themselves.
    await chaos("land_registry", down=False)
    agency_clock.advance(BREAKER_RESET_S - 1)
    assert (await fresh_gql(query))["errors"][0]["extensions"]["code"] == "AGENCY_UNAVAILABLE"
    agency_clock.advance(1)
    body = await fresh_gql(query)
    assert "errors" not in body, body["errors"]
    assert all(e["node"]["deed"] for e in body["data"]["parcels"]["edges"])


async def test_a_slow_agency_times_out_cleanly(
    backend: Backend, sandbox: SandboxAgencies, chaos: Any, keys: dict[str, str]
) -> None:
    app = create_app(settings_for(backend, sandbox, postal_timeout_s=0.2))
    await chaos("postal", latency_ms=2000)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        body = (
            await http.post(
                "/graphql",
                json={
                    "query": "{ parcels(first: 2) { edges { node { renewalCode"
                    " postalAddress { city } } } } }"
                },
            )
        ).json()
    # The postal service would answer after 2 s, well within the shared client's backstop:
    # a timeout can only be the policy's 0.2 s (its deadline is pinned in test_resilience).
    assert body["data"]["parcels"]["edges"][0]["node"]["renewalCode"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"AGENCY_TIMEOUT"}
    assert {e["extensions"]["agency"] for e in body["errors"]} == {"postal"}


async def test_agency_credentials_never_leak(
    fresh_gql: Any, chaos: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    texts.append(str(await fresh_gql(PAGE_WITH_DEEDS)))
    await chaos("land_registry", error_rate=1.0)
    await chaos("civil_registry", down=True)
    texts.append(
        str(
            await fresh_gql(
                '{ person(nationalCode: "0084575948") { civilRecord { alive } parcels'
                " { deed { serial } } } agencies { name state } }"
            )
        )
    )
    everything = "\n".join([*texts, caplog.text])
    assert "AGENCY_" in everything  # the failures were reported
    for credentials in AGENCY_SECRETS.values():
        assert credentials.password not in everything


async def test_agencies_query_lists_every_agency(gql: Any) -> None:
    body = await gql("{ agencies { name state calls failures recentErrorRate } }")
    names = [a["name"] for a in body["data"]["agencies"]]
    assert names == ["land_registry", "civil_registry", "bank", "postal"]


async def test_correlation_reaches_the_agency(fresh_gql: Any, sandbox: SandboxAgencies) -> None:
    async with httpx.AsyncClient() as http:
        await http.delete(f"{sandbox.url('postal')}/_calls")
    response = await fresh_gql.post(
        "{ parcels(first: 1, after: null) { edges { node { postalAddress { city } } } } }",
        headers={"X-Request-Id": "corr-test-42", "X-Road-Issue": "inquiry-1403-77"},
    )
    async with httpx.AsyncClient() as http:
        calls = (await http.get(f"{sandbox.url('postal')}/_calls")).json()["calls"]
    assert calls, "the postal service saw no call"
    text = str(calls).lower()
    # The agency hears the gateway's own request id, unique per request, which the
    # response names too; a caller's id is not trusted to be unique.
    assert response.headers["x-request-id"] in text
    assert "corr-test-42" not in text
    assert "inquiry-1403-77" in text
    assert "municipality-gateway" in text


@pytest.fixture(scope="module")
async def operator_on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Backend, str]:
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("hostile"), parcels=10)
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        _, key = await mint_key(databases, PrincipalKind.OPERATOR, "Hostile-agency tests")
    finally:
        await databases.dispose()
    return backend, key


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("billion-laughs", "AGENCY_UNAVAILABLE"),
        ("external-entity", "AGENCY_UNAVAILABLE"),
        ("huge", "AGENCY_UNAVAILABLE"),
        ("malformed", "AGENCY_UNAVAILABLE"),
        ("html-error", "AGENCY_UNAVAILABLE"),
        ("reset", "AGENCY_UNAVAILABLE"),
        ("never-ends", "AGENCY_TIMEOUT"),
        ("slow-headers", "AGENCY_TIMEOUT"),
    ],
)
async def test_a_hostile_land_registry_costs_only_its_own_fields(
    operator_on_sqlite: tuple[Backend, str], mode: str, code: str
) -> None:
    """Through the whole gateway: a rogue registry's answer becomes a clean error on the deed,
    within the agency's deadline, and the rest of the answer arrives. (How the gateway
    handles an agency's answer does not depend on the database: SQLite alone.)"""
    from sandbox.run import run_rogue

    backend, key = operator_on_sqlite
    async with run_rogue() as rogue:
        app = create_app(
            settings_for(
                backend,
                land_registry_url=f"{rogue}/{mode}",
                land_registry_timeout_s=0.5,
                agency_max_response_bytes=1_000_000,
            )
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            response = await http.post(
                "/graphql",
                json={"query": DEEDS_OF_TWO},
                headers={"Authorization": f"Bearer {key}"},
            )
            body = response.json()
            alive = await http.get("/healthz")
    # That each mode ends within the policy's timeout is pinned per mode, without a clock, in
    # tests/connectors/test_hostile_agencies.py; here, that the gateway makes it a clean error.
    assert response.status_code == 200
    assert alive.status_code == 200
    nodes = [e["node"] for e in body["data"]["parcels"]["edges"]]
    assert all(n["renewalCode"] and n["deed"] is None for n in nodes)
    assert {(e["extensions"]["code"], e["extensions"]["agency"]) for e in body["errors"]} == {
        (code, "land_registry")
    }
    assert "<" not in str(body["errors"])  # no XML or HTML reaches the client
