"""Planning's statements, one per relation, each keyed by a batch of ids or codes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_

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
from gateway.loaders.batching import KeyedQuery

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
