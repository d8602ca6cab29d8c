"""The GraphQL view: strawberry's ASGI view reading the HTTP request itself, with the
gateway's context, error codes, audit of personal reads and GraphQL-over-HTTP statuses.

Anything malformed (not JSON, not a GraphQL request, nested too deep) is a 400 BAD_REQUEST
and a batch of more operations than the limit a 400 QUERY_TOO_COMPLEX, before any operation
is parsed; every refusal is a JSON error body.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from connectors import correlation
from connectors.agencies import Agencies
from connectors.resilience import current_request_id
from db.engines import Databases
from gateway.access.audit import GroupCommit, open_audit_trail
from gateway.access.authentication import Authenticator
from gateway.access.permissions import PersonalReads, operation_reads
from gateway.access.principals import ANONYMOUS, Principal
from gateway.clock import WallClock, utc_now
from gateway.context import Context
from gateway.cost import start_request_cost
from gateway.edge.errors import drop_tracebacks, format_error, is_request_error
from gateway.edge.graphiql import graphiql_files
from gateway.edge.middleware import development_origin
from gateway.edge.requests import (
    bad_request,
    client_address,
    http_refusal,
    rate_limited,
    refusal,
    request_ids,
    sane_token,
)
from gateway.edge.websocket import BoundedWebSocket, GatewayTransportWS, SubscriptionGate
from gateway.errors import AuditUnavailable
from gateway.events import Events, build_events
from gateway.guards.execution import Clock
from gateway.guards.ratelimit import RateLimits
from gateway.guards.response_cache import HEADER_KEY, build_response_cache
from gateway.jobs import JobQueue
from gateway.loaders import Loaders
from gateway.schema import build_schema
from gateway.settings import Settings

log = logging.getLogger("gateway")

GRAPHQL_RESPONSE = "application/graphql-response+json"
# Where get_context leaves the request's Context for process_result (removed once answered).
CONTEXT_KEY = "gateway.context"
# The context variables a request sets (its id, its agencies' correlation), reset once it
# has been answered: under uvicorn each request is a task of its own, but an app called in
# the caller's task (tests through httpx's ASGI transport, a mounting app) must not leave
# one request's correlation on the next agency call.
_RESETS_KEY = "gateway.context_resets"


class Refused(Exception):
    """Raised inside the view to answer with `response` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


# A GraphQL request needs a few levels of JSON, and the deepest input in the schema a few
# more; a thousand levels would only make graphql-core recurse until Python gives up.
MAX_JSON_DEPTH = 32


def nested_deeper_than(value: object, limit: int) -> bool:
    """Whether JSON data nests objects and arrays more than `limit` levels; without recursion."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class HardenedGraphQL(GraphQL[Context, None]):
    """strawberry's view, reading the HTTP request itself: anything malformed (not JSON, not
    a GraphQL request, nested too deep) is a 400 BAD_REQUEST, an over-long batch a 400
    QUERY_TOO_COMPLEX, before any operation is parsed. Every refusal is a JSON error body."""

    def decode_json(self, data: str | bytes) -> object:
        # orjson: fast, and its depth limit raises a decode error instead of recursing.
        return orjson.loads(data)

    def _decode(self, data: str | bytes, what: str) -> object:
        try:
            decoded = self.decode_json(data)
        except orjson.JSONDecodeError as exc:
            # orjson's reasons name a position, never the content.
            raise Refused(bad_request(f"{what} is not valid JSON: {exc}")) from None
        if nested_deeper_than(decoded, MAX_JSON_DEPTH):
            raise Refused(bad_request(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels."))
        return decoded

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # strawberry's own answered these in plain text, and failed with a 500 on a body that
        # was not an object or a batch whose items were not (multipart and streaming
        # transports, which it also handles, are not enabled here).
        if request.method == "GET":
            return self._operation(self._query_parameters(request.query_params))
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refused(
                bad_request("Send the request as JSON, with Content-Type application/json.")
            )
        data = self._decode(await request.get_body(), "The request body")
        if not isinstance(data, list):
            return self._operation(data)
        batching = self.schema.config.batching_config
        cap = batching["max_operations"] if batching else 1
        if not data:
            raise Refused(bad_request("The batch holds no operation."))
        if len(data) > cap:
            raise Refused(
                refusal(
                    400,
                    f"The batch has {len(data)} operations; the limit is {cap}.",
                    "QUERY_TOO_COMPLEX",
                    limit="batch",
                    max=cap,
                )
            )
        return [self._operation(item) for item in data]

    def _query_parameters(self, params: Mapping[str, str | list[str] | None]) -> dict[str, object]:
        operation: dict[str, object] = {}
        for name in ("query", "operationName", "variables", "extensions"):
            value = params.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise Refused(bad_request(f"`{name}` must be given once."))
            if name in ("variables", "extensions"):
                operation[name] = self._decode(value, f"`{name}`") if value else None
            else:
                operation[name] = value
        return operation

    @staticmethod
    def _operation(data: object) -> GraphQLRequestData:
        if not isinstance(data, dict):
            raise Refused(bad_request("An operation must be a JSON object."))
        query = data.get("query")
        name = data.get("operationName")
        variables = data.get("variables")
        extensions = data.get("extensions")
        if not isinstance(query, str | None):
            raise Refused(bad_request("`query` must be a string."))
        if not isinstance(name, str | None):
            raise Refused(bad_request("`operationName` must be a string."))
        if not isinstance(variables, dict | None):
            raise Refused(bad_request("`variables` must be an object."))
        if not isinstance(extensions, dict | None):
            raise Refused(bad_request("`extensions` must be an object."))
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=name,
            extensions=extensions,
            protocol="http",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # As strawberry's, but no refusal answers in plain text.
        response: Response
        try:
            try:
                response = await self.run(Request(scope, receive))
                # The response cache's verdict on the operations answered (no-store else).
                if HEADER_KEY in scope:
                    response.headers["cache-control"] = scope.pop(HEADER_KEY)
            except Refused as refused:
                response = refused.response
            except HTTPException as exc:  # strawberry's: no query, GET for a mutation, …
                response = http_refusal(exc.status_code, exc.reason)
            await response(scope, receive, send)
        finally:
            # Answered (a stream, too): what the request loaded goes now. Left alone, the
            # context (which holds the request, whose scope holds the context) and what it
            # loaded would wait in reference cycles for the garbage collector's older
            # generations, which run rarely (gateway/edge/app.py): under load, tens of MB.
            context: Context | None = scope.pop(CONTEXT_KEY, None)
            if context is not None:
                context.loaders.release()
            for reset in reversed(scope.pop(_RESETS_KEY, ())):
                reset()


@dataclass
class AuditedResult(ExecutionResult):
    """An operation's result with the personal data it served, accounted for before it leaves."""

    personal_reads: PersonalReads = field(default_factory=dict)


class GatewayGraphQL(HardenedGraphQL):
    """strawberry's ASGI view, with our context, error codes and GraphQL-over-HTTP statuses;
    and subscriptions over WebSocket (gateway/edge/websocket.py)."""

    agencies: Agencies  # built in the app's lifespan
    graphql_transport_ws_handler_class = GatewayTransportWS
    websocket_adapter_class = BoundedWebSocket  # type: ignore[assignment]  # as strawberry's

    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        rate_limits: RateLimits,
        clock: Clock
        | None = None,  # times operations (gateway/guards/execution.py); tests inject one
        wall_clock: WallClock = utc_now,  # dates the audit trail's records (gateway/clock.py)
        *,
        authenticator: Authenticator | None = None,  # the HTTP path's, shared by WebSockets
        events: Events | None = None,
    ) -> None:
        # Queries whose fields allow it are answered from here (gateway/guards/response_cache.py).
        self.response_cache = build_response_cache(settings, wall_clock)
        super().__init__(
            build_schema(settings, clock, self.response_cache),
            graphql_ide="graphiql" if settings.development else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=dt.timedelta(seconds=settings.websocket_init_timeout_s),
            max_subscriptions_per_connection=None,  # SubscriptionGate counts, with a code
            # Browsers send Origin on WebSocket upgrades: CORS's origins apply to them.
            allowed_origins=settings.cors_allowed_origins,
        )
        self.settings = settings
        self.databases = databases
        self.rate_limits = rate_limits
        self.events = events or build_events(settings)
        self.subscriptions = SubscriptionGate(
            settings, authenticator or Authenticator(settings, databases), rate_limits
        )
        self.audit_trail = open_audit_trail(settings, databases, wall_clock)
        self.wall_clock = wall_clock
        # The process's durable-work queue, once the app's lifespan has opened it.
        self.job_queue: JobQueue | None = None
        self.audit_writer = GroupCommit(self.audit_trail)

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        # As CORS: the configured origins, and in development a local dev server's.
        return super().is_websocket_origin_allowed(request, origin) or development_origin(
            self.settings, origin
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # The gateway's own GraphiQL page, whose files it serves too (gateway/edge/graphiql.py).
        return graphiql_files().page_response()

    async def get_context(self, request: Any, response: Any) -> Context:
        # The gateway's own id and the caller's, assigned at the edge (gateway/edge/requests.py).
        request_id, caller_request_id = request_ids(request.scope)
        # Authentication ran before GraphQL (gateway/access/authentication.py) and left the
        # principal here.
        principal: Principal = request.scope.get("principal", ANONYMOUS)
        # Engines and agency calls add to the cost current in this request's context.
        cost = start_request_cost()
        # Agency calls carry who asked and for which case, X-Road style.
        purpose = sane_token(request.headers.get("x-road-issue", ""))
        request_id_token = current_request_id.set(request_id)
        correlation_token = correlation.current.set(
            correlation.Correlation(
                request_id=request_id,
                client=self.settings.agency_client_id,
                user_id=principal.label,
                issue=purpose,
            )
        )
        request.scope.setdefault(_RESETS_KEY, []).extend(
            (
                lambda: current_request_id.reset(request_id_token),
                lambda: correlation.current.reset(correlation_token),
            )
        )
        context = Context(
            request=request,
            response=response,
            settings=self.settings,
            databases=self.databases,
            loaders=Loaders(self.databases, self.agencies, principal),
            audit_trail=self.audit_trail,
            audit_writer=self.audit_writer,
            events=self.events,
            agencies=self.agencies,
            principal=principal,
            request_id=request_id,
            caller_request_id=caller_request_id,
            cost=cost,
            # What a query cost is for developers, and in production for internal callers.
            report_cost=(self.settings.development or principal.kind.internal)
            and request.headers.get("x-gateway-debug", "").lower() == "cost",
            purpose=purpose,
            wall_clock=self.wall_clock,
            job_queue=self.job_queue,
        )
        request.scope[CONTEXT_KEY] = context
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
        context: Context = request.scope[CONTEXT_KEY]
        # The cost of answering, before the audit trail's own writes.
        cost = context.cost.as_extension() if context.report_cost else None
        reads = result.personal_reads if isinstance(result, AuditedResult) else {}
        if reads and not await self.audit_reads(context, reads):
            # Personal data that cannot be accounted for is not served.
            result = ExecutionResult(
                data=None,
                errors=[GraphQLError("Internal error.", original_error=AuditUnavailable())],
            )
        # GraphQL over HTTP: a request that never executed (parse, validation, variables)
        # answers without a `data` entry; with the newer media type, when the client asks for
        # it, also with a 4xx status (plain JSON answers 200, as older clients expect).
        request_error = is_request_error(result.data, result.errors or [])
        response: GraphQLHTTPResponse = {} if request_error else {"data": result.data}
        graphql_response = GRAPHQL_RESPONSE in request.headers.get("accept", "")
        if graphql_response:
            context.response.headers["content-type"] = GRAPHQL_RESPONSE
        if result.errors:
            response["errors"] = [format_error(e, context.request_id) for e in result.errors]
            drop_tracebacks(result.errors)
            if graphql_response and request_error:
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

    async def audit_reads(self, context: Context, reads: PersonalReads) -> bool:
        """Writes one operation's personal-data reads to the audit trail before answering."""
        entries = [
            context.audit_entry("read", served_by, subject_type, subject_id)
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
