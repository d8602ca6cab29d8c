"""The Starlette application: /graphql, health and readiness, built around one lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import GraphQLError
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from connectors import correlation
from connectors.agencies import Agencies
from connectors.resilience import current_request_id
from db.engines import Databases
from gateway.access.audit import AuditEntry, GroupCommit, open_audit_trail
from gateway.access.authentication import AuthenticationMiddleware, Authenticator
from gateway.access.permissions import PersonalReads, operation_reads
from gateway.access.principals import ANONYMOUS, Principal
from gateway.agencies import build_agencies, build_http_client
from gateway.context import Context
from gateway.cost import start_request_cost
from gateway.edge import (
    InternalErrors,
    RequestIds,
    client_address,
    http_exception,
    refusal,
    request_ids,
    sane_token,
    trusted_proxies,
)
from gateway.errors import AuditUnavailable
from gateway.execution import Clock
from gateway.hardening import HardenedGraphQL, Refused, SecurityHeaders, cors_options
from gateway.loaders import Loaders
from gateway.ratelimit import RateLimit, RateLimits, rate_limited
from gateway.results import format_error, is_request_error
from gateway.schema import build_schema
from gateway.settings import Settings

log = logging.getLogger("gateway")

GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass
class AuditedResult(ExecutionResult):
    """An operation's result with the personal data it served, accounted for before it leaves."""

    personal_reads: PersonalReads = field(default_factory=dict)


class GatewayGraphQL(HardenedGraphQL):
    """strawberry's ASGI view, with our context, error codes and GraphQL-over-HTTP statuses."""

    agencies: Agencies  # built in the app's lifespan

    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        rate_limits: RateLimits,
        clock: Clock | None = None,  # times operations (gateway/execution.py); tests inject one
    ) -> None:
        super().__init__(
            build_schema(settings, clock),
            graphql_ide="graphiql" if settings.development else None,
            allow_queries_via_get=True,
        )
        self.settings = settings
        self.databases = databases
        self.rate_limits = rate_limits
        self.audit_trail = open_audit_trail(settings, databases)
        self.audit_writer = GroupCommit(self.audit_trail)

    async def get_context(self, request: Any, response: Any) -> Context:
        # The gateway's own id and the caller's, assigned at the edge (gateway/edge.py).
        request_id, caller_request_id = request_ids(request.scope)
        # Authentication ran before GraphQL (gateway/access/authentication.py) and left the
        # principal here.
        principal: Principal = request.scope.get("principal", ANONYMOUS)
        # Engines and agency calls add to the cost current in this request's context.
        cost = start_request_cost()
        # Agency calls carry who asked and for which case, X-Road style.
        purpose = sane_token(request.headers.get("x-road-issue", ""))
        current_request_id.set(request_id)
        correlation.current.set(
            correlation.Correlation(
                request_id=request_id,
                client=self.settings.agency_client_id,
                user_id=principal.label,
                issue=purpose,
            )
        )
        context = Context(
            request=request,
            response=response,
            settings=self.settings,
            databases=self.databases,
            loaders=Loaders(self.databases, self.agencies, principal),
            audit_trail=self.audit_trail,
            agencies=self.agencies,
            principal=principal,
            request_id=request_id,
            caller_request_id=caller_request_id,
            cost=cost,
            # What a query cost is for developers, and in production for internal callers.
            report_cost=(self.settings.development or principal.kind.internal)
            and request.headers.get("x-gateway-debug", "").lower() == "cost",
            purpose=purpose,
        )
        request.scope["gateway.context"] = context
        return context

    async def execute_operation(  # strawberry's signature
        self,
        request: Request,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        if isinstance(request_data, list) and len(request_data) > 1:
            # Rate limits count operations: the middleware counted this request as one.
            retry_after = await self.rate_limits.charge(
                context.principal, client_address(request.scope), len(request_data) - 1
            )
            if retry_after is not None:
                raise Refused(rate_limited(retry_after))
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # A batch runs each operation in a task of its own: each collects its own reads.
        with operation_reads() as reads:
            result = await super().execute_single(*args, **kwargs)
        if not reads:
            return result
        return AuditedResult(result.data, result.errors, result.extensions, personal_reads=reads)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        context: Context = request.scope["gateway.context"]
        # The cost of answering, before the audit trail's own writes.
        cost = context.cost.as_extension() if context.report_cost else None
        reads = result.personal_reads if isinstance(result, AuditedResult) else {}
        if reads and not await self._audit(context, reads):
            # Personal data that cannot be accounted for is not served.
            result = ExecutionResult(
                data=None,
                errors=[GraphQLError("Internal error.", original_error=AuditUnavailable())],
            )
        response: GraphQLHTTPResponse = {"data": result.data}
        # GraphQL over HTTP: the newer media type when the client asks for it, with 4xx
        # statuses for requests that never executed; plain JSON answers 200 as before.
        graphql_response = GRAPHQL_RESPONSE in request.headers.get("accept", "")
        if graphql_response:
            context.response.headers["content-type"] = GRAPHQL_RESPONSE
        if result.errors:
            response["errors"] = [format_error(e, context.request_id) for e in result.errors]
            if graphql_response and is_request_error(result.data, result.errors):
                context.response.status_code = 400
        extensions = dict(result.extensions or {})
        if cost is not None:
            extensions["cost"] = {
                **extensions.get("cost", {}),
                **cost,
                "auditRecords": len(reads),
            }
        if extensions:
            response["extensions"] = extensions
        return response

    async def _audit(self, context: Context, reads: PersonalReads) -> bool:
        """Writes one operation's personal-data reads to the audit trail before answering."""
        principal = context.principal
        entries = [
            AuditEntry(
                principal_kind=principal.kind.value,
                principal_id=principal.id,
                action="read",
                operation=served_by,
                subject_type=subject_type,
                subject_id=subject_id,
                purpose=context.purpose,
                request_id=context.request_id,
                caller_request_id=context.caller_request_id,
            )
            for (subject_type, subject_id), served_by in reads.items()
        ]
        try:
            await self.audit_writer.write(entries)
        except Exception:
            log.exception("audit trail unavailable (request %s)", context.request_id)
            return False
        return True

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        headers = dict(sub_response.headers)
        media_type = headers.pop("content-type", "application/json")
        return Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=media_type,
            headers=headers,
        )


class BodySizeLimit:
    """Refuses request bodies over the limit before anything reads them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> Response:
    return refusal(
        413, f"The request body exceeds {max_bytes} bytes.", "QUERY_TOO_COMPLEX", limit="body"
    )


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    databases = Databases(settings.database_urls, echo=settings.database_echo)
    proxies = trusted_proxies(settings.trusted_proxies)
    rate_limits = RateLimits(settings)
    graphql = GatewayGraphQL(settings, databases, rate_limits, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        http = build_http_client(settings)
        graphql.agencies = build_agencies(settings, http)
        # Long-lived objects are built once; freezing them keeps the collector off them,
        # which cuts the p99 pauses it would otherwise cause.
        gc.collect()
        gc.freeze()
        # A request allocates thousands of short-lived objects; collecting the young
        # generation every 700 allocations made collections a visible share of p99.
        gc.set_threshold(20_000, 50, 100)
        try:
            yield
        finally:
            await http.aclose()
            await graphql.audit_trail.close()  # the last checkpoints
            await databases.dispose()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        failing = []
        for name, engine in databases.engines.items():
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            except Exception:
                log.exception("database %s is not ready", name)
                failing.append(name)
        status = 503 if failing else 200
        return JSONResponse(
            {"status": "unavailable" if failing else "ready", "failing": failing},
            status_code=status,
        )

    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
        # Unknown paths and methods answer as documented errors, not plain text.
        exception_handlers={HTTPException: http_exception},
    )
    app.state.settings = settings
    app.state.databases = databases
    # The last added runs first: request ids, security headers, internal errors, trusted
    # proxies, CORS, body size, authentication, rate limits.
    app.add_middleware(RateLimit, limits=rate_limits, paths=frozenset({"/graphql"}))
    app.add_middleware(AuthenticationMiddleware, authenticator=Authenticator(settings, databases))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CORSMiddleware, **cors_options(settings))
    if proxies:
        # The one place X-Forwarded-For is read, and only from these peers; uvicorn itself
        # runs with proxy_headers off (gateway/serve.py), so it never decides.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.add_middleware(InternalErrors)
    app.add_middleware(SecurityHeaders, development=settings.development)
    app.add_middleware(RequestIds)
    return app
