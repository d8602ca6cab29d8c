"""What the lifecycle's tests share: one small world a backend for the whole session
(lifecycle_world.py), so that test_lifecycle, test_merge and test_request_jobs migrate each
server once between them rather than once each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.requests.lifecycle_world import World, make_world


@pytest.fixture(scope="session", params=["sqlite", "postgres", "mariadb"])
async def lifecycle_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    made = await make_world(request.param, tmp_path_factory.mktemp(f"lifecycle-{request.param}"))
    yield made
    await made.close()
