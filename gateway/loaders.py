"""Per-request data loaders: every relation is one batched statement, whatever the row count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from functools import cached_property
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, Row, Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engines import Databases
from db.planning import (
    Building,
    Certificate,
    District,
    Ownership,
    Parcel,
    Permit,
    Person,
    Region,
    Violation,
)
from gateway import dues

# Well above any page size; only a pathological fan-out would split a batch.
MAX_KEYS_PER_STATEMENT = 2000


class RowsByKey(DataLoader[Hashable, Any]):
    """Loads rows of one select whose key column is in the batch of keys.

    Each batch opens its own short connection: resolvers run concurrently and
    one session must never be shared between them.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        statement: Select[Any],
        key: ColumnElement[Any],
        *,
        many: bool,
        key_of: Callable[[Row[Any]], Hashable] | None = None,
    ) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine
        self.statement = statement
        self.key = key
        self.many = many
        self.key_of = key_of or (lambda row: row._mapping[key])

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[Any]:
        statement = self.statement.where(self.key.in_(list(dict.fromkeys(keys))))
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        if self.many:
            grouped: dict[Hashable, list[Row[Any]]] = defaultdict(list)
            for row in rows:
                grouped[self.key_of(row)].append(row)
            return [grouped.get(k, []) for k in keys]
        by_key = {self.key_of(row): row for row in rows}
        return [by_key.get(k) for k in keys]


class DuesByRenewalCode(DataLoader[str, dues.Dues]):
    """Dues live in the revenue database, keyed by the parcel's renewal code."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine

    async def batch_load_fn(self, keys: Sequence[str]) -> list[dues.Dues]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(dues.items_statement(list(set(keys))))).all()
        return dues.group_by_renewal_code(rows, keys)


def _by_id(engine: AsyncEngine, model: Any) -> RowsByKey:
    return RowsByKey(engine, select(model.__table__), model.__table__.c.id, many=False)


def _by_parcel(engine: AsyncEngine, model: Any) -> RowsByKey:
    table = model.__table__
    return RowsByKey(engine, select(table).order_by(table.c.id), table.c.parcel_id, many=True)


_owners = Ownership.__table__
_persons = Person.__table__
_parcels = Parcel.__table__

OWNER_COLUMNS = (
    _owners.c.parcel_id,
    _owners.c.share,
    _owners.c.acquired_on,
    _persons.c.id.label("person_id"),
    _persons.c.national_code,
    _persons.c.first_name,
    _persons.c.last_name,
    _persons.c.father_name,
    _persons.c.birth_date,
)


class Loaders:
    """Built fresh for every request (aiodataloader binds the running loop on creation);
    each loader is created on first use, so a query pays only for what it touches."""

    def __init__(self, databases: Databases) -> None:
        self.planning = databases.planning
        self.revenue = databases.revenue

    @cached_property
    def parcel_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Parcel)

    @cached_property
    def parcel_by_renewal_code(self) -> RowsByKey:
        return RowsByKey(self.planning, select(_parcels), _parcels.c.renewal_code, many=False)

    @cached_property
    def parcel_by_plate(self) -> RowsByKey:
        c = _parcels.c
        return RowsByKey(
            self.planning,
            select(_parcels),
            tuple_(c.registry_section, c.main_plate, c.sub_plate),
            many=False,
            key_of=lambda row: (row.registry_section, row.main_plate, row.sub_plate),
        )

    @cached_property
    def person_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Person)

    @cached_property
    def person_by_national_code(self) -> RowsByKey:
        return RowsByKey(self.planning, select(_persons), _persons.c.national_code, many=False)

    @cached_property
    def region_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Region)

    @cached_property
    def district_by_id(self) -> RowsByKey:
        return _by_id(self.planning, District)

    @cached_property
    def owners_by_parcel(self) -> RowsByKey:
        statement = (
            select(*OWNER_COLUMNS)
            .join_from(_owners, _persons, _owners.c.person_id == _persons.c.id)
            .order_by(_owners.c.id)
        )
        return RowsByKey(self.planning, statement, _owners.c.parcel_id, many=True)

    @cached_property
    def parcels_by_owner(self) -> RowsByKey:
        statement = (
            select(_parcels, _owners.c.person_id)
            .join_from(_owners, _parcels, _owners.c.parcel_id == _parcels.c.id)
            .order_by(_parcels.c.id)
        )
        return RowsByKey(self.planning, statement, _owners.c.person_id, many=True)

    @cached_property
    def buildings_by_parcel(self) -> RowsByKey:
        return _by_parcel(self.planning, Building)

    @cached_property
    def permits_by_parcel(self) -> RowsByKey:
        return _by_parcel(self.planning, Permit)

    @cached_property
    def certificates_by_parcel(self) -> RowsByKey:
        return _by_parcel(self.planning, Certificate)

    @cached_property
    def violations_by_parcel(self) -> RowsByKey:
        return _by_parcel(self.planning, Violation)

    @cached_property
    def building_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Building)

    @cached_property
    def permit_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Permit)

    @cached_property
    def certificate_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Certificate)

    @cached_property
    def violation_by_id(self) -> RowsByKey:
        return _by_id(self.planning, Violation)

    @cached_property
    def dues_by_renewal_code(self) -> DuesByRenewalCode:
        return DuesByRenewalCode(self.revenue)
