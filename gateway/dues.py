"""Municipal dues of a parcel: what was assessed, what was paid, what is outstanding; and the
payments revenue recorded against them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

from sqlalchemy import BigInteger, Row, Select, bindparam, cast, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from db.raw_reads import reused
from db.revenue import PAYMENT_TIMES, Assessment, Payment
from gateway.records import quick_init

_assessments = Assessment.__table__
_payments = Payment.__table__


class DueItem(NamedTuple):
    """One assessed charge and what was paid against it. A named tuple: a page of parcels
    makes hundreds, each straight from its row's values (`tuple.__new__`, a third of a
    frozen dataclass's making); as immutable, equal and hashable as the other records."""

    id: int
    kind: str
    period: int
    amount: int
    paid: int
    due_date: dt.date

    @property
    def outstanding(self) -> int:
        return max(self.amount - self.paid, 0)


@quick_init
@dataclass(frozen=True, slots=True)
class Dues:
    renewal_code: str
    items: tuple[DueItem, ...]

    @property
    def total(self) -> int:
        return sum(item.amount for item in self.items)

    @property
    def paid(self) -> int:
        return sum(item.paid for item in self.items)

    @property
    def outstanding(self) -> int:
        return sum(item.outstanding for item in self.items)


@quick_init
@dataclass(frozen=True, slots=True)
class RecordedPayment:
    """A payment as revenue recorded it, with the charge it paid."""

    bank_reference: str
    renewal_code: str
    kind: str
    period: int
    amount: int
    paid_at: dt.datetime  # aware: revenue's clock is Iran's (db.revenue.PAYMENT_TIMES)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(
            row.bank_reference, row.renewal_code, row.kind, row.period, int(row.amount),
            row.paid_at.replace(tzinfo=PAYMENT_TIMES),
        )  # fmt: skip


def _paid() -> Any:
    """The sum paid against the assessment of the enclosing row (uses the payments index)."""
    return (
        select(func.coalesce(func.sum(_payments.c.amount), 0))
        .where(_payments.c.assessment_id == _assessments.c.id)
        .scalar_subquery()
    )


# Every assessment of a batch of parcels (bound as "keys") with the sum paid against it.
class _Integral(FunctionElement[int]):
    """An integer-valued expression as an integer: PostgreSQL's and MariaDB's sums of
    integers are numeric, which their drivers decode into Decimal, several times dearer than
    an integer, so it is cast there. SQLite's sum of integers is an integer already, and a
    cast there made the statement dearer: it is left as it is."""

    type = BigInteger()
    name = "integral"
    inherit_cache = True


@compiles(_Integral)
def _cast_integral(element: _Integral, compiler: Any, **kw: Any) -> str:
    (argument,) = element.clauses
    return str(compiler.process(cast(argument, BigInteger), **kw))


@compiles(_Integral, "sqlite")
def _sqlite_integral(element: _Integral, compiler: Any, **kw: Any) -> str:
    (argument,) = element.clauses
    return str(compiler.process(argument, **kw))


ITEMS_BY_RENEWAL_CODE: Select[Any] = reused(
    select(_assessments, _Integral(_paid()).label("paid"))
    .where(_assessments.c.renewal_code.in_(bindparam("keys", expanding=True)))
    .order_by(_assessments.c.renewal_code, _assessments.c.period, _assessments.c.id)
)


def outstanding_renewal_codes_statement() -> Select[Any]:
    """Renewal codes of every parcel with something left to pay."""
    return select(_assessments.c.renewal_code).where(_assessments.c.amount > _paid()).distinct()


def group_by_renewal_code(rows: Sequence[Row[Any]], keys: Sequence[str]) -> list[Dues]:
    grouped: dict[str, list[DueItem]] = defaultdict(list)
    for row in rows:
        # Made directly, without the named tuple's __new__ in Python (its fields, in order).
        grouped[row.renewal_code].append(
            _tuple_new(
                DueItem,
                (row.id, row.kind, row.period, int(row.amount), int(row.paid), row.due_date),
            )
        )
    return [Dues(code, tuple(grouped.get(code, ()))) for code in keys]


_tuple_new = tuple.__new__
