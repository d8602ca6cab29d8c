"""Browsers: in development a front-end dev server on this machine (http://localhost:* or
http://127.0.0.1:*) may call the gateway, over HTTP and WebSocket; in production only the
configured origins may; and a preflight allows every header the README tells callers to
send."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import WebSocketRoute

from gateway.edge.app import create_app
from gateway.edge.middleware import CLIENT_HEADERS
from gateway.edge.view import GatewayGraphQL
from tests.conftest import Backend, make_backend, settings_for

README = Path(__file__).resolve().parents[2] / "README.md"
LOCAL_DEV_SERVERS = [
    "http://localhost:5173",
    "http://127.0.0.1:3000",
    "http://localhost",
    "http://localhost:65535",
]
NOT_LOCAL = [
    "https://localhost:5173",  # a dev server is plain http; https is a configured origin
    "http://localhost.evil.example:5173",
    "http://127.0.0.1.nip.io",
    "http://127.0.0.2:3000",
    "http://evil.example",
    "null",
]


@pytest.fixture(scope="module")
async def sqlite(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    made, _ = await make_backend("sqlite", tmp_path_factory.mktemp("cors"), parcels=0)
    return made


@contextlib.asynccontextmanager
async def serve(backend: Backend, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, **overrides))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


@pytest.fixture(scope="module")
async def development(sqlite: Backend) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(sqlite) as http:
        yield http


@pytest.fixture(scope="module")
async def production(sqlite: Backend) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(sqlite, env="production", audit_key="p" * 40) as http:
        yield http


def readme_request_headers() -> set[str]:
    """Headers the README has callers send: in its curl examples (-H) and where it says to
    send one (a header named in backticks within the sentence that says "send")."""
    text = README.read_text()
    named = {name.lower() for name in re.findall(r"-H ['\"]([A-Za-z-]+):", text)}
    for sentence in re.split(r"(?<=[.:])\s", text):
        if re.search(r"\bsend", sentence, re.IGNORECASE):
            for name in re.findall(r"`([A-Z][A-Za-z]*(?:-[A-Z][A-Za-z]*)+)(?::[^`]*)?`", sentence):
                named.add(name.lower())
    return named


def test_the_readme_names_the_headers_callers_send() -> None:
    # So that the preflight test below checks something: the README's own headers.
    assert {"authorization", "content-type", "x-road-issue"} <= readme_request_headers()


def preflight(origin: str, headers: set[str] | tuple[str, ...]) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(sorted(headers)),
    }


@pytest.mark.parametrize("origin", LOCAL_DEV_SERVERS)
async def test_development_lets_a_local_dev_server_call_with_every_header_the_readme_names(
    development: httpx.AsyncClient, origin: str
) -> None:
    wanted = readme_request_headers() | set(CLIENT_HEADERS)
    # Request headers only: those the gateway sends back are not asked for in a preflight.
    wanted -= {"retry-after", "x-content-type-options", "x-frame-options", "referrer-policy"}
    wanted = {
        name for name in wanted if not name.startswith("x-gateway-") or name == "x-gateway-debug"
    }
    response = await development.options("/graphql", headers=preflight(origin, wanted))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert wanted <= allowed
    answer = await development.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
    )
    assert answer.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in answer.headers  # bearer tokens only


@pytest.mark.parametrize("origin", NOT_LOCAL)
async def test_development_refuses_other_origins(
    development: httpx.AsyncClient, origin: str
) -> None:
    response = await development.options("/graphql", headers=preflight(origin, ("authorization",)))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_production_allows_no_local_dev_server(production: httpx.AsyncClient) -> None:
    origin = "http://localhost:5173"
    response = await production.options("/graphql", headers=preflight(origin, ("authorization",)))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def _websocket_allows(backend: Backend, origin: str, **overrides: Any) -> bool:
    """Whether the app's GraphQL view accepts a browser's WebSocket upgrade from `origin`
    (strawberry asks it only for cross-origin handshakes, and answers 403 when it says no)."""
    app = create_app(settings_for(backend, **overrides))
    (view,) = [route.endpoint for route in app.routes if isinstance(route, WebSocketRoute)]
    assert isinstance(view, GatewayGraphQL)
    return view.is_websocket_origin_allowed(None, origin)


def test_development_accepts_websockets_from_a_local_dev_server_only(sqlite: Backend) -> None:
    assert _websocket_allows(sqlite, "http://localhost:5173")
    assert _websocket_allows(sqlite, "http://127.0.0.1:8080")
    assert not _websocket_allows(sqlite, "http://evil.example")
    production = {"env": "production", "audit_key": "p" * 40}
    assert not _websocket_allows(sqlite, "http://localhost:5173", **production)
    configured = "https://portal.urmia.ir"
    assert _websocket_allows(sqlite, configured, cors_allowed_origins=[configured], **production)
