"""Types the outside agencies answer with: deeds, civil records, addresses, payments, health.

A field that needs an agency is nullable: when the agency is down, slow or refuses,
only that field is null and its error names the agency (extensions.agency).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Self

import strawberry

from connectors.postal import PostalAddress as PostalAnswer
from connectors.resilience import AgencyStats
from connectors.soap.bank import PaymentVerification
from connectors.soap.civil_registry import CivilRecord as CivilAnswer
from connectors.soap.land_registry import Deed as DeedAnswer
from gateway.access.permissions import Scope, mask_national_code, note_personal_read, requires
from gateway.context import Info
from gateway.guards.cost import typical_size
from gateway.schema.scalars import (
    CalendarDate,
    Money,
    NationalCode,
    PostalCode,
    calendar_date,
    optional_date,
)


@strawberry.type(description="An owner as the land registry's deed names them.")
class DeedOwner:
    national_code: NationalCode
    first_name: str
    last_name: str
    full_name: str
    share: Decimal = strawberry.field(description="Share in dang; six dang make the whole.")


@strawberry.type(description="A mortgage (ترهین) registered on the property.")
class Mortgage:
    holder: str
    amount: Money
    registered_on: CalendarDate


@strawberry.type(description="A seizure (بازداشت) registered on the property, and who ordered it.")
class Seizure:
    issuer: str
    reference: str
    registered_on: CalendarDate


@strawberry.type(description="The land registry's deed (سند) for a parcel's registry plate.")
class Deed:
    serial: str
    issued_on: CalendarDate
    area: Decimal = strawberry.field(description="Square metres, as registered.")
    named_owners: strawberry.Private[list[DeedOwner]]
    registered_mortgages: strawberry.Private[list[Mortgage]]
    registered_seizures: strawberry.Private[list[Seizure]]

    @classmethod
    def from_answer(cls, deed: DeedAnswer) -> Self:
        return cls(
            serial=deed.serial,
            issued_on=calendar_date(deed.issued_on),
            area=deed.area,
            named_owners=[
                DeedOwner(
                    national_code=NationalCode(o.national_code),
                    first_name=o.first_name,
                    last_name=o.last_name,
                    full_name=f"{o.first_name} {o.last_name}",
                    share=o.share,
                )
                for o in deed.owners
            ],
            registered_mortgages=[
                Mortgage(
                    holder=m.holder,
                    amount=Money(m.amount),
                    registered_on=calendar_date(m.registered_on),
                )
                for m in deed.mortgages
            ],
            registered_seizures=[
                Seizure(
                    issuer=s.issuer,
                    reference=s.reference,
                    registered_on=calendar_date(s.registered_on),
                )
                for s in deed.seizures
            ],
        )

    def _served_to(self, info: Info) -> None:
        # Owners, mortgages and seizures are the owners' personal data: each owner the
        # deed names is a subject of the read, under their national ID.
        for owner in self.named_owners:
            note_personal_read(info, "Person", owner.national_code)

    @strawberry.field(metadata=typical_size(3))
    def owners(self, info: Info) -> list[DeedOwner]:
        self._served_to(info)
        return self.named_owners

    @strawberry.field(metadata=typical_size(2))
    def mortgages(self, info: Info) -> list[Mortgage]:
        self._served_to(info)
        return self.registered_mortgages

    @strawberry.field(metadata=typical_size(2))
    def seizures(self, info: Info) -> list[Seizure]:
        self._served_to(info)
        return self.registered_seizures

    @strawberry.field
    def free_of_seizure(self, info: Info) -> bool:
        self._served_to(info)
        return not self.registered_seizures


@strawberry.enum
class Gender(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"


@strawberry.type(description="A person as the civil registry (ثبت احوال) records them.")
class CivilRecord:
    national_code: NationalCode
    first_name: str
    last_name: str
    father_name: str
    birth_date: CalendarDate
    gender: Gender
    alive: bool
    death_date: CalendarDate | None

    @classmethod
    def from_answer(cls, record: CivilAnswer) -> Self:
        return cls(
            national_code=NationalCode(record.national_code),
            first_name=record.first_name,
            last_name=record.last_name,
            father_name=record.father_name,
            birth_date=calendar_date(record.birth_date),
            gender=Gender(record.gender),
            alive=record.alive,
            death_date=optional_date(record.death_date),
        )


@strawberry.type(description="An address as the postal company knows it.")
class PostalAddress:
    postal_code: PostalCode
    province: str
    city: str
    region: int = strawberry.field(description="The municipality's region number.")
    address: str
    latitude: float
    longitude: float

    @classmethod
    def from_answer(cls, answer: PostalAnswer) -> Self:
        return cls(
            postal_code=PostalCode(answer.postal_code),
            province=answer.province,
            city=answer.city,
            region=answer.region,
            address=answer.address,
            latitude=answer.latitude,
            longitude=answer.longitude,
        )


@strawberry.enum(description="What the bank says became of a payment.")
class PaymentStatus(Enum):
    SETTLED = "SETTLED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


@strawberry.type(description="The bank's account of a payment.")
class BankPayment:
    reference: str
    amount: Money
    paid_at: dt.datetime
    payer: strawberry.Private[str | None]
    status: PaymentStatus

    @classmethod
    def from_answer(cls, answer: PaymentVerification) -> Self:
        return cls(
            reference=answer.reference,
            amount=Money(answer.amount),
            paid_at=answer.paid_at,
            payer=answer.payer_national_code,
            status=PaymentStatus(answer.status),
        )

    @strawberry.field(
        description="The payer's national ID, as the bank knows it: personal data, written to "
        "the audit trail; masked as 008****948 without personal:read."
    )
    def payer_national_code(self, info: Info) -> NationalCode | None:
        if self.payer is None:
            return None
        if not info.context.principal.has(Scope.PERSONAL_READ):
            return NationalCode(mask_national_code(self.payer))
        # The bank names the payer by national ID only: that is the subject's id here.
        note_personal_read(info, "Person", self.payer)
        return NationalCode(self.payer)


@strawberry.enum
class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@strawberry.type(description="How an outside agency is doing, for operators.")
class AgencyStatus:
    name: str
    state: BreakerState = strawberry.field(
        description="CLOSED: calls go through; OPEN: failing fast; HALF_OPEN: probing."
    )
    calls: int
    failures: int
    recent_latency_ms_p50: float | None
    recent_latency_ms_p95: float | None
    recent_error_rate: float

    @classmethod
    def from_stats(cls, stats: AgencyStats) -> Self:
        return cls(
            name=stats.name,
            state=BreakerState(stats.state),
            calls=stats.calls,
            failures=stats.failures,
            recent_latency_ms_p50=stats.recent_latency_ms_p50,
            recent_latency_ms_p95=stats.recent_latency_ms_p95,
            recent_error_rate=stats.recent_error_rate,
        )


@strawberry.type
class AgenciesQuery:
    @strawberry.field(
        description="Each outside agency's health: breaker state, latency, errors.",
        permission_classes=[requires(Scope.AGENCIES_READ)],
        metadata=typical_size(4),
    )
    def agencies(self, info: Info) -> list[AgencyStatus] | None:
        return [AgencyStatus.from_stats(stats) for stats in info.context.agencies.stats()]
