"""Citizen requests' figures: counts by service, region, status, kind, department, channel and
Jalali month; the most frequent problems of each region; hotspots on a grid of locations; the
public transparency view of each service; the most engaged reporters who consented to be
named; and the departments' and regions' ranking (gateway/requests/scores.py).

Each figure is one or two grouped statements over the requests registered in [since, until):
SQL counts and sums, Python only folds groups (at most regions × services of them), so a
figure costs a scan or two of the range whatever the table's size. Medians are PostgreSQL's
PERCENTILE_CONT in the same scan; elsewhere they fetch only the rows they are made of
(gateway/figures.py). None of these names a citizen except `engaged_citizens`, whose names are
personal data: the schema serves them only with personal:read, and audits each.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.clock import naive_utc
from gateway.errors import BadUserInput
from gateway.figures import (
    MEDIAN,
    Floor,
    SecondsBetween,
    month_index,
    months_between,
    needed_rank,
    percentile,
)
from gateway.requests.records import GROUPS, OPEN_STATUSES, REGIONS, REQUESTS, SERVICES
from gateway.requests.scores import ScoreWeights, Tally, UnitScore, rank_units

__all__ = [
    "MAX_RANGE",
    "CountGroup",
    "Grouping",
    "Hotspot",
    "RankedUnit",
    "RegionProblems",
    "ServiceFigures",
    "count_requests",
    "engaged_citizens",
    "frequent_problems",
    "hotspots",
    "ranking",
    "transparency",
]

_r = REQUESTS.c

# The longest range a figure may span.
MAX_RANGE = dt.timedelta(days=3 * 366)
# Kinds that report a problem (thanks and suggestions do not).
PROBLEM_KINDS = ("REQUEST", "COMPLAINT", "CRITICISM")
# A grid cell's key: its row times this, plus its column.
_CELL_KEY = 1_000_000
# Metres in a degree of latitude (and of longitude at the equator).
METRES_PER_DEGREE = 111_320.0


class Grouping(Enum):
    SERVICE = "service"
    REGION = "region"
    STATUS = "status"
    KIND = "kind"
    DEPARTMENT = "department"
    CHANNEL = "channel"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class CountGroup:
    """One group's counts; a key the grouping does not use is None."""

    service: str | None  # the service's code
    region: int | None
    status: str | None
    kind: str | None
    department: str | None
    channel: str | None
    month: str | None  # Jalali, "1404-07", in Tehran
    total: int
    open: int
    resolved: int
    referred: int
    overdue: int  # open, not waiting for the citizen, past the deadline now


@dataclass(frozen=True, slots=True)
class RegionProblems:
    region: int | None
    problems: tuple[tuple[str, int], ...]  # (service code, requests), most first


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A cell of the grid and the problems reported in it."""

    south: float
    west: float
    north: float
    east: float
    count: int
    top_service: str  # the service most reported in the cell


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    """A service's public figures over the range."""

    code: str
    name_fa: str
    name_en: str
    group: str
    requests: int
    resolved: int
    median_days_to_resolution: float | None
    share_on_time: float | None  # of those that fell due, answered by the deadline


@dataclass(frozen=True, slots=True)
class EngagedCitizen:
    name: str  # personal: the schema masks and audits it
    mobile: str  # personal; never served
    requests: int
    last_at: dt.datetime
    # Their latest request's id: the audit's subject, ("CitizenRequest", id), as for every
    # other read of a citizen's name.
    latest_request_id: int


@dataclass(frozen=True, slots=True)
class RankedUnit:
    """A unit's score (scores.UnitScore) with the unit's own names."""

    score: UnitScore
    name_fa: str | None
    name_en: str | None


# --- Ranges and conditions ----------------------------------------------------------------


def checked_range(
    since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The range as naive UTC; BAD_USER_INPUT when empty or longer than MAX_RANGE."""
    since = None if since is None else naive_utc(since)
    until = None if until is None else naive_utc(until)
    if since is not None and until is not None and until <= since:
        raise BadUserInput("until must be later than since.", field="until")
    if since is not None and (until or naive_utc(now)) - since > MAX_RANGE:
        raise BadUserInput(
            f"The range spans at most {MAX_RANGE.days} days: narrow since or until.",
            field="since",
        )
    return since, until


# PostgreSQL's default work_mem (4 MB) sends a year's sort (transparency's medians, the
# hotspots' windows) to disk; these read-only statements may use more, in their transaction.
_WORK_MEM = text("SET LOCAL work_mem = '64MB'")


async def _roomy(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.execute(_WORK_MEM)


def _in_range(since: dt.datetime | None, until: dt.datetime | None) -> list[ColumnElement[bool]]:
    # A merged duplicate is counted once, as the request it joined.
    conditions: list[ColumnElement[bool]] = [_r.merged_into_id.is_(None)]
    if since is not None:
        conditions.append(_r.registered_at >= since)
    if until is not None:
        conditions.append(_r.registered_at < until)
    return conditions


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _int(value: Any) -> int:
    """SUM over no rows is NULL; MySQL's SUM is a DECIMAL."""
    return 0 if value is None else int(value)


def _answered_at() -> ColumnElement[Any]:
    """When the request was answered: resolved, else closed (rejected, referred)."""
    return func.coalesce(_r.resolved_at, _r.closed_at)


def _overdue(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        _r.status.in_(sorted(OPEN_STATUSES - {"WAITING_FOR_CITIZEN"})),
        _r.deadline_at.is_not(None),
        _r.deadline_at < now,
    )


def _fell_due(now: dt.datetime) -> ColumnElement[bool]:
    """Answered (with a deadline), or unanswered past it: the requests timeliness counts."""
    answered = _answered_at()
    return and_(
        _r.deadline_at.is_not(None),
        or_(answered.is_not(None), _r.deadline_at < now),
    )


def _on_time() -> ColumnElement[bool]:
    answered = _answered_at()
    return and_(_r.deadline_at.is_not(None), answered.is_not(None), answered <= _r.deadline_at)


async def _service_names(connection: AsyncConnection) -> dict[int, Any]:
    rows = await connection.execute(
        select(
            SERVICES.c.id,
            SERVICES.c.code,
            SERVICES.c.name_fa,
            SERVICES.c.name_en,
            GROUPS.c.code.label("group_code"),
        ).join(GROUPS, GROUPS.c.id == SERVICES.c.group_id)
    )
    return {row.id: row for row in rows}


# --- Counts -------------------------------------------------------------------------------


async def count_requests(
    engine: AsyncEngine,
    group_by: Sequence[Grouping],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime,
) -> list[CountGroup]:
    """Requests registered in [since, until), grouped by `group_by` (none: one total),
    ordered by its keys. BAD_USER_INPUT for a grouping named twice or a bad range."""
    groupings = tuple(group_by)
    if len(set(groupings)) != len(groupings):
        raise BadUserInput("Name each grouping once.", field="groupBy")
    since, until = checked_range(since, until, now)
    conditions = _in_range(since, until)
    async with engine.connect() as connection:
        await _roomy(connection)
        months: list[tuple[str, dt.datetime]] = []
        if Grouping.MONTH in groupings:
            low, high = (
                await connection.execute(
                    select(func.min(_r.registered_at), func.max(_r.registered_at)).where(
                        *conditions
                    )
                )
            ).one()
            if low is None:
                return []
            months = months_between(since or low, high if until is None else until)
        columns: dict[Grouping, ColumnElement[Any]] = {
            Grouping.SERVICE: _r.service_id,
            Grouping.REGION: _r.region,
            Grouping.STATUS: _r.status,
            Grouping.KIND: _r.kind,
            Grouping.DEPARTMENT: _r.department,
            Grouping.CHANNEL: _r.channel,
            Grouping.MONTH: month_index(_r.registered_at, months) if months else literal(0),
        }
        keys = [columns[g].label(g.value) for g in groupings]
        rows = (
            await connection.execute(
                select(
                    *keys,
                    func.count().label("total"),
                    _count(_r.status.in_(sorted(OPEN_STATUSES))).label("open"),
                    _count(_r.resolved_at.is_not(None)).label("resolved"),
                    _count(_r.referred_to.is_not(None)).label("referred"),
                    _count(_overdue(naive_utc(now))).label("overdue"),
                )
                .where(*conditions)
                .group_by(*(columns[g] for g in groupings))
            )
        ).all()
        services = await _service_names(connection) if Grouping.SERVICE in groupings else {}
    groups = []
    for row in rows:
        values = {g: row._mapping[g.value] for g in groupings}
        service = values.get(Grouping.SERVICE)
        month = values.get(Grouping.MONTH)
        groups.append(
            CountGroup(
                service=None if service is None else services[service].code,
                region=values.get(Grouping.REGION),
                status=values.get(Grouping.STATUS),
                kind=values.get(Grouping.KIND),
                department=values.get(Grouping.DEPARTMENT),
                channel=values.get(Grouping.CHANNEL),
                month=None if month is None else months[int(month)][0],
                total=_int(row.total),
                open=_int(row.open),
                resolved=_int(row.resolved),
                referred=_int(row.referred),
                overdue=_int(row.overdue),
            )
        )

    def order(group: CountGroup) -> tuple[Any, ...]:
        # None (no region, no department) sorts last.
        return tuple(
            (getattr(group, g.value) is None, getattr(group, g.value) or 0) for g in groupings
        )

    groups.sort(key=order)
    return groups


async def frequent_problems(
    engine: AsyncEngine,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    per_region: int,
    now: dt.datetime,
) -> list[RegionProblems]:
    """Each region's most reported services (requests, complaints, criticism), most first;
    regions in number order, requests without a region last."""
    since, until = checked_range(since, until, now)
    async with engine.connect() as connection:
        await _roomy(connection)
        rows = (
            await connection.execute(
                select(_r.region, _r.service_id, func.count().label("n"))
                .where(*_in_range(since, until), _r.kind.in_(PROBLEM_KINDS))
                .group_by(_r.region, _r.service_id)
            )
        ).all()
        services = await _service_names(connection)
    by_region: dict[int | None, list[tuple[str, int]]] = defaultdict(list)
    for row in rows:
        by_region[row.region].append((services[row.service_id].code, int(row.n)))
    return [
        RegionProblems(region, tuple(sorted(found, key=lambda p: (-p[1], p[0]))[:per_region]))
        for region, found in sorted(by_region.items(), key=lambda item: (item[0] is None, item[0]))
    ]


# --- Hotspots -----------------------------------------------------------------------------


def grid(cell_metres: float, latitude: float) -> tuple[float, float]:
    """A cell's height and width in degrees, `cell_metres` on a side near `latitude`."""
    height = cell_metres / METRES_PER_DEGREE
    width = cell_metres / (METRES_PER_DEGREE * math.cos(math.radians(latitude)))
    return height, width


async def city_latitude(connection: AsyncConnection) -> float:
    """The mean latitude of the regions' boundaries (where longitude degrees are measured)."""
    latitudes = [
        point[0]
        for boundary in await connection.scalars(select(REGIONS.c.boundary))
        for point in boundary or ()
    ]
    return sum(latitudes) / len(latitudes) if latitudes else 35.7


async def hotspots(
    engine: AsyncEngine,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    cell_metres: float,
    min_count: int,
    limit: int,
    service_code: str | None = None,
    now: dt.datetime,
) -> list[Hotspot]:
    """The grid cells with at least `min_count` problems reported (requests with a location),
    most first, at most `limit` of them."""
    since, until = checked_range(since, until, now)
    async with engine.connect() as connection:
        await _roomy(connection)
        height, width = grid(cell_metres, await city_latitude(connection))
        row_of, column_of = Floor(_r.latitude / height), Floor(_r.longitude / width)
        conditions = [
            *_in_range(since, until),
            _r.kind.in_(PROBLEM_KINDS),
            _r.latitude.is_not(None),
            _r.longitude.is_not(None),
        ]
        if service_code is not None:
            conditions.append(
                _r.service_id.in_(select(SERVICES.c.id).where(SERVICES.c.code == service_code))
            )
        # One key a cell (rows and columns are below a million: latitudes and longitudes over
        # cells of 50 m and more). One scan groups by cell and service; window functions then
        # give each cell its total and its most reported service (on a tie, the lower id).
        cell = row_of * literal(_CELL_KEY, BigInteger) + column_of
        grouped = (
            select(cell.label("cell"), _r.service_id, func.count().label("n"))
            .where(*conditions)
            .group_by(cell, _r.service_id)
            .subquery()
        )
        ranked = select(
            grouped.c.cell,
            grouped.c.service_id,
            func.sum(grouped.c.n).over(partition_by=grouped.c.cell).label("total"),
            func.row_number()
            .over(partition_by=grouped.c.cell, order_by=(grouped.c.n.desc(), grouped.c.service_id))
            .label("place"),
        ).subquery()
        busiest = (
            await connection.execute(
                select(ranked.c.cell, ranked.c.service_id, ranked.c.total)
                .where(ranked.c.place == 1, ranked.c.total >= min_count)
                .order_by(ranked.c.total.desc(), ranked.c.cell)
                .limit(limit)
            )
        ).all()
        counts = {int(row.cell): int(row.total) for row in busiest}
        top = {int(row.cell): (int(row.total), int(row.service_id)) for row in busiest}
        services = await _service_names(connection)
    hotspots = []
    for key, count in counts.items():
        cell_row, cell_column = divmod(key, _CELL_KEY)
        hotspots.append(
            Hotspot(
                south=round(cell_row * height, 6),
                west=round(cell_column * width, 6),
                north=round((cell_row + 1) * height, 6),
                east=round((cell_column + 1) * width, 6),
                count=count,
                top_service=services[top[key][1]].code,
            )
        )
    return hotspots


# --- Transparency -------------------------------------------------------------------------


async def _medians(
    connection: AsyncConnection,
    conditions: list[ColumnElement[bool]],
    seconds: ColumnElement[float],
) -> dict[int, float]:
    """Each service's median seconds to resolution, from only the rows it is made of (one or
    two a service; gateway/figures.py), where the database has no PERCENTILE_CONT aggregate."""
    durations = (
        select(_r.service_id, seconds.label("seconds"))
        .where(*conditions, _r.resolved_at.is_not(None))
        .subquery()
    )
    ranked = select(
        durations.c.service_id,
        durations.c.seconds,
        func.row_number()
        .over(partition_by=durations.c.service_id, order_by=durations.c.seconds)
        .label("rank"),
        func.count().over(partition_by=durations.c.service_id).label("size"),
    ).subquery()
    needed = await connection.execute(
        select(ranked).where(needed_rank(ranked.c["rank"], ranked.c["size"], MEDIAN))
    )
    ranks: dict[int, tuple[int, dict[int, float]]] = {}
    for row in needed:
        _, found = ranks.setdefault(row.service_id, (int(row.size), {}))
        found[int(row.rank)] = float(row.seconds)
    return {service: percentile(found, size, MEDIAN) for service, (size, found) in ranks.items()}


async def transparency(
    engine: AsyncEngine,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
) -> list[ServiceFigures]:
    """Every service with requests in the range: its volume, how many were resolved, the
    median days from registration to resolution, and the share answered on time; in the
    catalogue's order of codes."""
    since, until = checked_range(since, until, now)
    conditions = _in_range(since, until)
    moment = naive_utc(now)
    seconds = SecondsBetween(_r.registered_at, _r.resolved_at)  # NULL until resolved
    postgresql = engine.dialect.name == "postgresql"
    medians: dict[int, float] = {}
    async with engine.connect() as connection:
        await _roomy(connection)
        columns = [
            _r.service_id,
            func.count().label("total"),
            _count(_r.resolved_at.is_not(None)).label("resolved"),
            _count(_fell_due(moment)).label("fell_due"),
            _count(_on_time()).label("on_time"),
        ]
        if postgresql:
            # The same linear interpolation as `percentile`, in the one scan (NULLs ignored).
            columns.append(
                func.percentile_cont(0.5).within_group(seconds.asc()).label("median_seconds")
            )
        counted = (
            await connection.execute(select(*columns).where(*conditions).group_by(_r.service_id))
        ).all()
        if postgresql:
            medians = {
                row.service_id: float(row.median_seconds)
                for row in counted
                if row.median_seconds is not None
            }
        else:
            medians = await _medians(connection, conditions, seconds)
        services = await _service_names(connection)
    figures = []
    for row in counted:
        service = services[row.service_id]
        median = medians.get(row.service_id)
        fell_due = _int(row.fell_due)
        figures.append(
            ServiceFigures(
                code=service.code,
                name_fa=service.name_fa,
                name_en=service.name_en,
                group=service.group_code,
                requests=_int(row.total),
                resolved=_int(row.resolved),
                median_days_to_resolution=(None if median is None else round(median / 86_400, 2)),
                share_on_time=round(_int(row.on_time) / fell_due, 4) if fell_due else None,
            )
        )
    figures.sort(key=lambda figure: figure.code)
    return figures


# --- Engaged citizens ---------------------------------------------------------------------


_MOBILES_A_STATEMENT = 500


async def engaged_citizens(
    engine: AsyncEngine,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    now: dt.datetime,
) -> list[EngagedCitizen]:
    """The citizens who reported most in the range, among those who consented to be named
    (every request of theirs counts once one of them consented), not anonymised; most
    first, then the latest."""
    since, until = checked_range(since, until, now)
    conditions = [*_in_range(since, until), _r.citizen_mobile.is_not(None)]
    async with engine.connect() as connection:
        # The consenting mobiles first (from ix_citizen_requests_consent_mobile), then only
        # their requests, a chunk of mobiles at a time, by ix_citizen_requests_mobile_
        # registered_at: consent is rare, so this reads a small share of the rows where one
        # statement joining the two would have the planner scan them all.
        mobiles = sorted(
            await connection.scalars(
                select(_r.citizen_mobile)
                .where(_r.public_consent == true(), _r.anonymised_at.is_(None))
                .distinct()
            )
        )
        rows: list[Any] = []
        # A chunk of mobiles a statement: each is read by the index (one array parameter
        # instead has PostgreSQL's planner scan the table again).
        for start in range(0, len(mobiles), _MOBILES_A_STATEMENT):
            among = _r.citizen_mobile.in_(mobiles[start : start + _MOBILES_A_STATEMENT])
            rows += (
                await connection.execute(
                    select(
                        _r.citizen_mobile,
                        func.max(_r.citizen_name).label("name"),
                        func.count().label("n"),
                        func.max(_r.registered_at).label("last_at"),
                        func.max(_r.id).label("latest_id"),
                    )
                    .where(*conditions, among)
                    .group_by(_r.citizen_mobile)
                )
            ).all()
    # Most first, then the latest, then by mobile: one order whatever the chunks.
    rows.sort(key=lambda row: (-int(row.n), -row.last_at.timestamp(), row.citizen_mobile))
    rows = rows[:limit]
    return [
        EngagedCitizen(
            name=row.name or "",
            mobile=row.citizen_mobile,
            requests=int(row.n),
            last_at=row.last_at.replace(tzinfo=dt.UTC),
            latest_request_id=int(row.latest_id),
        )
        for row in rows
    ]


# --- Ranking ------------------------------------------------------------------------------


async def tallies(
    connection: AsyncConnection,
    unit: ColumnElement[Any],
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
) -> list[Tally]:
    """Per unit and service, the counts a score is made of (scores.Tally)."""
    moment = naive_utc(now)
    rows = (
        await connection.execute(
            select(
                unit.label("unit"),
                _r.service_id,
                func.count().label("handled"),
                _count(_fell_due(moment)).label("fell_due"),
                _count(_on_time()).label("on_time"),
                _count(_r.resolved_at.is_not(None)).label("resolved"),
                _count(and_(_r.resolved_at.is_not(None), _r.reopen_count == 0)).label(
                    "not_reopened"
                ),
                _count(_r.rating.is_not(None)).label("rated"),
                func.sum(case((_r.rating.is_not(None), _r.rating - 1), else_=0)).label("points"),
            )
            .where(*_in_range(since, until), unit.is_not(None), _r.referred_to.is_(None))
            .group_by(unit, _r.service_id)
        )
    ).all()
    return [
        Tally(
            unit=str(row.unit),
            service=str(row.service_id),
            handled=_int(row.handled),
            fell_due=_int(row.fell_due),
            on_time=_int(row.on_time),
            resolved=_int(row.resolved),
            not_reopened=_int(row.not_reopened),
            rated=_int(row.rated),
            rating_points=_int(row.points),
        )
        for row in rows
    ]


async def ranking(
    engine: AsyncEngine,
    by: Grouping,
    weights: ScoreWeights,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
) -> list[RankedUnit]:
    """Departments (by=DEPARTMENT) or regions (by=REGION) scored and ranked, best first."""
    if by not in (Grouping.DEPARTMENT, Grouping.REGION):
        raise BadUserInput("Rank departments or regions.", field="by")
    since, until = checked_range(since, until, now)
    unit = _r.department if by is Grouping.DEPARTMENT else _r.region
    async with engine.connect() as connection:
        await _roomy(connection)
        found = await tallies(connection, unit, since=since, until=until, now=now)
        names: dict[str, tuple[str, str]] = {}
        if by is Grouping.REGION:
            names = {
                str(row.region): (row.name_fa, row.name_en)
                for row in await connection.execute(
                    select(REGIONS.c.region, REGIONS.c.name_fa, REGIONS.c.name_en)
                )
            }
    return [
        RankedUnit(score, *names.get(score.unit, (None, None)))
        for score in rank_units(found, weights)
    ]


# The small-cell floor of the public figures (README, Citizen requests: public figures).
# A caller without requests:all never sees a count between 1 and floor - 1: a group or a
# problem that small is left out, and a smaller part of a group shown (open, resolved,
# referred, overdue) reads 0; a service's median time to resolution over fewer resolved
# requests reads null. Counts over a short range (down to one second) would otherwise
# point at one citizen's request, as a hotspot cell would.


def _floored(count: int, floor: int) -> int:
    return count if count >= floor else 0


def floor_counts(groups: Sequence[CountGroup], floor: int) -> list[CountGroup]:
    """The groups of at least `floor` requests, their parts below it read 0."""
    return [
        replace(
            group,
            open=_floored(group.open, floor),
            resolved=_floored(group.resolved, floor),
            referred=_floored(group.referred, floor),
            overdue=_floored(group.overdue, floor),
        )
        for group in groups
        if group.total >= floor
    ]


def floor_problems(found: Sequence[RegionProblems], floor: int) -> list[RegionProblems]:
    """Each region's problems reported at least `floor` times; regions left with none go."""
    kept = [
        replace(entry, problems=tuple((c, n) for c, n in entry.problems if n >= floor))
        for entry in found
    ]
    return [entry for entry in kept if entry.problems]


def floor_transparency(figures: Sequence[ServiceFigures], floor: int) -> list[ServiceFigures]:
    """Every service still listed; figures over fewer than `floor` requests suppressed."""
    shown = []
    for service in figures:
        if service.requests < floor:
            service = replace(
                service,
                requests=0,
                resolved=0,
                median_days_to_resolution=None,
                share_on_time=None,
            )
        elif service.resolved < floor:
            service = replace(service, resolved=0, median_days_to_resolution=None)
        shown.append(service)
    return shown
