"""The hand-written baseline (bench/baseline.py) answers the benchmark's public queries with
the gateway's `data`, byte for byte, on SQLite and PostgreSQL; and the rotating load's parcels
(bench/run.py) are distinct and the same for both servers."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import Backend

BENCH = Path(__file__).resolve().parents[2] / "bench"
LOOKUP = (BENCH / "queries" / "parcel_public.graphql").read_text()
PAGE = (BENCH / "queries" / "parcels_page_public.graphql").read_text()


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def baseline_module() -> ModuleType:
    return _load("baseline")


@pytest.fixture(scope="module")
def run_module() -> ModuleType:
    return _load("run")


@pytest.fixture(scope="module")
async def baseline(
    backend: Backend, baseline_module: ModuleType
) -> AsyncIterator[httpx.AsyncClient]:
    if backend.name == "mariadb":
        pytest.skip("the baseline speaks to SQLite and PostgreSQL only, as the benchmark runs")
    app = baseline_module.create_app(backend.urls["planning"], backend.urls["revenue"])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://baseline.test"
        ) as http,
    ):
        yield http


async def _renewal_codes(backend: Backend) -> list[str]:
    engine = create_async_engine(backend.urls["planning"])
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT renewal_code FROM parcels ORDER BY id"))
            return [str(code) for code in rows.scalars()]
    finally:
        await engine.dispose()


def _data(response: httpx.Response) -> bytes:
    """The answer's `data` member, as the server wrote it."""
    assert response.status_code == 200, response.text
    body = response.content
    assert body.startswith(b'{"data":'), body[:200]
    assert b'"errors"' not in body
    end = body.find(b',"extensions":')
    return body[len(b'{"data":') : end if end > 0 else -1]


async def _both(
    client: httpx.AsyncClient,
    baseline: httpx.AsyncClient,
    key: str,
    query: str,
    variables: dict[str, str],
) -> tuple[bytes, bytes]:
    payload = {"query": query, "variables": variables}
    ours = await client.post("/graphql", json=payload, headers={"Authorization": f"Bearer {key}"})
    theirs = await baseline.post("/graphql", json=payload)
    return _data(ours), _data(theirs)


async def test_the_page_is_the_gateways_byte_for_byte(
    client: httpx.AsyncClient, baseline: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    ours, theirs = await _both(client, baseline, keys["counter"], PAGE, {})

    assert len(json.loads(ours)["parcels"]["edges"]) == 100
    assert theirs == ours


async def test_every_lookup_is_the_gateways_byte_for_byte(
    backend: Backend,
    client: httpx.AsyncClient,
    baseline: httpx.AsyncClient,
    keys: dict[str, str],
) -> None:
    codes = await _renewal_codes(backend)
    assert codes
    owed = 0
    for code in [*codes, "9-9-9-9999"]:  # and one no parcel has: null on both
        ours, theirs = await _both(client, baseline, keys["counter"], LOOKUP, {"renewalCode": code})
        assert theirs == ours, code
        parcel = json.loads(ours)["parcel"]
        owed += bool(parcel and parcel["dues"]["outstanding"])
    assert json.loads(ours) == {"parcel": None}
    assert owed  # the demo data has parcels with something unpaid: both sums were compared


async def test_the_baseline_refuses_other_queries(baseline: httpx.AsyncClient) -> None:
    response = await baseline.post("/graphql", json={"query": "{ __typename }"})

    assert response.status_code == 400


def test_rotating_parcels_are_distinct_and_fixed(backend: Backend, run_module: ModuleType) -> None:
    if backend.name != "sqlite":
        pytest.skip("reads the SQLite files directly; the PostgreSQL path is pg_fetch")
    data_dir = Path(backend.urls["planning"].split(":///", 1)[1]).parent
    store = run_module.Store("sqlite", data_dir, {})

    single, rotating = run_module.renewal_codes(store, 120, 50)
    again = run_module.renewal_codes(store, 120, 50)

    assert len(rotating) == len(set(rotating)) == 50
    assert (single, rotating) == again
    assert rotating != sorted(rotating)  # shuffled: consecutive requests are far apart


def test_the_rotating_body_has_one_placeholder(run_module: ModuleType) -> None:
    query = run_module.Query(
        "lookup_rotating",
        "rotating",
        BENCH / "queries" / "parcel_public.graphql",
        {"renewalCode": "1-1-1-1"},
        "counter",
        baseline=True,
        rotating=["1-1-1-1"],
    )
    template = query.template().decode()

    assert template.count(run_module.CODE_PLACEHOLDER) == 1
    body = json.loads(template.replace(run_module.CODE_PLACEHOLDER, "3-2-1-7"))
    assert body["variables"] == {"renewalCode": "3-2-1-7"}
