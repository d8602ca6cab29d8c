"""Parcel.citizenRequests over GraphQL with the simulated postal company: the requests
registered with the parcel's renewal code, or without one at its address or near its postal
point (GATEWAY_REQUEST_PARCEL_RADIUS_M of the postal company's coordinates of its postal
code); one statement for a page of parcels; and, with the postal company down, the
renewal-code and address matches still, without an error."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from db import planning
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import Backend
from tests.gateway.requests.registration_world import World, make_world, registered

PARCEL = """
query($code: RenewalCode!) {
  parcel(renewalCode: $code) {
    postalAddress { latitude longitude }
    citizenRequests { trackingCode }
  }
}
"""
RADIUS_M = 50.0


@pytest.fixture(scope="module")
async def world(backend: Backend, sandbox: SandboxAgencies) -> AsyncIterator[World]:
    async for made in make_world(backend, sandbox, request_parcel_radius_m=RADIUS_M):
        yield made


@pytest.fixture(scope="module")
async def cut_off(backend: Backend) -> AsyncIterator[World]:
    """The same databases with the postal company unreachable (nothing listens on port 9)."""
    async for made in make_world(
        backend, postal_url="http://127.0.0.1:9", request_parcel_radius_m=RADIUS_M
    ):
        yield made


def _north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return (point[0] + math.degrees(metres / 6_371_008.8), point[1])


async def _parcels(world: World, count: int, offset: int) -> list[Any]:
    async with world.databases.planning.connect() as connection:
        return list(
            (
                await connection.execute(
                    select(planning.Parcel.renewal_code, planning.Parcel.address)
                    .order_by(planning.Parcel.id.desc())
                    .offset(offset)
                    .limit(count)
                )
            ).all()
        )


async def _requests_about(world: World, code: str) -> tuple[list[str], dict[str, Any]]:
    body = await world.as_("planning")(PARCEL, {"code": code})
    found = body["data"]["parcel"]["citizenRequests"] if body.get("data") else None
    return [r["trackingCode"] for r in found or []], body


async def test_requests_near_the_parcels_postal_point_are_about_it(
    world: World, cut_off: World
) -> None:
    (parcel,) = await _parcels(world, 1, offset=3)
    body = await world.as_("planning")(PARCEL, {"code": parcel.renewal_code})
    assert "errors" not in body, body
    postal = body["data"]["parcel"]["postalAddress"]
    point = (postal["latitude"], postal["longitude"])
    near = await registered(world, latitude=_north_of(point, 20)[0], longitude=point[1])
    far = await registered(world, latitude=_north_of(point, 120)[0], longitude=point[1])
    # Near, but registered with another parcel's renewal code: about that parcel.
    (other,) = await _parcels(world, 1, offset=4)
    elsewhere = await registered(
        world, latitude=point[0], longitude=point[1], renewalCode=other.renewal_code
    )
    by_code = await registered(world, renewalCode=parcel.renewal_code)
    by_address = await registered(world, latitude=None, longitude=None, address=parcel.address)
    codes, body = await _requests_about(world, parcel.renewal_code)
    assert "errors" not in body, body
    assert set(codes) >= {near["trackingCode"], by_code["trackingCode"], by_address["trackingCode"]}
    assert far["trackingCode"] not in codes
    assert elsewhere["trackingCode"] not in codes
    # Newest first.
    assert codes.index(by_address["trackingCode"]) < codes.index(near["trackingCode"])

    # Without the postal company: the renewal-code and address matches, and no error.
    codes, body = await _requests_about(cut_off, parcel.renewal_code)
    assert "errors" not in body or all(
        error["path"][-1] == "postalAddress" for error in body["errors"]
    ), body
    assert by_code["trackingCode"] in codes
    assert by_address["trackingCode"] in codes
    assert near["trackingCode"] not in codes


async def test_a_page_of_parcels_loads_its_requests_in_one_statement(world: World) -> None:
    query = """query($n: Int) {
      parcels(first: $n) { edges { node { citizenRequests { id } } } }
    }"""
    counts = []
    for size in (3, 30):
        body = await world.as_("planning")(query, {"n": size}, cost=True)
        assert "errors" not in body, body
        assert len(body["data"]["parcels"]["edges"]) == size
        counts.append(body["extensions"]["cost"]["sqlStatements"])
    assert counts[0] == counts[1], counts
