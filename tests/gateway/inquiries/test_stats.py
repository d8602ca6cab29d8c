"""inquiryStats over HTTP with real keys, on every backend: counts by status and verdict,
grouping by each key and by several, Jalali months that start at midnight in Tehran, exact
medians and 90th percentiles, since/until, and who counts what (a partner its own, a
department what holds its checks, operators and inspection all, the public nothing).

The inquiries are inserted directly, submitted in 1391 (2012), a year no other test uses, so
that every figure below is exact on the shared databases; the app's clock stands at the start
of 2013, which decides what is overdue."""

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
from gateway.inquiries.stats import jalali_month
from gateway.inquiries.tracking import new_tracking_code
from tests.conftest import Backend, GraphQLClient, mint_key, settings_for

NOW = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
SINCE = "2012-10-01T00:00:00Z"
UNTIL = "2013-01-01T00:00:00Z"


@dataclass(frozen=True)
class Row:
    """One inquiry: who asked, what, where, when (naive UTC), and where it stands. `check`
    is the authority of its one check; `due` makes that check wait in the queue."""

    partner: str  # "A", "B" (notaries), "BANK"
    kind: str
    region: int
    submitted: dt.datetime
    status: str
    verdict: str | None = None
    seconds: int | None = None  # to the verdict
    check: str | None = None
    due: dt.datetime | None = None


PT, MG = "PROPERTY_TRANSFER", "MORTGAGE"
D, W, P = "DECIDED", "WAITING_FOR_DEPARTMENT", "PENDING"
OVERDUE, IN_TIME = dt.datetime(2012, 12, 12), dt.datetime(2013, 2, 1)  # due, as of NOW
ROWS = (
    # 20:00 UTC is 23:30 in Tehran, still 1391-08-30; 21:00 UTC is 1391-09-01 there.
    Row("A", PT, 1, dt.datetime(2012, 11, 20, 20, 0), D, "CLEAR", 60, "planning"),
    Row("A", PT, 1, dt.datetime(2012, 11, 20, 21, 0), D, "NOT_CLEAR", 120, "revenue"),
    # November 28 and December 5 are both in 1391-09 (Azar).
    Row("A", PT, 2, dt.datetime(2012, 11, 28, 8, 0), D, "CLEAR", 180, "revenue"),
    Row("A", PT, 2, dt.datetime(2012, 12, 5, 8, 0), D, "CLEAR", 600, "revenue"),
    Row("A", PT, 1, dt.datetime(2012, 12, 5, 9, 0), W, check="planning", due=OVERDUE),
    Row("B", PT, 1, dt.datetime(2012, 11, 10, 8, 0), D, "NOT_CLEAR", 240, "revenue"),
    Row("B", PT, 2, dt.datetime(2012, 12, 10, 8, 0), P),
    Row("BANK", MG, 2, dt.datetime(2012, 10, 15, 8, 0), D, "CLEAR", 30, "planning"),
    Row("A", PT, 2, dt.datetime(2012, 11, 25, 8, 0), W, check="planning", due=IN_TIME),
    Row("BANK", MG, 1, dt.datetime(2012, 12, 1, 8, 0), D, "NOT_CLEAR", 90, "planning"),
)  # fmt: skip

STATS = """
query($groupBy: [InquiryStatsGrouping!]!, $since: DateTime, $until: DateTime) {
  inquiryStats(groupBy: $groupBy, since: $since, until: $until) {
    region kind month partner
    total pending waitingForDepartment decided clear notClear overdue
    medianSecondsToVerdict p90SecondsToVerdict
  }
}
"""
KEYS = ("region", "kind", "month", "partner")


def figures(
    total: int,
    *,
    pending: int = 0,
    waiting: int = 0,
    decided: int = 0,
    clear: int = 0,
    not_clear: int = 0,
    overdue: int = 0,
    median: float | None = None,
    p90: float | None = None,
) -> dict[str, Any]:
    return {
        "total": total,
        "pending": pending,
        "waitingForDepartment": waiting,
        "decided": decided,
        "clear": clear,
        "notClear": not_clear,
        "overdue": overdue,
        "medianSecondsToVerdict": median,
        "p90SecondsToVerdict": p90,
    }


@dataclass
class World:
    http: httpx.AsyncClient
    keys: dict[str, str]
    organisations: dict[str, str]  # "A", "B", "BANK" → the organisation inquiries name

    def client(self, label: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, None if label is None else self.keys[label])

    async def stats(
        self,
        label: str | None,
        group_by: list[str],
        since: str | None = SINCE,
        until: str | None = UNTIL,
    ) -> dict[str, Any]:
        variables = {"groupBy": group_by, "since": since, "until": until}
        return await self.client(label)(STATS, variables)

    async def groups(self, label: str, group_by: list[str], **given: Any) -> list[dict[str, Any]]:
        body = await self.stats(label, group_by, **given)
        assert "errors" not in body, body
        found: list[dict[str, Any]] = body["data"]["inquiryStats"]
        return found

    def partner(self, label: str) -> str:
        return self.organisations[label]


async def _insert(databases: Databases, organisations: dict[str, str]) -> list[int]:
    ids = []
    async with databases.session("gateway") as session, session.begin():
        for row in ROWS:
            decided = (
                None if row.seconds is None else row.submitted + dt.timedelta(seconds=row.seconds)
            )
            inquiry = InquiryRecord(
                tracking_code=new_tracking_code(),
                kind=row.kind,
                partner_kind="bank" if row.partner == "BANK" else "notary",
                partner_id=f"stats-{row.partner}",
                organisation=organisations[row.partner],
                idempotency_key=str(uuid.uuid4()),
                input_digest="0" * 64,
                parcel_id=1,
                region=row.region,
                renewal_code="3-3-1-1",
                registry_plate=None,
                applicant_national_code="0084575948",
                status=row.status,
                verdict=row.verdict,
                reasons=[],
                submitted_at=row.submitted,
                decided_at=decided,
                valid_until=None if decided is None else decided + dt.timedelta(days=30),
            )
            session.add(inquiry)
            await session.flush()
            ids.append(inquiry.id)
            if row.check is not None:
                session.add(
                    InquiryCheckRecord(
                        inquiry_id=inquiry.id,
                        name="building_matches_permit" if row.due else "dues_settled",
                        authority=row.check,
                        manual=row.due is not None,
                        state="queued" if row.due else "done",
                        outcome=None if row.due else "PASS",
                        queued_at=row.submitted if row.due else None,
                        due_at=row.due,
                        attempts=0,
                    )
                )
    return ids


@pytest.fixture(scope="module")
async def world(backend: Backend, keys: dict[str, str]) -> AsyncIterator[World]:
    databases = Databases({"gateway": backend.urls["gateway"]})
    made = dict(keys)
    principals = {}
    for label, kind, name, department, organisation in (
        ("stats_notary_a", PrincipalKind.NOTARY, "Stats notary A", None, None),
        ("stats_notary_b", PrincipalKind.NOTARY, "Stats notary B", None, None),
        ("stats_bank", PrincipalKind.BANK, "Stats bank", None, "062"),
        ("stats_planning", PrincipalKind.DEPARTMENT, "Stats planning desk", "planning", None),
    ):
        info, key = await mint_key(databases, kind, name, department, organisation=organisation)
        made[label], principals[label] = key, info.principal_id
    organisations = {
        "A": f"notary:{principals['stats_notary_a']}",
        "B": f"notary:{principals['stats_notary_b']}",
        "BANK": "062",
    }
    ids = await _insert(databases, organisations)
    app = create_app(settings_for(backend), wall_clock=lambda: NOW)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            yield World(http, made, organisations)
    finally:
        async with databases.gateway.begin() as connection:
            await connection.execute(
                delete(InquiryCheckRecord).where(InquiryCheckRecord.inquiry_id.in_(ids))
            )
            await connection.execute(delete(InquiryRecord).where(InquiryRecord.id.in_(ids)))
        await databases.dispose()


def _keyed(groups: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    """Groups by their key (one key: the value; several: a tuple), figures only; keys the
    grouping does not use must be null."""
    keyed = {}
    for group in groups:
        assert all(group[k] is None for k in KEYS if k not in keys), group
        key = tuple(group[k] for k in keys)
        keyed[key[0] if len(key) == 1 else key] = {
            name: value for name, value in group.items() if name not in KEYS
        }
    return keyed


async def test_one_total_group_counts_every_status_and_verdict_with_exact_percentiles(
    world: World,
) -> None:
    [total] = await world.groups("operator", [])
    # Decided in 30, 60, 90, 120, 180, 240, 600 s: the median is the 4th; the 90th
    # percentile lies 0.4 of the way from the 6th to the 7th.
    assert _keyed([total]) == {
        (): figures(
            10, pending=1, waiting=2, decided=7, clear=4, not_clear=3, overdue=1,
            median=120.0, p90=384.0,
        )
    }  # fmt: skip


async def test_grouped_by_kind(world: World) -> None:
    groups = await world.groups("operator", ["KIND"])
    assert [g["kind"] for g in groups] == [MG, PT]
    assert _keyed(groups, "kind") == {
        MG: figures(2, decided=2, clear=1, not_clear=1, median=60.0, p90=84.0),
        PT: figures(
            8, pending=1, waiting=2, decided=5, clear=3, not_clear=2, overdue=1,
            median=180.0, p90=456.0,
        ),
    }  # fmt: skip


async def test_grouped_by_region(world: World) -> None:
    groups = await world.groups("operator", ["REGION"])
    assert [g["region"] for g in groups] == [1, 2]
    assert _keyed(groups, "region") == {
        1: figures(
            5, waiting=1, decided=4, clear=1, not_clear=3, overdue=1, median=105.0, p90=204.0
        ),
        2: figures(5, pending=1, waiting=1, decided=3, clear=3, median=180.0, p90=516.0),
    }


async def test_jalali_months_start_at_midnight_in_tehran_not_with_gregorian_months(
    world: World,
) -> None:
    # 2012-11-20 20:00 UTC is the evening of 1391-08-30 in Tehran, 21:00 UTC already
    # 1391-09-01; 28 November and 5 December, Gregorian months apart, are both 1391-09.
    assert jalali_month(dt.datetime(2012, 11, 20, 20, 0)) == "1391-08"
    assert jalali_month(dt.datetime(2012, 11, 20, 21, 0)) == "1391-09"
    groups = await world.groups("operator", ["MONTH"])
    assert [g["month"] for g in groups] == ["1391-07", "1391-08", "1391-09"]
    assert _keyed(groups, "month") == {
        "1391-07": figures(1, decided=1, clear=1, median=30.0, p90=30.0),
        "1391-08": figures(2, decided=2, clear=1, not_clear=1, median=150.0, p90=222.0),
        "1391-09": figures(
            7, pending=1, waiting=2, decided=4, clear=2, not_clear=2, overdue=1,
            median=150.0, p90=474.0,
        ),
    }  # fmt: skip


async def test_grouped_by_partner_ordered_by_organisation(world: World) -> None:
    groups = await world.groups("operator", ["PARTNER"])
    partners = [world.partner(label) for label in ("A", "B", "BANK")]
    assert [g["partner"] for g in groups] == sorted(partners)
    assert _keyed(groups, "partner") == {
        world.partner("A"): figures(
            6, waiting=2, decided=4, clear=3, not_clear=1, overdue=1, median=150.0, p90=474.0
        ),
        world.partner("B"): figures(2, pending=1, decided=1, not_clear=1, median=240.0, p90=240.0),
        world.partner("BANK"): figures(2, decided=2, clear=1, not_clear=1, median=60.0, p90=84.0),
    }


async def test_groupings_combine_ordered_by_each_key_in_turn(world: World) -> None:
    groups = await world.groups("operator", ["KIND", "MONTH"])
    assert [(g["kind"], g["month"]) for g in groups] == [
        (MG, "1391-07"),
        (MG, "1391-09"),
        (PT, "1391-08"),
        (PT, "1391-09"),
    ]
    assert _keyed(groups, "kind", "month")[(PT, "1391-09")] == figures(
        6, pending=1, waiting=2, decided=3, clear=2, not_clear=1, overdue=1,
        median=180.0, p90=516.0,
    )  # fmt: skip
    # A group with nothing decided has no percentiles.
    by_partner = _keyed(await world.groups("operator", ["PARTNER", "MONTH"]), "partner", "month")
    assert by_partner[(world.partner("B"), "1391-09")] == figures(1, pending=1)
    every = await world.groups("operator", ["REGION", "KIND", "MONTH", "PARTNER"])
    assert sum(g["total"] for g in every) == 10
    assert all(None not in (g["region"], g["kind"], g["month"], g["partner"]) for g in every)


async def test_since_is_inclusive_and_until_exclusive(world: World) -> None:
    # From 20:30 UTC on 20 November (after the first, before the second) to the moment of
    # the 5 December one, which is left out.
    [total] = await world.groups(
        "operator", [], since="2012-11-20T20:30:00Z", until="2012-12-05T08:00:00Z"
    )
    assert _keyed([total]) == {
        (): figures(4, waiting=1, decided=3, clear=1, not_clear=2, median=120.0, p90=168.0)
    }
    [exact] = await world.groups(
        "operator", [], since="2012-11-20T21:00:00Z", until="2012-11-20T21:00:01Z"
    )
    assert exact["total"] == 1


@pytest.mark.parametrize(
    ("group_by", "since", "until", "field"),
    [
        ([], "2012-12-01T00:00:00Z", "2012-12-01T00:00:00Z", "until"),
        ([], "2012-12-01T00:00:00Z", "2012-11-01T00:00:00Z", "until"),
        ([], "2009-01-01T00:00:00Z", "2013-01-01T00:00:00Z", "since"),
        (["KIND", "KIND"], SINCE, UNTIL, "groupBy"),
    ],
)
async def test_a_bad_range_or_grouping_is_bad_user_input_naming_it(
    world: World, group_by: list[str], since: str, until: str, field: str
) -> None:
    body = await world.stats("operator", group_by, since=since, until=until)
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    assert body["data"] is None


async def test_a_partner_counts_only_its_own_inquiries(world: World) -> None:
    # No range: whatever else the shared database holds, each sees its own alone.
    [own] = await world.groups("stats_notary_a", ["PARTNER"], since=None, until=None)
    assert own["partner"] == world.partner("A")
    assert own["total"] == 6
    [total_b] = await world.groups("stats_notary_b", [], since=None, until=None)
    assert total_b["total"] == 2
    by_partner = await world.groups("stats_bank", ["PARTNER"], since=None, until=None)
    assert [(g["partner"], g["total"]) for g in by_partner] == [("062", 2)]
    # Another notary of the test suite counts none of them.
    [other] = await world.groups("notary_a", [])
    assert other["total"] == 0


async def test_a_department_counts_the_inquiries_holding_its_checks(world: World) -> None:
    [planning] = await world.groups("stats_planning", [])
    assert (planning["total"], planning["waitingForDepartment"], planning["overdue"]) == (5, 2, 1)
    [revenue] = await world.groups("revenue", [])
    assert (revenue["total"], revenue["decided"]) == (4, 4)


async def test_operators_and_inspection_count_every_inquiry(world: World) -> None:
    for label in ("operator", "inspection"):
        [total] = await world.groups(label, [])
        assert total["total"] == 10, label


async def test_the_public_is_forbidden(world: World) -> None:
    body = await world.stats(None, [])
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
