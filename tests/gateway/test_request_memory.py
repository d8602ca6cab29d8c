"""A finished request's objects go as soon as its answer is sent, without the cyclic collector.

graphql-core's executor holds its own bound methods (`async_helpers`), a reference cycle that
kept every request's whole graph (the context, the HTTP request, the loaders, the cost, the
results) alive until the collector's next pass over the older generations: in a loaded worker
a pause of about 20 ms every few hundred requests. These tests keep the collector out of the
way while requests run, then ask it what it would have had to free: none of the gateway's
per-request objects may be among it, whatever the request did (database fields, an agency
field, a refusal, an error inside a resolver, a malformed document).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request

from gateway.context import Context
from gateway.guards.execution import SharedLoopExecution

# The per-request objects that must never wait for the collector.
PER_REQUEST = (Context, SharedLoopExecution, Request)


@pytest.fixture
def uncollected() -> Iterator[list[Any]]:
    """What became unreachable (but not freed) while the test ran, kept for inspection."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.garbage.clear()
    kept: list[Any] = []
    try:
        yield kept
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _stranded(uncollected: list[Any]) -> list[str]:
    gc.collect()
    uncollected.extend(gc.garbage)
    gc.garbage.clear()
    return sorted({type(o).__name__ for o in uncollected if isinstance(o, PER_REQUEST)})


async def test_database_and_agency_fields_leave_nothing_for_the_collector(
    gql: Any, uncollected: list[Any]
) -> None:
    query = (
        "{ parcels(first: 3) { edges { node { renewalCode dues { outstanding }"
        " deed { serial owners { nationalCode } } } } } }"
    )
    for _ in range(3):
        body = await gql(query)
        assert "errors" not in body, body
        assert len(body["data"]["parcels"]["edges"]) == 3
    assert (await gql("{ __typename }"))["data"] == {"__typename": "Query"}
    assert _stranded(uncollected) == []


async def test_refusals_and_errors_leave_nothing_for_the_collector(
    gql: Any, uncollected: list[Any]
) -> None:
    # A validation error, a scalar refusing bad input, a resolver refusing a cursor (an error
    # raised inside execution, with a path), and a syntax error.
    assert "errors" in await gql("{ parcels(first: 1) { edges { node { noSuchField } } } }")
    refused = await gql('{ parcel(renewalCode: "not-a-code") { id } }')
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    cursor = await gql('{ parcels(last: 2, before: "bm90LWEtY3Vyc29y") { edges { cursor } } }')
    assert cursor["errors"][0]["path"] == ["parcels"]
    assert "errors" in await gql("{ parcels(first: ")
    assert _stranded(uncollected) == []
