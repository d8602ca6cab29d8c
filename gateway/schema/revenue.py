"""Revenue department types: a parcel's dues and their items, and payments checked against
the bank's record."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Self

import strawberry

import identifiers
from gateway import dues
from gateway.access.permissions import Scope, requires
from gateway.access.principals import may_verify_payment
from gateway.context import Info
from gateway.errors import BadUserInput
from gateway.guards.response_cache import Freshness, cache_hint
from gateway.records import quick_new
from gateway.schema.agencies import BankPayment
from gateway.schema.scalars import CalendarDate, Money, RenewalCode, by_value, calendar_date


@strawberry.enum(
    description="Renewal duty (عوارض نوسازی), waste fee (عوارض پسماند), other charges."
)
class DueKind(Enum):
    RENEWAL_DUTY = strawberry.enum_value("renewal_duty", description="Renewal duty (عوارض نوسازی).")
    WASTE_FEE = strawberry.enum_value(
        "waste_fee", description="Waste collection fee (عوارض پسماند)."
    )
    OTHER = strawberry.enum_value("other", description="Any other municipal charge.")


# By the value revenue's rows hold; a value outside the enum is an error, as DueKind(value) is.
_DUE_KINDS = by_value(DueKind)


# Plain fields only: a page of parcels carries hundreds of items, and plain fields
# resolve several times faster than method resolvers. Amounts are ints in Python and Money
# in the schema (graphql_type), so that the page's thousands are stored without a call each.
@strawberry.type(description="One assessed charge and what was paid against it.")
class DueItem:
    kind: DueKind = strawberry.field(description="What kind of charge it is.")
    period: int = strawberry.field(description="Solar Hijri year the charge is for.")
    amount: int = strawberry.field(graphql_type=Money, description="What was assessed, in rials.")
    paid: int = strawberry.field(
        graphql_type=Money, description="What has been paid against it, in rials."
    )
    outstanding: int = strawberry.field(
        graphql_type=Money, description="What is left to pay, in rials."
    )
    due_date: CalendarDate = strawberry.field(description="When it falls due.")


_new_due_item = quick_new(DueItem)


@strawberry.type(description="A parcel's municipal dues (the basis of a مفاصاحساب).")
class Dues:
    total: int = strawberry.field(graphql_type=Money, description="Everything assessed.")
    paid: int = strawberry.field(graphql_type=Money, description="Everything paid, in rials.")
    outstanding: int = strawberry.field(
        graphql_type=Money, description="What is left to pay; zero when the parcel is settled."
    )
    settled: bool = strawberry.field(
        description="True when nothing is outstanding (مفاصاحساب can be issued)."
    )
    items: list[DueItem] = strawberry.field(
        description="Each assessed charge, by kind and year.", metadata=cache_hint(Freshness.DUES)
    )

    @classmethod
    def from_domain(cls, parcel_dues: dues.Dues) -> Dues:
        # One pass over the items (a page converts hundreds): the sums as dues.Dues sums them.
        items: list[DueItem] = []
        total = paid = outstanding = 0
        for item in parcel_dues.items:
            amount, item_paid = item.amount, item.paid
            left = amount - item_paid  # item.outstanding, without a property's call
            if left < 0:
                left = 0
            total += amount
            paid += item_paid
            outstanding += left
            items.append(
                _new_due_item(
                    kind=_DUE_KINDS[item.kind],
                    period=item.period,
                    amount=amount,
                    paid=item_paid,
                    outstanding=left,
                    due_date=calendar_date(item.due_date),
                )
            )
        return _new_dues(
            total=total,
            paid=paid,
            outstanding=outstanding,
            settled=outstanding == 0,
            items=items,
        )


_new_dues = quick_new(Dues)


@strawberry.type(description="A payment as the revenue department recorded it.")
class RecordedPayment:
    renewal_code: RenewalCode = strawberry.field(
        description="The renewal code (کد نوسازی) of the parcel the payment is for."
    )
    kind: DueKind = strawberry.field(description="Which kind of charge was paid.")
    period: int = strawberry.field(description="The Solar Hijri year of the charge paid.")
    amount: Money = strawberry.field(description="The amount recorded, in rials.")
    paid_at: dt.datetime = strawberry.field(description="When the payment was made, in Iran time.")

    @classmethod
    def from_domain(cls, payment: dues.RecordedPayment) -> Self:
        return cls(
            renewal_code=RenewalCode(payment.renewal_code),
            kind=DueKind(payment.kind),
            period=payment.period,
            amount=Money(payment.amount),
            paid_at=payment.paid_at,
        )


@strawberry.type(description="A dues payment: revenue's record, checked against the bank's.")
class PaymentCheck:
    reference: str = strawberry.field(description="The bank reference asked about.")
    recorded: RecordedPayment | None = strawberry.field(
        description="Null when revenue has no payment with this reference."
    )

    @strawberry.field(description="The bank's answer; null when the bank does not know it.")
    async def bank(self, info: Info) -> BankPayment | None:
        answer = await info.context.loaders.bank_payment.load(self.reference)
        return None if answer is None else BankPayment.from_answer(answer)

    # Nullable, as every field that asks an agency: when the bank fails, only this field is
    # null (with the agency's error), not the payment revenue recorded.
    @strawberry.field(
        description="True when the bank settled exactly the amount revenue recorded; null when "
        "the bank could not be asked."
    )
    async def consistent(self, info: Info) -> bool | None:
        answer = await info.context.loaders.bank_payment.load(self.reference)
        return (
            answer is not None
            and self.recorded is not None
            and answer.status == "SETTLED"
            and answer.amount == self.recorded.amount
        )


async def verify_payment(info: Info, reference: str) -> PaymentCheck | None:
    """Revenue's record of the payment with this bank reference, to check against the bank's.

    A bank verifies only payments made through it: another bank's reference reads as absent
    (null), as records outside a row-level rule do, so that it cannot probe them.
    """
    try:
        reference = identifiers.parse_bank_reference(reference)
    except identifiers.InvalidIdentifier as exc:
        raise BadUserInput(f"{str(exc).capitalize()}.", field="reference") from None
    if not may_verify_payment(info.context.principal, identifiers.reference_bank_code(reference)):
        return None
    payment = await info.context.loaders.payment_by_reference.load(reference)
    recorded = None if payment is None else RecordedPayment.from_domain(payment)
    return PaymentCheck(reference=reference, recorded=recorded)


@strawberry.type
class RevenueQuery:
    @strawberry.field(
        description="A dues payment by its bank reference (its first three digits are the "
        "bank's code): revenue's record and the bank's. A bank sees only payments made "
        "through it; another bank's reference answers null.",
        permission_classes=[requires(Scope.PAYMENTS_VERIFY)],
    )
    async def verify_payment(
        self,
        info: Info,
        reference: Annotated[
            str,
            strawberry.argument(
                description=(
                    "The bank's reference of the payment, 4 to 40 digits (Persian digits accepted)."
                )
            ),
        ],
    ) -> PaymentCheck | None:
        return await verify_payment(info, reference)
