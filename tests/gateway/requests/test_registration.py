"""Registering citizen requests over GraphQL, on every backend: located, routed by the rules
into the responsible department's queue (or referred to an outside agency, never lost),
given a tracking code and a deadline of working days; duplicates offered; idempotent, also
for two registrations with one key at the same moment; bad input refused naming its field."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from db.contact import CitizenRequestRecord
from db.contact_demo import CENTRE, REGION_BOUNDARIES
from db.engines import Databases
from gateway.access.principals import ANONYMOUS, Principal, PrincipalKind, scopes_for
from gateway.errors import BadUserInput, Conflict
from gateway.inquiries.tracking import parse_tracking_code
from gateway.requests import geo, registration
from gateway.requests.records import load_history
from gateway.schema.requests import SUBMIT as SUBMIT_OPERATION
from tests.conftest import Backend
from tests.gateway.requests.registration_world import (
    SUBMIT,
    World,
    error_code,
    make_world,
    registered,
    request_input,
    submit,
)

QUEUE = """
query($status: CitizenRequestStatus) {
  departmentRequests(status: $status, first: 100) {
    totalCount edges { node { trackingCode status department referredTo } }
  }
}
"""


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    async for made in make_world(backend):
        yield made


def _somewhere(seed: int) -> tuple[float, float]:
    """A point of region 1 of its own, so that other tests' requests are not near it."""
    dice = random.Random(seed)
    return (37.532 + dice.random() * 0.04, 45.052 + dice.random() * 0.045)


async def _queue(world: World, label: str, status: str | None = None) -> list[dict[str, str]]:
    body = await world.as_(label)(QUEUE, {"status": status})
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["departmentRequests"]["edges"]]


async def test_a_request_is_routed_to_its_department_and_waits_in_its_queue(world: World) -> None:
    lat, lon = _somewhere(1)
    created = await registered(world, "portal", latitude=lat, longitude=lon)
    assert parse_tracking_code(created["trackingCode"]) == created["trackingCode"]
    assert created["status"] == "ASSIGNED"
    assert created["region"] == 1
    assert created["department"] == "civil_works"
    assert created["regionOffice"] == "region_1_office"
    assert created["referredTo"] is None
    assert created["channel"] == "PORTAL"
    assert created["service"] == {"code": "pothole", "name": "چاله و خرابی آسفالت"}
    assert [step["status"] for step in created["history"]] == ["SUBMITTED", "ASSIGNED"]
    # Pothole: 5 working days from Sunday 29 November (the 137 centre's week: Fridays off):
    # Mon 30, Tue 1, Wed 2, Thu 3, Sat 5 December, at the close of office hours in Tehran.
    assert created["deadline"] == "2026-12-05T10:30:00+00:00"
    assert created["overdue"] is False
    civil = [r["trackingCode"] for r in await _queue(world, "civil_works")]
    assert created["trackingCode"] in civil
    urban = [r["trackingCode"] for r in await _queue(world, "urban_services")]
    assert created["trackingCode"] not in urban


async def test_a_matter_for_another_agency_is_referred_and_stays_in_sight(world: World) -> None:
    lat, lon = _somewhere(2)
    created = await registered(
        world, "centre", serviceCode="water_leak", kind="REQUEST", latitude=lat, longitude=lon
    )
    assert created["status"] == "REFERRED"
    assert created["referredTo"] == "water"
    assert created["department"] == "urban_services"
    assert created["deadline"] is None
    assert created["channel"] == "CENTRE_137"
    assert [s["status"] for s in created["history"]] == ["SUBMITTED", "REFERRED"]
    assert "water" in created["history"][-1]["note"]
    referred = await _queue(world, "urban_services", "REFERRED")
    assert created["trackingCode"] in [r["trackingCode"] for r in referred]


async def test_open_requests_for_the_same_service_close_by_are_offered_as_duplicates(
    world: World,
) -> None:
    lat, lon = _somewhere(3)
    # The 137 centre's own: duplicates are offered among the requests the caller may see
    # (tests/gateway/security/test_request_duplicates.py).
    first = await registered(world, "centre", latitude=lat, longitude=lon)
    assert first["possibleDuplicates"] == []
    world.clock.now += dt.timedelta(hours=2)
    # About 60 m north: the same pothole, most likely.
    near = await registered(world, "centre", latitude=lat + 0.00055, longitude=lon)
    assert first["trackingCode"] in [d["trackingCode"] for d in near["possibleDuplicates"]]
    # Another service at the same place, or the same service 2 km away: not offered.
    other = await registered(
        world, "centre", serviceCode="street_cleaning", latitude=lat, longitude=lon
    )
    assert first["trackingCode"] not in [d["trackingCode"] for d in other["possibleDuplicates"]]
    far = await registered(world, "centre", latitude=lat + 0.018, longitude=lon)
    assert first["trackingCode"] not in [d["trackingCode"] for d in far["possibleDuplicates"]]
    # A partner app is not shown other registrars' requests.
    partner = await registered(world, "partner", latitude=lat, longitude=lon)
    assert partner["possibleDuplicates"] == []


async def test_the_same_key_gives_the_same_request_and_another_input_is_a_conflict(
    world: World,
) -> None:
    given = request_input(world, latitude=_somewhere(4)[0], longitude=_somewhere(4)[1])
    portal = world.as_("portal")
    first = (await portal(SUBMIT, {"input": given}))["data"]["submitCitizenRequest"]
    again = (await portal(SUBMIT, {"input": given}))["data"]["submitCitizenRequest"]
    assert again["trackingCode"] == first["trackingCode"]
    changed = await portal(SUBMIT, {"input": {**given, "description": "چیز دیگری"}})
    assert error_code(changed) == "CONFLICT"
    assert changed["errors"][0]["extensions"]["field"] == "idempotencyKey"
    assert changed["data"] is None
    # Another registrar's key of the same text is its own.
    other = await world.as_("centre")(SUBMIT, {"input": given})
    assert other["data"]["submitCitizenRequest"]["trackingCode"] != first["trackingCode"]


async def test_keys_that_differ_only_in_case_are_two_keys(world: World) -> None:
    """MariaDB's default collation would take them for one (and answer CONFLICT)."""
    base = world.key()
    first = await registered(world, "portal", idempotencyKey=f"{base}-Key")
    other = await registered(world, "portal", idempotencyKey=f"{base}-key", description="دیگر")
    assert first["trackingCode"] != other["trackingCode"]


async def test_concurrent_registrations_with_one_key_make_one_request(world: World) -> None:
    lat, lon = _somewhere(5)
    given = request_input(world, latitude=lat, longitude=lon)
    portal = world.as_("portal")
    bodies = await asyncio.gather(*(portal(SUBMIT, {"input": given}) for _ in range(8)))
    codes = {body["data"]["submitCitizenRequest"]["trackingCode"] for body in bodies}
    assert len(codes) == 1, bodies
    async with world.databases.engine("contact").connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(CitizenRequestRecord)
            .where(CitizenRequestRecord.idempotency_key == given["idempotencyKey"])
        )
        request_id = await connection.scalar(
            select(CitizenRequestRecord.id).where(CitizenRequestRecord.tracking_code == codes.pop())
        )
        assert request_id is not None
        history = await load_history(connection, [request_id])
    assert count == 1
    assert [h.event for h in history[request_id]] == ["REGISTERED", "TRANSITION"]


async def test_where_a_request_is_decides_its_region_or_refuses_it(world: World) -> None:
    # Outside every region with no address: refused, naming the field.
    outside = await submit(world, "portal", latitude=35.6892, longitude=51.3890)
    assert error_code(outside) == "BAD_USER_INPUT"
    assert outside["errors"][0]["extensions"]["field"] == "latitude"
    # With an address too, it is accepted and the 137 centre locates it.
    located = await registered(
        world, "portal", latitude=35.6892, longitude=51.3890, address="خیابان امام، کوچه ۱۲"
    )
    assert located["region"] is None
    assert located["department"] == "civil_works"
    # An address alone is accepted; nothing at all is not.
    alone = await registered(world, "portal", latitude=None, longitude=None, address="میدان انقلاب")
    assert alone["region"] is None
    nowhere = await submit(world, "portal", latitude=None, longitude=None)
    assert error_code(nowhere) == "BAD_USER_INPUT"
    assert nowhere["errors"][0]["extensions"]["field"] == "address"


async def test_a_service_not_enabled_in_the_region_is_refused_with_its_own_code(
    world: World,
) -> None:
    # Recyclables pickup is piloted in region 1 (the centre) only, as Urmia pilots.
    east = (37.555, 45.20)
    refused = await submit(
        world,
        "portal",
        serviceCode="recycling_pickup",
        kind="REQUEST",
        latitude=east[0],
        longitude=east[1],
    )
    assert error_code(refused) == "SERVICE_NOT_AVAILABLE_IN_REGION"
    extensions = refused["errors"][0]["extensions"]
    assert extensions["serviceCode"] == "recycling_pickup"
    assert extensions["region"] == 3
    assert extensions["regions"] == [1]
    lat, lon = _somewhere(6)  # region 1, away from the bazaar's own office
    accepted = await registered(
        world,
        "portal",
        serviceCode="recycling_pickup",
        kind="REQUEST",
        latitude=lat,
        longitude=lon,
    )
    assert accepted["region"] == 1
    assert accepted["regionOffice"] == "region_1_office"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"citizenMobile": "12345"}, "citizenMobile"),
        ({"citizenName": " "}, "citizenName"),
        ({"description": "   "}, "description"),
        ({"serviceCode": "no_such_service"}, "serviceCode"),
        ({"longitude": None}, "longitude"),
        ({"latitude": 91.0}, "latitude"),
        ({"photoUrls": ["javascript:alert(1)"]}, "photoUrls"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"renewalCode": "not-a-code"}, "renewalCode"),
        ({"answers": [{"code": "size", "value": "huge"}]}, "answers"),
        ({"answers": [{"code": "colour", "value": "red"}]}, "answers"),
    ],
)
async def test_bad_input_is_refused_naming_its_field(
    world: World, overrides: dict[str, object], field: str
) -> None:
    body = await submit(world, "portal", **overrides)
    assert error_code(body) == "BAD_USER_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] is None


async def test_mobile_numbers_are_normalised_and_anonymous_callers_cannot_register(
    world: World,
) -> None:
    created = await registered(world, "portal", citizenMobile="+98 ۹۱۲ ۱۲۳ ۴۵۶۷")
    async with world.databases.engine("contact").connect() as connection:
        mobile = await connection.scalar(
            select(CitizenRequestRecord.citizen_mobile).where(
                CitizenRequestRecord.tracking_code == created["trackingCode"]
            )
        )
    assert mobile == "09121234567"
    anonymous = await submit(world, None)  # type: ignore[arg-type]
    assert error_code(anonymous) == "FORBIDDEN"


def test_the_demo_city_resolves_every_point_within_5_km_of_its_centre() -> None:
    regions = sorted(REGION_BOUNDARIES.items())
    centre = geo.Point(*CENTRE)
    assert geo.region_of(centre, regions) == 1
    for bearing in range(0, 360, 15):
        for km in (1, 2.5, 4, 5, 6):
            d_lat = km / 111.2 * math.cos(math.radians(bearing))
            d_lon = (
                km / (111.2 * math.cos(math.radians(CENTRE[0]))) * math.sin(math.radians(bearing))
            )
            point = geo.Point(CENTRE[0] + d_lat, CENTRE[1] + d_lon)
            assert geo.distance_m(centre, point) == pytest.approx(km * 1000, rel=0.01)
            assert geo.region_of(point, regions) is not None, (bearing, km)
    assert geo.region_of(geo.Point(35.6892, 51.3890), regions) is None


async def test_registration_over_the_domain_skips_nowruz_in_the_deadline(
    backend: Backend,
) -> None:
    """Registered on Wednesday 17 March 2027 (26 Esfand 1405): a 5-working-day deadline
    skips Friday, the holidays of 29 Esfand and Nowruz 1406 (21 to 24 March)."""
    databases = Databases(backend.urls)
    portal = Principal(
        kind=PrincipalKind.DEPARTMENT,
        id="r1-nowruz",
        name="portal",
        department="public_relations",
        scopes=scopes_for(PrincipalKind.DEPARTMENT),
    )
    try:
        made = await registration.register(
            databases,
            portal,
            registration.Submission(
                kind="REQUEST",
                service_code="pothole",
                description="چاله",
                citizen_name="علی رضایی",
                citizen_mobile="09351112233",
                idempotency_key="nowruz-1",
                latitude=37.56,
                longitude=45.07,
            ),
            now=dt.datetime(2027, 3, 17, 6, 0, tzinfo=dt.UTC),
        )
        with pytest.raises(Conflict):
            await registration.register(
                databases,
                portal,
                registration.Submission(
                    kind="REQUEST",
                    service_code="pothole",
                    description="چاله دیگر",
                    citizen_name="علی رضایی",
                    citizen_mobile="09351112233",
                    idempotency_key="nowruz-1",
                    latitude=37.56,
                    longitude=45.07,
                ),
                now=dt.datetime(2027, 3, 17, 6, 0, tzinfo=dt.UTC),
            )
        with pytest.raises(BadUserInput):
            await registration.register(
                databases,
                ANONYMOUS,
                registration.Submission(
                    kind="WISH",
                    service_code="pothole",
                    description="x",
                    citizen_name="علی رضایی",
                    citizen_mobile="09351112233",
                    idempotency_key="nowruz-2",
                    address="x",
                ),
                now=dt.datetime(2027, 3, 17, 6, 0, tzinfo=dt.UTC),
            )
    finally:
        await databases.dispose()
    # Working days after Wed 17 March: Thu 18, Sat 20 (29 Esfand: a holiday), Sun 21 to
    # Wed 24 (Nowruz), Thu 25, Sat 27, Sun 28, Mon 29: the fifth is Monday 29 March.
    assert made.request.deadline_at == dt.datetime(2027, 3, 29, 10, 30, tzinfo=dt.UTC)


async def test_a_retry_after_a_failed_audit_write_is_audited_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.access.audit import AuditTrail

    real_append = AuditTrail.append

    async def broken(self: AuditTrail, entries: object) -> None:
        raise OSError("disk full")

    values = request_input(world, latitude=37.541, longitude=45.061)
    monkeypatch.setattr(AuditTrail, "append", broken)
    failed = await world.as_("portal")(SUBMIT, {"input": values})
    assert error_code(failed) == "INTERNAL"
    monkeypatch.setattr(AuditTrail, "append", real_append)
    first = await world.as_("portal")(SUBMIT, {"input": values})
    again = await world.as_("portal")(SUBMIT, {"input": values})
    assert "errors" not in first, first
    assert "errors" not in again, again
    code = first["data"]["submitCitizenRequest"]["trackingCode"]
    assert again["data"]["submitCitizenRequest"]["trackingCode"] == code
    async with world.databases.session("contact") as session:
        request_id = (
            await session.execute(
                select(CitizenRequestRecord.id).where(CitizenRequestRecord.tracking_code == code)
            )
        ).scalar_one()
    trail = await world.as_("operator")(
        """query($id: String!) {
          auditTrail(filter: {subjectType: "CitizenRequest", subjectId: $id}, first: 5) {
            edges { node { operation action } }
          }
        }""",
        {"id": str(request_id)},
    )
    assert "errors" not in trail, trail
    # The first replay wrote the missing record; the second found it and wrote none.
    nodes = [edge["node"] for edge in trail["data"]["auditTrail"]["edges"]]
    assert nodes == [{"operation": SUBMIT_OPERATION, "action": "change"}]
