"""Departments' scores and ranking: the formula on its own (service mix, credibility, each
component's direction), and departmentRanking over HTTP on every backend, on a seeded set
whose correct order is known in advance and differs from the order of raw figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from gateway.edge.app import create_app
from gateway.requests.scores import ScoreWeights, Tally, rank_units
from tests.conftest import GraphQLClient, make_backend, settings_for
from tests.gateway.requests.contact_rows import Req, add_requests, catalogue

W = ScoreWeights()


def tally(
    unit: str,
    service: str,
    handled: int,
    on_time: int,
    *,
    resolved: int | None = None,
    not_reopened: int | None = None,
    rated: int = 0,
    points: int = 0,
) -> Tally:
    resolved = handled if resolved is None else resolved
    return Tally(
        unit=unit,
        service=service,
        handled=handled,
        fell_due=handled,
        on_time=on_time,
        resolved=resolved,
        not_reopened=resolved if not_reopened is None else not_reopened,
        rated=rated,
        rating_points=points,
    )


# Tree pruning is hard everywhere (40 % on time city-wide), certificates easy (90 %).
MIXED = [
    tally("green_space", "pruning", 40, 24),  # 60 % on hard work: best against its mix
    tally("civil_works", "pruning", 40, 8),  # 20 % on hard work: worst
    tally("permits", "certificate", 40, 34),  # 85 % on easy work: below its mix
    tally("transport", "certificate", 40, 38),  # 95 % on easy work: above its mix
]
# Raw shares on time would order them transport, permits, green_space, civil_works.
EXPECTED_ORDER = ["green_space", "transport", "permits", "civil_works"]


def test_service_mix_ranks_hard_work_done_well_above_easy_work_done_averagely() -> None:
    ranked = rank_units(MIXED, W)
    assert [unit.unit for unit in ranked] == EXPECTED_ORDER
    assert [unit.rank for unit in ranked] == [1, 2, 3, 4]
    green = ranked[0].components[0]
    assert green.name == "timeliness"
    assert (green.observed, green.expected) == (0.6, 0.4)
    # City 0.65 + (0.6 − 0.4) = 0.85, blended 40/60 with the city's 0.65.
    assert green.adjusted == pytest.approx(0.85 * 40 / 60 + 0.65 * 20 / 60, abs=1e-4)


def test_a_unit_with_few_requests_is_pulled_toward_the_city_not_ranked_first_by_luck() -> None:
    tallies = [
        tally("steady", "s", 200, 180),  # 90 % of 200
        tally("lucky", "s", 2, 2),  # 100 % of 2
        tally("average", "s", 200, 150),  # 75 % of 200
    ]
    ranked = [unit.unit for unit in rank_units(tallies, W)]
    assert ranked == ["steady", "lucky", "average"]
    # Without credibility, luck wins.
    raw = ScoreWeights(credibility=0)
    assert [unit.unit for unit in rank_units(tallies, raw)] == ["lucky", "steady", "average"]


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        # resolved more
        (tally("a", "s", 50, 25, resolved=45), tally("b", "s", 50, 25, resolved=30)),
        # reopened less
        (
            tally("a", "s", 50, 25, not_reopened=50),
            tally("b", "s", 50, 25, not_reopened=35),
        ),
        # rated higher (4.5 against 2 on average)
        (
            tally("a", "s", 50, 25, rated=40, points=140),
            tally("b", "s", 50, 25, rated=40, points=40),
        ),
    ],
    ids=["resolution", "reopening", "rating"],
)
def test_each_component_counts_in_its_direction(better: Tally, worse: Tally) -> None:
    ranked = rank_units([worse, better], W)
    assert [unit.unit for unit in ranked] == ["a", "b"]
    assert ranked[0].score > ranked[1].score


def test_weights_decide_what_counts() -> None:
    tallies = [
        tally("fast", "s", 50, 50, resolved=30),
        tally("thorough", "s", 50, 20, resolved=50),
    ]
    on_time = ScoreWeights(timeliness=1, resolution=0, reopening=0, rating=0)
    resolving = ScoreWeights(timeliness=0, resolution=1, reopening=0, rating=0)
    assert rank_units(tallies, on_time)[0].unit == "fast"
    assert rank_units(tallies, resolving)[0].unit == "thorough"
    with pytest.raises(ValueError, match="weights"):
        ScoreWeights(timeliness=0, resolution=0, reopening=0, rating=0)


def test_no_ratings_anywhere_leaves_the_rating_out_rather_than_counting_it_as_zero() -> None:
    ranked = rank_units([tally("a", "s", 10, 10)], W)
    assert [c.name for c in ranked[0].components] == ["timeliness", "resolution", "reopening"]
    assert ranked[0].score == 100.0


# --- departmentRanking over HTTP ----------------------------------------------------------

NOW = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
T0 = dt.datetime(2021, 3, 1, 6, 0)  # naive UTC
DEADLINE = T0 + dt.timedelta(days=7)


def seeded() -> list[Req]:
    """MIXED as requests: each on time answered the day before its deadline, each late the
    day after; all resolved, none reopened, all rated 4, so timeliness alone differs."""
    rows = []
    for t in MIXED:
        for i in range(t.handled):
            answered = DEADLINE + dt.timedelta(days=-1 if i < t.on_time else 1)
            rows.append(
                Req(
                    service=t.service,
                    registered=T0 + dt.timedelta(minutes=i),
                    status="CLOSED",
                    department=t.unit,
                    deadline=DEADLINE,
                    resolved=answered,
                    closed=answered,
                    rating=4,
                )
            )
    # Outside the range: would turn the order upside down if counted.
    rows.append(
        Req(
            service="pruning",
            registered=dt.datetime(2020, 1, 1),
            status="CLOSED",
            department="civil_works",
            deadline=DEADLINE,
            resolved=T0,
            rating=5,
        )
    )
    # Referred to another agency: not the department's to answer.
    rows.append(
        Req(
            service="pruning",
            registered=T0,
            status="REFERRED",
            department="permits",
            referred_to="water",
        )
    )
    return rows


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def ranking_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GraphQLClient]:
    tmp: Path = tmp_path_factory.mktemp(f"scores-{request.param}")
    backend, server = await make_backend(request.param, tmp, parcels=0)
    app = create_app(settings_for(backend), wall_clock=lambda: NOW)
    try:
        async with app.router.lifespan_context(app):
            engine = app.state.databases.engine("contact")
            ids = await catalogue(engine, [("pruning", "CENTRE_137"), ("certificate", "PORTAL")])
            await add_requests(engine, ids, seeded())
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
            ) as http:
                yield GraphQLClient(http)
    finally:
        if server is not None:
            await server.drop_all()


RANKING = """
query ($since: DateTime, $until: DateTime) {
  departmentRanking(since: $since, until: $until) {
    rank unit score requests
    components { name weight count observed expected adjusted }
  }
}"""


async def test_department_ranking_orders_a_seeded_set_as_known_in_advance(
    ranking_client: GraphQLClient,
) -> None:
    # The public may see it: a ranking names departments, never citizens.
    body = await ranking_client(
        RANKING, {"since": "2021-01-01T00:00:00Z", "until": "2021-06-01T00:00:00Z"}
    )
    assert "errors" not in body, body
    ranked = body["data"]["departmentRanking"]
    assert [unit["unit"] for unit in ranked] == EXPECTED_ORDER
    assert [unit["rank"] for unit in ranked] == [1, 2, 3, 4]
    assert [unit["requests"] for unit in ranked] == [40, 40, 40, 40]
    rated = [replace(t, rated=t.handled, rating_points=3 * t.handled) for t in MIXED]
    expected = {unit.unit: unit.score for unit in rank_units(rated, W)}
    assert {unit["unit"]: unit["score"] for unit in ranked} == expected
    green = {c["name"]: c for c in ranked[0]["components"]}
    assert green["timeliness"]["observed"] == 0.6
    assert green["timeliness"]["expected"] == 0.4
    assert green["rating"]["observed"] == 0.75  # 4 of 5 → (4 − 1) / 4
    assert green["resolution"]["observed"] == 1.0


async def test_department_ranking_over_all_history_counts_the_older_request(
    ranking_client: GraphQLClient,
) -> None:
    body = await ranking_client(RANKING)
    ranked = {unit["unit"]: unit for unit in body["data"]["departmentRanking"]}
    assert ranked["civil_works"]["requests"] == 41


async def test_an_empty_or_reversed_range_is_refused(ranking_client: GraphQLClient) -> None:
    body = await ranking_client(
        RANKING, {"since": "2021-06-01T00:00:00Z", "until": "2021-01-01T00:00:00Z"}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "until"


async def test_region_ranking_names_its_regions(ranking_client: GraphQLClient) -> None:
    body = await ranking_client(
        """query ($since: DateTime, $until: DateTime) {
          regionRanking(since: $since, until: $until) { rank unit nameFa nameEn requests score }
        }""",
        {"since": "2021-01-01T00:00:00Z", "until": "2021-06-01T00:00:00Z"},
    )
    (region,) = body["data"]["regionRanking"]
    assert region == {
        "rank": 1,
        "unit": "1",
        "nameFa": "منطقه 1",
        "nameEn": "Region 1",
        "requests": 160,
        # Alone, a unit is the city: every adjusted rate is the city's own.
        "score": region["score"],
    }
    departments = (await ranking_client(RANKING, {"since": "2021-01-01T00:00:00Z"}))["data"]
    assert min(u["score"] for u in departments["departmentRanking"]) < region["score"]
