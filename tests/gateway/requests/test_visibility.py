"""Who sees which citizen request, over HTTP with real keys, by every path (citizenRequest,
node(id), departmentRequests, searchCitizenRequests, Parcel.citizenRequests):

- the citizen, anonymously, with the tracking code and the mobile's last four digits: their
  request's status, history and replies, nothing personal; a wrong ending answers exactly
  like a code never issued, and guessing is rate limited alike for both;
- a department: its own queue, and the requests of services it takes part in, no others;
- the 137 centre: what it registered; operators and inspection: everything;
- personal data masked without personal:read, and each read in full audited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from db import planning
from db.contact import CitizenRequestRecord
from db.gateway import AuditRecord
from gateway.inquiries.tracking import new_tracking_code
from gateway.requests.lookup import LookupRateLimited, throttle_for
from gateway.settings import Settings
from tests.conftest import Backend, redis_url
from tests.gateway.requests.registration_world import (
    World,
    error_code,
    make_world,
    registered,
)

CITIZEN = """
query($code: String!, $last4: String) {
  citizenRequest(trackingCode: $code, mobileLast4: $last4) {
    id trackingCode kind status region department deadline overdue
    service { code name } history { status at note actor }
    replies { body } citizenName citizenMobile registeredBy possibleDuplicates { trackingCode }
  }
}
"""
NODE = "query($id: ID!) { node(id: $id) { id ... on CitizenRequest { trackingCode } } }"
QUEUE = """
{ departmentRequests(first: 100) { totalCount edges { node { trackingCode department } } } }
"""
SEARCH = """
query($filter: CitizenRequestFilter) {
  searchCitizenRequests(filter: $filter, first: 100) {
    totalCount edges { node { trackingCode department citizenName citizenMobile } }
  }
}
"""
PARCELS = """
query($a: RenewalCode!, $b: RenewalCode!) {
  a: parcel(renewalCode: $a) { citizenRequests { trackingCode } }
  b: parcel(renewalCode: $b) { citizenRequests { trackingCode } }
}
"""


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    async for made in make_world(
        backend, request_lookup_failures="3/hour", request_lookup_rate="1000/minute"
    ):
        yield made


async def _citizen(world: World, code: str, last4: str | None) -> dict[str, Any]:
    return await world.as_(None)(CITIZEN, {"code": code, "last4": last4})


async def test_the_citizen_sees_their_request_and_nothing_personal(world: World) -> None:
    created = await registered(world, "portal", citizenMobile="09127654321")
    body = await _citizen(world, created["trackingCode"], "4321")
    assert "errors" not in body, body
    seen = body["data"]["citizenRequest"]
    assert seen["trackingCode"] == created["trackingCode"]
    assert seen["status"] == "ASSIGNED"
    assert seen["service"]["code"] == "pothole"
    assert [h["status"] for h in seen["history"]] == ["SUBMITTED", "ASSIGNED"]
    assert {h["actor"] for h in seen["history"]} == {None}
    assert seen["replies"] == []
    assert seen["citizenName"] == "م***"
    assert seen["citizenMobile"] == "0912*******"
    assert seen["registeredBy"] is None
    assert seen["possibleDuplicates"] == []
    # Persian digits are the same digits.
    again = await _citizen(world, created["trackingCode"], "۴۳۲۱")
    assert again["data"]["citizenRequest"]["trackingCode"] == created["trackingCode"]


async def test_a_wrong_ending_looks_exactly_like_a_missing_request(world: World) -> None:
    created = await registered(world, "portal", citizenMobile="09121111222")
    wrong = await world.as_(None).post(CITIZEN, {"code": created["trackingCode"], "last4": "1223"})
    missing = await world.as_(None).post(CITIZEN, {"code": new_tracking_code(), "last4": "1222"})
    assert wrong.status_code == missing.status_code == 200
    assert wrong.json() == missing.json() == {"data": {"citizenRequest": None}}
    # Without the digits the public learns nothing either.
    bare = await _citizen(world, created["trackingCode"], None)
    assert bare == {"data": {"citizenRequest": None}}
    bad = await _citizen(world, created["trackingCode"], "12")
    assert error_code(bad) == "BAD_USER_INPUT"


async def test_guessing_the_digits_is_rate_limited_alike_for_real_and_unknown_codes(
    world: World,
) -> None:
    created = await registered(world, "portal", citizenMobile="09123334444")
    unknown = new_tracking_code()
    for code in (created["trackingCode"], unknown):
        for guess in ("0000", "0001", "0002"):
            assert await _citizen(world, code, guess) == {"data": {"citizenRequest": None}}
        limited = await _citizen(world, code, "4444")
        assert error_code(limited) == "RATE_LIMITED"
        assert 1 <= limited["errors"][0]["extensions"]["retryAfter"] <= 3600
    # Another request's lookups are not affected.
    other = await registered(world, "portal", citizenMobile="09125556666")
    assert (await _citizen(world, other["trackingCode"], "6666"))["data"]["citizenRequest"]


async def test_no_other_path_shows_the_public_a_request(world: World) -> None:
    created = await registered(world, "portal")
    public = world.as_(None)
    assert (await public(NODE, {"id": created["id"]}))["data"]["node"] is None
    search = await public(SEARCH, {"filter": {"trackingCode": created["trackingCode"]}})
    assert search["data"]["searchCitizenRequests"]["totalCount"] == 0
    assert error_code(await public(QUEUE)) == "FORBIDDEN"
    # A partner app sees its own registrations only.
    partner = world.as_("partner")
    assert (await partner(NODE, {"id": created["id"]}))["data"]["node"] is None
    own = await registered(world, "partner")
    assert (await partner(NODE, {"id": own["id"]}))["data"]["node"] == {
        "id": own["id"],
        "trackingCode": own["trackingCode"],
    }


async def test_a_department_sees_its_queue_and_its_services_only(world: World) -> None:
    pothole = await registered(world, "portal")  # civil works
    tree = await registered(
        world,
        "portal",
        serviceCode="tree_pruning",
        kind="REQUEST",
        answers=[{"code": "danger", "value": "no"}],
    )  # green space executes it, urban services sees it
    civil = world.as_("civil_works")
    queue = (await civil(QUEUE))["data"]["departmentRequests"]
    assert {edge["node"]["department"] for edge in queue["edges"]} == {"civil_works"}
    assert pothole["trackingCode"] in [edge["node"]["trackingCode"] for edge in queue["edges"]]
    urban = world.as_("urban_services")
    for code in (pothole["trackingCode"], tree["trackingCode"]):
        found = await urban(CITIZEN, {"code": code, "last4": None})
        expected = None if code == pothole["trackingCode"] else code
        seen = found["data"]["citizenRequest"]
        assert (seen and seen["trackingCode"]) == expected
    assert (await urban(NODE, {"id": pothole["id"]}))["data"]["node"] is None
    urban_queue = (await urban(QUEUE))["data"]["departmentRequests"]["edges"]
    assert tree["trackingCode"] not in [edge["node"]["trackingCode"] for edge in urban_queue]
    # Planning takes no part in either.
    planning_search = await world.as_("planning")(
        SEARCH, {"filter": {"trackingCode": tree["trackingCode"]}}
    )
    assert planning_search["data"]["searchCitizenRequests"]["totalCount"] == 0


async def test_the_137_centre_sees_what_it_registered_and_operators_see_all(
    world: World,
) -> None:
    taken = await registered(world, "centre")
    portal = await registered(world, "portal")
    colleague = world.as_("centre_b")
    mine = await colleague(SEARCH, {"filter": {"trackingCode": taken["trackingCode"]}})
    assert mine["data"]["searchCitizenRequests"]["totalCount"] == 1
    theirs = await colleague(SEARCH, {"filter": {"trackingCode": portal["trackingCode"]}})
    assert theirs["data"]["searchCitizenRequests"]["totalCount"] == 0
    by_text = await colleague(SEARCH, {"filter": {"text": "چاله", "channel": "CENTRE_137"}})
    assert by_text["data"]["searchCitizenRequests"]["totalCount"] >= 1
    for label in ("operator", "inspection"):
        everything = await world.as_(label)(
            SEARCH, {"filter": {"trackingCode": portal["trackingCode"]}}
        )
        assert everything["data"]["searchCitizenRequests"]["totalCount"] == 1


async def test_personal_data_is_masked_without_the_scope_and_audited_when_read(
    world: World,
) -> None:
    created = await registered(world, "partner", citizenMobile="09129998888")
    partner = await world.as_("partner")(
        SEARCH, {"filter": {"trackingCode": created["trackingCode"]}}
    )
    node = partner["data"]["searchCitizenRequests"]["edges"][0]["node"]
    assert (node["citizenName"], node["citizenMobile"]) == ("م***", "0912*******")
    operator = await world.as_("operator")(
        SEARCH, {"filter": {"trackingCode": created["trackingCode"]}}
    )
    node = operator["data"]["searchCitizenRequests"]["edges"][0]["node"]
    assert (node["citizenName"], node["citizenMobile"]) == ("مریم احمدی", "09129998888")
    async with world.databases.engine("contact").connect() as connection:
        pk = await connection.scalar(
            select(CitizenRequestRecord.id).where(
                CitizenRequestRecord.tracking_code == created["trackingCode"]
            )
        )
    async with world.databases.engine("gateway").connect() as connection:
        reads = (
            await connection.execute(
                select(AuditRecord.action, AuditRecord.principal_kind).where(
                    AuditRecord.subject_type == "CitizenRequest",
                    AuditRecord.subject_id == str(pk),
                )
            )
        ).all()
    assert ("read", "operator") in reads
    assert ("read", "counter") not in reads


async def test_a_department_reading_a_parcel_sees_the_requests_about_it(world: World) -> None:
    async with world.databases.planning.connect() as connection:
        first, second = (
            await connection.execute(
                select(planning.Parcel.renewal_code, planning.Parcel.address)
                .order_by(planning.Parcel.id)
                .limit(2)
            )
        ).all()
    by_code = await registered(world, "portal", renewalCode=first.renewal_code)
    by_address = await registered(
        world, "portal", latitude=None, longitude=None, address=second.address
    )
    unrelated = await registered(world, "portal")
    variables = {"a": first.renewal_code, "b": second.renewal_code}
    body = await world.as_("planning")(PARCELS, variables)
    assert "errors" not in body, body
    a = [r["trackingCode"] for r in body["data"]["a"]["citizenRequests"]]
    b = [r["trackingCode"] for r in body["data"]["b"]["citizenRequests"]]
    assert by_code["trackingCode"] in a
    assert by_address["trackingCode"] in b
    assert by_code["trackingCode"] not in b
    assert unrelated["trackingCode"] not in a + b
    counter = await world.as_("partner")(PARCELS, variables)
    assert error_code(counter) == "FORBIDDEN"
    assert counter["data"]["a"]["citizenRequests"] is None


async def test_parcels_load_their_citizen_requests_in_one_statement_per_page(
    world: World,
) -> None:
    query = "query($n: Int) { parcels(first: $n) { edges { node { citizenRequests { id } } } } }"
    planning_dept = world.as_("planning")
    counts = []
    for size in (3, 30):
        body = await planning_dept(query, {"n": size}, cost=True)
        assert "errors" not in body, body
        assert len(body["data"]["parcels"]["edges"]) == size
        counts.append(body["extensions"]["cost"]["sqlStatements"])
    assert counts[0] == counts[1], counts


async def test_the_lookup_throttle_is_shared_by_every_process_through_redis() -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis at GATEWAY_TEST_REDIS_URL")
    prefix = f"r1-test-{uuid.uuid4().hex[:8]}:"
    settings = [
        Settings(
            redis_url=SecretStr(url), redis_key_prefix=prefix, request_lookup_failures="2/hour"
        )
        for _ in range(2)
    ]
    first, second = (throttle_for(s) for s in settings)
    assert first is not second  # as two gateway processes would hold
    code = new_tracking_code()
    await first.admit("10.0.0.1", code)
    await first.failed(code)
    await second.admit("10.0.0.2", code)
    await second.failed(code)
    with pytest.raises(LookupRateLimited):
        await first.admit("10.0.0.3", code)
    with pytest.raises(LookupRateLimited):
        await second.admit("10.0.0.4", code)
