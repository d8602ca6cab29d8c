"""The dues filter asks revenue about each page's candidates only, never for every renewal code
with something unpaid, and answers exactly what intersecting the whole sets answered: every
page both ways, its ends, and the count, alone and with planning's conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select

from db import planning as tables
from db.engines import Databases
from gateway import dues, parcels
from gateway.errors import QueryTooComplex
from gateway.paging import Window
from tests.conftest import Backend, GraphQLClient, statements_sent

FILTERS = [
    parcels.ParcelFilter(has_outstanding_dues=True),
    parcels.ParcelFilter(has_outstanding_dues=False),
    parcels.ParcelFilter(has_outstanding_dues=True, has_open_violations=False),
    parcels.ParcelFilter(has_outstanding_dues=False, region=2),
    parcels.ParcelFilter(has_outstanding_dues=True, land_use="residential", region=1),
]


@pytest.fixture(scope="module")
async def databases(backend: Backend) -> AsyncIterator[Databases]:
    made = Databases(backend.urls)
    yield made
    await made.dispose()


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks far smaller than the demo city, so every page takes several."""
    monkeypatch.setattr(parcels, "DUES_SCAN_FIRST_CHUNK", 3)
    monkeypatch.setattr(parcels, "DUES_SCAN_MAX_CHUNK", 11)


async def expected_ids(databases: Databases, filter: parcels.ParcelFilter) -> list[int]:
    return [parcel_id for parcel_id, _ in await expected_rows(databases, filter)]


async def expected_rows(
    databases: Databases, filter: parcels.ParcelFilter
) -> list[tuple[int, str]]:
    """The old way: every code owing anything, intersected with planning's matches."""
    async with databases.revenue.connect() as connection:
        owing = set(
            (await connection.execute(dues.outstanding_renewal_codes_statement())).scalars()
        )
    p = tables.Parcel.__table__
    other = parcels.ParcelFilter(
        region=filter.region,
        district=filter.district,
        land_use=filter.land_use,
        has_open_violations=filter.has_open_violations,
    )
    statement = select(p.c.id, p.c.renewal_code).where(*parcels._conditions(other)).order_by(p.c.id)
    async with databases.planning.connect() as connection:
        rows = (await connection.execute(statement)).all()
    wanted = bool(filter.has_outstanding_dues)
    return [(row.id, row.renewal_code) for row in rows if (row.renewal_code in owing) == wanted]


@pytest.mark.parametrize("filter", FILTERS, ids=str)
async def test_every_page_both_ways_is_the_intersection(
    databases: Databases, filter: parcels.ParcelFilter
) -> None:
    expected = await expected_ids(databases, filter)
    assert expected  # the demo data has matches for every filter here

    forward: list[int] = []
    after = 0
    while True:
        page = await parcels.find_parcels(databases, filter, window=Window(size=7, after_id=after))
        ids = [parcel.id for parcel in page.parcels]
        forward += ids
        assert page.has_previous_page == bool(after)
        if not page.has_next_page:
            break
        after = ids[-1]
    assert forward == expected

    backward: list[int] = []
    before = None
    while True:
        window = Window(size=7, before_id=before, from_end=True)
        page = await parcels.find_parcels(databases, filter, window=window)
        ids = [parcel.id for parcel in page.parcels]
        backward = ids + backward
        assert page.has_next_page == bool(before)
        if not page.has_previous_page:
            break
        before = ids[0]
    assert backward == expected

    # A window between two cursors, and its ends.
    if len(expected) > 12:
        middle = Window(size=4, after_id=expected[3], before_id=expected[12])
        page = await parcels.find_parcels(databases, filter, window=middle)
        assert [parcel.id for parcel in page.parcels] == expected[4:8]
        assert page.has_next_page
        assert page.has_previous_page

    assert await parcels.count_parcels(databases, filter) == len(expected)


async def test_a_page_asks_revenue_only_about_its_candidates(databases: Databases) -> None:
    """A first page's statements bind a few chunks of codes, not every unpaid one."""
    filter = parcels.ParcelFilter(has_outstanding_dues=True)
    owing_everywhere = len(await expected_ids(databases, filter))
    with statements_sent(databases.revenue) as sent:
        page = await parcels.find_parcels(databases, filter, window=Window(size=2))
    bound: list[int] = []
    for _statement, parameters in sent:
        values = list(parameters.values() if isinstance(parameters, dict) else parameters)
        # The codes asked about: one parameter each, or one array of them (PostgreSQL).
        codes = [v for value in values for v in (value if isinstance(value, list) else [value])]
        bound.append(sum(isinstance(code, str) for code in codes))

    assert len(page.parcels) == 2
    assert bound  # revenue was asked
    assert max(bound) <= parcels.DUES_SCAN_MAX_CHUNK < owing_everywhere


async def test_through_graphql_the_answers_are_unchanged(
    databases: Databases, gql: GraphQLClient
) -> None:
    expected = await expected_rows(databases, parcels.ParcelFilter(has_outstanding_dues=True))
    body = await gql(
        "{ parcels(first: 5, filter: {hasOutstandingDues: true}) { totalCount "
        "  edges { node { renewalCode dues { outstanding } } } pageInfo { hasNextPage } } }"
    )
    connection = body["data"]["parcels"]
    assert connection["totalCount"] == len(expected)
    codes = [edge["node"]["renewalCode"] for edge in connection["edges"]]
    assert codes == [code for _, code in expected[:5]]
    assert all(edge["node"]["dues"]["outstanding"] > 0 for edge in connection["edges"])
    assert connection["pageInfo"]["hasNextPage"] == (len(expected) > 5)


async def test_a_count_over_too_many_candidates_is_refused_before_any_scan(
    databases: Databases, gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """totalCount under a dues condition must read every candidate through the gateway: past
    DUES_COUNT_MAX_CANDIDATES it is refused from one COUNT, before revenue is asked anything,
    while the page itself is still served and a narrower filter is still counted."""
    region_2 = parcels.ParcelFilter(has_outstanding_dues=False, region=2)
    narrow = len(await expected_ids(databases, region_2))
    p = tables.Parcel.__table__
    async with databases.planning.connect() as connection:
        in_region_2 = len(
            (await connection.execute(select(p.c.id).where(p.c.region_id == 2))).all()
        )
        everywhere = len((await connection.execute(select(p.c.id))).all())
    assert in_region_2 < everywhere
    monkeypatch.setattr(parcels, "DUES_COUNT_MAX_CANDIDATES", in_region_2)

    asked: list[str] = []
    engine = databases.revenue.sync_engine

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        asked.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with pytest.raises(QueryTooComplex) as refused:
            await parcels.count_parcels(databases, parcels.ParcelFilter(has_outstanding_dues=True))
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert asked == []  # refused from planning's COUNT alone
    assert refused.value.extensions["limit"] == "duesCount"
    assert await parcels.count_parcels(databases, region_2) == narrow

    body = await gql(
        "{ parcels(first: 2, filter: {hasOutstandingDues: true}) { totalCount "
        "  edges { node { renewalCode } } } }"
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "duesCount"
    assert error["extensions"]["max"] == in_region_2
    assert error["path"] == ["parcels", "totalCount"]
