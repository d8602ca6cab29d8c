"""The Starlette application: /graphql, health and readiness, built around one lifespan."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from db.engines import Databases
from gateway.access.authentication import PUBLIC_PATHS, Authenticator
from gateway.agencies import build_agencies, build_http_client
from gateway.clock import WallClock, utc_now
from gateway.edge import dashboard, inquiries, open311
from gateway.edge.graphiql import graphiql_files
from gateway.edge.health import Health
from gateway.edge.language import PreferredLanguage
from gateway.edge.middleware import (
    AuthenticationMiddleware,
    BodySizeLimit,
    InternalErrors,
    RateLimit,
    RequestIds,
    SecurityHeaders,
    cors_options,
)
from gateway.edge.observe import Observe, metrics_endpoint, reading_jobs
from gateway.edge.requests import http_exception, trusted_proxies
from gateway.edge.view import GatewayGraphQL
from gateway.edge.work import ProcessJobs, running_jobs
from gateway.guards.execution import Clock
from gateway.guards.ratelimit import RateLimits
from gateway.jobs import JobKinds
from gateway.observe import metrics, tracing
from gateway.observe.graphql import OperationObserver, ResolverSpans
from gateway.settings import Settings


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    kinds: JobKinds | None = None,
    wall_clock: WallClock = utc_now,
) -> Starlette:
    """`clock` times operations (gateway/guards/execution.py); `wall_clock` is the one "now"
    of keys, the audit trail and rate-limit windows (gateway/clock.py). Tests inject either."""
    settings = settings or Settings()
    jobs = ProcessJobs(settings, wall_clock=wall_clock)
    if kinds is not None:  # tests run kinds of their own
        jobs.kinds = kinds
    databases = Databases(
        settings.database_urls,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
    )
    # Traces when configured (once per process), a span per SQL statement while they are on;
    # pools' use for the metrics.
    tracing.configure_tracing(
        settings.otlp_endpoint,
        service_name=settings.service_name,
        headers=settings.otlp_headers.get_secret_value() if settings.otlp_headers else None,
        sample_ratio=settings.trace_sample_ratio,
    )
    tracing.trace_statements(databases.engines)
    metrics.watch_pools(databases.engines)
    proxies = trusted_proxies(settings.trusted_proxies)
    rate_limits = RateLimits(settings, wall_clock=wall_clock)
    # One authenticator (its cache, its failed-attempt throttle) for HTTP and WebSockets.
    authenticator = Authenticator(settings, databases, wall_clock=wall_clock)
    graphql = GatewayGraphQL(
        settings, databases, rate_limits, clock, wall_clock, authenticator=authenticator
    )
    # Each operation's type and name for the request's log line and metrics (outermost, so
    # that refused operations are named too); resolvers' spans only while tracing is on.
    # BENCH_OBSERVE=off (bench/observe_cost.py alone) leaves the whole layer out, to measure it.
    observed = os.environ.get("BENCH_OBSERVE") != "off"
    observers: list[type] = [OperationObserver] if observed else []
    if tracing.enabled():
        observers.append(ResolverSpans)
    graphql.schema.extensions = (*observers, *graphql.schema.extensions)  # type: ignore[attr-defined]
    # The public keys, the status list, letters and the verification page.
    inquiry_pages = inquiries.InquiryPages(settings, databases, wall_clock)
    # The citizen requests' dashboard: its own files, figures from /graphql (public).
    dashboard_pages = dashboard.Dashboard(databases)
    # Open311 GeoReport v2 over the contact centre (authenticates and charges by itself).
    open311_api = open311.Open311(
        settings, databases, rate_limits, authenticator, wall_clock, graphql.audit_trail
    )

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
        jobs.notify_through(graphql.events, databases=databases, agencies=graphql.agencies)
        try:
            async with (
                running_jobs(settings, jobs) as job_queue,
                # the queue's figures for the metrics
                reading_jobs(job_queue, jobs.kinds, wall_clock=wall_clock),
            ):
                _app.state.job_queue = job_queue
                graphql.job_queue = job_queue
                yield
        finally:
            # On SIGTERM uvicorn has stopped accepting and let in-flight requests finish
            # (gateway/edge/serve.py); running jobs got their grace and were handed back.
            await http.aclose()
            await graphql.events.close()  # subscriptions complete
            await graphql.audit_trail.close()  # the last checkpoints
            await databases.dispose()
            tracing.flush_tracing()

    health = Health(
        databases,
        lambda: getattr(graphql, "agencies", None),
        lambda: jobs.engine,
        runs_jobs=settings.jobs_in_app and any(True for _ in jobs.kinds),
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),  # subscriptions (gateway/edge/websocket.py)
            Route("/healthz", health.healthz),
            Route("/readyz", health.readyz),
            Route("/metrics", metrics_endpoint),  # operators' key (or GATEWAY_METRICS_PORT)
            *inquiry_pages.routes,
            *open311_api.routes,
            *dashboard_pages.routes,
            # GraphiQL's files, from the gateway itself (development only, as the IDE is).
            *(graphiql_files().routes if settings.development else ()),
        ],
        lifespan=lifespan,
        # Unknown paths and methods answer as documented errors, not plain text.
        exception_handlers={HTTPException: http_exception},
    )
    app.state.settings = settings
    app.state.databases = databases
    # The last added runs first: request ids, security headers, internal errors, trusted
    # proxies, CORS, body size, authentication, rate limits.
    app.add_middleware(
        RateLimit,
        limits=rate_limits,
        paths=frozenset({"/graphql"}) | inquiries.CHARGED_PATHS | dashboard.CHARGED_PATHS,
        websockets_per_address=settings.websockets_per_address,
    )
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=authenticator,
        public_paths=PUBLIC_PATHS | inquiries.PUBLIC_PATHS | dashboard.PUBLIC_PATHS,
        self_authenticating=(open311.PREFIX,),
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CORSMiddleware, **cors_options(settings))
    if proxies:
        # The one place X-Forwarded-For is read, and only from these peers; uvicorn itself
        # runs with proxy_headers off (gateway/edge/serve.py), so it never decides.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.add_middleware(InternalErrors)
    app.add_middleware(SecurityHeaders, development=settings.development)
    # One log line, the metrics and a span for every request, whatever answered it.
    if observed:
        app.add_middleware(Observe, routes=app.routes)
    # Just inside the request ids: every answer, refusals included, in the caller's language.
    app.add_middleware(PreferredLanguage)
    app.add_middleware(RequestIds)
    return app
