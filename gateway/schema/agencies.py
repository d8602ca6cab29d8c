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
    national_code: NationalCode = strawberry.field(description="The owner's national ID (کد ملی).")
    first_name: str = strawberry.field(description="First name (نام).")
    last_name: str = strawberry.field(description="Last name (نام خانوادگی).")
    full_name: str = strawberry.field(description="First and last name.")
    share: Decimal = strawberry.field(description="Share in dang; six dang make the whole.")


@strawberry.type(description="A mortgage (ترهین) registered on the property.")
class Mortgage:
    holder: str = strawberry.field(description="Who holds the mortgage (مرتهن), usually a bank.")
    amount: Money = strawberry.field(description="The amount secured, in rials.")
    registered_on: CalendarDate = strawberry.field(description="When the mortgage was registered.")


@strawberry.type(description="A seizure (بازداشت) registered on the property, and who ordered it.")
class Seizure:
    issuer: str = strawberry.field(
        description="Who ordered the seizure, e.g. a court or the tax office."
    )
    reference: str = strawberry.field(description="The order's reference number.")
    registered_on: CalendarDate = strawberry.field(description="When the seizure was registered.")


@strawberry.type(description="The land registry's deed (سند) for a parcel's registry plate.")
class Deed:
    serial: str = strawberry.field(description="The deed's serial number (شماره سریال سند).")
    issued_on: CalendarDate = strawberry.field(description="When the deed was issued.")
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

    @strawberry.field(
        description="The owners the deed names, with their shares (personal data).",
        metadata=typical_size(3),
    )
    def owners(self, info: Info) -> list[DeedOwner]:
        self._served_to(info)
        return self.named_owners

    @strawberry.field(
        description="Mortgages (ترهین) registered on the property.", metadata=typical_size(2)
    )
    def mortgages(self, info: Info) -> list[Mortgage]:
        self._served_to(info)
        return self.registered_mortgages

    @strawberry.field(
        description="Seizures (بازداشت) registered on the property.", metadata=typical_size(2)
    )
    def seizures(self, info: Info) -> list[Seizure]:
        self._served_to(info)
        return self.registered_seizures

    @strawberry.field(description="True when no seizure is registered on the property.")
    def free_of_seizure(self, info: Info) -> bool:
        self._served_to(info)
        return not self.registered_seizures


@strawberry.enum(description="A person's gender as the civil registry records it (جنسیت).")
class Gender(Enum):
    MALE = strawberry.enum_value("MALE", description="Male (مرد).")
    FEMALE = strawberry.enum_value("FEMALE", description="Female (زن).")


@strawberry.type(description="A person as the civil registry (ثبت احوال) records them.")
class CivilRecord:
    national_code: NationalCode = strawberry.field(description="National ID (کد ملی).")
    first_name: str = strawberry.field(description="First name (نام).")
    last_name: str = strawberry.field(description="Last name (نام خانوادگی).")
    father_name: str = strawberry.field(description="Father's name (نام پدر).")
    birth_date: CalendarDate = strawberry.field(description="Date of birth.")
    gender: Gender = strawberry.field(description="Gender (جنسیت).")
    alive: bool = strawberry.field(
        description="False once the civil registry has recorded a death."
    )
    death_date: CalendarDate | None = strawberry.field(
        description="Date of death (تاریخ فوت); null while alive."
    )

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
    postal_code: PostalCode = strawberry.field(description="Postal code (کد پستی), 10 digits.")
    province: str = strawberry.field(description="Province (استان).")
    city: str = strawberry.field(description="City (شهر).")
    region: int = strawberry.field(description="The municipality's region number.")
    address: str = strawberry.field(description="The street address, in Persian.")
    latitude: float = strawberry.field(description="Latitude, in degrees (WGS 84).")
    longitude: float = strawberry.field(description="Longitude, in degrees (WGS 84).")

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
    SETTLED = strawberry.enum_value(
        "SETTLED", description="The money reached the municipality's account."
    )
    FAILED = strawberry.enum_value("FAILED", description="The payment did not go through.")
    REVERSED = strawberry.enum_value(
        "REVERSED", description="The payment was made, then returned to the payer."
    )


@strawberry.type(description="The bank's account of a payment.")
class BankPayment:
    reference: str = strawberry.field(
        description=(
            "The bank's reference for the payment (its first three digits are the bank's code)."
        )
    )
    amount: Money = strawberry.field(description="The amount the bank moved, in rials.")
    paid_at: dt.datetime = strawberry.field(
        description="When the bank recorded the payment, in Iran time."
    )
    payer: strawberry.Private[str | None]
    status: PaymentStatus = strawberry.field(description="What became of the payment.")

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


@strawberry.enum(description="The state of the circuit breaker in front of an outside agency.")
class BreakerState(Enum):
    CLOSED = strawberry.enum_value("closed", description="Calls go through.")
    OPEN = strawberry.enum_value(
        "open", description="Calls fail fast until the breaker's reset time has passed."
    )
    HALF_OPEN = strawberry.enum_value(
        "half_open", description="One probing call decides whether the breaker closes again."
    )


@strawberry.type(description="How an outside agency is doing, for operators.")
class AgencyStatus:
    name: str = strawberry.field(
        description="The agency's name in the gateway's configuration, e.g. land_registry."
    )
    state: BreakerState = strawberry.field(
        description="CLOSED: calls go through; OPEN: failing fast; HALF_OPEN: probing."
    )
    calls: int = strawberry.field(description="Calls made to the agency since the gateway started.")
    failures: int = strawberry.field(
        description=(
            "Calls that failed (timeouts, refusals, unusable answers) since the gateway started."
        )
    )
    recent_latency_ms_p50: float | None = strawberry.field(
        description="Median latency of recent calls, in milliseconds; null before any call."
    )
    recent_latency_ms_p95: float | None = strawberry.field(
        description=(
            "95th percentile latency of recent calls, in milliseconds; null before any call."
        )
    )
    recent_error_rate: float = strawberry.field(
        description="The share of recent calls that failed, from 0 to 1."
    )

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
