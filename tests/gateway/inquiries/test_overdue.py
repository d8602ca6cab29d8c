"""Overdue at the deadline's boundary, the same on every path that says it: a check answered
at its deadline itself is on time, one second later it is overdue. The inquiry's and the
check's `overdue`, `departmentQueue(overdue:)` and `inquiryStats`' overdue count all follow
workdays.is_overdue (Python) or records.past_due (its SQL form), on every backend.

One inquiry is inserted directly, submitted in 1390 (2011), a year no other test uses, with
one planning check queued and due at DUE; the app's clock is set by each test."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from db.engines import Databases
from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.inquiries.tracking import new_tracking_code
from gateway.inquiries.workdays import is_overdue
from tests.conftest import Backend, GraphQLClient, mint_key, settings_for

SUBMITTED = dt.datetime(2011, 6, 1, 6, 0)  # naive UTC, as stored
DUE = dt.datetime(2011, 6, 8, 13, 30, tzinfo=dt.UTC)

READ = """
query($code: String!) {
  inquiry(trackingCode: $code) { overdue checks { name overdue } }
}
"""
QUEUE = """
query($overdue: Boolean, $after: String) {
  departmentQueue(overdue: $overdue, first: 100, after: $after) {
    edges { node { inquiry { trackingCode } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
STATS = """
{ inquiryStats(groupBy: [], since: "2011-05-01T00:00:00Z", until: "2011-07-01T00:00:00Z") {
    total overdue } }
"""


@dataclass
class World:
    http: httpx.AsyncClient
    keys: dict[str, str]
    code: str
    clock: list[dt.datetime]

    def client(self, label: str) -> GraphQLClient:
        return GraphQLClient(self.http, self.keys[label])


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    databases = Databases({"gateway": backend.urls["gateway"]})
    keys = {}
    for label, kind, department in (
        ("operator", PrincipalKind.OPERATOR, None),
        ("planning", PrincipalKind.DEPARTMENT, "planning"),
    ):
        _, keys[label] = await mint_key(
            databases, kind, f"Overdue {label} {uuid.uuid4().hex[:6]}", department
        )
    code = new_tracking_code()
    async with databases.session("gateway") as session, session.begin():
        inquiry = InquiryRecord(
            tracking_code=code,
            kind="PROPERTY_TRANSFER",
            partner_kind="notary",
            partner_id="overdue-notary",
            organisation="notary:overdue",
            idempotency_key=str(uuid.uuid4()),
            input_digest="0" * 64,
            parcel_id=1,
            region=1,
            renewal_code="3-3-1-1",
            registry_plate=None,
            applicant_national_code="0084575948",
            status="WAITING_FOR_DEPARTMENT",
            reasons=[],
            submitted_at=SUBMITTED,
        )
        session.add(inquiry)
        await session.flush()
        inquiry_id = inquiry.id
        session.add(
            InquiryCheckRecord(
                inquiry_id=inquiry_id,
                name="building_matches_permit",
                authority="planning",
                manual=True,
                state="queued",
                queued_at=SUBMITTED,
                due_at=DUE.replace(tzinfo=None),
                attempts=0,
            )
        )
    clock = [DUE]
    app = create_app(settings_for(backend), wall_clock=lambda: clock[0])
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            yield World(http, keys, code, clock)
    finally:
        async with databases.gateway.begin() as connection:
            await connection.execute(
                delete(InquiryCheckRecord).where(InquiryCheckRecord.inquiry_id == inquiry_id)
            )
            await connection.execute(delete(InquiryRecord).where(InquiryRecord.id == inquiry_id))
        await databases.dispose()


async def _in_queue(world: World, overdue: bool) -> bool:
    """Whether the inquiry's check is in planning's queue filtered by `overdue` (every page)."""
    after = None
    for _page in range(1000):  # a bound, not a measure
        body = await world.client("planning")(QUEUE, {"overdue": overdue, "after": after})
        assert "errors" not in body, body
        queue: dict[str, Any] = body["data"]["departmentQueue"]
        codes = {edge["node"]["inquiry"]["trackingCode"] for edge in queue["edges"]}
        if world.code in codes:
            return True
        if not queue["pageInfo"]["hasNextPage"]:
            return False
        after = queue["pageInfo"]["endCursor"]
    raise AssertionError("the queue did not end")


async def _said(world: World) -> tuple[bool, bool, bool, bool, int]:
    body = await world.client("operator")(READ, {"code": world.code})
    assert "errors" not in body, body
    inquiry = body["data"]["inquiry"]
    stats = await world.client("operator")(STATS)
    assert "errors" not in stats, stats
    [group] = stats["data"]["inquiryStats"]
    assert group["total"] == 1
    return (
        inquiry["overdue"],
        inquiry["checks"][0]["overdue"],
        await _in_queue(world, True),
        not await _in_queue(world, False),
        group["overdue"],
    )


def test_the_one_rule_an_answer_at_the_deadline_is_on_time() -> None:
    assert not is_overdue(DUE, DUE)
    assert is_overdue(DUE, DUE + dt.timedelta(microseconds=1))


async def test_at_the_deadline_itself_no_path_says_overdue(world: World) -> None:
    world.clock[0] = DUE
    assert await _said(world) == (False, False, False, False, 0)


async def test_a_second_past_the_deadline_every_path_says_overdue(world: World) -> None:
    world.clock[0] = DUE + dt.timedelta(seconds=1)
    assert await _said(world) == (True, True, True, True, 1)


async def test_a_second_before_the_deadline_no_path_says_overdue(world: World) -> None:
    world.clock[0] = DUE - dt.timedelta(seconds=1)
    assert await _said(world) == (False, False, False, False, 0)
