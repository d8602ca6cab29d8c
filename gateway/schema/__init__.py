"""The GraphQL schema: strawberry types and thin resolvers, one module per area."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

from gateway.schema.query import Query
from gateway.schema.scalars import SCALARS
from gateway.settings import Settings
from gateway.validation import GatewayValidation, operation_limits


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are classified and logged once, without client data, in gateway/results.py."""


def build_schema(settings: Settings) -> strawberry.Schema:
    limits = operation_limits(settings.max_query_depth, settings.max_aliases)
    return Schema(
        query=Query,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            # Without both caches strawberry re-parses and re-validates every request.
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            lambda: GatewayValidation(limits),
        ],
    )
