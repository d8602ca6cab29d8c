"""The gateway as the citizen-request tests of registration, routing, the catalogue and
visibility see it: the real app over HTTP on each backend (the session's seeded databases,
with the demo catalogue, regions, holidays and rules), real API keys for the portal, the 137
centre, departments, a partner app and an operator, and a wall clock the test sets."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import Backend, GraphQLClient, mint_key, settings_for

# Sunday 29 November 2026, 08:30 in Tehran: a working day.
START = dt.datetime(2026, 11, 29, 5, 0, tzinfo=dt.UTC)
CENTRE = (37.5527, 45.0761)  # region 1, the demo city's centre

SUBMIT = """
mutation($input: SubmitCitizenRequestInput!) {
  submitCitizenRequest(input: $input) {
    id trackingCode kind status region department regionOffice referredTo deadline overdue
    channel service { code name } history { status at note }
    possibleDuplicates { trackingCode }
  }
}
"""

KEYS = (
    ("portal", PrincipalKind.DEPARTMENT, "public_relations"),
    ("centre", PrincipalKind.DEPARTMENT, "contact137"),
    ("centre_b", PrincipalKind.DEPARTMENT, "contact137"),
    ("civil_works", PrincipalKind.DEPARTMENT, "civil_works"),
    ("urban_services", PrincipalKind.DEPARTMENT, "urban_services"),
    ("green_space", PrincipalKind.DEPARTMENT, "green_space"),
    ("planning", PrincipalKind.DEPARTMENT, "planning"),
    ("inspection", PrincipalKind.DEPARTMENT, "inspection"),
    ("partner", PrincipalKind.COUNTER, None),
    ("operator", PrincipalKind.OPERATOR, None),
)


@dataclass
class SetClock:
    """The app's wall clock: where the test puts it."""

    now: dt.datetime = START

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class World:
    backend: Backend
    http: httpx.AsyncClient
    keys: dict[str, str]
    clock: SetClock
    databases: Databases
    settings: Any
    counter: list[int] = field(default_factory=lambda: [0])

    def as_(self, label: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, None if label is None else self.keys[label])

    def key(self) -> str:
        """A fresh idempotency key."""
        self.counter[0] += 1
        return f"r1-{uuid.uuid4().hex[:12]}-{self.counter[0]}"


def request_input(world: World, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": "COMPLAINT",
        "serviceCode": "pothole",
        "description": "چاله بزرگ در خیابان",
        "latitude": CENTRE[0],
        "longitude": CENTRE[1],
        "citizenName": "مریم احمدی",
        "citizenMobile": "09121234567",
        "idempotencyKey": world.key(),
    }
    values.update(overrides)
    return values


async def submit(world: World, label: str, **overrides: Any) -> dict[str, Any]:
    """Registers a request as `label`; the whole GraphQL body."""
    return await world.as_(label)(SUBMIT, {"input": request_input(world, **overrides)})


async def registered(world: World, label: str = "portal", **overrides: Any) -> dict[str, Any]:
    body = await submit(world, label, **overrides)
    assert "errors" not in body, body
    created: dict[str, Any] = body["data"]["submitCitizenRequest"]
    return created


def error_code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def make_world(
    backend: Backend, agencies: SandboxAgencies | None = None, **overrides: Any
) -> AsyncIterator[World]:
    """The app on `backend` with its own keys, the simulated `agencies` if given; settings
    overridden as given."""
    databases = Databases(backend.urls)
    keys = {}
    for label, kind, department in KEYS:
        _, keys[label] = await mint_key(
            databases, kind, f"{label} {uuid.uuid4().hex[:8]}", department
        )
    clock = SetClock()
    limits = {"rate_limit_public": "100000/minute", "rate_limit_internal": "100000/minute"}
    settings = settings_for(backend, agencies, **{**limits, **overrides})
    app = create_app(settings, wall_clock=clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        yield World(backend, http, keys, clock, databases, settings)
    await databases.dispose()
