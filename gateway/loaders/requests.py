"""Citizen requests under their row rule (gateway/access/rows.py), their history and replies,
the catalogue's services, and the requests about a parcel (Parcel.citizenRequests)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.contact import CitizenRequestRecord
from gateway.access.principals import Principal
from gateway.access.rows import RULES
from gateway.loaders.batching import (
    MAX_KEYS_PER_STATEMENT,
    GatedLoader,
    KeyedQuery,
    RecordByKey,
    RecordsByKey,
)
from gateway.requests import geo
from gateway.requests.records import (
    HISTORY,
    REPLIES,
    REQUESTS,
    CitizenRequest,
    HistoryEntry,
    Reply,
    ServiceDefinition,
    load_services,
)
from gateway.requests.registration import DuplicatePolicy, find_duplicates_of_many

REQUEST_BY_ID = KeyedQuery(select(REQUESTS), REQUESTS.c.id, CitizenRequest.from_row)
REQUEST_BY_TRACKING_CODE = KeyedQuery(
    select(REQUESTS), REQUESTS.c.tracking_code, CitizenRequest.from_row
)
# A request's history and replies are seen with the request: whoever sees it sees them.
HISTORY_BY_REQUEST = KeyedQuery(
    select(HISTORY).order_by(HISTORY.c.id), HISTORY.c.request_id, HistoryEntry.from_row
)
REPLIES_BY_REQUEST = KeyedQuery(
    select(REPLIES).order_by(REPLIES.c.id), REPLIES.c.request_id, Reply.from_row
)


def citizen_request_by_id(engine: AsyncEngine, principal: Principal) -> RecordByKey[CitizenRequest]:
    return RecordByKey(
        engine, REQUEST_BY_ID.where(RULES.condition(CitizenRequestRecord, principal))
    )


def citizen_request_by_tracking_code(
    engine: AsyncEngine, principal: Principal
) -> RecordByKey[CitizenRequest]:
    query = REQUEST_BY_TRACKING_CODE.where(RULES.condition(CitizenRequestRecord, principal))
    return RecordByKey(engine, query)


def history_by_request(engine: AsyncEngine) -> RecordsByKey[HistoryEntry]:
    return RecordsByKey(engine, HISTORY_BY_REQUEST)


def replies_by_request(engine: AsyncEngine) -> RecordsByKey[Reply]:
    return RecordsByKey(engine, REPLIES_BY_REQUEST)


class ServiceById(GatedLoader[Hashable, ServiceDefinition | None]):
    """Services of the catalogue by id, withdrawn ones included (a request keeps its
    service), with their departments and regions: three statements per batch."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[ServiceDefinition | None]:
        async with self.engine.connect() as connection:
            found = await load_services(
                connection, ids=[int(str(k)) for k in keys], include_inactive=True
            )
        by_id = {service.id: service for service in found}
        return [by_id.get(int(str(k))) for k in keys]


# Requests about a parcel: registered with its renewal code, or, without one, at its address
# or near its postal point (a bounding box on the indexed latitude and longitude, then the
# distance): one statement for the whole page of parcels.


@dataclass(frozen=True, slots=True)
class Near:
    """Within `radius_m` metres of `point`."""

    point: geo.Point
    radius_m: float

    def holds(self, request: CitizenRequest) -> bool:
        if request.latitude is None or request.longitude is None:
            return False
        where = geo.Point(request.latitude, request.longitude)
        return geo.distance_m(self.point, where) <= self.radius_m


# (renewal code, address, near its postal point or None when it has none).
ParcelKey = tuple[str, str, Near | None]


def _about_parcels(
    codes: Sequence[str], addresses: Sequence[str], areas: Sequence[Near]
) -> Select[Any]:
    unlinked: list[ColumnElement[bool]] = [REQUESTS.c.address.in_(addresses)]
    for area in areas:
        south, north, west, east = geo.bounding_box(area.point, area.radius_m)
        unlinked.append(
            and_(
                REQUESTS.c.latitude.between(south, north),
                REQUESTS.c.longitude.between(west, east),
            )
        )
    return (
        select(REQUESTS)
        .where(
            or_(
                REQUESTS.c.renewal_code.in_(codes),
                and_(REQUESTS.c.renewal_code.is_(None), or_(*unlinked)),
            )
        )
        .order_by(REQUESTS.c.id.desc())
    )


class RequestsAboutParcel(GatedLoader[ParcelKey, list[CitizenRequest]]):
    """The citizen requests about each parcel, newest first, keyed by ParcelKey: those
    registered with its renewal code, or without one at its address or near its postal
    point. One statement for every parcel of the batch."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Each parcel adds up to three values and a box of four bounds to the statement.
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT // 4)
        self.engine = engine

    async def batch_load_fn(self, keys: Sequence[ParcelKey]) -> list[list[CitizenRequest]]:
        codes = sorted({code for code, _, _ in keys})
        addresses = sorted({address for _, address, _ in keys})
        areas = sorted(
            {near for _, _, near in keys if near is not None},
            key=lambda near: (near.point.latitude, near.point.longitude, near.radius_m),
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(_about_parcels(codes, addresses, areas))).all()
        found = [CitizenRequest.from_row(row) for row in rows]
        return [
            [
                request
                for request in found
                if request.renewal_code == code
                or (
                    request.renewal_code is None
                    and (request.address == address or (near is not None and near.holds(request)))
                )
            ]
            for code, address, near in keys
        ]


# A request and what "possibly the same" means (the settings' radius and window).
DuplicatesKey = tuple[CitizenRequest, DuplicatePolicy]


class PossibleDuplicates(GatedLoader[DuplicatesKey, tuple[CitizenRequest, ...]]):
    """Each request's possible duplicates that the principal may see (its row rule is in the
    statement): one statement for every request of the batch, however many there are."""

    def __init__(self, engine: AsyncEngine, principal: Principal) -> None:
        # Each request adds a handful of values and a box of four bounds to the statement.
        super().__init__(
            max_batch_size=MAX_KEYS_PER_STATEMENT // 8,
            get_cache_key=lambda key: (key[0].id, key[1]),
        )
        self.engine = engine
        self.where = RULES.condition(CitizenRequestRecord, principal)

    async def batch_load_fn(
        self, keys: Sequence[DuplicatesKey]
    ) -> list[tuple[CitizenRequest, ...]]:
        found: list[tuple[CitizenRequest, ...]] = []
        # One statement per policy (a process has one; tests may use several).
        by_policy: dict[DuplicatePolicy, list[CitizenRequest]] = {}
        for request, policy in keys:
            by_policy.setdefault(policy, []).append(request)
        results: dict[tuple[int, DuplicatePolicy], tuple[CitizenRequest, ...]] = {}
        async with self.engine.connect() as connection:
            for policy, requests in by_policy.items():
                offered = await find_duplicates_of_many(connection, requests, policy, self.where)
                for request, duplicates in zip(requests, offered, strict=True):
                    results[(request.id, policy)] = duplicates
        for request, policy in keys:
            found.append(results[(request.id, policy)])
        return found
