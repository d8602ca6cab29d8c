"""Relay paging both ways: `last`/`before` give back, in reverse order of pages, the same items
that `first`/`after` walk forward, with `hasPreviousPage`/`hasNextPage` true exactly where the
list goes on; on every backend (the `gql` fixture runs on SQLite, PostgreSQL and MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLObjectType, get_named_type

from gateway.paging import Window, paged, paged_ids, window
from gateway.schema import build_schema
from gateway.settings import Settings
from tests.conftest import GraphQLClient

PARCELS = """
query Parcels($first: Int, $after: String, $last: Int, $before: String, $filter: ParcelFilter) {
  parcels(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount
    edges { cursor node { renewalCode } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

TRAIL = """
query Trail($first: Int, $after: String, $last: Int, $before: String) {
  auditTrail(first: $first, after: $after, last: $last, before: $before,
             filter: {subjectType: "Person"}) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _page(gql: GraphQLClient, query: str, field: str, **variables: Any) -> dict[str, Any]:
    body = await gql(query, variables)
    assert "errors" not in body, body
    page: dict[str, Any] = body["data"][field]
    return page


def _names(page: dict[str, Any], leaf: str) -> list[str]:
    return [edge["node"][leaf] for edge in page["edges"]]


async def _forward(
    gql: GraphQLClient, query: str, field: str, leaf: str, **fixed: Any
) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        page = await _page(gql, query, field, first=5, after=after, **fixed)
        info = page["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        pages.append(_names(page, leaf))
        if not info["hasNextPage"]:
            return pages
        after = info["endCursor"]


async def _backward(
    gql: GraphQLClient, query: str, field: str, leaf: str, **fixed: Any
) -> list[list[str]]:
    pages: list[list[str]] = []
    before = None
    while True:
        page = await _page(gql, query, field, last=5, before=before, **fixed)
        info = page["pageInfo"]
        assert info["hasNextPage"] is (before is not None)
        pages.append(_names(page, leaf))
        if not info["hasPreviousPage"]:
            return pages[::-1]
        before = info["startCursor"]


@pytest.mark.parametrize(
    "filter",
    [{"region": 1}, {"hasOutstandingDues": True}],
    ids=["planning-filter", "dues-across-databases"],
)
async def test_parcels_page_backwards_through_the_same_parcels(
    gql: GraphQLClient, filter: dict[str, Any]
) -> None:
    forward = await _forward(gql, PARCELS, "parcels", "renewalCode", filter=filter)
    flat = [code for page in forward for code in page]
    assert len(flat) > 10, "the demo city should give this filter several pages"
    assert len(set(flat)) == len(flat)
    assert (await _page(gql, PARCELS, "parcels", first=1, filter=filter))["totalCount"] == len(flat)
    backward = await _backward(gql, PARCELS, "parcels", "renewalCode", filter=filter)
    # Backward pages are aligned to the list's end, forward ones to its start.
    assert [code for page in backward for code in page] == flat
    assert all(len(page) == 5 for page in backward[1:])
    assert all(len(page) == 5 for page in forward[:-1])


async def test_last_before_a_forward_cursor_is_the_page_before_it(gql: GraphQLClient) -> None:
    first = await _page(gql, PARCELS, "parcels", first=10)
    fifth = first["edges"][4]["cursor"]
    before = await _page(gql, PARCELS, "parcels", last=3, before=fifth)
    assert _names(before, "renewalCode") == _names(first, "renewalCode")[1:4]
    assert before["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": True,
        "startCursor": first["edges"][1]["cursor"],
        "endCursor": first["edges"][3]["cursor"],
    }
    # Between two cursors, from either end.
    tenth = first["edges"][9]["cursor"]
    between = await _page(gql, PARCELS, "parcels", first=20, after=fifth, before=tenth)
    assert _names(between, "renewalCode") == _names(first, "renewalCode")[5:9]
    assert between["pageInfo"]["hasNextPage"] is False
    assert between["pageInfo"]["hasPreviousPage"] is True
    start = await _page(gql, PARCELS, "parcels", last=20, before=fifth)
    assert start["pageInfo"]["hasPreviousPage"] is False
    assert _names(start, "renewalCode") == _names(first, "renewalCode")[:4]


async def test_audit_trail_pages_both_ways_and_counts(gql: GraphQLClient) -> None:
    for code in ("0084575948", "0084575948", "0084575948"):
        await gql("query($c: NationalCode!) { person(nationalCode: $c) { fullName } }", {"c": code})
    forward = await _forward(gql, TRAIL, "auditTrail", "id")
    flat = [record for page in forward for record in page]
    assert len(flat) >= 3
    assert (await _page(gql, TRAIL, "auditTrail", first=1))["totalCount"] == len(flat)
    backward = await _backward(gql, TRAIL, "auditTrail", "id")
    assert [record for page in backward for record in page] == flat


@pytest.mark.parametrize(
    ("arguments", "code", "field"),
    [
        ("first: 2, last: 2", "BAD_USER_INPUT", "last"),
        ("last: 0", "BAD_USER_INPUT", "last"),
        ('last: 2, before: "bm90LWEtY3Vyc29y"', "BAD_USER_INPUT", "before"),
        ("last: 101", "QUERY_TOO_COMPLEX", "last"),
    ],
)
async def test_bad_paging_arguments_are_refused(
    gql: GraphQLClient, arguments: str, code: str, field: str
) -> None:
    body = await gql(f"{{ parcels({arguments}) {{ edges {{ cursor }} }} }}")
    error = body["errors"][0]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["field"] == field


async def test_a_cursor_of_another_list_is_refused_as_before(gql: GraphQLClient) -> None:
    trail = await _page(gql, TRAIL, "auditTrail", first=1)
    cursor = trail["edges"][0]["cursor"]
    body = await gql(
        "query($b: String) { parcels(last: 2, before: $b) { edges { cursor } } }", {"b": cursor}
    )
    extensions = body["errors"][0]["extensions"]
    assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", "before")


def test_window_defaults_and_sizes() -> None:
    assert window(first=None, last=None, after_id=None, before_id=None, cap=100) == Window(20)
    assert window(first=None, last=None, after_id=None, before_id=None, cap=5).size == 5
    assert window(first=None, last=3, after_id=None, before_id=9, cap=100) == Window(
        3, before_id=9, from_end=True
    )


@pytest.mark.parametrize("descending", [False, True])
def test_ids_in_memory_page_like_a_statement(descending: bool) -> None:
    ids = list(range(1, 12))
    if descending:
        ids.reverse()
    page = paged_ids(ids, Window(3, before_id=ids[5], from_end=True), descending=descending)
    assert page.items == ids[2:5]
    assert (page.has_previous, page.has_next) == (True, True)
    page = paged_ids(ids, Window(3, after_id=ids[7]), descending=descending)
    assert page.items == ids[8:11]
    assert (page.has_previous, page.has_next) == (True, False)
    # What a statement fetched (one past the page, from the window's end) reads the same.
    fetched = ids[4::-1][:4]  # last=3 before ids[5]: newest-first in the list's terms
    assert (
        paged(fetched, Window(3, before_id=ids[5], from_end=True), beyond_cursor=True).items
        == (ids[2:5])
    )


def test_every_connection_pages_both_ways() -> None:
    """The contract: every field returning a connection takes first/after and last/before,
    and its pageInfo says where the page sits both ways."""
    schema = build_schema(Settings())._schema
    connections = []
    for type_name, kind in schema.type_map.items():
        if not isinstance(kind, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in kind.fields.items():
            target = get_named_type(field.type)
            if isinstance(target, GraphQLObjectType) and "pageInfo" in target.fields:
                connections.append(f"{type_name}.{field_name}")
                assert {"first", "after", "last", "before"} <= set(field.args), field_name
    assert {"Query.parcels", "Query.auditTrail", "Viewer.auditTrail"} <= set(connections)
    page_info = schema.get_type("PageInfo")
    assert isinstance(page_info, GraphQLObjectType)
    assert set(page_info.fields) == {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


async def test_the_cost_estimate_counts_last_as_it_counts_first(gql: GraphQLClient) -> None:
    async def estimated(arguments: str) -> int:
        body = await gql(f"{{ parcels({arguments}) {{ edges {{ node {{ area }} }} }} }}", cost=True)
        assert "errors" not in body, body
        value: int = body["extensions"]["cost"]["estimated"]
        return value

    assert await estimated("last: 5") == await estimated("first: 5")
    assert await estimated("last: 50") == await estimated("first: 50") > await estimated("last: 5")
    assert await estimated("filter: {region: 1}") == await estimated("first: 20")
