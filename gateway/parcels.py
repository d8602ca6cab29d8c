"""The planning department's records as the domain sees them (parcels, their owners, buildings,
permits, certificates and violations; regions and districts), and finding parcels: filters
across the planning and revenue databases, keyset pagination.

Loaders and searches turn each row into one of these frozen dataclasses once; the schema
converts them to GraphQL types (`from_domain`), so no column name reaches it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Row,
    Select,
    String,
    any_,
    bindparam,
    exists,
    func,
    select,
)

from db import planning as tables
from db.engines import Databases, read_rows, records
from db.revenue import Assessment
from gateway import dues
from gateway.errors import QueryTooComplex
from gateway.paging import Page, Window, bounds, paged, windowed
from gateway.records import quick_init

_parcels = tables.Parcel.__table__
_violations = tables.Violation.__table__
_regions = tables.Region.__table__
_districts = tables.District.__table__


# Records: `from_row` takes a row of the table's own columns (extra columns are ignored).


@quick_init
@dataclass(frozen=True, slots=True)
class Region:
    id: int
    number: int
    name: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.number, row.name)


@quick_init
@dataclass(frozen=True, slots=True)
class District:
    id: int
    region_id: int
    number: int
    name: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.region_id, row.number, row.name)


@quick_init
@dataclass(frozen=True, slots=True)
class Person:
    id: int
    national_code: str
    first_name: str
    last_name: str
    father_name: str
    birth_date: dt.date

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.national_code, row.first_name, row.last_name, row.father_name,
            row.birth_date,
        )  # fmt: skip


@quick_init
@dataclass(frozen=True, slots=True)
class Ownership:
    """A person's share of a parcel, in dang (six dang make the whole)."""

    parcel_id: int
    owner: Person
    share: Decimal
    acquired_on: dt.date

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        """From a row of an ownership joined with its person (whose id is `person_id`)."""
        owner = Person(
            row.person_id, row.national_code, row.first_name, row.last_name, row.father_name,
            row.birth_date,
        )  # fmt: skip
        return cls(row.parcel_id, owner, row.share, row.acquired_on)


@quick_init
@dataclass(frozen=True, slots=True)
class Parcel:
    id: int
    region_id: int
    district_id: int
    renewal_code: str
    registry_section: int
    main_plate: int
    sub_plate: int
    postal_code: str
    address: str
    land_use: str
    density_percent: int
    area: Decimal  # square metres

    @property
    def registry_plate(self) -> str:
        return f"{self.registry_section}-{self.main_plate}/{self.sub_plate}"

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.region_id, row.district_id, row.renewal_code, row.registry_section,
            row.main_plate, row.sub_plate, row.postal_code, row.address, row.land_use,
            row.density_percent, row.area,
        )  # fmt: skip


@quick_init
@dataclass(frozen=True, slots=True)
class Building:
    id: int
    parcel_id: int
    floors: int
    units: int
    built_area: Decimal  # square metres
    construction_year: int  # Solar Hijri year

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.parcel_id, row.floors, row.units, row.built_area, row.construction_year
        )


@quick_init
@dataclass(frozen=True, slots=True)
class Permit:
    """A building permit (پروانه ساختمانی)."""

    id: int
    parcel_id: int
    number: str
    kind: str
    issued_on: dt.date
    expires_on: dt.date
    floors: int
    units: int

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.parcel_id, row.number, row.kind, row.issued_on, row.expires_on,
            row.floors, row.units,
        )  # fmt: skip


@quick_init
@dataclass(frozen=True, slots=True)
class Certificate:
    """A completion (پایان کار) or no-violation (عدم خلاف) certificate."""

    id: int
    parcel_id: int
    building_id: int | None
    kind: str
    number: str
    issued_on: dt.date

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.parcel_id, row.building_id, row.kind, row.number, row.issued_on)


@quick_init
@dataclass(frozen=True, slots=True)
class Violation:
    """A building violation and, once ruled on, the Article 100 commission's ruling."""

    id: int
    parcel_id: int
    kind: str
    detected_on: dt.date
    description: str
    status: str
    ruling: str | None
    ruled_on: dt.date | None
    fine: int | None  # rials, when the ruling is a fine

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.id, row.parcel_id, row.kind, row.detected_on, row.description, row.status,
            row.ruling, row.ruled_on, None if row.fine is None else int(row.fine),
        )  # fmt: skip


# Finding parcels.


@dataclass(frozen=True)
class ParcelFilter:
    region: int | None = None  # region number, as citizens know it
    district: int | None = None  # district number within the region
    land_use: str | None = None
    has_outstanding_dues: bool | None = None
    has_open_violations: bool | None = None


@dataclass(frozen=True)
class ParcelPage:
    parcels: list[Parcel]
    has_next_page: bool
    has_previous_page: bool = False


# The ids a statement may return, as conditions on a column holding parcel ids: given for
# `parcels.id`, and again for `violations.parcel_id` inside the open-violations test.
IdRange = Callable[[Any], list[ColumnElement[bool]]]


def _anywhere(_column: Any) -> list[ColumnElement[bool]]:
    return []


def _conditions(filter: ParcelFilter, within: IdRange = _anywhere) -> list[ColumnElement[bool]]:
    """The filter's conditions on parcels, and `within`'s range of ids.

    The range is repeated on the violations the open-violations test reads: PostgreSQL
    answers that test with a merge join over both tables in parcel order, and does not carry
    a bound on `parcels.id` over to `violations.parcel_id` by itself, so a page deep in the
    list read every open violation before it first (150 ms at a million parcels)."""
    conditions: list[ColumnElement[bool]] = []
    if filter.region is not None:
        # An equality (region numbers are unique), so that the region's parcels are read in
        # id order from the (region_id, id, …) index.
        conditions.append(
            _parcels.c.region_id
            == select(_regions.c.id).where(_regions.c.number == filter.region).scalar_subquery()
        )
    if filter.district is not None:
        conditions.append(
            _parcels.c.district_id.in_(
                select(_districts.c.id).where(_districts.c.number == filter.district)
            )
        )
    if filter.land_use is not None:
        conditions.append(_parcels.c.land_use == filter.land_use)
    if filter.has_open_violations is not None:
        open_violation = exists().where(
            _violations.c.parcel_id == _parcels.c.id,
            _violations.c.status == "open",
            *within(_violations.c.parcel_id),
        )
        conditions.append(open_violation if filter.has_open_violations else ~open_violation)
    return [*conditions, *within(_parcels.c.id)]


# The dues filter scans planning's candidates a chunk at a time, in the page's order, and
# asks revenue which of each chunk's codes owe something: the first chunk is a few pages,
# each next one twice the last, up to the largest.
DUES_SCAN_FIRST_CHUNK = 200
DUES_SCAN_MAX_CHUNK = 5000
# totalCount under a dues condition reads every candidate's id and code through the gateway
# (the two databases cannot join): past this many candidates it is refused up front, from
# one COUNT of planning, instead of scanning a city (a million parcels took 70 s).
DUES_COUNT_MAX_CANDIDATES = 100_000


def _owing_among(one_array: bool) -> Any:
    """Which of a batch of renewal codes (bound as "keys") have something left to pay.

    `one_array` (PostgreSQL): the codes go as one array parameter (`= ANY($1)`), so the
    statement's text is the same for every batch; an expanding IN renders a placeholder and
    a cast per code on every execution (a quarter of a deep dues page's CPU in the gateway,
    5.5 ms against 4.1 at a million parcels) and each new count of codes is a new statement
    for the server to prepare."""
    codes = Assessment.__table__.c.renewal_code
    among = (
        codes == any_(bindparam("keys", type_=ARRAY(String)))
        if one_array
        else codes.in_(bindparam("keys", expanding=True))
    )
    return dues.outstanding_renewal_codes_statement().where(among)


_OWING_AMONG = {False: _owing_among(False), True: _owing_among(True)}
_ID_AND_CODE = (_parcels.c.id, _parcels.c.renewal_code)


async def _scan_dues(
    databases: Databases,
    filter: ParcelFilter,
    within: IdRange,
    *,
    backward: bool,
    enough: int | None,
    columns: tuple[Any, ...] = (_parcels,),
) -> list[Row[Any]]:
    """Planning's rows within the range matching the filter, the dues condition included, in
    id order (descending when `backward`), until `enough` are found (None: all of them).

    The dues condition lives in another database, so it cannot join. Rather than read every
    renewal code with something unpaid, the scan reads planning's candidates a chunk at a
    time (keyset on the id) and asks revenue about that chunk's codes only: a page costs
    statements in proportion to how far its matches are spread, never to the city's size.
    """
    wanted = bool(filter.has_outstanding_dues)
    order = _parcels.c.id.desc() if backward else _parcels.c.id
    found: list[Row[Any]] = []
    # Ten candidates per match wanted (a fifth of the city owes something), so the look past
    # a cursor, which wants one, does not walk 200 of a rare combination's candidates.
    chunk = DUES_SCAN_FIRST_CHUNK if enough is None else min(DUES_SCAN_FIRST_CHUNK, 10 * enough)
    last_id: int | None = None
    while enough is None or len(found) < enough:

        def chunk_range(column: Any, last_id: int | None = last_id) -> list[ColumnElement[bool]]:
            if last_id is None:
                return within(column)
            return [*within(column), column < last_id if backward else column > last_id]

        ids = select(_parcels.c.id).where(*_conditions(filter, chunk_range))
        statement = _rows_by_id(ids.order_by(order).limit(chunk), columns, order)
        rows = await read_rows(databases.planning, statement)
        if not rows:
            break
        codes = list(dict.fromkeys(row.renewal_code for row in rows))
        owing_among = _OWING_AMONG[databases.revenue.dialect.name == "postgresql"]
        answer = await read_rows(databases.revenue, owing_among, {"keys": codes})
        owing = {row[0] for row in answer}
        found += [row for row in rows if (row.renewal_code in owing) == wanted]
        if len(rows) < chunk:
            break
        last_id = rows[-1].id
        chunk = min(chunk * 2, DUES_SCAN_MAX_CHUNK)
    return found if enough is None else found[:enough]


def _rows_by_id(ids: Select[Any], columns: tuple[Any, ...], order: Any) -> Select[Any]:
    """The `columns` of the parcels whose ids `ids` selects (ordered and limited), in `order`.

    The ids come first, from the filters' covering indexes alone (an index-only scan that
    walks thousands of entries when the filters are rare), then the rows of those few; read
    in one go, PostgreSQL fetched the row of every parcel it walked past to test it (37 ms
    against 8 for a page whose land use, district and open violation all had to match)."""
    page = ids.subquery("page")
    return select(*columns).join_from(_parcels, page, _parcels.c.id == page.c.id).order_by(order)


def _in_window(w: Window) -> IdRange:
    """The ids strictly between the window's cursors."""
    return lambda column: bounds(column, w, descending=False)


def _past_cursor(w: Window) -> IdRange | None:
    """The ids at or past the window's cursor on the side it does not fetch (is there a match
    there? answers hasPreviousPage or hasNextPage); None without a cursor."""
    cursor = w.before_id if w.from_end else w.after_id
    if not cursor:
        return None
    return lambda column: [column >= cursor] if w.from_end else [column <= cursor]


async def _dues_page(databases: Databases, filter: ParcelFilter, w: Window) -> Page[Row[Any]]:
    """The window over the parcels matching a filter with a dues condition, both ends exact;
    the window and the look past its cursor are scanned side by side."""
    window_scan = _scan_dues(
        databases, filter, _in_window(w), backward=w.from_end, enough=w.size + 1
    )
    side = _past_cursor(w)
    if side is None:
        return paged(await window_scan, w)
    rows, one = await asyncio.gather(
        window_scan,
        _scan_dues(
            databases, filter, side, backward=not w.from_end, enough=1, columns=_ID_AND_CODE
        ),
    )
    return paged(rows, w, beyond_cursor=bool(one))


async def find_parcels(
    databases: Databases,
    filter: ParcelFilter,
    *,
    first: int = 20,
    after_id: int = 0,
    window: Window | None = None,
) -> ParcelPage:
    """A page of parcels in id order: `window` (either way), or the `first` after `after_id`."""
    w = window or Window(size=first, after_id=after_id)
    if filter.has_outstanding_dues is None:
        ids = select(_parcels.c.id).where(*_conditions(filter, _in_window(w)))
        order = _parcels.c.id.desc() if w.from_end else _parcels.c.id
        statement = _rows_by_id(windowed(ids, _parcels.c.id, w), (_parcels,), order)
        side = _past_cursor(w)
        other_side = None if side is None else select(exists().where(*_conditions(filter, side)))
        # The page and the look past its cursor side by side, on two connections: a round trip
        # waits for a core when the machine is busy, and two in parallel wait once.
        reading = read_rows(databases.planning, statement)
        if other_side is None:
            page: Page[Any] = paged(list(await reading), w)
        else:
            rows, past = await asyncio.gather(reading, read_rows(databases.planning, other_side))
            page = paged(list(rows), w, beyond_cursor=bool(past[0][0]))
    else:
        page = await _dues_page(databases, filter, w)
    return ParcelPage(
        parcels=[Parcel.from_row(row) for row in records(page.items)],
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
    )


async def count_parcels(databases: Databases, filter: ParcelFilter) -> int:
    """How many parcels match. With a dues condition this is the one answer that needs every
    match: the scan reads them a chunk at a time, ids and codes only."""
    if filter.has_outstanding_dues is not None:
        candidates = select(func.count()).select_from(_parcels).where(*_conditions(filter))
        async with databases.planning.connect() as connection:
            many = int((await connection.execute(candidates)).scalar_one())
        if many > DUES_COUNT_MAX_CANDIDATES:
            raise QueryTooComplex(
                f"totalCount with hasOutstandingDues would read {many} parcels, more than "
                f"{DUES_COUNT_MAX_CANDIDATES}; narrow the filter or page without it.",
                field="totalCount",
                max=DUES_COUNT_MAX_CANDIDATES,
                limit="duesCount",
            )
        every = await _scan_dues(
            databases, filter, _anywhere, backward=False, enough=None, columns=_ID_AND_CODE
        )
        return len(every)
    statement = select(func.count()).select_from(_parcels).where(*_conditions(filter))
    async with databases.planning.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())
