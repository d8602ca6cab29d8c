"""A citizen request's lifecycle through GraphQL over HTTP: every allowed transition succeeds
and is recorded, every other is refused with CONFLICT naming the current status; the deadline
skips Fridays and Nowruz and stops while the request waits for the citizen; replies and the
citizen's rating (a low one reopens); who may move a request; and the merged duplicate's
citizen hearing the surviving request's resolution over a subscription."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.edge.app import create_app
from gateway.inquiries.workdays import TEHRAN
from gateway.requests.deadlines import due_at, request_week
from gateway.requests.lifecycle import TRANSITIONS, RequestStatus
from gateway.schema.node import to_global_id
from tests.conftest import GraphQLClient, settings_for
from tests.gateway.requests.lifecycle_world import (
    NOWRUZ_1405,
    START,
    Clock,
    World,
)
from tests.gateway.test_subscriptions import serving, websocket

TRANSITION = """
mutation ($input: TransitionCitizenRequestInput!) {
  transitionCitizenRequest(input: $input) {
    id trackingCode status deadline overdue
    history { event fromStatus status note actor }
  }
}"""
REPLY = """
mutation ($input: ReplyToCitizenRequestInput!) {
  replyToCitizenRequest(input: $input) { status replies { body department } }
}"""
RATE = """
mutation ($input: RateCitizenRequestInput!) {
  rateCitizenRequest(input: $input) { status rating deadline history { event status note } }
}"""
MERGE = """
mutation ($input: MergeCitizenRequestsInput!) {
  mergeCitizenRequests(input: $input) { trackingCode status history { event note } }
}"""
LOOKUP = """
query ($code: String!, $last4: String) {
  citizenRequest(trackingCode: $code, mobileLast4: $last4) {
    status replies { body } history { event status note }
  }
}"""
UPDATED = """
subscription ($code: String!, $last4: String) {
  requestUpdated(trackingCode: $code, mobileLast4: $last4) {
    trackingCode status citizenName citizenMobile
  }
}"""

STATUSES = list(RequestStatus)
ALLOWED = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if b in TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if b not in TRANSITIONS[a]]


@pytest.fixture(scope="module")
def world(lifecycle_world: World) -> World:
    """The session's world on this backend (conftest.py): requests of other modules' tests
    are in it too, so every test looks at its own requests only."""
    return lifecycle_world


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def http(world: World, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(world.backend), wall_clock=clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as client,
    ):
        yield client


def as_(http: httpx.AsyncClient, world: World, label: str | None) -> GraphQLClient:
    return GraphQLClient(http, None if label is None else world.keys[label])


def gid(request_id: int) -> str:
    return str(to_global_id("CitizenRequest", request_id))


async def move(
    client: GraphQLClient, request_id: int, to: str, note: str = "done as asked"
) -> dict[str, Any]:
    return await client(TRANSITION, {"input": {"id": gid(request_id), "to": to, "note": note}})


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    (error,) = body["errors"]
    extensions: dict[str, Any] = error["extensions"]
    return {"message": error["message"], **extensions}


@pytest.mark.parametrize(("before", "after"), ALLOWED, ids=lambda s: str(s))
async def test_every_allowed_transition_succeeds_and_is_recorded(
    world: World, http: httpx.AsyncClient, clock: Clock, before: RequestStatus, after: RequestStatus
) -> None:
    clock.now = START
    request = await world.request(
        before.value, paused_since=START if before is RequestStatus.WAITING_FOR_CITIZEN else None
    )
    body = await move(as_(http, world, "operator"), request.id, after.value, "checked on site")
    assert "errors" not in body, body
    moved = body["data"]["transitionCitizenRequest"]
    assert moved["status"] == after.value
    assert moved["history"] == [
        {
            "event": "TRANSITION",
            "fromStatus": before.value,
            "status": after.value,
            "note": "checked on site",
            "actor": moved["history"][0]["actor"],
        }
    ]
    assert moved["history"][0]["actor"].startswith("operator:")
    stored = await world.load(request.id)
    assert stored.status == after.value
    assert stored.version == request.version + 1
    if after is RequestStatus.RESOLVED:
        assert stored.resolved_at == START
    if after is RequestStatus.CLOSED:
        assert stored.closed_at == START
    if after is RequestStatus.WAITING_FOR_CITIZEN:
        assert stored.paused_since == START
    if before is RequestStatus.WAITING_FOR_CITIZEN:
        assert stored.paused_since is None
    if after is RequestStatus.REOPENED:
        assert stored.reopen_count == 1
        # A new deadline: the service's 5 working days from now (Sunday 29 November).
        assert stored.deadline_at == dt.datetime(2026, 12, 5, 14, tzinfo=TEHRAN)


@pytest.mark.parametrize(("before", "after"), REFUSED, ids=lambda s: str(s))
async def test_every_other_transition_is_refused_naming_the_current_status(
    world: World, http: httpx.AsyncClient, before: RequestStatus, after: RequestStatus
) -> None:
    request = await world.request(before.value)
    body = await move(as_(http, world, "operator"), request.id, after.value)
    assert body["data"] is None
    error = error_of(body)
    assert error["code"] == "CONFLICT"
    assert error["status"] == before.value
    assert f"The request is {before.value}; it cannot move to {after.value}" in error["message"]
    stored = await world.load(request.id)
    assert (stored.status, stored.version) == (before.value, request.version)
    assert await world.history(request.id) == []


async def test_the_deadline_skips_nowruz_and_stops_while_waiting_for_the_citizen(
    world: World, http: httpx.AsyncClient, clock: Clock
) -> None:
    week = request_week(NOWRUZ_1405)
    registered = dt.datetime(2026, 3, 18, 10, tzinfo=TEHRAN)  # a Wednesday before Nowruz
    deadline = due_at(registered, 5, week)
    # Thursday 19, then past Friday and Nowruz: Wednesday 25, Thursday 26, Saturday 28, Sunday 29.
    assert deadline == dt.datetime(2026, 3, 29, 14, tzinfo=TEHRAN)
    request = await world.request("IN_PROGRESS", registered_at=registered, deadline_at=deadline)
    operator = as_(http, world, "urban")
    clock.now = dt.datetime(2026, 3, 25, 9, tzinfo=TEHRAN)
    waiting = await move(operator, request.id, "WAITING_FOR_CITIZEN", "which street exactly?")
    assert waiting["data"]["transitionCitizenRequest"]["deadline"] == "2026-03-29T10:30:00+00:00"
    # Long past the deadline, but its clock is stopped: not overdue.
    clock.now = dt.datetime(2026, 3, 30, 9, tzinfo=TEHRAN)
    found = await operator(LOOKUP, {"code": request.tracking_code, "last4": "4567"})
    assert found["data"]["citizenRequest"]["status"] == "WAITING_FOR_CITIZEN"
    # Resumed on Monday 30: Wednesday 25, Thursday 26, Saturday 28 and Sunday 29 were waited,
    # so Sunday 29 moves four working days: Monday 30, Tuesday 31, then past 12 and 13
    # Farvardin (1 and 2 April) and a Friday, Saturday 4 and Sunday 5.
    resumed = await move(operator, request.id, "IN_PROGRESS", "the citizen called back")
    moved = resumed["data"]["transitionCitizenRequest"]
    assert moved["deadline"] == "2026-04-05T10:30:00+00:00"
    assert moved["overdue"] is False
    # Overdue since Sunday 5 April at 14:00; waiting from Monday 6, its clock is stopped.
    clock.now = dt.datetime(2026, 4, 6, 9, tzinfo=TEHRAN)
    late = await move(operator, request.id, "WAITING_FOR_CITIZEN", "a photo, please")
    assert late["data"]["transitionCitizenRequest"]["overdue"] is False
    # Resumed on Tuesday 7: Monday 6 was waited, so the deadline is Monday 6, still behind.
    clock.now = dt.datetime(2026, 4, 7, 9, tzinfo=TEHRAN)
    back = await move(operator, request.id, "IN_PROGRESS", "the photo came")
    assert back["data"]["transitionCitizenRequest"]["overdue"] is True
    assert back["data"]["transitionCitizenRequest"]["deadline"] == "2026-04-06T10:30:00+00:00"
    stored = await world.load(request.id)
    assert stored.paused_seconds == 6 * 86400  # every second waited is kept, for the figures
    events = [(h.from_status, h.to_status) for h in await world.history(request.id)]
    assert events == [
        ("IN_PROGRESS", "WAITING_FOR_CITIZEN"),
        ("WAITING_FOR_CITIZEN", "IN_PROGRESS"),
        ("IN_PROGRESS", "WAITING_FOR_CITIZEN"),
        ("WAITING_FOR_CITIZEN", "IN_PROGRESS"),
    ]


async def test_a_low_rating_reopens_the_request_and_a_good_one_closes_it(
    world: World, http: httpx.AsyncClient, clock: Clock
) -> None:
    clock.now = START
    request = await world.request("RESOLVED", resolved_at=START - dt.timedelta(hours=1))
    citizen = as_(http, world, None)
    rating = {"trackingCode": request.tracking_code, "mobileLast4": "4567"}
    wrong = await citizen(RATE, {"input": {**rating, "mobileLast4": "4568", "rating": 5}})
    assert error_of(wrong)["code"] == "NOT_FOUND"
    low = await citizen(RATE, {"input": {**rating, "rating": 2, "comment": "still there"}})
    reopened = low["data"]["rateCitizenRequest"]
    assert (reopened["status"], reopened["rating"]) == ("REOPENED", 2)
    assert reopened["history"][-1] == {
        "event": "TRANSITION",
        "status": "REOPENED",
        "note": "rating 2/5: still there",
    }
    assert reopened["deadline"] == "2026-12-05T10:30:00+00:00"
    again = await citizen(RATE, {"input": {**rating, "rating": 5}})
    assert error_of(again) | {"message": ""} == {
        "message": "",
        "code": "CONFLICT",
        "field": "trackingCode",
        "status": "REOPENED",
    }
    handler = as_(http, world, "urban")
    await move(handler, request.id, "IN_PROGRESS")
    await move(handler, request.id, "RESOLVED", "tree removed for good")
    good = await citizen(RATE, {"input": {**rating, "rating": 4}})
    assert good["data"]["rateCitizenRequest"]["status"] == "CLOSED"
    stored = await world.load(request.id)
    assert (stored.rating, stored.reopen_count, stored.closed_at) == (4, 1, START)
    out_of_range = await citizen(RATE, {"input": {**rating, "rating": 6}})
    assert error_of(out_of_range)["code"] == "BAD_USER_INPUT"


async def test_replies_reach_the_citizen_and_not_after_closing(
    world: World, http: httpx.AsyncClient
) -> None:
    request = await world.request("IN_PROGRESS")
    handler = as_(http, world, "urban")
    sent = await handler(
        REPLY, {"input": {"id": gid(request.id), "body": "اکیپ فضای سبز فردا اعزام می‌شود"}}
    )
    assert sent["data"]["replyToCitizenRequest"]["replies"] == [
        {"body": "اکیپ فضای سبز فردا اعزام می‌شود", "department": "urban_services"}
    ]
    seen = await as_(http, world, None)(LOOKUP, {"code": request.tracking_code, "last4": "4567"})
    mine = seen["data"]["citizenRequest"]
    assert [r["body"] for r in mine["replies"]] == ["اکیپ فضای سبز فردا اعزام می‌شود"]
    assert [h["event"] for h in mine["history"]] == ["REPLIED"]
    closed = await world.request("CLOSED")
    refused = await handler(REPLY, {"input": {"id": gid(closed.id), "body": "too late"}})
    assert error_of(refused)["code"] == "CONFLICT"
    empty = await handler(REPLY, {"input": {"id": gid(request.id), "body": "  "}})
    assert error_of(empty) | {"message": ""} == {
        "message": "",
        "code": "BAD_USER_INPUT",
        "field": "body",
    }


async def test_who_may_move_a_request(world: World, http: httpx.AsyncClient) -> None:
    pothole = await world.request("ASSIGNED", service_id=world.other_service_id)
    # Another department that does not see it, a counter, the public: it reads as absent.
    for label in ("counter", None):
        body = await move(as_(http, world, label), pothole.id, "IN_PROGRESS")
        assert error_of(body)["code"] == "NOT_FOUND", label
    tree = await world.request("ASSIGNED")
    assert error_of(await move(as_(http, world, "transport"), tree.id, "IN_PROGRESS")) == {
        "message": "No citizen request with this id is yours to see.",
        "code": "NOT_FOUND",
        "field": "id",
    }
    # Transport sees potholes but only urban services answers them.
    seen = await move(as_(http, world, "transport"), pothole.id, "IN_PROGRESS")
    assert error_of(seen)["code"] == "FORBIDDEN"
    assert error_of(seen)["scope"] == "requests:handle"
    assert (await world.load(pothole.id)).status == "ASSIGNED"
    # The department it is assigned to, and the 137 centre (it took the call), may.
    assert "errors" not in await move(as_(http, world, "urban"), pothole.id, "IN_PROGRESS")
    body = await move(as_(http, world, "centre"), pothole.id, "WAITING_FOR_CITIZEN")
    assert "errors" not in body, body
    # Malformed input names its field.
    bad_note = await move(as_(http, world, "urban"), pothole.id, "IN_PROGRESS", note=" ")
    assert error_of(bad_note)["field"] == "note"
    not_a_request = await as_(http, world, "operator")(
        TRANSITION,
        {"input": {"id": str(to_global_id("Parcel", 1)), "to": "CLOSED", "note": "x"}},
    )
    assert error_of(not_a_request)["code"] == "BAD_USER_INPUT"


async def test_a_transition_is_audited_under_its_caller(
    world: World, http: httpx.AsyncClient
) -> None:
    request = await world.request("ASSIGNED")
    await move(as_(http, world, "urban"), request.id, "IN_PROGRESS")
    trail = await as_(http, world, "operator")(
        """query ($id: String!) {
          auditTrail(filter: {subjectType: "CitizenRequest", subjectId: $id}, first: 5) {
            edges { node { operation principalKind action } }
          }
        }""",
        {"id": str(request.id)},
    )
    nodes = [edge["node"] for edge in trail["data"]["auditTrail"]["edges"]]
    assert {
        "operation": "Mutation.transitionCitizenRequest",
        "principalKind": "department",
        "action": "change",
    } in nodes


async def test_a_merged_duplicates_citizen_hears_the_survivors_resolution(
    world: World, clock: Clock
) -> None:
    clock.now = START
    survivor = await world.request("IN_PROGRESS", mobile="09120000001")
    duplicate = await world.request("ASSIGNED", mobile="09359876543")
    app = create_app(settings_for(world.backend), wall_clock=clock)
    async with serving(app) as address, websocket(address) as citizen:
        # The duplicate's citizen, with no key: their own code and their mobile's last digits.
        variables = {"code": duplicate.tracking_code, "last4": "6543"}
        assert await citizen.subscribe("1", UPDATED, variables) == []
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            officer = GraphQLClient(http, world.keys["urban"])
            merged = await officer(
                MERGE,
                {
                    "input": {
                        "survivorId": gid(survivor.id),
                        "duplicateId": gid(duplicate.id),
                        "note": "the same fallen tree",
                    }
                },
            )
            assert merged["data"]["mergeCitizenRequests"]["history"] == [
                {
                    "event": "MERGED",
                    "note": f"{duplicate.tracking_code} merged into this request: "
                    "the same fallen tree",
                }
            ]
            heard = [await citizen.receive(), await citizen.receive()]
            resolved = await move(officer, survivor.id, "RESOLVED", "tree removed")
            assert "errors" not in resolved
            heard.append(await citizen.receive())
    updates = [message["payload"]["data"]["requestUpdated"] for message in heard]
    # The survivor (followed), then their own request closed into it, then the resolution.
    assert [(u["trackingCode"], u["status"]) for u in updates] == [
        (survivor.tracking_code, "IN_PROGRESS"),
        (duplicate.tracking_code, "CLOSED"),
        (survivor.tracking_code, "RESOLVED"),
    ]
    # Nothing personal of the other citizen; their own, masked (no personal:read).
    assert (updates[2]["citizenName"], updates[2]["citizenMobile"]) == (None, None)
    assert updates[1]["citizenMobile"] == "0935*******"
    # Both histories stay readable.
    assert [h.event for h in await world.history(duplicate.id)] == ["MERGED"]
    assert [h.event for h in await world.history(survivor.id)] == ["MERGED", "TRANSITION"]


async def test_a_subscription_to_a_request_one_may_not_see_ends_at_once(
    world: World, clock: Clock
) -> None:
    request = await world.request("ASSIGNED")
    app = create_app(settings_for(world.backend), wall_clock=clock)
    async with serving(app) as address, websocket(address) as stranger:
        wrong = {"code": request.tracking_code, "last4": "0000"}
        assert await stranger.subscribe("1", UPDATED, wrong) == [{"id": "1", "type": "complete"}]
        no_proof = {"code": request.tracking_code}
        assert await stranger.subscribe("2", UPDATED, no_proof) == [{"id": "2", "type": "complete"}]


async def test_two_officers_moving_the_same_request_at_once_do_not_both_succeed(
    world: World, http: httpx.AsyncClient
) -> None:
    request = await world.request("IN_PROGRESS")
    officer = as_(http, world, "urban")
    first, second = await asyncio.gather(
        move(officer, request.id, "RESOLVED", "fixed"),
        move(officer, request.id, "RESOLVED", "fixed too"),
    )
    outcomes = sorted("errors" in body for body in (first, second))
    assert outcomes == [False, True]
    refused = first if "errors" in first else second
    assert error_of(refused)["code"] == "CONFLICT"
    assert error_of(refused)["status"] == "RESOLVED"
    assert [h.to_status for h in await world.history(request.id)] == ["RESOLVED"]


async def test_a_split_through_graphql_returns_the_children(
    world: World, http: httpx.AsyncClient
) -> None:
    parent = await world.request("ASSIGNED")
    body = await as_(http, world, "centre")(
        """mutation ($input: SplitCitizenRequestInput!) {
          splitCitizenRequest(input: $input) { trackingCode status department parent { id } }
        }""",
        {
            "input": {
                "id": gid(parent.id),
                "parts": [
                    {"department": "urban_services"},
                    {"department": "transport", "description": "تابلو افتاده است"},
                ],
                "note": "two departments' work",
            }
        },
    )
    assert "errors" not in body, body
    children = body["data"]["splitCitizenRequest"]
    assert [(c["status"], c["department"]) for c in children] == [
        ("ASSIGNED", "urban_services"),
        ("ASSIGNED", "transport"),
    ]
    assert {c["parent"]["id"] for c in children} == {gid(parent.id)}
    refused = await as_(http, world, "centre")(
        """mutation ($input: SplitCitizenRequestInput!) {
          splitCitizenRequest(input: $input) { trackingCode }
        }""",
        {"input": {"id": gid(parent.id), "parts": [{"department": "x"}], "note": "n"}},
    )
    assert error_of(refused)["field"] == "parts"


def test_the_readmes_table_is_the_lifecycles() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    lines = readme[readme.index("| from \\ to |") :].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")][1:]
    table: dict[RequestStatus, frozenset[RequestStatus]] = {}
    for line in itertools.takewhile(lambda text: text.startswith("|"), lines[2:]):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        targets = frozenset(
            RequestStatus(name) for name, cell in zip(header, cells[1:], strict=True) if cell == "✓"
        )
        for source in cells[0].split(", "):
            table[RequestStatus(source)] = targets
    assert table == TRANSITIONS
