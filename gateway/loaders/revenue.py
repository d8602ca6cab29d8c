"""Revenue's loaders: a parcel's dues by renewal code, a payment by its bank reference."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engines import read_rows
from db.revenue import Assessment, Payment
from gateway import dues
from gateway.loaders.batching import MAX_KEYS_PER_STATEMENT, GatedLoader, KeyedQuery

_payments = Payment.__table__
_assessments = Assessment.__table__


class DuesByRenewalCode(GatedLoader[str, dues.Dues]):
    """Dues live in the revenue database, keyed by the parcel's renewal code."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(max_batch_size=MAX_KEYS_PER_STATEMENT)
        self.engine = engine

    async def batch_load_fn(self, keys: Sequence[str]) -> list[dues.Dues]:
        rows = await read_rows(self.engine, dues.ITEMS_BY_RENEWAL_CODE, {"keys": list(set(keys))})
        return dues.group_by_renewal_code(rows, keys)


PAYMENT_BY_REFERENCE = KeyedQuery(
    select(
        _payments.c.bank_reference,
        _payments.c.amount,
        _payments.c.paid_at,
        _assessments.c.renewal_code,
        _assessments.c.kind,
        _assessments.c.period,
    ).join_from(_payments, _assessments, _payments.c.assessment_id == _assessments.c.id),
    _payments.c.bank_reference,
    dues.RecordedPayment.from_row,
)
