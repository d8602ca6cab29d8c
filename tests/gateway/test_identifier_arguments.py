"""Identifiers, global ids and cursors in arguments, from an anonymous caller: a number too
large for its column, or too long for int(), is BAD_USER_INPUT naming the argument, never
INTERNAL, and the answer never repeats the number."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.schema.node import to_global_id
from gateway.schema.pages import encode_cursor
from tests.conftest import GraphQLClient

HUGE = "99999999999999999999"  # past SQLite's 64-bit INTEGER, let alone a 32-bit column
LONGER_THAN_INT_ALLOWS = "9" * 4400  # past int()'s 4,300-digit guard


@pytest.fixture
def public(gql: GraphQLClient) -> GraphQLClient:
    return gql.as_key(None)


def _opaque(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _refused(body: dict[str, Any], field: str, *, echoing: str) -> None:
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    assert echoing not in error["message"]
    assert "int_max_str_digits" not in error["message"]


@pytest.mark.parametrize(
    ("argument", "scalar", "value"),
    [
        ("registryPlate", "RegistryPlate", f"{HUGE}-1/1"),
        ("registryPlate", "RegistryPlate", f"1-1/{LONGER_THAN_INT_ALLOWS}"),
        ("renewalCode", "RenewalCode", f"1-1-1-{HUGE}"),
        ("renewalCode", "RenewalCode", f"1-1-1-{LONGER_THAN_INT_ALLOWS}"),
    ],
)
async def test_a_huge_number_in_an_identifier_is_bad_input(
    public: GraphQLClient, argument: str, scalar: str, value: str
) -> None:
    literal = await public(f'{{ parcel({argument}: "{value}") {{ renewalCode }} }}')
    _refused(literal, argument, echoing=value[-20:])
    variable = await public(
        f"query($v: {scalar}) {{ parcel({argument}: $v) {{ renewalCode }} }}", {"v": value}
    )
    _refused(variable, "v", echoing=value[-20:])


BAD_RECORD_IDS = [HUGE, LONGER_THAN_INT_ALLOWS, "2147483648", "0", "-1", "+1", " 1", "1_0", "١"]


@pytest.mark.parametrize("pk", BAD_RECORD_IDS)
async def test_a_global_id_must_name_a_record_id_a_column_can_hold(
    public: GraphQLClient, pk: str
) -> None:
    global_id = _opaque(f"Parcel:{pk}")
    for query in (
        "query($id: ID!) { node(id: $id) { id } }",
        "query($id: ID!) { parcel(id: $id) { id } }",
    ):
        _refused(await public(query, {"id": global_id}), "id", echoing=global_id)


@pytest.mark.parametrize("pk", BAD_RECORD_IDS)
async def test_a_cursor_must_name_a_record_id_a_column_can_hold(
    public: GraphQLClient, pk: str
) -> None:
    cursor = _opaque(f"parcel:{pk}")
    body = await public(
        "query($after: String) { parcels(first: 2, after: $after) { totalCount } }",
        {"after": cursor},
    )
    _refused(body, "after", echoing=cursor)


async def test_the_largest_record_id_is_looked_up_and_found_absent(public: GraphQLClient) -> None:
    largest = 2**31 - 1
    body = await public(
        "query($id: ID!, $after: String) { node(id: $id) { id }"
        " parcels(first: 1, after: $after) { edges { cursor } } }",
        {"id": to_global_id("Parcel", largest), "after": encode_cursor("parcel", largest)},
    )
    assert body == {"data": {"node": None, "parcels": {"edges": []}}}


async def test_ids_and_cursors_that_are_not_base64_are_bad_input(public: GraphQLClient) -> None:
    for bad in ("UGFyY2VsOjE=!", "UGFy Y2VsOjE=", "UGFyY2VsOjE", "Parcel:1", "٣", "x" * 10_000):
        body = await public("query($id: ID!) { node(id: $id) { id } }", {"id": bad})
        _refused(body, "id", echoing=bad)
