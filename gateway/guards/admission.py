"""The schema extension that admits an operation: which document runs (its text, a
registered one or a persisted one), whether the caller may see the schema, and whether its
estimated cost fits the caller's budget; all before any resolver runs.

- Trusted documents (gateway/guards/documents.py): in production a partner sends only
  registered operations; anything else is PERSISTED_QUERY_NOT_FOUND.
- Introspection and "Did you mean …?" suggestions only for callers who may introspect
  (gateway/guards/policy.py): `__schema`/`__type` are refused as GRAPHQL_VALIDATION_FAILED
  (reason "introspection").
- The cost estimate (gateway/guards/cost.py) against the caller's budget: QUERY_TOO_COMPLEX.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from gateway.context import Context
from gateway.errors import QueryTooComplex
from gateway.guards.cost import CostPolicy, estimate_cost
from gateway.guards.documents import TrustedDocuments
from gateway.guards.limits import HiddenSchema, hide_suggestions
from gateway.guards.policy import cost_budget, may_introspect


def refuse_long_document(query: str | None, max_length: int) -> None:
    """A document longer than `max_length` characters, refused before it is parsed (or kept as
    a persisted query). The token limit does not bound its size: a comment is no token and a
    string literal one, and the parser and validation caches keep each document they see, so
    distinct near-megabyte documents each held megabytes of a worker until it ran out."""
    if query is not None and len(query) > max_length:
        raise QueryTooComplex(
            f"The document is longer than {max_length} characters.",
            limit="length",
            max=max_length,
        )


class Admission(SchemaExtension):
    """Operation-level only (no per-field hook): the document, introspection, the cost."""

    def __init__(self, trusted: TrustedDocuments, policy: CostPolicy) -> None:
        self.trusted = trusted
        self.policy = policy
        self.estimated: int | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if not isinstance(context, Context):
            yield
            return
        refuse_long_document(execution.query, context.settings.max_query_length)
        execution.query = await self.trusted.document(
            execution.query,
            execution.operation_extensions,
            context.principal,
            context.settings,
            context.databases,
        )
        restricted = not may_introspect(context.settings, context.principal)
        if restricted:
            execution.validation_rules = (*execution.validation_rules, HiddenSchema)
        yield
        if restricted:
            hide_suggestions(execution.pre_execution_errors or [])
            if execution.result is not None:
                hide_suggestions(execution.result.errors or [])

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context) and execution.graphql_document is not None:
            cost = estimate_cost(
                execution.schema._schema,
                execution.graphql_document,
                execution.operation_name,
                execution.variables,
                self.policy,
            )
            budget = cost_budget(context.settings, context.principal)
            if cost > budget:
                raise QueryTooComplex(
                    f"The operation's estimated cost is {cost}; the budget is {budget}. "
                    "Ask for smaller pages or fewer nested lists.",
                    limit="cost",
                    cost=cost,
                    budget=budget,
                )
            if context.report_cost:
                self.estimated = cost
        yield

    def get_results(self) -> dict[str, Any]:
        return {} if self.estimated is None else {"cost": {"estimated": self.estimated}}
