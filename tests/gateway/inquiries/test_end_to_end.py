"""Inquiries end to end over HTTP, with real keys, the simulated agencies on loopback and the
app running its own jobs: a notary's transfer inquiry for a clean parcel ends CLEAR, signed
and verifiable; unpaid dues and a seizure end NOT_CLEAR with their reasons; a manual check
waits in planning's queue until an officer answers, and the subscription reports it; an
agency down leaves a check pending until it is back; the same key twice gives one inquiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db import planning, revenue
from db.engines import Databases
from db.gateway import InquiryRecord
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.inquiries import answers
from gateway.inquiries.config import inquiry_settings
from gateway.inquiries.tracking import new_tracking_code
from gateway.inquiries.workflow import CHECKS_JOB
from gateway.jobs import JobQueue, jobs_config
from gateway.jobs.queue import job_id
from gateway.settings import Settings
from sandbox.dataset import DECEASED, OTHER_OWNER, SEIZED
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies
from tests.conftest import AGENCY_SECRETS, GraphQLClient, make_backend, mint_key, settings_for
from tests.gateway.test_subscriptions import serving, websocket

WAIT_S = 60  # a safety net against a hang, never a measure

SUBMIT = """
mutation($input: SubmitInquiryInput!) {
  submitInquiry(input: $input) { id trackingCode status kind }
}
"""
READ = """
query($code: String!) {
  inquiry(trackingCode: $code) {
    trackingCode status verdict reasons answer validUntil answerStatus overdue
    checks { id name status outcome department reasons lastError note }
  }
}
"""
VERIFY = """
query($answer: String!) {
  verifyInquiry(answer: $answer) { authentic status trackingCode verdict validUntil }
}
"""
QUEUE = """
{ departmentQueue { edges { node { id name status dueAt inquiry { trackingCode } } } } }
"""
ANSWER = """
mutation($input: AnswerInquiryCheckInput!) {
  answerInquiryCheck(input: $input) { id status outcome note }
}
"""


@dataclass
class World:
    address: str
    settings: Settings
    databases: Databases
    agencies: SandboxAgencies
    keys: dict[str, str]

    def client(self, label: str | None) -> GraphQLClient:
        http = httpx.AsyncClient(base_url=f"http://{self.address}", timeout=30)
        return GraphQLClient(http, None if label is None else self.keys[label])


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("inquiries")
    backend, _ = await make_backend("sqlite", tmp / "databases")
    databases = Databases(backend.urls)
    keys = {}
    for label, kind, department, organisation in (
        ("notary", PrincipalKind.NOTARY, None, None),
        ("notary_b", PrincipalKind.NOTARY, None, None),
        ("bank", PrincipalKind.BANK, None, "017"),
        ("counter", PrincipalKind.COUNTER, None, None),
        ("planning", PrincipalKind.DEPARTMENT, "planning", None),
        ("revenue", PrincipalKind.DEPARTMENT, "revenue", None),
        ("operator", PrincipalKind.OPERATOR, None, None),
    ):
        _, keys[label] = await mint_key(
            databases, kind, f"{label} {uuid.uuid4().hex[:6]}", department,
            organisation=organisation,
        )  # fmt: skip
    async with run_agencies(
        planning_url=backend.urls["planning"],
        revenue_url=backend.urls["revenue"],
        credentials=AGENCY_SECRETS,
    ) as agencies:
        settings = settings_for(
            backend,
            agencies,
            data_dir=tmp / "data",
            jobs_in_app=True,
            jobs_heartbeat_s=0.5,
            jobs_lease_s=2.0,
            inquiry_sweep_s=0.5,
        )
        app = create_app(settings)
        async with serving(app) as address:
            yield World(address, settings, databases, agencies, keys)
    await databases.dispose()


# --- Choosing parcels by what the departments and the agencies hold -----------------------


async def _paid_up(databases: Databases) -> set[str]:
    """Renewal codes with nothing left to pay."""
    assessments = revenue.Assessment.__table__
    payments = revenue.Payment.__table__
    paid = (
        select(func.coalesce(func.sum(payments.c.amount), 0))
        .where(payments.c.assessment_id == assessments.c.id)
        .scalar_subquery()
    )
    async with databases.revenue.connect() as connection:
        owing = set(
            (
                await connection.execute(
                    select(assessments.c.renewal_code).where(assessments.c.amount > paid)
                )
            ).scalars()
        )
        every = set(
            (await connection.execute(select(assessments.c.renewal_code).distinct())).scalars()
        )
    return every - owing


async def _candidates(databases: Databases) -> list[dict[str, Any]]:
    """Every parcel with its first owner, its newest certificate and its violations."""
    parcels = planning.Parcel.__table__
    owners = planning.Ownership.__table__
    persons = planning.Person.__table__
    certificates = planning.Certificate.__table__
    violations = planning.Violation.__table__
    async with databases.planning.connect() as connection:
        rows = (
            await connection.execute(
                select(parcels.c.id, parcels.c.renewal_code, parcels.c.land_use).order_by(
                    parcels.c.id
                )
            )
        ).all()
        first_owner = {
            row.parcel_id: (row.person_id, row.national_code, row.share)
            for row in (
                await connection.execute(
                    select(
                        owners.c.parcel_id,
                        owners.c.person_id,
                        owners.c.share,
                        persons.c.national_code,
                    )
                    .join(persons, persons.c.id == owners.c.person_id)
                    .order_by(owners.c.id.desc())
                )
            ).all()
        }
        owner_count = dict(
            (
                await connection.execute(
                    select(owners.c.parcel_id, func.count()).group_by(owners.c.parcel_id)
                )
            ).all()
        )
        newest = dict(
            (
                await connection.execute(
                    select(certificates.c.parcel_id, func.max(certificates.c.issued_on))
                    .where(certificates.c.kind == "completion")
                    .group_by(certificates.c.parcel_id)
                )
            ).all()
        )
        violated = set(
            (await connection.execute(select(violations.c.parcel_id).distinct())).scalars()
        )
    return [
        {
            "id": row.id,
            "renewal_code": row.renewal_code,
            "owner": first_owner.get(row.id),
            "owners": owner_count.get(row.id, 0),
            "certificate": newest.get(row.id),
            "violated": row.id in violated,
        }
        for row in rows
    ]


async def _parcel(world: World, want: str) -> tuple[str, str]:
    """(renewal code, applicant's national ID) of a parcel fitting `want`."""
    recent = dt.date.today() - dt.timedelta(days=365 * 9)
    paid = await _paid_up(world.databases)
    for parcel in await _candidates(world.databases):
        owner = parcel["owner"]
        if owner is None:
            continue
        person_id, national_code, _share = owner
        clean_registry = (
            not SEIZED.applies(parcel["id"])
            and not OTHER_OWNER.applies(parcel["id"])
            and not DECEASED.applies(person_id)
        )
        certified = parcel["certificate"] is not None
        base = not parcel["violated"] and parcel["owners"] == 1
        fits = {
            "clean": base and clean_registry and parcel["renewal_code"] in paid
            and certified and parcel["certificate"] > recent,
            "unpaid": base and clean_registry and parcel["renewal_code"] not in paid
            and certified and parcel["certificate"] > recent,
            "seized": base and SEIZED.applies(parcel["id"])
            and not OTHER_OWNER.applies(parcel["id"]) and not DECEASED.applies(person_id)
            and parcel["renewal_code"] in paid
            and certified and parcel["certificate"] > recent,
            "old_certificate": base and clean_registry and parcel["renewal_code"] in paid
            and certified and parcel["certificate"] < recent - dt.timedelta(days=365 * 2),
        }[want]  # fmt: skip
        if fits:
            return parcel["renewal_code"], national_code
    raise AssertionError(f"the demo city has no {want} parcel")


# --- Helpers --------------------------------------------------------------------------------


async def _submit(
    caller: GraphQLClient, kind: str, renewal_code: str, applicant: str, key: str | None = None
) -> dict[str, Any]:
    body = await caller(
        SUBMIT,
        {
            "input": {
                "kind": kind,
                "renewalCode": renewal_code,
                "applicantNationalCode": applicant,
                "idempotencyKey": key or uuid.uuid4().hex,
            }
        },
    )
    assert "errors" not in body, body
    submitted: dict[str, Any] = body["data"]["submitInquiry"]
    return submitted


async def _until(
    read: Callable[[], Awaitable[dict[str, Any]]], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            found = await read()
            if done(found):
                return found
            await asyncio.sleep(0.05)


async def _inquiry(caller: GraphQLClient, code: str) -> dict[str, Any]:
    body = await caller(READ, {"code": code})
    assert "errors" not in body, body
    inquiry: dict[str, Any] = body["data"]["inquiry"]
    return inquiry


async def _decided(caller: GraphQLClient, code: str) -> dict[str, Any]:
    return await _until(lambda: _inquiry(caller, code), lambda i: i["status"] == "DECIDED")


async def _backstop(world: World, code: str, state: str) -> None:
    """Until the inquiry's durable checks job (its backstop) is in `state`."""
    async with world.databases.gateway.connect() as connection:
        inquiry_id = await connection.scalar(
            select(InquiryRecord.id).where(InquiryRecord.tracking_code == code)
        )
    queue = await JobQueue(jobs_config(world.settings)).open()
    try:

        async def job() -> dict[str, Any]:
            found = await queue.get(job_id(CHECKS_JOB, str(inquiry_id)))
            return {"state": None if found is None else found.state}

        await _until(job, lambda found: found["state"] == state)
    finally:
        await queue.close()


# --- The cases --------------------------------------------------------------------------------


async def test_a_clean_parcel_ends_clear_signed_and_verifiable(world: World) -> None:
    notary = world.client("notary")
    renewal_code, applicant = await _parcel(world, "clean")
    submitted = await _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant)
    assert submitted["status"] in ("PENDING", "DECIDED")
    assert len(submitted["trackingCode"]) == 16
    inquiry = await _decided(notary, submitted["trackingCode"])
    assert inquiry["verdict"] == "CLEAR", inquiry
    assert inquiry["reasons"] == []
    assert {c["outcome"] for c in inquiry["checks"]} == {"PASS"}
    # Its checks ran at once, beside the answer; their durable job, queued before the
    # answer as the backstop, found nothing left to do and was withdrawn unstarted.
    await _backstop(world, submitted["trackingCode"], "cancelled")
    token = inquiry["answer"]
    assert applicant not in token
    verified = answers.verify(token, inquiry_settings(world.settings).keys.verification_keys)
    assert verified.answer.tracking_code == submitted["trackingCode"]
    assert verified.answer.kind == "PROPERTY_TRANSFER"
    assert verified.answer.applicant == applicant[-4:]
    public = world.client(None)
    body = await public(VERIFY, {"answer": token})
    assert body["data"]["verifyInquiry"] == {
        "authentic": True,
        "status": "VALID",
        "trackingCode": submitted["trackingCode"],
        "verdict": "CLEAR",
        "validUntil": inquiry["validUntil"],
    }
    # One character changed: not authentic.
    forged = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    body = await public(VERIFY, {"answer": forged})
    assert body["data"]["verifyInquiry"]["authentic"] is False
    assert body["data"]["verifyInquiry"]["status"] is None
    # The agencies' reads for the inquiry carried its tracking code as the X-Road issue.
    async with httpx.AsyncClient() as http:
        for agency in ("land_registry", "civil_registry"):
            listed = (await http.get(f"{world.agencies.url(agency)}/_calls")).json()["calls"]
            issues = [call["correlation"].get("x-road-issue") for call in listed]
            assert submitted["trackingCode"] in issues, (agency, issues)


async def test_unpaid_dues_end_not_clear_naming_the_due_its_period_and_amount(
    world: World,
) -> None:
    notary = world.client("notary")
    renewal_code, applicant = await _parcel(world, "unpaid")
    submitted = await _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant)
    inquiry = await _decided(notary, submitted["trackingCode"])
    assert inquiry["verdict"] == "NOT_CLEAR"
    dues = next(c for c in inquiry["checks"] if c["name"] == "dues_settled")
    assert dues["outcome"] == "FAIL"
    assert any("unpaid" in reason and "rials" in reason for reason in inquiry["reasons"])
    assert inquiry["reasons"] == dues["reasons"] or set(dues["reasons"]) <= set(inquiry["reasons"])


async def test_a_seized_deed_ends_not_clear_naming_the_seizure_and_its_issuer(
    world: World,
) -> None:
    notary = world.client("notary")
    renewal_code, applicant = await _parcel(world, "seized")
    submitted = await _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant)
    inquiry = await _decided(notary, submitted["trackingCode"])
    assert inquiry["verdict"] == "NOT_CLEAR"
    seizure = next(c for c in inquiry["checks"] if c["name"] == "no_seizure")
    assert seizure["outcome"] == "FAIL"
    assert seizure["department"] == "land_registry"
    assert any("seizure by" in reason for reason in inquiry["reasons"]), inquiry["reasons"]


async def test_a_manual_check_waits_for_planning_then_completes_and_is_reported(
    world: World,
) -> None:
    notary = world.client("notary")
    planning_officer = world.client("planning")
    renewal_code, applicant = await _parcel(world, "old_certificate")
    submitted = await _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant)
    code = submitted["trackingCode"]
    waiting = await _until(
        lambda: _inquiry(notary, code), lambda i: i["status"] == "WAITING_FOR_DEPARTMENT"
    )
    permit = next(c for c in waiting["checks"] if c["name"] == "building_matches_permit")
    assert permit["status"] == "WAITING_FOR_DEPARTMENT"
    assert permit["department"] == "planning"

    # Planning sees it in its queue; revenue does not, and cannot answer it.
    queue = await planning_officer(QUEUE)
    mine = [e["node"] for e in queue["data"]["departmentQueue"]["edges"]]
    entry = next(n for n in mine if n["inquiry"]["trackingCode"] == code)
    assert entry["dueAt"]
    revenue_queue = await world.client("revenue")(QUEUE)
    assert all(
        e["node"]["inquiry"]["trackingCode"] != code
        for e in revenue_queue["data"]["departmentQueue"]["edges"]
    )
    refused = await world.client("revenue")(
        ANSWER, {"input": {"checkId": entry["id"], "outcome": "PASS", "note": "looks fine"}}
    )
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    async with websocket(world.address, world.keys["notary"]) as subscriber:
        subscription = (
            "subscription($code: String!) { inquiryUpdated(trackingCode: $code) "
            "{ trackingCode status verdict } }"
        )
        assert await subscriber.subscribe("s1", subscription, {"code": code}) == []
        answered = await planning_officer(
            ANSWER,
            {
                "input": {
                    "checkId": entry["id"],
                    "outcome": "PASS",
                    "note": "Visited: as permitted.",
                }
            },
        )
        assert answered["data"]["answerInquiryCheck"]["status"] == "DONE", answered
        heard = await subscriber.receive()
        assert heard["type"] == "next", heard
        assert heard["payload"]["data"]["inquiryUpdated"]["trackingCode"] == code
        assert heard["payload"]["data"]["inquiryUpdated"]["status"] == "DECIDED"

    again = await planning_officer(
        ANSWER, {"input": {"checkId": entry["id"], "outcome": "FAIL", "note": "second thoughts"}}
    )
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"
    inquiry = await _inquiry(notary, code)
    assert inquiry["status"] == "DECIDED"
    permit = next(c for c in inquiry["checks"] if c["name"] == "building_matches_permit")
    assert permit["outcome"] == "PASS"
    assert permit["note"] is None  # the partner reads reasons, not the officer's note


async def test_an_agency_down_leaves_the_check_pending_until_it_is_back(world: World) -> None:
    notary = world.client("notary")
    renewal_code, applicant = await _parcel(world, "clean")
    chaos = f"{world.agencies.url('civil_registry')}/_chaos"
    async with httpx.AsyncClient() as http:
        await http.put(chaos, json={"down": True})
        try:
            submitted = await _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant)
            code = submitted["trackingCode"]
            waiting = await _until(
                lambda: _inquiry(notary, code),
                lambda i: any(
                    c["name"] == "applicant_alive" and c["lastError"] for c in i["checks"]
                ),
            )
            assert waiting["status"] == "PENDING"
            alive = next(c for c in waiting["checks"] if c["name"] == "applicant_alive")
            assert alive["status"] == "PENDING"
            assert "civil_registry" in alive["lastError"]
        finally:
            await http.delete(chaos)
    inquiry = await _decided(notary, code)
    assert inquiry["verdict"] == "CLEAR"
    # The durable job, not the first run, finished it.
    await _backstop(world, code, "done")


async def test_one_idempotency_key_twice_at_once_gives_one_inquiry(world: World) -> None:
    notary = world.client("notary")
    renewal_code, applicant = await _parcel(world, "clean")
    key = uuid.uuid4().hex
    first, second = await asyncio.gather(
        _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant, key),
        _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant, key),
    )
    assert first["trackingCode"] == second["trackingCode"]
    assert first["id"] == second["id"]
    other_renewal, other_applicant = await _parcel(world, "unpaid")
    body = await notary(
        SUBMIT,
        {
            "input": {
                "kind": "PROPERTY_TRANSFER",
                "renewalCode": other_renewal,
                "applicantNationalCode": other_applicant,
                "idempotencyKey": key,
            }
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_refusals_store_nothing(world: World) -> None:
    notary = world.client("notary")
    renewal_code, applicant = await _parcel(world, "clean")

    async def code_of(variables: dict[str, Any], caller: GraphQLClient = notary) -> str:
        body = await caller(SUBMIT, {"input": variables})
        assert body.get("data") is None, body
        code: str = body["errors"][0]["extensions"]["code"]
        return code

    base = {
        "kind": "PROPERTY_TRANSFER",
        "renewalCode": renewal_code,
        "applicantNationalCode": applicant,
        "idempotencyKey": uuid.uuid4().hex,
    }
    # A kind the caller may not ask; anonymous; a parcel that does not exist.
    assert await code_of({**base, "kind": "MORTGAGE"}) == "FORBIDDEN"
    assert await code_of(base, world.client(None)) == "FORBIDDEN"
    assert await code_of({**base, "renewalCode": "9-99-999-999"}) == "NOT_FOUND"
    # A national ID failing its check digit; both keys of the property; neither.
    bad_id = applicant[:-1] + str((int(applicant[-1]) + 1) % 10)
    assert await code_of({**base, "applicantNationalCode": bad_id}) == "BAD_USER_INPUT"
    assert await code_of({**base, "registryPlate": "11-45/123"}) == "BAD_USER_INPUT"
    assert await code_of({k: v for k, v in base.items() if k != "renewalCode"}) == "BAD_USER_INPUT"
    # None of them was stored: the notary's inquiries are those the other tests submitted.
    listed = await notary("{ inquiries(first: 100) { edges { node { renewalCode } } } }")
    assert "errors" not in listed
    assert "9-99-999-999" not in str(listed)


async def test_another_partner_learns_nothing_of_an_inquiry_by_any_path(world: World) -> None:
    """A hostile partner holding another partner's tracking code, inquiry id and check id:
    every path answers as for a code that does not exist, and nothing it may call changes
    the inquiry."""
    notary, rival = world.client("notary"), world.client("notary_b")
    renewal_code, applicant = await _parcel(world, "old_certificate")
    key = uuid.uuid4().hex
    submitted = await _submit(notary, "PROPERTY_TRANSFER", renewal_code, applicant, key)
    code = submitted["trackingCode"]
    waiting = await _until(
        lambda: _inquiry(notary, code), lambda i: i["status"] == "WAITING_FOR_DEPARTMENT"
    )
    permit = next(c for c in waiting["checks"] if c["name"] == "building_matches_permit")
    unknown = new_tracking_code()  # well formed, and given to nobody

    # The root field, with the code in any digits, says what it says of an unknown code.
    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    for asked in (code, persian):
        theirs = await rival(READ, {"code": asked})
        assert theirs == await rival(READ, {"code": unknown}) == {"data": {"inquiry": None}}
    # node(id) for the inquiry and for its check; the list of the rival's own.
    for node_id in (submitted["id"], permit["id"]):
        body = await rival("query($id: ID!) { node(id: $id) { id } }", {"id": node_id})
        assert body == {"data": {"node": None}}, body
    listed = await rival("{ inquiries(first: 100) { edges { node { trackingCode } } } }")
    assert "errors" not in listed, listed
    assert code not in {e["node"]["trackingCode"] for e in listed["data"]["inquiries"]["edges"]}
    # The subscription ends at once, with nothing, as for an unknown code.
    subscription = "subscription($code: String!) { inquiryUpdated(trackingCode: $code) { status } }"
    async with websocket(world.address, world.keys["notary_b"]) as subscriber:
        assert await subscriber.subscribe("s1", subscription, {"code": code}) == [
            {"id": "s1", "type": "complete"}
        ]
        assert await subscriber.subscribe("s2", subscription, {"code": unknown}) == [
            {"id": "s2", "type": "complete"}
        ]
    # The letter: the same 404 as an unknown code (not the owner's 409 "not decided yet").
    async with httpx.AsyncClient(base_url=f"http://{world.address}") as http:
        headers = {"Authorization": f"Bearer {world.keys['notary_b']}"}
        letter = await http.get(f"/inquiries/{code}/letter", headers=headers)
        nothing = await http.get(f"/inquiries/{unknown}/letter", headers=headers)
        assert letter.status_code == nothing.status_code == 404
        assert letter.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        own = await http.get(
            f"/inquiries/{code}/letter",
            headers={"Authorization": f"Bearer {world.keys['notary']}"},
        )
        assert own.status_code == 409  # the owner is told it waits
    # Stats: the rival counts none of it (it asked nothing).
    stats = await rival("{ inquiryStats(groupBy: []) { total } }")
    assert stats["data"]["inquiryStats"] in ([], [{"total": 0}]), stats
    # Webhook deliveries: none of the owner's.
    deliveries = await rival("{ webhookDeliveries(first: 100) { totalCount } }")
    assert deliveries["data"]["webhookDeliveries"]["totalCount"] == 0, deliveries
    # Nothing it may call changes the inquiry: answering its check, revoking, reusing the
    # owner's idempotency key (that makes the rival an inquiry of its own).
    answered = await rival(
        ANSWER, {"input": {"checkId": permit["id"], "outcome": "FAIL", "note": "no"}}
    )
    assert answered["errors"][0]["extensions"]["code"] == "NOT_FOUND", answered
    revoked = await rival(
        'mutation($c: String!) { revokeInquiryAnswer(trackingCode: $c, reason: "x") { status } }',
        {"c": code},
    )
    assert revoked["errors"][0]["extensions"]["code"] == "FORBIDDEN", revoked
    queue = await rival(QUEUE)
    assert queue["errors"][0]["extensions"]["code"] == "FORBIDDEN", queue
    copied = await _submit(rival, "PROPERTY_TRANSFER", renewal_code, applicant, key)
    assert copied["trackingCode"] != code
    after = await _inquiry(notary, code)
    assert after["status"] == "WAITING_FOR_DEPARTMENT"
    assert (
        next(c for c in after["checks"] if c["name"] == "building_matches_permit")["outcome"]
        is None
    )
