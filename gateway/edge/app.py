"""The Starlette application: /graphql, health and readiness, built around one lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from db.engines import Databases
from gateway.access.authentication import Authenticator
from gateway.agencies import build_agencies, build_http_client
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
from gateway.guards.execution import Clock
from gateway.guards.ratelimit import RateLimits
from gateway.settings import Settings

log = logging.getLogger("gateway")


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
        # runs with proxy_headers off (gateway/edge/serve.py), so it never decides.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.add_middleware(InternalErrors)
    app.add_middleware(SecurityHeaders, development=settings.development)
    app.add_middleware(RequestIds)
    return app
