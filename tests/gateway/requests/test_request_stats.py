"""Citizen requests' figures over HTTP, on every backend, on a small set whose every figure is
known: counts by region, service, status and Jalali month (a month starts at midnight in
Tehran), the most frequent problems per region, hotspots on the grid (thin cells never shown),
each service's public figures (median days to resolution, share on time), and the most
engaged reporters who consented (personal: not for the public, audited when read); the
public sees no count below the small-cell floor of three."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Float, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.contact import CitizenRequestRecord
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.figures import Floor, jalali_month
from tests.conftest import GraphQLClient, make_backend, mint_key, settings_for
from tests.gateway.requests.contact_rows import Req, add_requests, catalogue

NOW = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
RANGE = {"since": "2021-03-21T00:00:00Z", "until": "2021-06-01T00:00:00Z"}
DAY = dt.timedelta(days=1)
A = (37.5510, 45.0710)  # one cell of the grid, region 1
B = (37.5800, 45.0200)  # another, region 1
C = (37.5200, 45.1200)  # region 2
M1, M3, M4 = "09120000001", "09120000003", "09120000004"
NAMES = {M1: "مریم احمدی", M3: "علی رضایی", M4: "زهرا کریمی"}
LATER = dt.datetime(2021, 7, 1)  # a deadline still ahead at NOW


def at(month: int, day: int, hour: int = 8) -> dt.datetime:
    return dt.datetime(2021, month, day, hour, 0)


def pothole(registered: dt.datetime, answered_after: dt.timedelta | None, **kw: Any) -> Req:
    return Req(
        "pothole",
        registered,
        deadline=registered + 7 * DAY,
        resolved=None if answered_after is None else registered + answered_after,
        latitude=A[0],
        longitude=A[1],
        **kw,
    )


ROWS = [
    # 19:00 UTC on April 20 is 23:30 in Tehran, still 1400-01-31; 20:00 is 1400-02-01.
    pothole(at(4, 20, 19), 2 * DAY, status="CLOSED", mobile=M1, name=NAMES[M1], consent=True),
    pothole(at(4, 20, 20), 4 * DAY, status="CLOSED", mobile=M1, name=NAMES[M1]),
    pothole(at(5, 1), 10 * DAY, status="RESOLVED", kind="REQUEST", mobile=M1, name=NAMES[M1]),
    # Open past its deadline: overdue, and late for the share on time.
    pothole(at(5, 2), None, status="IN_PROGRESS", mobile="09120000002"),
    Req("lighting", at(5, 3), kind="REQUEST", deadline=LATER, latitude=B[0], longitude=B[1],
        mobile=M3, name=NAMES[M3], consent=True),
    Req("lighting", at(5, 4), status="WAITING_FOR_CITIZEN", kind="REQUEST", deadline=LATER,
        latitude=B[0], longitude=B[1], mobile=M3, name=NAMES[M3]),
    # Thanks: not a problem, so neither a frequent problem nor in a hotspot.
    Req("trees", at(5, 5), status="CLOSED", kind="THANKS", latitude=B[0], longitude=B[1],
        mobile=M3, name=NAMES[M3]),
    Req("trees", at(5, 6), region=2, deadline=LATER, latitude=C[0], longitude=C[1],
        mobile=M4, name=NAMES[M4], consent=True),
    Req("trees", at(5, 7), region=2, deadline=LATER, latitude=C[0], longitude=C[1],
        mobile=M4, name=NAMES[M4]),
    Req("trees", at(5, 8), region=2, deadline=LATER, latitude=C[0], longitude=C[1],
        mobile="09120000006"),
    Req("pothole", at(5, 9), status="REFERRED", kind="CRITICISM", region=2,
        referred_to="water", mobile="09120000005"),
    # Before the range.
    pothole(dt.datetime(2020, 1, 1), 1 * DAY, status="CLOSED", mobile=M1, name=NAMES[M1]),
]  # fmt: skip


@dataclass
class Clients:
    public: GraphQLClient
    operator: GraphQLClient
    counter: GraphQLClient  # keyed, but without personal:read
    engine: AsyncEngine  # the contact database


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def clients(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Clients]:
    tmp: Path = tmp_path_factory.mktemp(f"request-stats-{request.param}")
    backend, server = await make_backend(request.param, tmp, parcels=0)
    app = create_app(settings_for(backend), wall_clock=lambda: NOW)
    try:
        async with app.router.lifespan_context(app):
            databases = app.state.databases
            ids = await catalogue(
                databases.engine("contact"),
                [("pothole", "PORTAL"), ("lighting", "CENTRE_137"), ("trees", "CENTRE_137")],
            )
            await add_requests(databases.engine("contact"), ids, ROWS)
            _, operator = await mint_key(databases, PrincipalKind.OPERATOR, "ops")
            _, counter = await mint_key(databases, PrincipalKind.COUNTER, "counter")
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
            ) as http:
                yield Clients(
                    GraphQLClient(http),
                    GraphQLClient(http, operator),
                    GraphQLClient(http, counter),
                    databases.engine("contact"),
                )
    finally:
        if server is not None:
            await server.drop_all()


COUNTS = """
query ($groupBy: [RequestCountGrouping!]!, $since: DateTime, $until: DateTime) {
  requestCounts(groupBy: $groupBy, since: $since, until: $until) {
    serviceCode region status kind month total open resolved referred overdue
  }
}"""


async def counts(client: GraphQLClient, *group_by: str, **extra: Any) -> list[dict[str, Any]]:
    body = await client(COUNTS, {"groupBy": list(group_by), **RANGE, **extra})
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["requestCounts"]
    return found


PROBLEMS = """query ($since: DateTime, $until: DateTime) {
  frequentProblems(since: $since, until: $until, perRegion: 5) {
    region problems { serviceCode requests }
  }
}"""

TRANSPARENCY = """query ($since: DateTime, $until: DateTime) {
  serviceTransparency(since: $since, until: $until) {
    serviceCode requests resolved medianDaysToResolution shareOnTime
  }
}"""


def figures(group: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (group["total"], group["open"], group["resolved"], group["referred"], group["overdue"])


async def test_one_total_counts_open_resolved_referred_and_overdue(clients: Clients) -> None:
    (total,) = await counts(clients.operator)
    assert figures(total) == (11, 6, 3, 1, 1)
    (everything,) = await counts(clients.operator, since=None, until=None)
    assert everything["total"] == 12


async def test_counts_by_region_service_and_status(clients: Clients) -> None:
    by_region = await counts(clients.operator, "REGION")
    assert [(g["region"], g["total"]) for g in by_region] == [(1, 7), (2, 4)]
    by_service = await counts(clients.operator, "SERVICE")
    assert {g["serviceCode"]: g["total"] for g in by_service} == {
        "lighting": 2,
        "pothole": 5,
        "trees": 4,
    }
    both = await counts(clients.operator, "REGION", "SERVICE")
    assert {(g["region"], g["serviceCode"]): g["total"] for g in both} == {
        (1, "pothole"): 4,
        (1, "lighting"): 2,
        (1, "trees"): 1,
        (2, "trees"): 3,
        (2, "pothole"): 1,
    }
    by_status = {g["status"]: g["total"] for g in await counts(clients.operator, "STATUS")}
    assert by_status == {
        "ASSIGNED": 4,
        "CLOSED": 3,
        "IN_PROGRESS": 1,
        "REFERRED": 1,
        "RESOLVED": 1,
        "WAITING_FOR_CITIZEN": 1,
    }


async def test_jalali_months_start_at_midnight_in_tehran(clients: Clients) -> None:
    assert jalali_month(at(4, 20, 19)) == "1400-01"
    assert jalali_month(at(4, 20, 20)) == "1400-02"
    by_month = await counts(clients.operator, "MONTH")
    # Khordad (1400-03) is in the range but empty: a month without requests has no group.
    assert [(g["month"], g["total"]) for g in by_month] == [("1400-01", 1), ("1400-02", 10)]


async def test_most_frequent_problems_per_region_leave_thanks_out(clients: Clients) -> None:
    body = await clients.operator(
        """query ($since: DateTime, $until: DateTime) {
          frequentProblems(since: $since, until: $until, perRegion: 5) {
            region problems { serviceCode requests }
          }
        }""",
        RANGE,
    )
    assert body["data"]["frequentProblems"] == [
        {
            "region": 1,
            "problems": [
                {"serviceCode": "pothole", "requests": 4},
                {"serviceCode": "lighting", "requests": 2},
            ],
        },
        {
            "region": 2,
            "problems": [
                {"serviceCode": "trees", "requests": 3},
                {"serviceCode": "pothole", "requests": 1},
            ],
        },
    ]


async def test_hotspots_show_busy_cells_and_never_a_thin_one(clients: Clients) -> None:
    body = await clients.public(
        """query ($since: DateTime, $until: DateTime) {
          requestHotspots(since: $since, until: $until) {
            south west north east count topServiceCode
          }
        }""",
        RANGE,
    )
    spots = body["data"]["requestHotspots"]
    # Cell B holds two problems (and a thanks): below the minimum of three, so not shown.
    assert [(s["count"], s["topServiceCode"]) for s in spots] == [(4, "pothole"), (3, "trees")]
    for spot, (lat, lon) in zip(spots, (A, C), strict=True):
        assert spot["south"] <= lat < spot["north"]
        assert spot["west"] <= lon < spot["east"]
        # About 500 m on a side.
        assert 480 < (spot["north"] - spot["south"]) * 111_320 < 520


async def test_transparency_gives_each_services_median_and_share_on_time(
    clients: Clients,
) -> None:
    body = await clients.operator(
        """query ($since: DateTime, $until: DateTime) {
          serviceTransparency(since: $since, until: $until) {
            serviceCode nameFa requests resolved medianDaysToResolution shareOnTime
          }
        }""",
        RANGE,
    )
    by_code = {f["serviceCode"]: f for f in body["data"]["serviceTransparency"]}
    assert by_code["pothole"] == {
        "serviceCode": "pothole",
        "nameFa": "خدمت pothole",
        "requests": 5,
        "resolved": 3,
        "medianDaysToResolution": 4.0,  # of 2, 4 and 10 days
        # Fell due: two answered in time, one late, one open past its deadline.
        "shareOnTime": 0.5,
    }
    assert by_code["lighting"]["medianDaysToResolution"] is None
    assert by_code["lighting"]["shareOnTime"] is None  # nothing fell due yet
    assert "09120000" not in str(body)


ENGAGED = """
query ($since: DateTime, $until: DateTime, $first: Int!) {
  engagedCitizens(since: $since, until: $until, first: $first) { name requests lastReportedAt }
}"""


async def test_engaged_citizens_are_those_who_consented_and_not_for_the_public(
    clients: Clients,
) -> None:
    for anonymous in (clients.public, clients.counter):
        refused = await anonymous(ENGAGED, {**RANGE, "first": 18})
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert NAMES[M1] not in str(refused)
    body = await clients.operator(ENGAGED, {**RANGE, "first": 18})
    assert "errors" not in body, body
    # M3 and M1 three each (M3 the later), M4 two; the others never consented.
    assert [(c["name"], c["requests"]) for c in body["data"]["engagedCitizens"]] == [
        (NAMES[M3], 3),
        (NAMES[M1], 3),
        (NAMES[M4], 2),
    ]
    # Audited as every other read of a citizen's name: ("CitizenRequest", id), here each
    # citizen's latest request; never under the mobile number.
    async with clients.engine.connect() as connection:
        latest = {
            str(
                await connection.scalar(
                    select(func.max(CitizenRequestRecord.id)).where(
                        CitizenRequestRecord.citizen_mobile == mobile,
                        CitizenRequestRecord.registered_at >= dt.datetime(2021, 3, 21),
                        CitizenRequestRecord.registered_at < dt.datetime(2021, 6, 1),
                    )
                )
            )
            for mobile in (M1, M3, M4)
        }
    trail = await clients.operator(
        """{ auditTrail(filter: {subjectType: "CitizenRequest"}, first: 100) {
              edges { node { subjectId operation } } } }"""
    )
    read = {edge["node"]["subjectId"] for edge in trail["data"]["auditTrail"]["edges"]}
    assert latest <= read
    by_mobile = await clients.operator(
        """{ auditTrail(filter: {subjectType: "Citizen"}, first: 20) {
              edges { node { subjectId } } } }"""
    )
    assert by_mobile["data"]["auditTrail"]["edges"] == []


async def test_the_grid_floor_rounds_down_on_every_backend(clients: Clients) -> None:
    values = (-1.5, -2.0, -0.25, 0.0, 2.5, 8333.999, 7968.0001)
    async with clients.engine.connect() as connection:
        floors = (
            await connection.execute(select(*(Floor(literal(v, Float)) for v in values)))
        ).one()
    assert list(floors) == [-2, -2, -1, 0, 2, 8333, 7968]


async def test_public_counts_never_show_fewer_than_three(clients: Clients) -> None:
    for caller in (clients.public, clients.counter):  # neither has requests:all
        (total,) = await counts(caller)
        # 1 referred and 1 overdue are below the floor: they read 0.
        assert figures(total) == (11, 6, 3, 0, 0)
        by_region_service = await counts(caller, "REGION", "SERVICE")
        assert {(g["region"], g["serviceCode"]): g["total"] for g in by_region_service} == {
            (1, "pothole"): 4,
            (2, "trees"): 3,
        }
        # One second around one request: nothing to see.
        second = {"since": "2021-05-02T08:00:00Z", "until": "2021-05-02T08:00:01Z"}
        assert await counts(caller, **second) == []
        assert (await counts(clients.operator, **second))[0]["total"] == 1
        for group in await counts(caller, "STATUS", "KIND", "MONTH"):
            assert all(n == 0 or n >= 3 for n in figures(group)), group


async def test_public_problems_and_transparency_have_the_same_floor(clients: Clients) -> None:
    problems = await clients.public(PROBLEMS, RANGE)
    assert problems["data"]["frequentProblems"] == [
        {"region": 1, "problems": [{"serviceCode": "pothole", "requests": 4}]},
        {"region": 2, "problems": [{"serviceCode": "trees", "requests": 3}]},
    ]
    body = await clients.public(TRANSPARENCY, RANGE)
    by_code = {f["serviceCode"]: f for f in body["data"]["serviceTransparency"]}
    assert by_code["pothole"] == {
        "serviceCode": "pothole",
        "requests": 5,
        "resolved": 3,
        "medianDaysToResolution": 4.0,
        "shareOnTime": 0.5,
    }
    # Two lighting requests: listed, their figures suppressed.
    assert by_code["lighting"] == {
        "serviceCode": "lighting",
        "requests": 0,
        "resolved": 0,
        "medianDaysToResolution": None,
        "shareOnTime": None,
    }
    # Four about trees, none resolved in the range (below the floor either way).
    assert by_code["trees"]["requests"] == 4
    assert by_code["trees"]["medianDaysToResolution"] is None
