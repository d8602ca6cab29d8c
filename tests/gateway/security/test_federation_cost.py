"""`_entities` (the federation subgraph's entity fetch) under the cost budget (issue 7, item 1
on a surface added since): it returns one entity for each representation the caller sends,
up to a thousand, so its estimate counts the representations, not a typical list's ten. An
anonymous caller sending a thousand parcels' keys with their lists under each is refused
before anything runs, as the same shape through `parcels` would be."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import GraphQLClient

ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Parcel { renewalCode buildings { floors } permits { number } violations { kind }
                    certificates { kind } }
  }
}
"""


async def _codes(public: GraphQLClient, count: int) -> list[str]:
    body = await public(
        "query($n: Int) { parcels(first: $n) { edges { node { renewalCode } } } }", {"n": count}
    )
    return [edge["node"]["renewalCode"] for edge in body["data"]["parcels"]["edges"]]


def _representations(codes: list[str], count: int) -> list[dict[str, Any]]:
    return [
        {"__typename": "Parcel", "municipality": "urmia", "renewalCode": codes[i % len(codes)]}
        for i in range(count)
    ]


async def test_a_thousand_representations_are_refused_by_their_cost_before_anything_runs(
    attacked: httpx.AsyncClient,
) -> None:
    public = GraphQLClient(attacked)
    codes = await _codes(public, 50)
    body = await public(ENTITIES, {"representations": _representations(codes, 1000)}, cost=True)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["cost"] > error["extensions"]["budget"] == 5_000
    assert "data" not in body
    assert body["extensions"]["cost"]["sqlStatements"] == 0


async def test_the_estimate_counts_each_representation(attacked: httpx.AsyncClient) -> None:
    public = GraphQLClient(attacked)
    codes = await _codes(public, 5)
    costs = []
    for count in (1, 5):
        body = await public(
            ENTITIES, {"representations": _representations(codes, count)}, cost=True
        )
        assert "errors" not in body, body
        assert len(body["data"]["_entities"]) == count
        costs.append(body["extensions"]["cost"]["estimated"])
    assert costs[1] == 5 * costs[0], costs
    # Written out in the document instead of a variable, the same.
    literal = ", ".join(
        f'{{__typename: "Parcel", municipality: "urmia", renewalCode: "{code}"}}'
        for code in codes[:5]
    )
    inline = ENTITIES.replace("query($representations: [_Any!]!)", "").replace(
        "$representations", f"[{literal}]"
    )
    body = await public(inline, cost=True)
    assert "errors" not in body, body
    assert body["extensions"]["cost"]["estimated"] == costs[1]
