"""Possible duplicates of a citizen request (`CitizenRequest.possibleDuplicates`), attacked
over HTTP (issue 7, items 11 and 12's row rules on the citizen requests' surface):

- they are offered only among the requests the caller may see: the 137 centre, which sees
  what it registered, is not shown a partner app's citizen (name and mobile) because the two
  reported the same pothole, neither in the registration's answer nor later;
- loading them costs statements by the query's shape only, not by how many requests a page
  holds or how many duplicates each has, at every depth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Backend
from tests.gateway.requests.registration_world import (
    CENTRE,
    World,
    make_world,
    registered,
    request_input,
)

DUPLICATES = """
mutation($input: SubmitCitizenRequestInput!) {
  submitCitizenRequest(input: $input) {
    trackingCode possibleDuplicates { trackingCode channel citizenName citizenMobile }
  }
}
"""
SEARCH = """
query($filter: CitizenRequestFilter, $first: Int) {
  searchCitizenRequests(filter: $filter, first: $first) {
    edges { node { trackingCode
      possibleDuplicates { trackingCode citizenName
        possibleDuplicates { trackingCode possibleDuplicates { trackingCode } } } } }
  }
}
"""
DIRECT = "query($code: String!) { citizenRequest(trackingCode: $code) { trackingCode } }"


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    async for made in make_world(backend):
        yield made


def _codes(found: list[dict[str, Any]]) -> set[str]:
    return {item["trackingCode"] for item in found}


async def test_the_centre_is_not_offered_a_partners_citizen_as_a_duplicate(world: World) -> None:
    place = {"serviceCode": "pothole", "address": f"Duplicate lane {world.key()}"}
    partners = await registered(
        world, "partner", citizenName="Maryam Partner", citizenMobile="09351112233", **place
    )
    # The 137 centre cannot read the partner's request itself...
    direct = await world.as_("centre")(DIRECT, {"code": partners["trackingCode"]})
    assert direct["data"]["citizenRequest"] is None, direct
    # ...nor through the duplicates of a report of its own at the same place.
    body = await world.as_("centre")(
        DUPLICATES, {"input": request_input(world, citizenName="Caller Person", **place)}
    )
    assert "errors" not in body, body
    answered = body["data"]["submitCitizenRequest"]
    assert partners["trackingCode"] not in _codes(answered["possibleDuplicates"]), answered
    assert "Maryam Partner" not in str(body)
    later = await world.as_("centre")(
        SEARCH, {"filter": {"trackingCode": answered["trackingCode"]}, "first": 1}
    )
    assert "errors" not in later, later
    (edge,) = later["data"]["searchCitizenRequests"]["edges"]
    assert partners["trackingCode"] not in _codes(edge["node"]["possibleDuplicates"])
    assert "09351112233" not in str(later)
    # Civil works, whose queue both are in, is offered the partner's as a duplicate.
    theirs = await world.as_("civil_works")(
        SEARCH, {"filter": {"trackingCode": answered["trackingCode"]}, "first": 1}
    )
    (edge,) = theirs["data"]["searchCitizenRequests"]["edges"]
    assert partners["trackingCode"] in _codes(edge["node"]["possibleDuplicates"]), theirs


async def test_duplicates_cost_statements_by_the_shape_not_by_the_page(world: World) -> None:
    # Six reports of one pothole at one moment (the test's clock stands still): each has the
    # other five as duplicates.
    text = f"duplicates-{world.key()}"
    for number in range(6):
        await registered(
            world,
            "civil_works",
            description=f"{text} {number}",
            latitude=CENTRE[0] + number * 1e-5,
            longitude=CENTRE[1],
        )
    counts = []
    for first in (1, 6):
        body = await world.as_("civil_works")(
            SEARCH, {"filter": {"text": text}, "first": first}, cost=True
        )
        assert "errors" not in body, body
        edges = body["data"]["searchCitizenRequests"]["edges"]
        assert len(edges) == first
        counts.append(body["extensions"]["cost"]["sqlStatements"])
    nested = edges[0]["node"]["possibleDuplicates"]
    assert nested, "the page has duplicates"
    assert nested[0]["possibleDuplicates"], "and duplicates have duplicates"
    # The page, then at most one statement for each of the three nested levels (a level
    # whose requests were all loaded above it costs none), whatever the page's size: loading
    # each request's duplicates on its own cost a statement per request, 1 + 6 + 30 + 150.
    assert all(count <= 1 + 3 for count in counts), counts
