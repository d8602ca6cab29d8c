"""Routing by rules kept as data: ordered, first match wins, over service, group, kind, region,
an area, Tehran's hours and the request's answers; targets filled from the service and region;
matters of other agencies referred; the rules run again when a request's service changes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from db.contact import CitizenRequestRecord
from gateway.requests import geo, routing
from gateway.requests.geo import Point
from gateway.requests.records import ServiceDefinition, load_history, load_service
from tests.conftest import Backend
from tests.gateway.requests.registration_world import World, make_world, registered

AT_NOON = dt.datetime(2026, 11, 29, 8, 30, tzinfo=dt.UTC)  # 12:00 in Tehran
AT_NIGHT = dt.datetime(2026, 11, 29, 20, 30, tzinfo=dt.UTC)  # 00:00 in Tehran

SERVICE = ServiceDefinition(
    id=1,
    code="tree_pruning",
    group_code="urban_services",
    group_name_fa="خدمات شهری",
    group_name_en="Urban services",
    name_fa="هرس درخت",
    name_en="Tree pruning",
    description_fa=None,
    description_en=None,
    channel="SEMI_IN_PERSON",
    owner_department="green_space",
    deadline_days=10,
    questions=(),
    keywords=None,
    referred_agency=None,
    active=True,
    responsible=("green_space",),
    sees=("urban_services",),
    regions=(1, 2),
    updated_at=AT_NOON,
)
SQUARE = ((37.50, 45.00), (37.60, 45.00), (37.60, 45.10), (37.50, 45.10))
REGIONS = [
    routing.Region(1, "منطقه ۱", "Region 1", "region_1_office", SQUARE),
    routing.Region(2, "منطقه ۲", "Region 2", "region_2_office", SQUARE),
]


def rule(rule_id: int, **conditions: Any) -> routing.Rule:
    values: dict[str, Any] = {
        "id": rule_id,
        "position": rule_id * 10,
        "name": f"rule {rule_id}",
        "service_code": None,
        "group_code": None,
        "kind": None,
        "region": None,
        "area": None,
        "hours_from": None,
        "hours_to": None,
        "answers": None,
        "department": None,
        "region_office": None,
        "referred_to": None,
    }
    values.update(conditions)
    return routing.Rule(**values)


def choose(rules: list[routing.Rule], **request: Any) -> routing.Route:
    given: dict[str, Any] = {
        "service": SERVICE,
        "kind": "REQUEST",
        "region": 1,
        "point": Point(37.55, 45.05),
        "at": AT_NOON,
        "answers": {},
    }
    given.update(request)
    return routing.choose(rules, REGIONS, **given)


def test_the_first_matching_rule_wins_and_blanks_come_from_the_service_and_region() -> None:
    rules = [
        rule(1, service_code="pothole", department="civil_works"),
        rule(2, group_code="urban_services", region_office="special_office"),
        rule(3, department="planning"),
    ]
    chosen = choose(rules)
    assert chosen == routing.Route("green_space", "special_office", None, 2, "rule 2")
    assert choose(rules, service=dataclasses.replace(SERVICE, group_code="transport")) == (
        routing.Route("planning", "region_1_office", None, 3, "rule 3")
    )


def test_no_rule_falls_to_the_service_and_its_agency() -> None:
    assert choose([]) == routing.Route("green_space", "region_1_office", None, None, None)
    referred = dataclasses.replace(SERVICE, referred_agency="electricity")
    assert choose([], service=referred).referred_to == "electricity"
    assert choose([rule(1)], service=referred).referred_to == "electricity"
    # A rule that names a department keeps the matter in the municipality.
    assert choose([rule(1, department="civil_works")], service=referred).referred_to is None
    no_executor = dataclasses.replace(SERVICE, responsible=())
    assert choose([], service=no_executor).department == "green_space"  # the owner


@pytest.mark.parametrize(
    ("conditions", "request_", "expected"),
    [
        ({"kind": "COMPLAINT"}, {"kind": "COMPLAINT"}, True),
        ({"kind": "COMPLAINT"}, {"kind": "THANKS"}, False),
        ({"region": 2}, {"region": 1}, False),
        ({"region": 2}, {"region": 2}, True),
        ({"area": ((37.54, 45.04), (37.56, 45.04), (37.56, 45.06), (37.54, 45.06))}, {}, True),
        ({"area": ((37.58, 45.08), (37.59, 45.08), (37.59, 45.09))}, {}, False),
        ({"area": SQUARE}, {"point": None}, False),
        ({"hours_from": 22, "hours_to": 6}, {"at": AT_NIGHT}, True),
        ({"hours_from": 22, "hours_to": 6}, {"at": AT_NOON}, False),
        ({"hours_from": 8, "hours_to": 14}, {"at": AT_NOON}, True),
        ({"hours_from": 8, "hours_to": 12}, {"at": AT_NOON}, False),  # to is exclusive
        ({"answers": {"danger": "yes"}}, {"answers": {"danger": "yes"}}, True),
        ({"answers": {"danger": "yes"}}, {"answers": {"danger": "no"}}, False),
        ({"answers": {"danger": "yes"}}, {"answers": {}}, False),
        ({"service_code": "tree_pruning", "kind": "REQUEST"}, {}, True),
        ({"service_code": "tree_pruning", "kind": "COMPLAINT"}, {}, False),
    ],
)
def test_each_condition_matches_only_its_requests(
    conditions: dict[str, Any], request_: dict[str, Any], expected: bool
) -> None:
    rules = [rule(1, department="inspection", **conditions)]
    assert (choose(rules, **request_).department == "inspection") is expected


# --- The demo's rules, over HTTP ----------------------------------------------------------


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    async for made in make_world(backend):
        yield made


async def test_the_demo_rules_route_by_answers_area_and_hours(world: World) -> None:
    danger = await registered(
        world,
        "centre",
        serviceCode="tree_pruning",
        kind="REQUEST",
        answers=[{"code": "danger", "value": "yes"}],
    )
    assert danger["department"] == "urban_services"
    calm = await registered(
        world,
        "centre",
        serviceCode="tree_pruning",
        kind="REQUEST",
        answers=[{"code": "danger", "value": "no"}],
    )
    assert calm["department"] == "green_space"
    bazaar = await registered(
        world, "centre", serviceCode="street_cleaning", latitude=37.552, longitude=45.075
    )
    assert bazaar["regionOffice"] == "bazaar_office"
    outside_bazaar = await registered(
        world, "centre", serviceCode="street_cleaning", latitude=37.570, longitude=45.095
    )
    assert outside_bazaar["regionOffice"] == "region_1_office"
    daytime = await registered(world, "centre", serviceCode="noise_complaint")
    assert daytime["status"] == "ASSIGNED"
    world.clock.now = AT_NIGHT
    night = await registered(world, "centre", serviceCode="noise_complaint")
    assert (night["status"], night["referredTo"]) == ("REFERRED", "police")
    staff = await registered(world, "portal", serviceCode="staff_conduct", kind="COMPLAINT")
    assert staff["department"] == "inspection"


async def test_the_rules_run_again_when_the_service_changes(world: World) -> None:
    created = await registered(world, "centre", serviceCode="street_cleaning")
    assert created["department"] == "urban_services"
    engine = world.databases.engine("contact")
    async with engine.begin() as connection:
        pothole = await load_service(connection, code="pothole")
        assert pothole is not None
        request_id = await connection.scalar(
            select(CitizenRequestRecord.id).where(
                CitizenRequestRecord.tracking_code == created["trackingCode"]
            )
        )
        assert request_id is not None
        await connection.execute(
            update(CitizenRequestRecord)
            .where(CitizenRequestRecord.id == request_id)
            .values(service_id=pothole.id)
        )
        rerouted = await routing.reroute(
            connection,
            request_id,
            now=AT_NOON,
            actor_kind="department",
            actor="department:contact137:1",
        )
        history = await load_history(connection, [request_id])
    assert rerouted.department == "civil_works"
    assert rerouted.region_office == "region_1_office"
    last = history[request_id][-1]
    assert (last.event, last.department, last.from_status, last.to_status) == (
        "ROUTED",
        "civil_works",
        "ASSIGNED",
        "ASSIGNED",
    )


CORRECT = """
mutation($input: CorrectCitizenRequestInput!) {
  correctCitizenRequest(input: $input) {
    status department regionOffice referredTo region deadline service { code }
    history { status note }
  }
}
"""


async def test_correcting_the_service_or_place_routes_the_request_again(world: World) -> None:
    world.clock.now = AT_NOON
    created = await registered(world, "centre", serviceCode="street_cleaning")
    centre = world.as_("centre")
    body = await centre(
        CORRECT, {"input": {"id": created["id"], "serviceCode": "pothole", "note": "A pothole."}}
    )
    assert "errors" not in body, body
    corrected = body["data"]["correctCitizenRequest"]
    assert (corrected["department"], corrected["service"]["code"]) == ("civil_works", "pothole")
    # Pothole's 5 working days from the same assignment, not street cleaning's 3.
    assert corrected["deadline"] > created["deadline"]
    assert [h["note"] for h in corrected["history"]][-2:] == [
        "A pothole.",
        "Routed: civil_works (Everything else: the service's department and the region's office).",
    ]
    # Now a water leak: referred; then back: assigned again, with a deadline from now.
    leak = await centre(
        CORRECT, {"input": {"id": created["id"], "serviceCode": "water_leak", "note": "Water."}}
    )
    moved = leak["data"]["correctCitizenRequest"]
    assert (moved["status"], moved["referredTo"], moved["deadline"]) == ("REFERRED", "water", None)
    back = await centre(
        CORRECT, {"input": {"id": created["id"], "serviceCode": "pothole", "note": "No, asphalt."}}
    )
    again = back["data"]["correctCitizenRequest"]
    assert (again["status"], again["referredTo"]) == ("ASSIGNED", None)
    assert again["deadline"] is not None
    # A new place in the east: region 3 and its office.
    east = await world.as_("civil_works")(
        CORRECT,
        {"input": {"id": created["id"], "latitude": 37.555, "longitude": 45.2, "note": "East."}},
    )
    placed = east["data"]["correctCitizenRequest"]
    assert (placed["region"], placed["regionOffice"]) == (3, "region_3_office")


async def test_a_correction_is_refused_to_others_and_for_bad_places(world: World) -> None:
    world.clock.now = AT_NOON
    created = await registered(world, "portal")  # a pothole: civil works
    note = {"id": created["id"], "note": "x"}
    hidden = await world.as_("urban_services")(CORRECT, {"input": {**note, "serviceCode": "x"}})
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    tree = await registered(
        world, "portal", serviceCode="tree_pruning", answers=[{"code": "danger", "value": "no"}]
    )
    seeing = await world.as_("urban_services")(
        CORRECT, {"input": {"id": tree["id"], "note": "x", "serviceCode": "pothole"}}
    )
    assert seeing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    operator = world.as_("operator")
    outside = await operator(CORRECT, {"input": {**note, "latitude": 35.69, "longitude": 51.39}})
    assert outside["errors"][0]["extensions"]["field"] == "latitude"
    nothing = await operator(CORRECT, {"input": note})
    assert nothing["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    pilot = await operator(
        CORRECT,
        {
            "input": {
                **note,
                "serviceCode": "recycling_pickup",
                "latitude": 37.555,
                "longitude": 45.2,
            }
        },
    )
    assert pilot["errors"][0]["extensions"]["code"] == "SERVICE_NOT_AVAILABLE_IN_REGION"


def test_points_on_a_boundary_belong_to_the_first_region_and_boxes_hold_their_circles() -> None:
    left = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    right = ((0.0, 1.0), (1.0, 1.0), (1.0, 2.0), (0.0, 2.0))
    on_edge = geo.Point(0.5, 1.0)
    assert geo.contains(left, on_edge)
    assert geo.contains(right, on_edge)
    assert geo.region_of(on_edge, [(1, left), (2, right)]) == 1
    assert geo.region_of(geo.Point(0.5, 1.5), [(1, left), (2, right)]) == 2
    assert geo.region_of(geo.Point(1.5, 0.5), [(1, left), (2, right)]) is None
    centre = geo.Point(37.5527, 45.0761)
    south, north, west, east = geo.bounding_box(centre, 150)
    for bearing in range(0, 360, 10):
        rad = math.radians(bearing)
        point = geo.Point(
            centre.latitude + math.cos(rad) * (north - centre.latitude) * 0.999,
            centre.longitude + math.sin(rad) * (east - centre.longitude) * 0.999,
        )
        assert south <= point.latitude <= north
        assert west <= point.longitude <= east
        assert geo.distance_m(centre, point) <= 150
    assert not geo.valid_point(91, 0)
    assert not geo.valid_point(float("nan"), 0)
