"""Fixtures for the connectors: a seeded city in SQLite files, the sandbox agencies serving it
over loopback, the shared HTTP client the app would build, and connectors over them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.agencies import AGENCY_NAMES, Agencies, AgencyConfig
from connectors.resilience import AgencyPolicy, CallRecord
from connectors.transport import build_client
from db import migrate
from db.demo import seed_demo
from db.engines import Databases
from sandbox.dataset import Dataset
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies, run_rogue
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME

PARCELS = 150
MAX_RESPONSE_BYTES = 1024 * 1024
SOAP_AGENCIES = ("land_registry", "civil_registry", "bank")


@dataclass
class City:
    """The seeded databases, and the sandbox's own reading of them: what answers should be."""

    urls: dict[str, str]
    databases: Databases
    dataset: Dataset


@pytest.fixture(scope="session")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[City]:
    folder: Path = tmp_path_factory.mktemp("connectors-city")
    urls = {
        name: f"sqlite+aiosqlite:///{folder / f'{name}.sqlite3'}"
        for name in ("planning", "revenue", "gateway")
    }
    databases = Databases(urls)
    await migrate.upgrade(databases)
    await seed_demo(databases, parcels=PARCELS)
    yield City(urls, databases, Dataset(databases.planning, databases.revenue))
    await databases.dispose()


@pytest.fixture(scope="session")
async def sandbox(city: City) -> AsyncIterator[SandboxAgencies]:
    async with run_agencies(
        planning_url=city.urls["planning"], revenue_url=city.urls["revenue"]
    ) as running:
        yield running


@pytest.fixture(scope="session")
async def rogue() -> AsyncIterator[str]:
    async with run_rogue() as url:
        yield url


@pytest.fixture(scope="session")
async def agency_http() -> AsyncIterator[httpx.AsyncClient]:
    """The shared client, built the way the app builds it."""
    client = build_client(max_response_bytes=MAX_RESPONSE_BYTES, timeout=httpx.Timeout(5.0))
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def admin_http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client for the sandbox's /_chaos and /_calls."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def calm_sandbox(
    sandbox: SandboxAgencies, admin_http: httpx.AsyncClient
) -> AsyncIterator[None]:
    """Well-behaved agencies and empty call logs at the start of a test, and again after it.

    Every fixture that reaches the sandbox asks for this one.
    """

    async def calm() -> None:
        for name in AGENCY_NAMES:
            await admin_http.delete(f"{sandbox.url(name)}/_chaos")
            await admin_http.delete(f"{sandbox.url(name)}/_calls")

    await calm()
    yield
    await calm()


def config(name: str, url: str, **overrides: Any) -> AgencyConfig:
    credentials: dict[str, Any] = {}
    if name in SOAP_AGENCIES:
        credentials = {"username": DEMO_USERNAME, "password": DEMO_PASSWORDS[name]}
    return AgencyConfig(**{"name": name, "url": url, **credentials, **overrides})


def _quick_policy(**overrides: Any) -> AgencyPolicy:
    settings: dict[str, Any] = {
        "timeout_s": 1.0,
        "retries": 0,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.002,
        "breaker_failure_threshold": 5,
        "breaker_reset_s": 10.0,
        "max_concurrency": 16,
        "cache_ttl_s": 300.0,
    }
    settings.update(overrides)
    return AgencyPolicy(**settings)


@pytest.fixture
def quick_policy() -> Callable[..., AgencyPolicy]:
    """`quick_policy(timeout_s=0.5)`: short timeouts, no retries unless asked, no waiting
    between them: for tests that make agencies fail."""
    return _quick_policy


MakeAgencies = Callable[..., Agencies]


@pytest.fixture
def make_agencies(
    sandbox: SandboxAgencies, agency_http: httpx.AsyncClient, calm_sandbox: None
) -> MakeAgencies:
    """`make_agencies(land_registry={"policy": …}, on_call=…, clock=…)`: fresh connectors and
    guards over the sandbox, with the demo credentials and the default policies unless
    overridden, and the guards on `clock` when given (a FakeClock the test moves)."""

    def make(
        *,
        on_call: Callable[[CallRecord], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **overrides: dict[str, Any],
    ) -> Agencies:
        configs = {
            name: config(name, **{"url": sandbox.url(name), **overrides.get(name, {})})
            for name in AGENCY_NAMES
        }
        return Agencies(configs, agency_http, on_call=on_call, clock=clock)

    return make


@pytest.fixture
def agencies(make_agencies: MakeAgencies) -> Agencies:
    return make_agencies()


CallLog = Callable[[str], Any]


@pytest.fixture
def calls(sandbox: SandboxAgencies, admin_http: httpx.AsyncClient, calm_sandbox: None) -> CallLog:
    """`await calls("land_registry")`: the calls that agency received, oldest first."""

    async def fetch(name: str) -> list[dict[str, Any]]:
        response = await admin_http.get(f"{sandbox.url(name)}/_calls")
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["calls"]
        return found

    return fetch


@pytest.fixture
def chaos(
    sandbox: SandboxAgencies, admin_http: httpx.AsyncClient, calm_sandbox: None
) -> Callable[..., Any]:
    """`await chaos("bank", down=True)`; `await chaos("bank")` resets it."""

    async def set_chaos(name: str, **settings: Any) -> None:
        url = f"{sandbox.url(name)}/_chaos"
        if settings:
            response = await admin_http.put(url, json=settings)
        else:
            response = await admin_http.delete(url)
        response.raise_for_status()

    return set_chaos
