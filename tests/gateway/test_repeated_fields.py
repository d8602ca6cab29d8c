"""One field asked for many times in one selection: refused before graphql-core's overlap
check, which compares such fields pairwise and spent a second of CPU on 283 of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql.validation import OverlappingFieldsCanBeMergedRule
from graphql.validation.rules import overlapping_fields_can_be_merged

from gateway.guards.limits import MAX_REPEATED_FIELDS


def inline(times: int, selection: str) -> str:
    return " ".join("...{" + selection + "}" for _ in range(times))


def page(selection: str) -> str:
    return "{ parcels(first: 1) { edges { node { " + selection + " } } } }"


@pytest.fixture
def overlap_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often graphql-core's overlap check is set to work."""
    checks: list[int] = []
    original = OverlappingFieldsCanBeMergedRule.__init__

    def counted(self: Any, context: Any) -> None:
        checks.append(1)
        original(self, context)

    monkeypatch.setattr(
        overlapping_fields_can_be_merged.OverlappingFieldsCanBeMergedRule, "__init__", counted
    )
    return checks


async def post(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_field_repeated_hundreds_of_times_is_refused_before_the_overlap_check(
    client: httpx.AsyncClient, overlap_checks: list[int]
) -> None:
    # The attack: 283 copies of the same relation in one selection, each its own fragment.
    body = await post(client, page(inline(283, "owners { share }")))
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "repeatedFields",
        "max": MAX_REPEATED_FIELDS,
    }
    assert overlap_checks == []  # the quadratic rule never saw the document


async def test_named_fragments_count_toward_the_repeats_of_the_set_they_are_spread_into(
    client: httpx.AsyncClient,
) -> None:
    fragments = "".join(
        f"fragment O{i} on Parcel {{ owners {{ acquiredOn {{ iso }} }} }} " for i in range(20)
    )
    query = page(" ".join(f"...O{i}" for i in range(20))) + " " + fragments
    [error] = (await post(client, query))["errors"]
    assert error["extensions"]["limit"] == "repeatedFields"


async def test_a_fragment_spread_twice_into_one_set_counts_once(client: httpx.AsyncClient) -> None:
    query = page("...A " * 40) + " fragment A on Parcel { renewalCode }"
    body = await post(client, query)
    assert "errors" not in body, body["errors"]
    assert body["data"]["parcels"]["edges"][0]["node"]["renewalCode"]


async def test_as_many_repeats_as_the_limit_allows_are_answered(
    client: httpx.AsyncClient, overlap_checks: list[int]
) -> None:
    # A client built of components, each fragment asking for the id and the owners again.
    body = await post(client, page(inline(MAX_REPEATED_FIELDS, "id owners { acquiredOn { iso } }")))
    assert "errors" not in body, body["errors"]
    node = body["data"]["parcels"]["edges"][0]["node"]
    assert node["id"]
    assert isinstance(node["owners"], list)
    assert overlap_checks == [1]  # validated in full, once
    again = await post(
        client, page(inline(MAX_REPEATED_FIELDS, "id owners { acquiredOn { iso } }"))
    )
    assert again["data"] == body["data"]
    assert overlap_checks == [1]  # and the same document not again: it is cached
