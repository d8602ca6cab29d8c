"""Revenue department types: a parcel's dues and their items."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Self

import strawberry

from gateway import dues
from gateway.schema.agencies import BankPayment
from gateway.schema.context import Info
from gateway.schema.scalars import CalendarDate, Money, RenewalCode, calendar_date


@strawberry.enum(
    description="Renewal duty (عوارض نوسازی), waste fee (عوارض پسماند), other charges."
)
class DueKind(Enum):
    RENEWAL_DUTY = "renewal_duty"
    WASTE_FEE = "waste_fee"
    OTHER = "other"


# Plain fields only: a page of parcels carries hundreds of items, and plain fields
# resolve several times faster than method resolvers.
@strawberry.type(description="One assessed charge and what was paid against it.")
class DueItem:
    kind: DueKind
    period: int = strawberry.field(description="Solar Hijri year the charge is for.")
    amount: Money
    paid: Money
    outstanding: Money
    due_date: CalendarDate

    @classmethod
    def from_domain(cls, item: dues.DueItem) -> Self:
        return cls(
            kind=DueKind(item.kind),
            period=item.period,
            amount=Money(item.amount),
            paid=Money(item.paid),
            outstanding=Money(item.outstanding),
            due_date=calendar_date(item.due_date),
        )


@strawberry.type(description="A parcel's municipal dues (the basis of a مفاصاحساب).")
class Dues:
    total: Money = strawberry.field(description="Everything assessed.")
    paid: Money
    outstanding: Money = strawberry.field(
        description="What is left to pay; zero when the parcel is settled."
    )
    settled: bool
    items: list[DueItem]

    @classmethod
    def from_domain(cls, parcel_dues: dues.Dues) -> Self:
        outstanding = parcel_dues.outstanding
        return cls(
            total=Money(parcel_dues.total),
            paid=Money(parcel_dues.paid),
            outstanding=Money(outstanding),
            settled=outstanding == 0,
            items=[DueItem.from_domain(item) for item in parcel_dues.items],
        )


@strawberry.type(description="A payment as the revenue department recorded it.")
class RecordedPayment:
    renewal_code: RenewalCode
    kind: DueKind
    period: int
    amount: Money
    paid_at: dt.datetime


@strawberry.type(description="A dues payment: revenue's record, checked against the bank's.")
class PaymentCheck:
    reference: str
    recorded: RecordedPayment | None = strawberry.field(
        description="Null when revenue has no payment with this reference."
    )

    @strawberry.field(description="The bank's answer; null when the bank does not know it.")
    async def bank(self, info: Info) -> BankPayment | None:
        answer = await info.context.loaders.bank_payment.load(self.reference)
        return None if answer is None else BankPayment.from_answer(answer)

    @strawberry.field(description="True when the bank settled exactly the amount revenue recorded.")
    async def consistent(self, info: Info) -> bool:
        answer = await info.context.loaders.bank_payment.load(self.reference)
        return (
            answer is not None
            and self.recorded is not None
            and answer.status == "SETTLED"
            and answer.amount == self.recorded.amount
        )
