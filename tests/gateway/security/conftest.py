"""The app the security tests attack: the session's seeded databases and simulated agencies,
with rate limits out of the way unless a test sets its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.edge.app import create_app
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import Backend, settings_for

GENEROUS = {
    "rate_limit_public": "100000/minute",
    "rate_limit_partner": "100000/minute",
    "rate_limit_internal": "100000/minute",
}


@pytest.fixture(scope="module")
async def attacked(backend: Backend, sandbox: SandboxAgencies) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, sandbox, **GENEROUS))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        yield http
