"""The statements behind `parcels(filter:)` at scale (issue 11): a page's ids come first from
planning's covering indexes, then its rows; the open-violations test is bounded like the page;
and every filter combination, paged every way, still answers exactly the brute-force set."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from db import planning as tables
from db.engines import Databases
from gateway import parcels
from gateway.paging import Window
from tests.conftest import Backend, statements_sent

CHOICES: dict[str, tuple[Any, ...]] = {
    "region": (None, 2),
    "district": (None, 1),
    "land_use": (None, "residential"),
    "has_open_violations": (None, True, False),
}
FILTERS = [
    parcels.ParcelFilter(**{k: v for k, v in zip(CHOICES, values, strict=True) if v is not None})
    for values in itertools.product(*CHOICES.values())
]


@pytest.fixture(scope="module")
async def databases(backend: Backend) -> AsyncIterator[Databases]:
    made = Databases(backend.urls)
    yield made
    await made.dispose()


async def brute_force(databases: Databases, filter: parcels.ParcelFilter) -> list[int]:
    """Every parcel's id matching the filter, in id order, tested in Python."""
    p, v = tables.Parcel.__table__, tables.Violation.__table__
    r, d = tables.Region.__table__, tables.District.__table__
    async with databases.planning.connect() as connection:
        rows = (await connection.execute(select(p).order_by(p.c.id))).all()
        open_ = set(
            (await connection.execute(select(v.c.parcel_id).where(v.c.status == "open"))).scalars()
        )
        region_numbers = dict((await connection.execute(select(r.c.id, r.c.number))).all())
        district_numbers = dict((await connection.execute(select(d.c.id, d.c.number))).all())
    return [
        row.id
        for row in rows
        if (filter.region is None or region_numbers[row.region_id] == filter.region)
        and (filter.district is None or district_numbers[row.district_id] == filter.district)
        and (filter.land_use is None or row.land_use == filter.land_use)
        and (filter.has_open_violations is None or (row.id in open_) == filter.has_open_violations)
    ]


def windows(ids: list[int]) -> list[tuple[Window, list[int], bool, bool]]:
    """Windows of 4 over `ids` (the first, after a cursor in the middle, before it, the last),
    each with the ids, hasNextPage and hasPreviousPage it must answer."""
    middle = ids[len(ids) // 2] if ids else 60
    after = [i for i in ids if i > middle]
    before = [i for i in ids if i < middle]
    at_or_before = any(i <= middle for i in ids)
    at_or_after = any(i >= middle for i in ids)
    return [
        (Window(size=4), ids[:4], len(ids) > 4, False),
        (Window(size=4, after_id=middle), after[:4], len(after) > 4, at_or_before),
        (
            Window(size=4, before_id=middle, from_end=True),
            before[-4:],
            at_or_after,
            len(before) > 4,
        ),
        (Window(size=4, from_end=True), ids[-4:], False, len(ids) > 4),
    ]


@pytest.mark.parametrize("filter", FILTERS, ids=str)
async def test_every_combination_pages_every_way_to_the_brute_force_answer(
    databases: Databases, filter: parcels.ParcelFilter
) -> None:
    ids = await brute_force(databases, filter)
    for w, page, has_next, has_previous in windows(ids):
        found = await parcels.find_parcels(databases, filter, window=w)
        assert [parcel.id for parcel in found.parcels] == page, w
        assert (found.has_next_page, found.has_previous_page) == (has_next, has_previous), w


@pytest.mark.parametrize("wanted", [True, False])
async def test_the_open_violations_test_reads_only_the_pages_range(
    databases: Databases, wanted: bool
) -> None:
    """A merge join over violations in parcel order started at the first violation for a page
    deep in the list (150 ms at a million parcels): each bound of the page on parcels.id is
    repeated on violations.parcel_id, in the page's statement and in the one asking whether
    there is a match before its cursor."""
    with statements_sent(databases.planning) as sent:
        filter = parcels.ParcelFilter(has_open_violations=wanted)
        await parcels.find_parcels(databases, filter, window=Window(size=4, after_id=77))
    assert len(sent) == 2  # the page, and whether anything matches at or before its cursor
    # Read side by side, so in either order: the page is the one that joins.
    page, before = sorted(
        (statement.lower().replace('"', "") for statement, _ in sent),
        key=lambda statement: " join " not in statement,
    )
    assert "violations.parcel_id >" in page
    assert "parcels.id >" in page
    assert "violations.parcel_id <=" in before
    assert "parcels.id <=" in before
    # The page's ids first, then its rows.
    assert page.count("from parcels") == 2
    assert " join (select parcels.id" in page
