"""Prometheus metrics: `/metrics` answers operators' keys and refuses everyone else; requests,
refused operations, rate limits, agency calls, breaker transitions, cache look-ups, pools and
audit appends are counted; several workers' figures add up, on the metrics port too."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.edge.observe import read_jobs
from gateway.observe import metrics
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies
from tests.conftest import AGENCY_SECRETS, Backend, make_backend, mint_key, settings_for
from tests.gateway.operations import agency_env, free_port, running_gateway

DEEDS = "query Deeds { parcels(first: 2) { edges { node { renewalCode deed { serial } } } } }"
OWNERS = "query Owners { parcels(first: 2) { edges { node { owners { nationalCode share } } } } }"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("metrics"), parcels=12)
    return backend


@pytest.fixture(scope="module")
async def agencies(city: Backend) -> AsyncIterator[SandboxAgencies]:
    async with run_agencies(
        planning_url=city.urls["planning"],
        revenue_url=city.urls["revenue"],
        credentials=AGENCY_SECRETS,
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def keys(city: Backend) -> dict[str, str]:
    databases = Databases({"gateway": city.urls["gateway"]})
    try:
        _, operator = await mint_key(databases, PrincipalKind.OPERATOR, "Metrics operator")
        _, notary = await mint_key(databases, PrincipalKind.NOTARY, "Metrics notary")
    finally:
        await databases.dispose()
    return {"operator": operator, "notary": notary}


@pytest.fixture(scope="module")
async def http(city: Backend, agencies: SandboxAgencies) -> AsyncIterator[httpx.AsyncClient]:
    # The land registry's breaker opens at its first failure and stays open (per-agency
    # settings); it answers from its cache for an hour.
    settings = settings_for(
        city,
        agencies,
        land_registry_breaker_failures=1,
        land_registry_breaker_reset_s=3600,
        land_registry_cache_ttl_s=3600,
        rate_limit_public="3/hour",
        max_query_depth=5,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def scrape(http: httpx.AsyncClient, key: str) -> str:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_answer_operators_only(http: httpx.AsyncClient, keys: dict[str, str]) -> None:
    public = await http.get("/metrics")
    assert public.status_code == 401
    assert public.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    notary = await http.get("/metrics", headers={"Authorization": f"Bearer {keys['notary']}"})
    assert notary.status_code == 403
    assert notary.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN", "scope": "operator"}
    assert "gateway_requests_total" in await scrape(http, keys["operator"])


async def test_requests_refusals_and_rate_limits_are_counted(
    http: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    before = await scrape(http, keys["operator"])
    query = "query Deep { parcels(first: 1) { edges { node { owners { person { fullName } } } } } }"
    answers = [
        (await http.post("/graphql", json={"query": q})).status_code
        for q in ("query Count { parcels(first: 1) { totalCount } }", query, "{ __typename }")
    ]
    answers.append((await http.post("/graphql", json={"query": "{ __typename }"})).status_code)
    assert answers == [200, 200, 200, 429]
    after = await scrape(http, keys["operator"])

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("gateway_requests_total", route="/graphql", operation="Count", outcome="OK") == 1
    assert (
        grew(
            "gateway_requests_total",
            route="/graphql",
            operation="Deep",
            outcome="QUERY_TOO_COMPLEX",
        )
        == 1
    )
    assert grew("gateway_rejected_operations_total", limit="depth") == 1
    assert grew("gateway_rate_limited_requests_total", caller="public") == 1
    count = "gateway_request_duration_seconds_count"
    assert grew(count, route="/graphql", operation="Count", outcome="OK") == 1
    # The planning database's pool was used (the count), and gave back what it took.
    assert grew("gateway_db_pool_checkouts_total", database="planning") > 0
    assert value(after, "gateway_db_pool_connections_in_use", database="planning") == 0


async def test_agency_calls_breaker_and_cache_are_counted(
    http: httpx.AsyncClient, keys: dict[str, str], agencies: SandboxAgencies
) -> None:
    # The process's figures hold every earlier test's too: compare with the start.
    start = await scrape(http, keys["operator"])

    def grew(text: str, name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(start, name, **labels)

    operator = {"Authorization": f"Bearer {keys['operator']}"}
    first = await http.post("/graphql", json={"query": DEEDS}, headers=operator)
    assert "errors" not in first.json(), first.text
    again = await http.post("/graphql", json={"query": DEEDS}, headers=operator)
    assert "errors" not in again.json()
    text = await scrape(http, keys["operator"])
    hits = grew(text, "gateway_agency_cache_lookups_total", agency="land_registry", result="hit")
    assert hits >= 2  # the second request's two plates
    assert value(text, "gateway_agency_breaker_state", agency="land_registry") == 0
    calls = "gateway_agency_calls_total"
    assert grew(text, calls, agency="land_registry", operation="GetDeeds", outcome="ok") >= 1

    async with httpx.AsyncClient() as chaos:
        url = f"{agencies.url('land_registry')}/_chaos"
        (await chaos.put(url, json={"down": True})).raise_for_status()
        try:
            # Two parcels more than the cache holds: the registry is asked for them.
            other = "{ parcels(first: 4) { edges { node { deed { serial } } } } }"
            down = await http.post("/graphql", json={"query": other}, headers=operator)
        finally:
            await chaos.delete(url)
    codes = {error["extensions"]["code"] for error in down.json()["errors"]}
    assert codes == {"AGENCY_UNAVAILABLE"}
    text = await scrape(http, keys["operator"])
    assert value(text, "gateway_agency_breaker_state", agency="land_registry") == 2
    transitions = "gateway_agency_breaker_transitions_total"
    assert grew(text, transitions, agency="land_registry", to="open") == 1
    failed = grew(text, calls, agency="land_registry", operation="GetDeeds", outcome="unavailable")
    assert failed >= 1


async def test_audit_appends_are_counted(http: httpx.AsyncClient, keys: dict[str, str]) -> None:
    before = await scrape(http, keys["operator"])
    read = await http.post(
        "/graphql", json={"query": OWNERS}, headers={"Authorization": f"Bearer {keys['notary']}"}
    )
    assert "errors" not in read.json(), read.text
    after = await scrape(http, keys["operator"])
    grown = value(after, "gateway_audit_appends_total", outcome="ok") - value(
        before, "gateway_audit_appends_total", outcome="ok"
    )
    assert grown >= 1
    assert value(after, "gateway_audit_records_total") > value(
        before, "gateway_audit_records_total"
    )
    timed = "gateway_audit_append_duration_seconds_count"
    assert value(after, timed) - value(before, timed) == grown


async def test_workers_figures_add_up_on_the_metrics_port(
    city: Backend, keys: dict[str, str], tmp_path: Path, agencies: SandboxAgencies
) -> None:
    metrics_port = free_port()
    env = {
        **agency_env(agencies),
        "GATEWAY_WORKERS": "2",
        "GATEWAY_METRICS_PORT": str(metrics_port),
        "GATEWAY_RATE_LIMIT_PUBLIC": "10000/hour",
    }
    sent = 24
    async with (
        running_gateway(city, tmp_path / "stderr.log", env) as gateway,
        httpx.AsyncClient(base_url=gateway.url) as http,
    ):
        for _ in range(sent):
            # A new connection each time, so that both workers take their share.
            async with httpx.AsyncClient(base_url=gateway.url) as fresh:
                response = await fresh.post("/graphql", json={"query": "query Ping { __typename }"})
                assert response.status_code == 200
        unkeyed = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        keyed = await scrape(http, keys["operator"])
    # The gateway has stopped: its workers' lines are all written.
    pings = [line for line in gateway.access_lines() if line["operation_name"] == "Ping"]
    assert unkeyed.status_code == 200
    labels = {"route": "/graphql", "operation": "Ping", "outcome": "OK"}
    assert value(unkeyed.text, "gateway_requests_total", **labels) == sent
    assert value(keyed, "gateway_requests_total", **labels) == sent
    assert len(pings) == sent


def test_the_dashboard_reads_only_metrics_the_gateway_exports() -> None:
    dashboard = json.loads((Path(__file__).parents[2] / "ops/grafana/gateway.json").read_text())
    exported = {
        sample_name
        for family in metrics.registry().collect()
        if family.name.startswith("gateway_")
        for sample_name in (
            family.name,
            f"{family.name}_total",
            f"{family.name}_bucket",
            f"{family.name}_count",
        )
    }
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    read = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"gateway_[a-z_]+", target["expr"])
    }
    assert read, "the dashboard reads no metric"
    assert read <= exported, read - exported
    assert all(panel["title"] for panel in panels)


class _Client:
    def __init__(self, found: list[SimpleNamespace]) -> None:
        self.found = found

    async def list_workflows_async(self, **_filters: object) -> list[SimpleNamespace]:
        return self.found


async def test_the_job_queue_is_read_into_gauges() -> None:
    now = 1_000_000.0

    def job(id: str, status: str, created: float, **attributes: float) -> SimpleNamespace:
        return SimpleNamespace(
            workflow_id=id, status=status, created_at=created * 1000, attributes=attributes
        )

    queue = SimpleNamespace(
        client=_Client(
            [
                job("metrics.a:1", "ENQUEUED", now - 30),
                job("metrics.a:2", "ENQUEUED", now - 90),  # the oldest due: 90 s
                job("metrics.a:3", "PENDING", now - 500, next_attempt_at=now + 60),  # not due
                job("metrics.a:4", "DELAYED", now - 1000),
                job("metrics.b:1", "PENDING", now - 500, next_attempt_at=now - 20),  # due 20 s
            ]
        )
    )
    await read_jobs(queue, ["metrics.a", "metrics.b", "metrics.c"], now)  # type: ignore[arg-type]
    text = metrics.render().decode()
    assert value(text, "gateway_jobs", kind="metrics.a", state="queued") == 2
    assert value(text, "gateway_jobs", kind="metrics.a", state="running") == 1
    assert value(text, "gateway_jobs", kind="metrics.a", state="scheduled") == 1
    assert value(text, "gateway_jobs_oldest_due_age_seconds", kind="metrics.a") == 90
    assert value(text, "gateway_jobs_oldest_due_age_seconds", kind="metrics.b") == 20
    # A kind with nothing waiting reads 0, rather than its last figure.
    assert value(text, "gateway_jobs", kind="metrics.c", state="queued") == 0
    assert ("gateway_jobs_oldest_due_age_seconds", frozenset({("kind", "metrics.c")})) in samples(
        text
    )
