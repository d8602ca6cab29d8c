"""Revenue department types: a parcel's dues and their items."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry import Private

from gateway import dues
from gateway.schema.scalars import CalendarDate, Money


@strawberry.enum(
    description="Renewal duty (عوارض نوسازی), waste fee (عوارض پسماند), other charges."
)
class DueKind(Enum):
    RENEWAL_DUTY = "renewal_duty"
    WASTE_FEE = "waste_fee"
    OTHER = "other"


@strawberry.type(description="One assessed charge and what was paid against it.")
class DueItem:
    item: Private[dues.DueItem]

    @strawberry.field
    def kind(self) -> DueKind:
        return DueKind(self.item.kind)

    @strawberry.field(description="Solar Hijri year the charge is for.")
    def period(self) -> int:
        return self.item.period

    @strawberry.field
    def amount(self) -> Money:
        return Money(self.item.amount)

    @strawberry.field
    def paid(self) -> Money:
        return Money(self.item.paid)

    @strawberry.field
    def outstanding(self) -> Money:
        return Money(self.item.outstanding)

    @strawberry.field
    def due_date(self) -> CalendarDate:
        return CalendarDate(iso=self.item.due_date)


@strawberry.type(description="A parcel's municipal dues (the basis of a مفاصاحساب).")
class Dues:
    dues: Private[dues.Dues]

    @strawberry.field(description="Everything assessed.")
    def total(self) -> Money:
        return Money(self.dues.total)

    @strawberry.field
    def paid(self) -> Money:
        return Money(self.dues.paid)

    @strawberry.field(description="What is left to pay; zero when the parcel is settled.")
    def outstanding(self) -> Money:
        return Money(self.dues.outstanding)

    @strawberry.field
    def settled(self) -> bool:
        return self.dues.outstanding == 0

    @strawberry.field
    def items(self) -> list[DueItem]:
        return [DueItem(item=item) for item in self.dues.items]
