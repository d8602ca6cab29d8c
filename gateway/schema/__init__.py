"""The GraphQL schema: strawberry types and thin resolvers, one module per area.

Each area contributes its own Query fields as a strawberry type (PlanningQuery in
schema/planning.py, …), merged here into the one Query; its Node types register themselves
for node(id) where they are defined (schema/node.py). Mutations and subscriptions take the
same shape: each area's `…Mutation` and `…Subscription` types, merged into `Mutation` and
`Subscription` below (the mutation pattern is in schema/mutation.py).
"""

from __future__ import annotations

import time
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition

from gateway.guards.admission import Admission
from gateway.guards.cost import CostPolicy
from gateway.guards.documents import (
    RegisteredDocuments,
    TrustedDocuments,
    build_persisted_queries,
)
from gateway.guards.execution import (
    Clock,
    ExecutionPolicy,
    lean_enums,
    lean_resolvers,
    plain_values,
    shared_loop_execution,
)
from gateway.guards.limits import CachedValidation, GatewayValidation, operation_limits
from gateway.guards.response_cache import ResponseCache, response_caching
from gateway.schema.access import AccessQuery
from gateway.schema.agencies import AgenciesQuery
from gateway.schema.appointments import AppointmentsMutation, AppointmentsQuery
from gateway.schema.federation import (
    FederationQuery,
    describe_federation_types,
    municipality_query,
)
from gateway.schema.hooks import RememberedHooksRunner
from gateway.schema.inquiries import InquiriesMutation, InquiriesQuery, InquiriesSubscription
from gateway.schema.inquiry_stats import InquiryStatsQuery
from gateway.schema.keys import KeysMutation, KeysSubscription
from gateway.schema.node import NodeQuery, check_every_node_registered
from gateway.schema.planning import PlanningQuery
from gateway.schema.request_lifecycle import (
    RequestLifecycleMutation,
    RequestLifecycleSubscription,
)
from gateway.schema.request_stats import RequestStatsQuery
from gateway.schema.requests import RequestsMutation, RequestsQuery
from gateway.schema.revenue import RevenueQuery
from gateway.schema.scalars import SCALARS
from gateway.schema.webhooks import WebhooksQuery
from gateway.settings import Settings

# The root types, one part per area, in the order their fields appear in the schema.
Query = merge_types(
    "Query",
    (
        PlanningQuery,
        RevenueQuery,
        AgenciesQuery,
        InquiriesQuery,
        InquiryStatsQuery,
        RequestsQuery,
        RequestStatsQuery,
        AppointmentsQuery,
        AccessQuery,
        WebhooksQuery,
        NodeQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        InquiriesMutation,
        KeysMutation,
        RequestsMutation,
        RequestLifecycleMutation,
        AppointmentsMutation,
    ),
)
Subscription = merge_types(
    "Subscription", (InquiriesSubscription, RequestLifecycleSubscription, KeysSubscription)
)
# merge_types takes no description: the root types get theirs here.
for _root, _description in (
    (Query, "What the gateway answers: every area's reads, one field per question."),
    (Mutation, "What the gateway changes; each change is one transaction, and audited."),
    (
        Subscription,
        "Events over WebSocket (graphql-transport-ws): inquiries, citizen requests and API keys.",
    ),
):
    get_object_definition(_root, strict=True).description = _description


class Schema(strawberry.federation.Schema):
    """An Apollo Federation v2 subgraph (gateway/schema/federation.py): `_service` and
    `_entities` beside every area's fields."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are classified and logged once, without client data, in gateway/edge/errors.py."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        """strawberry's runner, with each extension class's hooks wrapped once (hooks.py)."""
        return RememberedHooksRunner(execution_context=execution_context, extensions=extensions)


class RememberedNames(NameConverter):
    """strawberry's names, each worked out once. strawberry converts an argument's Python
    name to camelCase (a regular expression) on every call of a resolver that takes
    arguments; a name's conversion never changes."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:
            converted = self._names[name] = super().apply_naming_config(name)
        return converted


def build_schema(
    settings: Settings, clock: Clock | None = None, response_cache: ResponseCache | None = None
) -> strawberry.Schema:
    """The schema with the gateway's limits; `clock` times operations (tests inject one);
    queries are answered from `response_cache` where their fields allow it."""
    limits = operation_limits(
        settings.max_query_depth,
        settings.max_aliases,
        settings.max_root_fields,
        settings.max_fields,
    )
    validation = CachedValidation(limits)
    execution = shared_loop_execution(
        ExecutionPolicy(
            budget_s=settings.operation_budget_s,
            slice_s=settings.loop_slice_ms / 1000,
            clock=clock or time.perf_counter,
            max_depth=settings.max_query_depth,
        )
    )
    trusted = TrustedDocuments(
        RegisteredDocuments(settings.registered_operations_refresh_s),
        build_persisted_queries(settings),
    )
    cost = CostPolicy(max_page_size=settings.max_page_size, list_size=settings.cost_list_size)
    # This municipality's own root field, and `_service` and `_entities` for federation routers.
    query = merge_types("Query", (Query, municipality_query(settings), FederationQuery))
    get_object_definition(query, strict=True).description = get_object_definition(
        Query, strict=True
    ).description
    schema = Schema(
        query=query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(
            name_converter=RememberedNames(),
            scalar_map=SCALARS,
            batching_config={"max_operations": settings.max_batch_operations},
        ),
        extensions=[
            # First: it picks the document (trusted or persisted) before anything parses it.
            lambda: Admission(trusted, cost),
            # Without both caches strawberry re-parses and re-validates every request (the
            # validation cache is CachedValidation, inside GatewayValidation).
            lambda: ParserCache(maxsize=512),
            lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            lambda: GatewayValidation(limits, validation),
            # Last: a hit is answered only after admission (cost budget) and validation.
            *([response_caching(response_cache)] if response_cache is not None else []),
        ],
        execution_context_class=execution,
    )
    check_every_node_registered(schema._schema)
    describe_federation_types(schema._schema)
    # Plain resolvers called without strawberry's general-purpose chain (same call, same Info).
    lean_resolvers(schema)
    lean_enums(schema)
    plain_values(schema)
    return schema
