"""Per-request data loaders: every relation is one batched statement, whatever the row count."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextvars import ContextVar
from functools import cached_property
from typing import Any, TypeVar

from aiodataloader import DataLoader, dispatch_queue
from aiodataloader import Loader as _Queued
from sqlalchemy import ColumnElement, Row, Select, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.agencies import Agencies
from connectors.soap.land_registry import Deed, LandRegistry, Plate
from db.engines import Databases
from db.gateway import ApiKey as ApiKeyRecord
from db.gateway import AuditRecord as AuditRecordRow
from db.gateway import PrincipalRecord
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
from db.revenue import Assessment, Payment
from gateway import dues
from gateway.access.principals import Principal
from gateway.access.rows import RULES

# Well above any page size; only a pathological fan-out would split a batch.
MAX_KEYS_PER_STATEMENT = 2000

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")


class DispatchGate:
    """Holds one operation's batches while part of its execution waits for a later turn of
    the event loop (gateway/execution.py), so that the wait never splits a batch.

    A loader dispatches two turns after its first key, as aiodataloader does, so that keys
    asked for by everything running meanwhile join the batch: objects completed together
    ask for their relations within a turn or two of each other. Objects whose fields waited
    are completed over several turns, and what they ask for comes up to a turn per level of
    nesting after that; dispatches wait here until then, so that the number of statements
    stays a matter of the query's shape, not of timing.
    """

    def __init__(self, turns_after_release: int = 2) -> None:
        self.turns_after_release = turns_after_release
        self.held = False
        self.generation = 0
        self.waiting: list[DataLoader[Any, Any]] = []

    def hold(self) -> None:
        self.held = True
        self.generation += 1

    def release(self) -> None:
        """The waiting work has run: dispatch some turns later, unless held again."""
        self._count_down(self.turns_after_release, self.generation)

    def _count_down(self, turns: int, generation: int) -> None:
        if generation != self.generation:
            return  # held again meanwhile; that hold's release opens the gate
        if turns > 0:
            asyncio.get_running_loop().call_soon(self._count_down, turns - 1, generation)
            return
        self.held = False
        waiting, self.waiting = self.waiting, []
        for loader in waiting:
            dispatch_queue(loader)

    def dispatch(self, loader: DataLoader[Any, Any]) -> None:
        if self.held:
            self.waiting.append(loader)
        else:
            dispatch_queue(loader)


# The running operation's gate; execution sets it, its resolvers' tasks inherit it.
dispatch_gate: ContextVar[DispatchGate | None] = ContextVar("dispatch_gate", default=None)


class GatedLoader(DataLoader[KeyT, ValueT]):
    """A DataLoader whose batches wait at the running operation's DispatchGate, if any."""

    def do_resolve_reject(self, key: KeyT, future: asyncio.Future[ValueT]) -> None:
        self._queue.append(_Queued(key=key, future=future))
        if len(self._queue) == 1:
            # As aiodataloader schedules it (two turns later), through the gate if any.
            self.loop.call_soon(asyncio.ensure_future, _dispatch(self, dispatch_gate.get()))


async def _dispatch(loader: DataLoader[Any, Any], gate: DispatchGate | None) -> None:
    if gate is None:
        dispatch_queue(loader)
    else:
        gate.dispatch(loader)


class GroupLoader(GatedLoader[tuple[Hashable, ...], list[Any]]):
    """Loads whole groups of keys through another loader's batch function: one future per
    group, and one call (one statement) per turn for all the groups asked for in it. A list
    nested in a list (each owner's parcels on a page) thus loads its relations once per
    level, not once per parent, without a future per key."""

    def __init__(self, load: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
        super().__init__()
        self.load_keys = load

    async def batch_load_fn(self, groups: Sequence[tuple[Hashable, ...]]) -> list[list[Any]]:
        keys = list(dict.fromkeys(key for group in groups for key in group))
        values: dict[Hashable, Any] = {}
        for start in range(0, len(keys), MAX_KEYS_PER_STATEMENT):
            chunk = keys[start : start + MAX_KEYS_PER_STATEMENT]
            values.update(zip(chunk, await self.load_keys(chunk), strict=True))
        return [[values[key] for key in group] for group in groups]


class KeyedQuery:
    """A select restricted to a batch of keys, built once per process.

    Reusing one statement object lets SQLAlchemy reuse its cache key and compiled
    form; building it per request costs more than running it on SQLite.
    """

    def __init__(
        self,
        statement: Select[Any],
        key: ColumnElement[Any],
        *,
        many: bool,
        key_of: Callable[[Row[Any]], Hashable] | None = None,
    ) -> None:
        self.statement = statement.where(key.in_(bindparam("keys", expanding=True)))
        self.many = many
        self.key_of = key_of or (lambda row: row._mapping[key])


class RowsByKey(GatedLoader[Hashable, Any]):
    """Loads rows of one select whose key column is in the batch of keys.

    Each batch opens its own short connection: resolvers run concurrently and
    one session must never be shared between them.
    """

    def __init__(self, engine: AsyncEngine, query: KeyedQuery) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine
        self.statement = query.statement
        self.many = query.many
        self.key_of = query.key_of

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[Any]:
        async with self.engine.connect() as connection:
            result = await connection.execute(self.statement, {"keys": list(dict.fromkeys(keys))})
            rows = result.all()
        if self.many:
            grouped: dict[Hashable, list[Row[Any]]] = defaultdict(list)
            for row in rows:
                grouped[self.key_of(row)].append(row)
            return [grouped.get(k, []) for k in keys]
        by_key = {self.key_of(row): row for row in rows}
        return [by_key.get(k) for k in keys]


class DuesByRenewalCode(GatedLoader[str, dues.Dues]):
    """Dues live in the revenue database, keyed by the parcel's renewal code."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine

    async def batch_load_fn(self, keys: Sequence[str]) -> list[dues.Dues]:
        async with self.engine.connect() as connection:
            result = await connection.execute(dues.ITEMS_BY_RENEWAL_CODE, {"keys": list(set(keys))})
            rows = result.all()
        return dues.group_by_renewal_code(rows, keys)


_payments = Payment.__table__
_assessments = Assessment.__table__
_owners = Ownership.__table__
_persons = Person.__table__
_parcels = Parcel.__table__


def _by_id(model: Any) -> KeyedQuery:
    return KeyedQuery(select(model.__table__), model.__table__.c.id, many=False)


def _by_parcel(model: Any) -> KeyedQuery:
    table = model.__table__
    return KeyedQuery(select(table).order_by(table.c.id), table.c.parcel_id, many=True)


PARCEL_BY_ID = _by_id(Parcel)
PARCEL_BY_RENEWAL_CODE = KeyedQuery(select(_parcels), _parcels.c.renewal_code, many=False)
PARCEL_BY_PLATE = KeyedQuery(
    select(_parcels),
    tuple_(_parcels.c.registry_section, _parcels.c.main_plate, _parcels.c.sub_plate),
    many=False,
    key_of=lambda row: (row.registry_section, row.main_plate, row.sub_plate),
)
PERSON_BY_ID = _by_id(Person)
PERSON_BY_NATIONAL_CODE = KeyedQuery(select(_persons), _persons.c.national_code, many=False)
REGION_BY_ID = _by_id(Region)
DISTRICT_BY_ID = _by_id(District)
OWNERS_BY_PARCEL = KeyedQuery(
    select(
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
    .join_from(_owners, _persons, _owners.c.person_id == _persons.c.id)
    .order_by(_owners.c.id),
    _owners.c.parcel_id,
    many=True,
)
PARCELS_BY_OWNER = KeyedQuery(
    select(_parcels, _owners.c.person_id)
    .join_from(_owners, _parcels, _owners.c.parcel_id == _parcels.c.id)
    .order_by(_parcels.c.id),
    _owners.c.person_id,
    many=True,
)
BUILDINGS_BY_PARCEL = _by_parcel(Building)
PERMITS_BY_PARCEL = _by_parcel(Permit)
CERTIFICATES_BY_PARCEL = _by_parcel(Certificate)
VIOLATIONS_BY_PARCEL = _by_parcel(Violation)
BUILDING_BY_ID = _by_id(Building)
PERMIT_BY_ID = _by_id(Permit)
CERTIFICATE_BY_ID = _by_id(Certificate)
VIOLATION_BY_ID = _by_id(Violation)


class AgencyLoader(GatedLoader[Hashable, Any]):
    """Batches one request's calls to an agency operation that answers one key at a time.

    The calls run concurrently; one failing key fails only its own field.
    """

    def __init__(self, fetch: Callable[[Any], Awaitable[Any]]) -> None:
        super().__init__()
        self.fetch = fetch

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[Any]:
        return list(await asyncio.gather(*(self.fetch(k) for k in keys), return_exceptions=True))


class DeedsByPlate(GatedLoader[Plate, Deed | None]):
    """The land registry's batch operation: one call (or a few) for a whole page of parcels."""

    def __init__(self, land_registry: LandRegistry) -> None:
        super().__init__()
        self.land_registry = land_registry

    async def batch_load_fn(self, keys: Sequence[Plate]) -> list[Deed | None]:
        deeds = await self.land_registry.deeds(keys)
        return [deeds.get(plate) for plate in keys]


PAYMENT_BY_REFERENCE = KeyedQuery(
    select(
        _payments.c.bank_reference,
        _payments.c.amount,
        _payments.c.paid_at,
        _assessments.c.renewal_code,
        _assessments.c.kind,
        _assessments.c.period,
    ).join_from(_payments, _assessments, _payments.c.assessment_id == _assessments.c.id),
    _payments.c.bank_reference,
    many=False,
)


_keys = ApiKeyRecord.__table__
_principals = PrincipalRecord.__table__
_audit = AuditRecordRow.__table__

API_KEYS = select(
    _keys.c.id,
    _keys.c.prefix,
    _keys.c.created_at,
    _keys.c.expires_at,
    _keys.c.revoked_at,
    _principals.c.kind,
    _principals.c.name,
    _principals.c.department,
).join_from(_keys, _principals, _keys.c.principal_id == _principals.c.id)


class Loaders:
    """Built fresh for every request (aiodataloader binds the running loop on creation);
    each loader is created on first use, so a query pays only for what it touches."""

    def __init__(self, databases: Databases, agencies: Agencies, principal: Principal) -> None:
        self.planning = databases.planning
        self.revenue = databases.revenue
        self.gateway = databases.gateway
        self.agencies = agencies
        self.principal = principal
        self._groups: dict[DataLoader[Any, Any], GroupLoader] = {}

    def grouped(self, loader: DataLoader[Any, Any]) -> GroupLoader:
        """Groups of keys loaded through `loader`'s batch function (see GroupLoader)."""
        group = self._groups.get(loader)
        if group is None:
            group = self._groups[loader] = GroupLoader(loader.batch_load_fn)
        return group

    @cached_property
    def parcel_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, PARCEL_BY_ID)

    @cached_property
    def parcel_by_renewal_code(self) -> RowsByKey:
        return RowsByKey(self.planning, PARCEL_BY_RENEWAL_CODE)

    @cached_property
    def parcel_by_plate(self) -> RowsByKey:
        return RowsByKey(self.planning, PARCEL_BY_PLATE)

    @cached_property
    def person_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, PERSON_BY_ID)

    @cached_property
    def person_by_national_code(self) -> RowsByKey:
        return RowsByKey(self.planning, PERSON_BY_NATIONAL_CODE)

    @cached_property
    def region_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, REGION_BY_ID)

    @cached_property
    def district_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, DISTRICT_BY_ID)

    @cached_property
    def owners_by_parcel(self) -> RowsByKey:
        return RowsByKey(self.planning, OWNERS_BY_PARCEL)

    @cached_property
    def parcels_by_owner(self) -> RowsByKey:
        return RowsByKey(self.planning, PARCELS_BY_OWNER)

    @cached_property
    def buildings_by_parcel(self) -> RowsByKey:
        return RowsByKey(self.planning, BUILDINGS_BY_PARCEL)

    @cached_property
    def permits_by_parcel(self) -> RowsByKey:
        return RowsByKey(self.planning, PERMITS_BY_PARCEL)

    @cached_property
    def certificates_by_parcel(self) -> RowsByKey:
        return RowsByKey(self.planning, CERTIFICATES_BY_PARCEL)

    @cached_property
    def violations_by_parcel(self) -> RowsByKey:
        return RowsByKey(self.planning, VIOLATIONS_BY_PARCEL)

    @cached_property
    def building_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, BUILDING_BY_ID)

    @cached_property
    def permit_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, PERMIT_BY_ID)

    @cached_property
    def certificate_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, CERTIFICATE_BY_ID)

    @cached_property
    def violation_by_id(self) -> RowsByKey:
        return RowsByKey(self.planning, VIOLATION_BY_ID)

    @cached_property
    def dues_by_renewal_code(self) -> DuesByRenewalCode:
        return DuesByRenewalCode(self.revenue)

    @cached_property
    def payment_by_reference(self) -> RowsByKey:
        return RowsByKey(self.revenue, PAYMENT_BY_REFERENCE)

    @cached_property
    def deed_by_plate(self) -> DeedsByPlate:
        return DeedsByPlate(self.agencies.land_registry)

    @cached_property
    def civil_record(self) -> AgencyLoader:
        return AgencyLoader(self.agencies.civil_registry.person)

    @cached_property
    def postal_address(self) -> AgencyLoader:
        return AgencyLoader(self.agencies.postal.address)

    @cached_property
    def bank_payment(self) -> AgencyLoader:
        return AgencyLoader(self.agencies.bank.verify_payment)

    # Records under a row-level rule: the statement carries this principal's condition.
    @cached_property
    def api_key_by_id(self) -> RowsByKey:
        condition = RULES["ApiKey"].condition(self.principal)
        query = KeyedQuery(API_KEYS.where(condition), _keys.c.id, many=False)
        return RowsByKey(self.gateway, query)

    @cached_property
    def audit_record_by_id(self) -> RowsByKey:
        condition = RULES["AuditRecord"].condition(self.principal)
        query = KeyedQuery(select(_audit).where(condition), _audit.c.id, many=False)
        return RowsByKey(self.gateway, query)
