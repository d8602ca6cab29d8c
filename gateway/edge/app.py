"""The Starlette application: /graphql, health and readiness, built around one lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from db.engines import Databases
from gateway.access.authentication import PUBLIC_PATHS, Authenticator
from gateway.agencies import build_agencies, build_http_client
from gateway.clock import WallClock, utc_now
from gateway.edge import inquiries
from gateway.edge.middleware import (
    AuthenticationMiddleware,
    BodySizeLimit,
    InternalErrors,
    RateLimit,
    RequestIds,
    SecurityHeaders,
    cors_options,
)
from gateway.edge.requests import http_exception, trusted_proxies
from gateway.edge.view import GatewayGraphQL
from gateway.edge.work import ProcessJobs, running_jobs
from gateway.guards.execution import Clock
from gateway.guards.ratelimit import RateLimits
from gateway.jobs import JobKinds
from gateway.settings import Settings

log = logging.getLogger("gateway")


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
    databases = Databases(settings.database_urls, echo=settings.database_echo)
    proxies = trusted_proxies(settings.trusted_proxies)
    rate_limits = RateLimits(settings, wall_clock=wall_clock)
    # One authenticator (its cache, its failed-attempt throttle) for HTTP and WebSockets.
    authenticator = Authenticator(settings, databases, wall_clock=wall_clock)
    graphql = GatewayGraphQL(
        settings, databases, rate_limits, clock, wall_clock, authenticator=authenticator
    )
    # The public keys, the status list, letters and the verification page.
    inquiry_pages = inquiries.InquiryPages(settings, databases, rate_limits, wall_clock)

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
        jobs.notify_through(graphql.events)
        try:
            async with running_jobs(settings, jobs) as job_queue:
                _app.state.job_queue = job_queue
                graphql.job_queue = job_queue
                yield
        finally:
            await http.aclose()
            await graphql.events.close()  # subscriptions complete
            await graphql.audit_trail.close()  # the last checkpoints
            await databases.dispose()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        # Every database of the registry the app was configured with, each on a new
        # connection (Databases.probe): a pooled one would hide a database gone since.
        states = {}
        for name in databases.engines:
            try:
                await databases.probe(name)
            except Exception:
                log.exception("database %s is not ready", name)
                states[name] = "unavailable"
            else:
                states[name] = "ready"
        failing = [name for name, state in states.items() if state != "ready"]
        return JSONResponse(
            {
                "status": "unavailable" if failing else "ready",
                "databases": states,
                "failing": failing,
            },
            status_code=503 if failing else 200,
        )

    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),  # subscriptions (gateway/edge/websocket.py)
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *inquiry_pages.routes,
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
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=authenticator,
        public_paths=PUBLIC_PATHS | inquiries.PUBLIC_PATHS,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CORSMiddleware, **cors_options(settings))
    if proxies:
        # The one place X-Forwarded-For is read, and only from these peers; uvicorn itself
        # runs with proxy_headers off (gateway/edge/serve.py), so it never decides.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.add_middleware(InternalErrors)
    app.add_middleware(SecurityHeaders, development=settings.development)
    app.add_middleware(RequestIds)
    return app
