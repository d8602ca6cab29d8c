"""`/healthz` and `/readyz`: ready when every database answers at its newest migration and the
job runner (where this process runs jobs) is alive; an agency that is down shows in the
summary without taking the gateway out of rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.requests import Request

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.edge.health import Health
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies
from tests.conftest import AGENCY_SECRETS, Backend, make_backend, mint_key, settings_for

DEEDS = "{ parcels(first: 2) { edges { node { deed { serial } } } } }"


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("health"), parcels=6)
    return backend


@pytest.fixture(scope="module")
async def agencies(city: Backend) -> AsyncIterator[SandboxAgencies]:
    async with run_agencies(
        planning_url=city.urls["planning"],
        revenue_url=city.urls["revenue"],
        credentials=AGENCY_SECRETS,
    ) as running:
        yield running


async def test_health_and_readiness_with_an_agency_down(
    city: Backend, agencies: SandboxAgencies
) -> None:
    databases = Databases({"gateway": city.urls["gateway"]})
    try:
        _, operator = await mint_key(databases, PrincipalKind.OPERATOR, "Health operator")
    finally:
        await databases.dispose()
    app = create_app(settings_for(city, agencies, land_registry_breaker_failures=1))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready"
        assert set(body["databases"].values()) == {"ready"}
        assert body["jobs"] == "not run here"  # the test app does not run jobs
        assert set(body["agencies"].values()) == {"closed"}

        url = f"{agencies.url('land_registry')}/_chaos"
        async with httpx.AsyncClient() as chaos:
            (await chaos.put(url, json={"down": True})).raise_for_status()
            try:
                await http.post(
                    "/graphql",
                    json={"query": DEEDS},
                    headers={"Authorization": f"Bearer {operator}"},
                )
            finally:
                await chaos.delete(url)
        down = await http.get("/readyz")
        assert down.status_code == 200  # an agency down never fails readiness
        assert down.json()["agencies"]["land_registry"] == "open"


async def test_a_database_behind_its_newest_migration_is_not_ready(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    behind, _ = await make_backend("sqlite", tmp_path_factory.mktemp("behind"), parcels=0)
    engine = create_async_engine(behind.urls["gateway"])
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'gateway_0001'"))
    await engine.dispose()
    app = create_app(settings_for(behind))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["databases"]["gateway"] == "not migrated"
    assert body["databases"]["planning"] == "ready"
    assert body["failing"] == ["gateway"]


@dataclass
class Runner:
    alive: bool


async def test_readiness_needs_the_job_runner_where_jobs_run(city: Backend) -> None:
    databases = Databases(settings_for(city).database_urls)
    runner = Runner(alive=True)
    health = Health(databases, lambda: None, lambda: runner, runs_jobs=True)  # type: ignore[arg-type,return-value]
    request = Request({"type": "http", "method": "GET", "path": "/readyz", "headers": []})
    try:
        assert (await health.readyz(request)).status_code == 200
        runner.alive = False
        stopped = await health.readyz(request)
        assert stopped.status_code == 503
        assert b'"jobs":"stopped"' in stopped.body
        elsewhere = Health(databases, lambda: None, lambda: None, runs_jobs=False)
        assert (await elsewhere.readyz(request)).status_code == 200
    finally:
        await databases.dispose()
