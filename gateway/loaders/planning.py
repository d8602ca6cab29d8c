"""Planning's statements, one per relation, each keyed by a batch of ids or codes and each
row turned into the domain's record (gateway/parcels.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, select, tuple_

from db import planning as tables
from gateway import parcels
from gateway.loaders.batching import KeyedQuery, RecordT

_owners = tables.Ownership.__table__
_persons = tables.Person.__table__
_parcels = tables.Parcel.__table__


def _by_id(model: Any, record: Callable[[Row[Any]], RecordT]) -> KeyedQuery[RecordT]:
    return KeyedQuery(select(model.__table__), model.__table__.c.id, record)


def _by_parcel(model: Any, record: Callable[[Row[Any]], RecordT]) -> KeyedQuery[RecordT]:
    table = model.__table__
    return KeyedQuery(select(table).order_by(table.c.id), table.c.parcel_id, record)


PARCEL_BY_ID = _by_id(tables.Parcel, parcels.Parcel.from_row)
PARCEL_BY_RENEWAL_CODE = KeyedQuery(
    select(_parcels), _parcels.c.renewal_code, parcels.Parcel.from_row
)
PARCEL_BY_PLATE = KeyedQuery(
    select(_parcels),
    tuple_(_parcels.c.registry_section, _parcels.c.main_plate, _parcels.c.sub_plate),
    parcels.Parcel.from_row,
    key_of=lambda row: (row.registry_section, row.main_plate, row.sub_plate),
)
PERSON_BY_ID = _by_id(tables.Person, parcels.Person.from_row)
PERSON_BY_NATIONAL_CODE = KeyedQuery(
    select(_persons), _persons.c.national_code, parcels.Person.from_row
)
REGION_BY_ID = _by_id(tables.Region, parcels.Region.from_row)
DISTRICT_BY_ID = _by_id(tables.District, parcels.District.from_row)
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
    parcels.Ownership.from_row,
)
PARCELS_BY_OWNER = KeyedQuery(
    select(_parcels, _owners.c.person_id)
    .join_from(_owners, _parcels, _owners.c.parcel_id == _parcels.c.id)
    .order_by(_parcels.c.id),
    _owners.c.person_id,
    parcels.Parcel.from_row,
)
BUILDINGS_BY_PARCEL = _by_parcel(tables.Building, parcels.Building.from_row)
PERMITS_BY_PARCEL = _by_parcel(tables.Permit, parcels.Permit.from_row)
CERTIFICATES_BY_PARCEL = _by_parcel(tables.Certificate, parcels.Certificate.from_row)
VIOLATIONS_BY_PARCEL = _by_parcel(tables.Violation, parcels.Violation.from_row)
BUILDING_BY_ID = _by_id(tables.Building, parcels.Building.from_row)
PERMIT_BY_ID = _by_id(tables.Permit, parcels.Permit.from_row)
CERTIFICATE_BY_ID = _by_id(tables.Certificate, parcels.Certificate.from_row)
VIOLATION_BY_ID = _by_id(tables.Violation, parcels.Violation.from_row)
