"""The agencies' records, read on each call from the planning and revenue databases.

The agencies agree with the municipality's databases except where these rules, by id and so
deterministic, make them differ on purpose (the gateway must notice):

| agency         | rule                  | what the agency says                          |
|----------------|-----------------------|-----------------------------------------------|
| land registry  | parcel.id % 23 == 7   | OTHER_OWNER: the next person by id who is not |
|                |                       | an owner of it holds the first owner's share  |
| land registry  | parcel.id % 29 == 11  | SEIZED: the deed carries a seizure (بازداشت)  |
| land registry  | parcel.id % 31 == 5   | OTHER_AREA: the deed's area is 6% larger      |
| land registry  | parcel.id % 13 == 3   | MORTGAGED: a bank holds a mortgage; this one  |
|                |                       | is no discrepancy                             |
| civil registry | person.id % 37 == 17  | DECEASED: the person has died                 |
| bank           | payment.id % 19 == 7  | NEVER_PAID: no such reference (fault          |
|                |                       | UNKNOWN_REFERENCE)                            |
| bank           | payment.id % 17 == 5  | FAILED: the payment failed                    |
| bank           | payment.id % 41 == 13 | REVERSED: the payment was reversed            |
| bank           | person.id % 43 == 21, | INACTIVE_ACCOUNT: the person's account is     |
|                | or the person is dead | inactive                                      |

The rules are checked in that order for payments (NEVER_PAID wins over FAILED over REVERSED).
Deed serials and dates, mortgages, seizures, death dates, Sheba numbers and coordinates are
derived from ids alone. Every person holds one account: its Sheba is built from a bank code
and an account number that encodes the person's id (see `sheba_for_person`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from math import cos, radians, sin
from pathlib import Path

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import demo
from db.planning import Ownership, Parcel, Person, Region
from db.revenue import Assessment, Payment
from identifiers import BANK_NAMES, InvalidIdentifier, RegistryPlate, make_sheba, parse_sheba


@dataclass(frozen=True)
class Rule:
    """A deterministic rule: it applies to the ids whose remainder by `modulus` is `remainder`."""

    modulus: int
    remainder: int

    def applies(self, id_: int) -> bool:
        return id_ % self.modulus == self.remainder


OTHER_OWNER = Rule(23, 7)
SEIZED = Rule(29, 11)
OTHER_AREA = Rule(31, 5)
MORTGAGED = Rule(13, 3)
DECEASED = Rule(37, 17)
NEVER_PAID = Rule(19, 7)
FAILED = Rule(17, 5)
REVERSED = Rule(41, 13)
INACTIVE_ACCOUNT = Rule(43, 21)

OTHER_AREA_FACTOR = Decimal("1.06")

PROVINCE = "آذربایجان غربی"
CITY = "ارومیه"
URMIA = (37.55, 45.07)  # latitude, longitude of the city centre

# Banks in a fixed order, so a person's bank follows from their id.
BANK_CODES = tuple(sorted(BANK_NAMES))
# An account number is this marker followed by the person id in 12 digits.
ACCOUNT_MARKER = "7"
_ACCOUNT_ID_DIGITS = 12


# --- Where the databases are -----------------------------------------------------------------


def database_url(name: str) -> str:
    """The planning or revenue database, found the way the gateway finds it by default."""
    for variable in (
        f"SANDBOX_{name.upper()}_DATABASE_URL",
        f"GATEWAY_{name.upper()}_DATABASE_URL",
    ):
        url = os.environ.get(variable)
        if url:
            return url
    data_dir = Path(os.environ.get("GATEWAY_DATA_DIR") or ".data")
    return f"sqlite+aiosqlite:///{(data_dir / f'{name}.sqlite3').resolve()}"


# --- Records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeedOwner:
    national_code: str
    first_name: str
    last_name: str
    share: Decimal


@dataclass(frozen=True)
class Mortgage:
    holder: str
    amount: int
    registered_on: dt.date


@dataclass(frozen=True)
class Seizure:
    issuer: str
    reference: str
    seized_on: dt.date


@dataclass(frozen=True)
class Deed:
    parcel_id: int
    plate: RegistryPlate
    serial: str
    issued_on: dt.date
    area: Decimal
    owners: tuple[DeedOwner, ...]
    mortgages: tuple[Mortgage, ...]
    seizures: tuple[Seizure, ...]


@dataclass(frozen=True)
class CivilRecord:
    person_id: int
    national_code: str
    first_name: str
    last_name: str
    father_name: str
    birth_date: dt.date
    gender: str
    death_date: dt.date | None

    @property
    def alive(self) -> bool:
        return self.death_date is None


@dataclass(frozen=True)
class BankPayment:
    payment_id: int
    reference: str
    amount: int
    paid_at: dt.datetime
    payer_national_code: str | None
    status: str


@dataclass(frozen=True)
class BankAccount:
    sheba: str
    bank_name: str
    holder: CivilRecord
    active: bool


@dataclass(frozen=True)
class PostalAddress:
    postal_code: str
    province: str
    city: str
    region: int
    address: str
    latitude: float
    longitude: float


# --- Derivations from ids --------------------------------------------------------------------


def deed_serial(parcel_id: int) -> str:
    # 7919 is prime to 900,000, so serials are unique for the first 900,000 parcels.
    return f"{'ABCDEFGH'[parcel_id % 8]}/{(parcel_id * 7919) % 900_000 + 100_000}"


def deed_issued_on(parcel_id: int) -> dt.date:
    return dt.date(1995, 3, 21) + dt.timedelta(days=(parcel_id * 7919) % 9000)


def mortgage_for(parcel_id: int, issued_on: dt.date) -> Mortgage:
    bank = BANK_NAMES[BANK_CODES[parcel_id % len(BANK_CODES)]]
    return Mortgage(
        holder=f"Bank {bank}",
        amount=((parcel_id * 7919) % 90 + 10) * 100_000_000,
        registered_on=issued_on + dt.timedelta(days=(parcel_id * 17) % 2000 + 10),
    )


def seizure_for(parcel_id: int, issued_on: dt.date) -> Seizure:
    branch = parcel_id % 12 + 1
    seized_on = issued_on + dt.timedelta(days=(parcel_id * 31) % 1500 + 30)
    return Seizure(
        issuer=f"دادگاه عمومی حقوقی ارومیه، شعبه {branch}",
        reference=f"{seized_on.year}-{parcel_id:07d}",
        seized_on=seized_on,
    )


def death_date_for(person_id: int, birth_date: dt.date) -> dt.date:
    died = dt.date(2015, 1, 1) + dt.timedelta(days=(person_id * 13) % 3000)
    return max(died, birth_date + dt.timedelta(days=365))


def sheba_for_person(person_id: int) -> str:
    """The Sheba of the one account the bank holds for a person (invert with `person_of_sheba`)."""
    bank_code = BANK_CODES[person_id % len(BANK_CODES)]
    return make_sheba(bank_code, f"{ACCOUNT_MARKER}{person_id:0{_ACCOUNT_ID_DIGITS}d}")


def person_of_sheba(sheba: str) -> int | None:
    """The person id a Sheba was built for, or None when the bank holds no such account."""
    try:
        parsed = parse_sheba(sheba)
    except InvalidIdentifier:
        return None
    person_id = int(parsed[-_ACCOUNT_ID_DIGITS:])
    # Rebuilding it checks the bank code, the marker and the zero padding all at once.
    if person_id < 1 or sheba_for_person(person_id) != parsed:
        return None
    return person_id


def coordinates_for(region: int, parcel_id: int) -> tuple[float, float]:
    """A point about 2 km from the centre, towards the region's own direction, with jitter."""
    angle = radians(region * 72)
    jitter_lat = ((parcel_id * 7919) % 1000 / 1000 - 0.5) * 0.012
    jitter_lon = ((parcel_id * 104_729) % 1000 / 1000 - 0.5) * 0.015
    latitude = URMIA[0] + 0.018 * sin(angle) + jitter_lat
    longitude = URMIA[1] + 0.024 * cos(angle) + jitter_lon
    return round(latitude, 6), round(longitude, 6)


def gender_for(first_name: str) -> str:
    # The demo generator draws first names from a male and a female list; the civil registry
    # is the authority on gender, which the planning database does not keep.
    return "FEMALE" if first_name in _FEMALE_NAMES else "MALE"


_FEMALE_NAMES = frozenset(demo._FEMALE_NAMES)

_PERSON_COLUMNS = (
    Person.id,
    Person.national_code,
    Person.first_name,
    Person.last_name,
    Person.father_name,
    Person.birth_date,
)


# --- Reading ---------------------------------------------------------------------------------


class Dataset:
    """Every agency's view of the demo data, read fresh from the databases on each call."""

    def __init__(self, planning: AsyncEngine, revenue: AsyncEngine) -> None:
        self.planning = planning
        self.revenue = revenue

    async def deeds(self, plates: Iterable[RegistryPlate]) -> dict[RegistryPlate, Deed]:
        """The deeds of those plates the registry knows, by plate."""
        wanted = sorted({(p.section, p.main, p.sub) for p in plates})
        if not wanted:
            return {}
        plate_columns = tuple_(Parcel.registry_section, Parcel.main_plate, Parcel.sub_plate)
        async with self.planning.connect() as connection:
            parcels = (
                await connection.execute(
                    select(
                        Parcel.id,
                        Parcel.registry_section,
                        Parcel.main_plate,
                        Parcel.sub_plate,
                        Parcel.area,
                    ).where(plate_columns.in_(wanted))
                )
            ).all()
            parcel_ids = [parcel.id for parcel in parcels]
            owner_rows = (
                await connection.execute(
                    select(
                        Ownership.parcel_id,
                        Ownership.share,
                        Person.id,
                        Person.national_code,
                        Person.first_name,
                        Person.last_name,
                    )
                    .join(Person, Person.id == Ownership.person_id)
                    .where(Ownership.parcel_id.in_(parcel_ids))
                    .order_by(Ownership.parcel_id, Ownership.id)
                )
            ).all()
            owners: dict[int, list[tuple[int, DeedOwner]]] = {}
            for o in owner_rows:
                owner = DeedOwner(o.national_code, o.first_name, o.last_name, o.share)
                owners.setdefault(o.parcel_id, []).append((o.id, owner))
            for parcel_id in parcel_ids:
                if OTHER_OWNER.applies(parcel_id) and owners.get(parcel_id):
                    owners[parcel_id] = await self._other_owner(connection, owners[parcel_id])
        deeds: dict[RegistryPlate, Deed] = {}
        for parcel in parcels:
            plate = RegistryPlate(parcel.registry_section, parcel.main_plate, parcel.sub_plate)
            issued_on = deed_issued_on(parcel.id)
            area = parcel.area
            if OTHER_AREA.applies(parcel.id):
                area = (area * OTHER_AREA_FACTOR).quantize(Decimal("0.01"))
            deeds[plate] = Deed(
                parcel_id=parcel.id,
                plate=plate,
                serial=deed_serial(parcel.id),
                issued_on=issued_on,
                area=area,
                owners=tuple(owner for _, owner in owners.get(parcel.id, [])),
                mortgages=(mortgage_for(parcel.id, issued_on),)
                if MORTGAGED.applies(parcel.id)
                else (),
                seizures=(seizure_for(parcel.id, issued_on),) if SEIZED.applies(parcel.id) else (),
            )
        return deeds

    async def _other_owner(
        self, connection: AsyncConnection, owners: list[tuple[int, DeedOwner]]
    ) -> list[tuple[int, DeedOwner]]:
        """The owners with the first replaced by the next person by id not among them."""
        first_id, first = owners[0]
        taken = [person_id for person_id, _ in owners]
        columns = (Person.id, Person.national_code, Person.first_name, Person.last_name)
        candidate = (
            await connection.execute(
                select(*columns)
                .where(Person.id > first_id, Person.id.not_in(taken))
                .order_by(Person.id)
                .limit(1)
            )
        ).first()
        if candidate is None:
            candidate = (
                await connection.execute(
                    select(*columns).where(Person.id.not_in(taken)).order_by(Person.id).limit(1)
                )
            ).first()
        if candidate is None:
            return owners
        replacement = DeedOwner(
            candidate.national_code, candidate.first_name, candidate.last_name, first.share
        )
        return [(candidate.id, replacement), *owners[1:]]

    async def person(self, national_code: str) -> CivilRecord | None:
        async with self.planning.connect() as connection:
            row = (
                await connection.execute(
                    select(*_PERSON_COLUMNS).where(Person.national_code == national_code)
                )
            ).first()
        if row is None:
            return None
        return _civil_record(
            row.id,
            row.national_code,
            row.first_name,
            row.last_name,
            row.father_name,
            row.birth_date,
        )

    async def person_by_id(self, person_id: int) -> CivilRecord | None:
        async with self.planning.connect() as connection:
            row = (
                await connection.execute(select(*_PERSON_COLUMNS).where(Person.id == person_id))
            ).first()
        if row is None:
            return None
        return _civil_record(
            row.id,
            row.national_code,
            row.first_name,
            row.last_name,
            row.father_name,
            row.birth_date,
        )

    async def payment(self, reference: str) -> BankPayment | None:
        """A payment by bank reference; None when the bank never saw it."""
        async with self.revenue.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        Payment.id,
                        Payment.amount,
                        Payment.paid_at,
                        Payment.bank_reference,
                        Assessment.renewal_code,
                    )
                    .join(Assessment, Assessment.id == Payment.assessment_id)
                    .where(Payment.bank_reference == reference)
                )
            ).first()
        if row is None or NEVER_PAID.applies(row.id):
            return None
        status = "SETTLED"
        if FAILED.applies(row.id):
            status = "FAILED"
        elif REVERSED.applies(row.id):
            status = "REVERSED"
        return BankPayment(
            payment_id=row.id,
            reference=row.bank_reference,
            amount=row.amount,
            paid_at=row.paid_at,
            payer_national_code=await self._main_owner(row.renewal_code),
            status=status,
        )

    async def _main_owner(self, renewal_code: str) -> str | None:
        """The national code of the parcel's largest shareholder: who pays its dues."""
        async with self.planning.connect() as connection:
            return await connection.scalar(
                select(Person.national_code)
                .join(Ownership, Ownership.person_id == Person.id)
                .join(Parcel, Parcel.id == Ownership.parcel_id)
                .where(Parcel.renewal_code == renewal_code)
                .order_by(Ownership.share.desc(), Ownership.id)
                .limit(1)
            )

    async def account(self, sheba: str) -> BankAccount | None:
        person_id = person_of_sheba(sheba)
        if person_id is None:
            return None
        holder = await self.person_by_id(person_id)
        if holder is None:
            return None
        bank_code = sheba[4:7]
        return BankAccount(
            sheba=sheba,
            bank_name=BANK_NAMES[bank_code],
            holder=holder,
            active=holder.alive and not INACTIVE_ACCOUNT.applies(person_id),
        )

    async def address(self, postal_code: str) -> PostalAddress | None:
        async with self.planning.connect() as connection:
            row = (
                await connection.execute(
                    select(Parcel.id, Parcel.postal_code, Parcel.address, Region.number)
                    .join(Region, Region.id == Parcel.region_id)
                    .where(Parcel.postal_code == postal_code)
                    .order_by(Parcel.id)
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        latitude, longitude = coordinates_for(row.number, row.id)
        return PostalAddress(
            postal_code=row.postal_code,
            province=PROVINCE,
            city=CITY,
            region=row.number,
            address=row.address,
            latitude=latitude,
            longitude=longitude,
        )


def _civil_record(
    person_id: int,
    national_code: str,
    first_name: str,
    last_name: str,
    father_name: str,
    birth_date: dt.date,
) -> CivilRecord:
    death_date = death_date_for(person_id, birth_date) if DECEASED.applies(person_id) else None
    return CivilRecord(
        person_id=person_id,
        national_code=national_code,
        first_name=first_name,
        last_name=last_name,
        father_name=father_name,
        birth_date=birth_date,
        gender=gender_for(first_name),
        death_date=death_date,
    )
