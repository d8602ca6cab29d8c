"""OpenTelemetry traces: a span per HTTP request, GraphQL operation, resolver that waits on
I/O, SQL statement and agency call, exported over OTLP/HTTP when `otlp_endpoint` is set.

Off by default. Off, no span is recorded and nothing is exported, but every request still
has a W3C trace id (the caller's `traceparent`, or a fresh one) that its log line and error
extensions carry and that agency calls pass on in their own `traceparent`, so a trace can be
followed across the agencies that record theirs: a request pays for two random numbers and
a context switch, not for spans.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from db import raw_reads

tracer = trace.get_tracer("gateway")
_provider: Any = None  # the SDK's TracerProvider, once configured in this process
_SPAN = "_gateway_span"  # where a statement's span waits on SQLAlchemy's execution context


def enabled() -> bool:
    return _provider is not None


def configure_tracing(
    endpoint: str | None,
    *,
    service_name: str,
    headers: str | None = None,
    sample_ratio: float = 1.0,
) -> bool:
    """Exports spans to `endpoint` (OTLP over HTTP, protobuf) from now on; nothing when it is
    None. Once per process: later calls keep the first exporter."""
    global _provider
    if endpoint is None or _provider is not None:
        return _provider is not None
    # The SDK and the exporter are imported only when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=_headers(headers), timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def flush_tracing() -> None:
    """Sends the spans still waiting (at shutdown)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def _headers(given: str | None) -> dict[str, str]:
    headers = {}
    for pair in (given or "").split(","):
        name, _, value = pair.partition("=")
        if name.strip() and value:
            headers[name.strip()] = value.strip()
    return headers


class RequestSpan:
    """The span of one HTTP request (or a stand-in for it when tracing is off), current in
    the request's context from `start()` to `end()`."""

    __slots__ = ("_token", "span", "trace_id")

    def __init__(self, headers: list[tuple[bytes, bytes]], name: str) -> None:
        traceparent = next((v for k, v in headers if k == b"traceparent"), None)
        carrier = {"traceparent": traceparent.decode("latin-1")} if traceparent else {}
        parent = propagate.extract(carrier) if carrier else None
        self.span: Span | None = None
        if _provider is not None:
            self.span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
            span_context = self.span.get_span_context()
            current = trace.set_span_in_context(self.span, parent)
        else:
            given = trace.get_current_span(parent).get_span_context() if parent else None
            if given is not None and given.is_valid:
                trace_id, flags = given.trace_id, given.trace_flags
            else:
                trace_id, flags = random.getrandbits(128) or 1, TraceFlags(0)
            span_context = SpanContext(trace_id, random.getrandbits(64) or 1, False, flags)
            current = trace.set_span_in_context(NonRecordingSpan(span_context))
        self.trace_id = format(span_context.trace_id, "032x")
        self._token = otel_context.attach(current)

    def end(self, status: int | None) -> None:
        if self.span is not None:
            if status is not None:
                self.span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    self.span.set_status(Status(StatusCode.ERROR))
            self.span.end()
        otel_context.detach(self._token)


def trace_statements(engines: Mapping[str, AsyncEngine]) -> None:
    """A span per SQL statement on these engines (its text, never its parameters); only
    while tracing is on, so that the engines pay nothing otherwise."""
    if _provider is None:
        return
    for name, engine in engines.items():
        system = engine.dialect.name
        raw_reads.keep_events(engine)  # every statement through SQLAlchemy's events

        def before(
            _conn: Any,
            _cursor: Any,
            statement: str,
            _params: Any,
            context: Any,
            _many: bool,
            database: str = name,
            system: str = system,
        ) -> None:
            span = tracer.start_span(
                f"SQL {database}",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system": system,
                    "db.namespace": database,
                    "db.query.text": statement[:2000],
                },
            )
            setattr(context, _SPAN, span)

        def after(_conn: Any, _cursor: Any, _s: str, _p: Any, context: Any, _m: bool) -> None:
            span = getattr(context, _SPAN, None)
            if span is not None:
                span.end()
                setattr(context, _SPAN, None)

        def failed(exception_context: Any) -> None:
            context = exception_context.execution_context
            span = getattr(context, _SPAN, None) if context is not None else None
            if span is not None:
                span.set_status(
                    Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
                )
                span.end()
                setattr(context, _SPAN, None)

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)
        event.listen(engine.sync_engine, "handle_error", failed)
