"""A span per agency attempt when a tracer provider is installed, none while OpenTelemetry's
API has only its no-op default (which would record nothing). Run in a fresh interpreter:
the global tracer provider can be set once per process, and the tests' own has none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from connectors.resilience import AgencyGuard, AgencyPolicy

started = []
real = trace.ProxyTracer.start_as_current_span

def counting(self, *args, **kwargs):
    started.append(args[0])
    return real(self, *args, **kwargs)

trace.ProxyTracer.start_as_current_span = counting

async def call():
    guard = AgencyGuard("land_registry", AgencyPolicy(retries=0))
    outer = trace.get_current_span()

    async def fetch():
        inner = trace.get_current_span()
        context = inner.get_span_context()
        return {"same": inner is outer, "recording": inner.is_recording(),
                "span_id": format(context.span_id, "016x")}

    return await guard.call("GetDeed", None, fetch)

result = {"without": asyncio.run(call()), "started_without": list(started)}
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
result["with"] = asyncio.run(call())
result["started_with"] = list(started)
result["spans"] = [
    {"name": s.name, "kind": s.kind.name, "attributes": dict(s.attributes),
     "span_id": format(s.context.span_id, "016x")}
    for s in exporter.get_finished_spans()
]
print(json.dumps(result))
"""


def test_a_span_per_attempt_only_when_a_tracer_provider_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # No provider: no span is started, the attempt runs in its caller's context.
    assert result["started_without"] == []
    assert result["without"] == {"same": True, "recording": False, "span_id": "0" * 16}
    # A provider: the attempt's span is started, recorded and current inside it.
    assert result["started_with"] == ["agency land_registry.GetDeed"]
    (span,) = result["spans"]
    assert span == {
        "name": "agency land_registry.GetDeed",
        "kind": "CLIENT",
        "attributes": {"agency.name": "land_registry", "agency.operation": "GetDeed"},
        "span_id": result["with"]["span_id"],
    }
    assert result["with"]["recording"] is True
    assert result["with"]["same"] is False
