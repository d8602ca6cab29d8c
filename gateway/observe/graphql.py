"""Schema extensions that tell the logs, metrics and traces about GraphQL operations.

`OperationObserver` (always on) notes each operation's type and name on the request's
Observation, and, while tracing is on, makes the operation a span. `ResolverSpans` (only
while tracing is on: a resolve hook costs on every field) makes a span of each resolver that
waits on something (a loader, a database, an agency); resolvers answered at once are left
alone. Spans carry no arguments: they can be personal data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from inspect import isawaitable
from typing import Any

from graphql import GraphQLResolveInfo
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace.status import Status, StatusCode
from strawberry.extensions import SchemaExtension

from gateway.observe import tracing
from gateway.observe.requests import note_operation


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        span: Span | None = None
        token: object = None
        if tracing.enabled():
            span = tracing.tracer.start_span("graphql.operation")
            token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            context = self.execution_context
            try:
                kind = context.operation_type.value
            except RuntimeError:  # never parsed: not GraphQL, or refused before parsing
                kind = "unparsed"
            except Exception:  # no such operation in the document
                kind = "unknown"
            note_operation(kind, context.operation_name)
            if span is not None:
                name = context.operation_name
                span.update_name(f"{kind} {name}" if name else kind)
                span.set_attribute("graphql.operation.type", kind)
                if name:
                    span.set_attribute("graphql.operation.name", name)
                result = context.result
                if result is not None and result.errors:
                    span.set_status(Status(StatusCode.ERROR))
                span.end()
                otel_context.detach(token)  # type: ignore[arg-type]


class ResolverSpans(SchemaExtension):
    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        result = _next(root, info, *args, **kwargs)
        if not isawaitable(result):
            return result
        return _traced(result, f"resolve {info.parent_type.name}.{info.field_name}")


async def _traced(awaitable: Awaitable[Any], name: str) -> Any:
    with tracing.tracer.start_as_current_span(name):
        return await awaitable
