"""Traces: with OTLP configured against a local collector stand-in, one request produces a
trace whose HTTP, GraphQL, SQL and agency spans are linked, and the agency receives the trace
context beside the X-Road headers; off, the trace id still reaches logs and agencies."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies
from tests.conftest import AGENCY_SECRETS, Backend, make_backend, mint_key
from tests.gateway.operations import agency_env, running_gateway

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
DEEDS = "query Deeds { parcels(first: 2) { edges { node { renewalCode deed { serial } } } } }"


class Collector:
    """An OTLP/HTTP trace receiver on loopback: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.changed = threading.Condition()
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with collector.changed:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            collector.spans.extend(scope.spans)
                    collector.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def wait_for(self, done: Callable[[list[Any]], bool], timeout: float = 60) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: done(self.spans), timeout)


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("traces"), parcels=12)
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
async def operator(city: Backend) -> str:
    databases = Databases({"gateway": city.urls["gateway"]})
    try:
        _, key = await mint_key(databases, PrincipalKind.OPERATOR, "Tracing operator")
    finally:
        await databases.dispose()
    return key


async def _deeds(url: str, key: str, traceparent: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/graphql",
            json={"query": DEEDS},
            headers={"Authorization": f"Bearer {key}", "traceparent": traceparent},
        )
    assert "errors" not in response.json(), response.text
    return response


async def _agency_traceparents(agencies: SandboxAgencies) -> list[str]:
    async with httpx.AsyncClient() as http:
        calls = (await http.get(f"{agencies.url('land_registry')}/_calls")).json()["calls"]
        await http.delete(f"{agencies.url('land_registry')}/_calls")
    return [call["httpHeaders"].get("traceparent", "") for call in calls]


async def test_one_request_is_one_linked_trace(
    city: Backend,
    agencies: SandboxAgencies,
    operator: str,
    collector: Collector,
    tmp_path: Path,
) -> None:
    await _agency_traceparents(agencies)
    env = {**agency_env(agencies), "GATEWAY_OTLP_ENDPOINT": collector.url}
    async with running_gateway(city, tmp_path / "stderr.log", env) as gateway:
        await _deeds(gateway.url, operator, f"00-{TRACE_ID}-{CALLER_SPAN}-01")

        def complete(spans: list[Any]) -> bool:
            names = {span.name for span in spans if span.trace_id.hex() == TRACE_ID}
            return {
                "POST /graphql",
                "query Deeds",
                "agency land_registry.GetDeeds",
            } <= names and any(name.startswith("SQL ") for name in names)

        # Spans are sent in batches about every second: wait for the one that completes it.
        assert await asyncio.to_thread(collector.wait_for, complete), [
            span.name for span in collector.spans
        ]
    spans = {span.span_id: span for span in collector.spans if span.trace_id.hex() == TRACE_ID}
    by_name = {span.name: span for span in spans.values()}
    server = by_name["POST /graphql"]
    assert server.parent_span_id.hex() == CALLER_SPAN  # the caller's trace continues here

    def ancestors(span: Any) -> list[str]:
        chain = []
        while span.parent_span_id in spans:
            span = spans[span.parent_span_id]
            chain.append(span.name)
        return chain

    assert ancestors(by_name["query Deeds"]) == ["POST /graphql"]
    agency = by_name["agency land_registry.GetDeeds"]
    assert "query Deeds" in ancestors(agency)
    assert ancestors(agency)[-1] == "POST /graphql"
    resolvers = [span for span in spans.values() if span.name.startswith("resolve ")]
    assert resolvers  # those that wait on I/O, e.g. resolve Query.parcels
    assert all("query Deeds" in ancestors(span) for span in resolvers)
    sql = [span for span in spans.values() if span.name.startswith("SQL ")]
    assert all(ancestors(span)[-1] == "POST /graphql" for span in sql)
    # Statements, never their parameters.
    statements = [
        a.value.string_value for s in sql for a in s.attributes if a.key == "db.query.text"
    ]
    assert statements
    assert not any("0084575948" in statement for statement in statements)
    # The agency was handed the agency span's context beside the X-Road headers.
    (sent,) = await _agency_traceparents(agencies)
    assert sent == f"00-{TRACE_ID}-{agency.span_id.hex()}-01"


async def test_without_tracing_the_trace_id_still_reaches_the_agency(
    city: Backend, agencies: SandboxAgencies, operator: str, tmp_path: Path
) -> None:
    await _agency_traceparents(agencies)
    async with running_gateway(city, tmp_path / "stderr.log", agency_env(agencies)) as gateway:
        response = await _deeds(gateway.url, operator, f"00-{TRACE_ID}-{CALLER_SPAN}-00")
    (sent,) = await _agency_traceparents(agencies)
    version, trace_id, span_id, flags = sent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert span_id != CALLER_SPAN
    (line,) = [
        line
        for line in gateway.access_lines()
        if line["request_id"] == response.headers["x-request-id"]
    ]
    assert line["trace_id"] == TRACE_ID
