"""Hand-built domain records for the inquiry checks' tests: a parcel, its planning records,
its dues, its deed and its applicant's civil record, each with only what a test changes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from connectors.soap.civil_registry import CivilRecord
from connectors.soap.land_registry import Deed, DeedOwner, Plate, Seizure
from gateway.dues import DueItem, Dues
from gateway.inquiries.facts import Fact, Facts
from gateway.parcels import Building, Certificate, Ownership, Parcel, Person, Violation

# 1404/03/11 11:30 in Tehran.
READ_AT = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
SELLER = "0084575948"  # valid national IDs
CO_OWNER = "0013542419"
STRANGER = "0067749828"

PARCEL = Parcel(
    id=7,
    region_id=1,
    district_id=2,
    renewal_code="1-2-3-4",
    registry_section=11,
    main_plate=117,
    sub_plate=23,
    postal_code="1345678901",
    address="خیابان امام، کوچه لاله ۳، پلاک ۱۲",
    land_use="residential",
    density_percent=120,
    area=Decimal("200.00"),
)


def person(code: str, person_id: int = 1) -> Person:
    return Person(person_id, code, "علی", "رضایی", "حسن", dt.date(1966, 9, 6))


def ownership(code: str, share: str, person_id: int = 1) -> Ownership:
    return Ownership(PARCEL.id, person(code, person_id), Decimal(share), dt.date(2001, 1, 1))


def due(kind: str, period: int, amount: int, paid: int, due_id: int = 1) -> DueItem:
    return DueItem(due_id, kind, period, amount, paid, dt.date(2025, 3, 20))


def dues(*items: DueItem) -> Dues:
    return Dues(PARCEL.renewal_code, items)


def certificate(kind: str, number: str, issued_on: dt.date, cert_id: int = 1) -> Certificate:
    return Certificate(cert_id, PARCEL.id, 1, kind, number, issued_on)


def violation(**changes: Any) -> Violation:
    fields: dict[str, Any] = {
        "id": 1,
        "parcel_id": PARCEL.id,
        "kind": "excess_density",
        "detected_on": dt.date(2023, 7, 23),
        "description": "احداث بنای مازاد بر تراکم مجاز به مساحت ۴۰ متر مربع",
        "status": "open",
        "ruling": None,
        "ruled_on": None,
        "fine": None,
    }
    fields.update(changes)
    return Violation(**fields)


def building() -> Building:
    return Building(1, PARCEL.id, 4, 8, Decimal("480.00"), 1395)


def deed(*owners: tuple[str, str], seizures: tuple[Seizure, ...] = ()) -> Deed:
    return Deed(
        plate=Plate(PARCEL.registry_section, PARCEL.main_plate, PARCEL.sub_plate),
        serial="H/654321",
        issued_on=dt.date(2001, 1, 1),
        area=PARCEL.area,
        owners=tuple(DeedOwner(code, "علی", "رضایی", Decimal(share)) for code, share in owners),
        mortgages=(),
        seizures=seizures,
    )


def civil_record(alive: bool = True, death_date: dt.date | None = None) -> CivilRecord:
    return CivilRecord(
        SELLER, "علی", "رضایی", "حسن", dt.date(1966, 9, 6), "1345/06/15", "MALE", alive, death_date
    )


_FIELDS = {
    "dues": Fact.DUES,
    "certificates": Fact.CERTIFICATES,
    "violations": Fact.VIOLATIONS,
    "buildings": Fact.BUILDINGS,
    "ownerships": Fact.OWNERSHIPS,
    "deed": Fact.DEED,
    "applicant_record": Fact.APPLICANT_RECORD,
    "open_complaints": Fact.OPEN_COMPLAINTS,
}


def facts(
    *, parcel: Parcel = PARCEL, applicant: str = SELLER, read_at: dt.datetime = READ_AT, **read: Any
) -> Facts:
    """Facts with every field given marked read at `read_at` (None for `deed` or
    `applicant_record` is read too: the agency had none). The contact centre is always read:
    no open complaint about the parcel unless `open_complaints` names some."""
    always = {Fact.PARCEL: read_at, Fact.OPEN_COMPLAINTS: read_at}
    moments = always | {_FIELDS[name]: read_at for name in read}
    return Facts(parcel=parcel, applicant_national_code=applicant, read_at=moments, **read)
