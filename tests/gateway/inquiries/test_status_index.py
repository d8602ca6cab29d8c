"""The status list reads only the answers that are not valid, through the partial index
migration gateway_0005 made for it: on SQLite the plan names the index, and the index is partial,
over the revoked and superseded answers alone (a change to the query or the index that breaks
the match falls back to reading every inquiry, which this catches)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import text

from db.engines import Databases
from db.gateway import InquiryRecord
from gateway.inquiries import publication
from tests.conftest import make_backend

WHEN = dt.datetime(2010, 1, 1)


def _inquiry(number: int, **changes: object) -> InquiryRecord:
    fields: dict[str, object] = {
        "tracking_code": f"{number:016d}",
        "kind": "PROPERTY_TRANSFER",
        "partner_kind": "notary",
        "partner_id": "index-notary",
        "organisation": "notary:index",
        "idempotency_key": str(number),
        "input_digest": "0" * 64,
        "parcel_id": 1,
        "region": 1,
        "renewal_code": "3-3-1-1",
        "applicant_national_code": "0084575948",
        "status": "DECIDED",
        "submitted_at": WHEN,
        "answer_id": f"answer-{number}",
    }
    fields.update(changes)
    return InquiryRecord(**fields)


async def test_the_status_list_reads_the_partial_index_of_withdrawn_answers(
    tmp_path: Path,
) -> None:
    backend, _ = await make_backend("sqlite", tmp_path, parcels=0)
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        async with databases.session("gateway") as session, session.begin():
            session.add_all(
                [
                    _inquiry(1),
                    _inquiry(2, superseded_by=3),
                    _inquiry(3, revoked_at=WHEN),
                    _inquiry(4, superseded_by=5, revoked_at=WHEN),
                    _inquiry(5),
                    _inquiry(6, answer_id=None, status="PENDING"),
                ]
            )
        async with databases.gateway.connect() as connection:
            compiled = publication._WITHDRAWN.compile(dialect=connection.dialect)
            plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
            assert [row[-1] for row in plan] == [
                "SCAN inquiries USING COVERING INDEX ix_inquiries_withdrawn"
            ]
            index_sql = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_inquiries_withdrawn'")
            )
            withdrawn = (await connection.execute(publication._WITHDRAWN)).all()
        assert "WHERE answer_id IS NOT NULL" in index_sql  # partial: withdrawn answers only
        assert sorted((row[0] - withdrawn[0][0], bool(row[1])) for row in withdrawn) == [
            (0, False),
            (1, True),
            (2, True),
        ]
    finally:
        await databases.dispose()
