"""One client address, however it is spelled (issue 7, item 4: "take the client address one
way everywhere"). Behind a trusted proxy the address is the one X-Forwarded-For names; the
citizen lookups' throttle (citizenRequest with the mobile's last four digits, which guards a
citizen's request against guessing) must name it as the rate limits do, so that writing one
IPv6 address three ways does not make three callers of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Backend
from tests.gateway.requests.registration_world import World, make_world, registered

LOOKUP = """
query($code: String!, $last4: String) {
  citizenRequest(trackingCode: $code, mobileLast4: $last4) { trackingCode }
}
"""
# One address, three spellings.
SPELLINGS = ("2001:db8::7", "2001:DB8:0:0:0:0:0:7", "2001:0db8::0:7")


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    # The test client's connections come from 127.0.0.1, here a trusted proxy.
    async for made in make_world(
        backend, trusted_proxies=["127.0.0.1"], request_lookup_rate="2/minute"
    ):
        yield made


async def test_the_lookup_throttle_counts_one_address_however_it_is_written(world: World) -> None:
    created = await registered(world, "portal", citizenMobile="09127654321")
    answers = []
    for spelling in SPELLINGS:
        body = await world.as_(None)(
            LOOKUP,
            {"code": created["trackingCode"], "last4": "4321"},
            headers={"X-Forwarded-For": spelling},
        )
        answers.append(body)
    assert answers[0]["data"]["citizenRequest"]["trackingCode"] == created["trackingCode"]
    assert "errors" not in answers[1], answers[1]
    (error,) = answers[2]["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED", answers[2]
    # Another network is another caller (limits count an IPv6 address under its /64).
    other = await world.as_(None)(
        LOOKUP,
        {"code": created["trackingCode"], "last4": "4321"},
        headers={"X-Forwarded-For": "2001:db8:0:1::8"},  # another /64
    )
    assert "errors" not in other, other
