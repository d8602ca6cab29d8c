"""The services catalogue: 54 services in five groups, seeded in Persian and English with
their channels, owners, executing departments, deadlines and regions; read by group and by
region; changed by operators only, every change audited; a new service piloted in one
region before it is enabled in another."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from db.gateway import AuditRecord
from tests.conftest import Backend
from tests.gateway.requests.registration_world import (
    World,
    error_code,
    make_world,
    registered,
    submit,
)

SERVICES = """
query($group: String, $region: Int, $withdrawn: Boolean!) {
  services(group: $group, region: $region, includeWithdrawn: $withdrawn) {
    code name nameEn: name(language: EN) channel ownerDepartment departments seenBy
    deadlineDays regions referredAgency active group { code name nameEn: name(language: EN) }
    questions { code datatype required description values { key name } }
  }
}
"""
SAVE = """
mutation($input: SaveServiceInput!) {
  saveService(input: $input) { code name channel regions departments seenBy active deadlineDays
    questions { code values { key } } }
}
"""


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    async for made in make_world(backend):
        yield made


async def _services(
    world: World, group: str | None = None, region: int | None = None, withdrawn: bool = False
) -> list[dict[str, Any]]:
    body = await world.as_(None)(
        SERVICES, {"group": group, "region": region, "withdrawn": withdrawn}
    )
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["services"]
    return found


async def test_the_catalogue_holds_54_services_in_five_groups(world: World) -> None:
    everything = await _services(world)
    demo = [s for s in everything if not s["code"].startswith("r1_")]
    assert len(demo) == 54
    groups = Counter(s["group"]["code"] for s in demo)
    assert list(groups) == [
        "urban_services",
        "civil_works",
        "transport",
        "culture_social",
        "public_relations",
    ]
    assert all(count >= 9 for count in groups.values())
    assert {s["channel"] for s in demo} == {"PORTAL", "CENTRE_137", "IN_PERSON", "SEMI_IN_PERSON"}
    for service in demo:
        assert service["name"] != service["nameEn"]  # Persian and English
        assert service["departments"], service["code"]
        assert 1 <= service["deadlineDays"] <= 30
    referred = {s["code"]: s["referredAgency"] for s in demo if s["referredAgency"]}
    assert set(referred.values()) == {"water", "electricity", "gas", "police"}
    tree = next(s for s in demo if s["code"] == "tree_pruning")
    assert tree["ownerDepartment"] == "green_space"
    assert tree["seenBy"] == ["urban_services"]
    assert tree["questions"][0]["code"] == "danger"
    assert [v["key"] for v in tree["questions"][0]["values"]] == ["yes", "no"]


async def test_services_are_read_by_group_and_by_region(world: World) -> None:
    transport = await _services(world, group="transport")
    assert transport
    assert {s["group"]["code"] for s in transport} == {"transport"}
    in_region_1 = {s["code"] for s in await _services(world, region=1)}
    in_region_3 = {s["code"] for s in await _services(world, region=3)}
    # The pilots run in region 1 only.
    assert "recycling_pickup" in in_region_1
    assert "recycling_pickup" not in in_region_3
    assert in_region_3 < in_region_1
    assert await _services(world, group="no_such_group") == []


async def test_an_operator_pilots_a_service_then_enables_it_everywhere_audited(
    world: World,
) -> None:
    definition: dict[str, Any] = {
        "code": "r1_graffiti",
        "group": "urban_services",
        "nameFa": "پاکسازی دیوارنویسی",
        "nameEn": "Graffiti removal",
        "channel": "SEMI_IN_PERSON",
        "ownerDepartment": "urban_services",
        "seenBy": ["culture_social"],
        "deadlineDays": 4,
        "regions": [2],
        "questions": [
            {
                "code": "surface",
                "datatype": "singlevaluelist",
                "required": True,
                "descriptionFa": "روی چه سطحی؟",
                "descriptionEn": "On what surface?",
                "values": [
                    {"key": "wall", "nameFa": "دیوار", "nameEn": "Wall"},
                    {"key": "bridge", "nameFa": "پل", "nameEn": "Bridge"},
                ],
            }
        ],
    }
    operator = world.as_("operator")
    saved = await operator(SAVE, {"input": definition})
    assert "errors" not in saved, saved
    assert saved["data"]["saveService"]["regions"] == [2]
    assert saved["data"]["saveService"]["departments"] == ["urban_services"]
    answers = [{"code": "surface", "value": "wall"}]
    # Piloted in region 2 only: refused in region 1, accepted in region 2.
    refused = await submit(world, "portal", serviceCode="r1_graffiti", answers=answers)
    assert error_code(refused) == "SERVICE_NOT_AVAILABLE_IN_REGION"
    north = await registered(
        world, "portal", serviceCode="r1_graffiti", latitude=37.65, longitude=45.07, answers=answers
    )
    assert (north["region"], north["department"]) == (2, "urban_services")
    enabled = await operator(SAVE, {"input": {**definition, "regions": [1, 2, 3, 4, 5]}})
    assert enabled["data"]["saveService"]["regions"] == [1, 2, 3, 4, 5]
    centre = await registered(world, "portal", serviceCode="r1_graffiti", answers=answers)
    assert centre["region"] == 1
    withdrawn = await operator(SAVE, {"input": {**definition, "active": False}})
    assert withdrawn["data"]["saveService"]["active"] is False
    gone = await submit(world, "portal", serviceCode="r1_graffiti", answers=answers)
    assert error_code(gone) == "BAD_USER_INPUT"
    assert "r1_graffiti" not in {s["code"] for s in await _services(world)}
    assert "r1_graffiti" in {s["code"] for s in await _services(world, withdrawn=True)}
    async with world.databases.engine("gateway").connect() as connection:
        changes = (
            await connection.execute(
                select(AuditRecord.operation, AuditRecord.subject_id, AuditRecord.action).where(
                    AuditRecord.subject_type == "Service"
                )
            )
        ).all()
    assert changes.count(("Mutation.saveService", "r1_graffiti", "change")) == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"group": "no_group"}, "group"),
        ({"ownerDepartment": "bakery"}, "ownerDepartment"),
        ({"regions": [9]}, "regions"),
        ({"deadlineDays": 0}, "deadlineDays"),
        ({"code": "Bad Code"}, "code"),
        ({"referredAgency": "army"}, "referredAgency"),
        ({"nameFa": "  "}, "nameFa"),
    ],
)
async def test_a_bad_definition_is_refused_naming_its_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    definition = {
        "code": "r1_bad",
        "group": "transport",
        "nameFa": "خدمت",
        "nameEn": "Service",
        "channel": "PORTAL",
        "ownerDepartment": "transport",
        "deadlineDays": 3,
        "regions": [1],
        **change,
    }
    body = await world.as_("operator")(SAVE, {"input": definition})
    assert error_code(body) == "BAD_USER_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == field


@pytest.mark.parametrize("label", ["civil_works", "centre", "partner", None])
async def test_only_operators_change_the_catalogue(world: World, label: str | None) -> None:
    definition = {
        "code": "r1_sneaky",
        "group": "transport",
        "nameFa": "خدمت",
        "nameEn": "Service",
        "channel": "PORTAL",
        "ownerDepartment": "transport",
        "deadlineDays": 3,
        "regions": [1],
    }
    body = await world.as_(label)(SAVE, {"input": definition})
    assert error_code(body) == "FORBIDDEN"
    assert "r1_sneaky" not in {s["code"] for s in await _services(world, withdrawn=True)}
