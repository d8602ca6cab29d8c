"""Merging a duplicate into the surviving request (its citizen follows the survivor, both
histories stay) and splitting a request into child requests for several departments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway.access.principals import Principal, PrincipalKind, scopes_for
from gateway.errors import BadUserInput, Conflict, Forbidden, NotFound
from gateway.requests import merging, records
from gateway.requests.lifecycle import Changed, RequestStatus, transition
from gateway.requests.merging import Part
from tests.gateway.requests.lifecycle_world import START, World

NOW = START + dt.timedelta(hours=2)


def principal(kind: PrincipalKind, department: str | None = None) -> Principal:
    return Principal(
        kind=kind,
        id=f"{kind.value}-{department}",
        name="test",
        department=department,
        scopes=scopes_for(kind, department),
    )


OPERATOR = principal(PrincipalKind.OPERATOR)
URBAN = principal(PrincipalKind.DEPARTMENT, "urban_services")
TRANSPORT = principal(PrincipalKind.DEPARTMENT, "transport")


@pytest.fixture(scope="module")
def world(lifecycle_world: World) -> World:
    """The session's world on this backend (conftest.py): requests of other modules' tests
    are in it too, so every test looks at its own requests only."""
    return lifecycle_world


async def in_transaction(world: World, work: Any) -> Any:
    async with world.databases.engine(records.DATABASE).connect() as connection:
        result = await work(connection)
        await connection.commit()
    return result


async def merge(world: World, who: Principal, survivor: int, duplicate: int) -> Any:
    return await in_transaction(
        world,
        lambda c: merging.merge(c, who, survivor, duplicate, "same fallen tree", NOW, where=None),
    )


async def test_a_merged_duplicate_is_closed_into_the_survivor_and_follows_it(
    world: World,
) -> None:
    survivor = await world.request("IN_PROGRESS")
    duplicate = await world.request("ASSIGNED", mobile="09350000001")
    kept, closed = await merge(world, URBAN, survivor.id, duplicate.id)
    assert closed.request.status == "CLOSED"
    assert closed.request.merged_into_id == survivor.id
    assert kept.request.status == "IN_PROGRESS"
    # The survivor's changes reach the duplicate's citizen, through the duplicate's code.
    assert kept.audiences == (survivor.tracking_code, duplicate.tracking_code)
    # Both histories stay, each naming the other.
    (dup_step,) = await world.history(duplicate.id)
    assert (dup_step.event, dup_step.from_status, dup_step.to_status) == (
        "MERGED",
        "ASSIGNED",
        "CLOSED",
    )
    assert dup_step.note == f"merged into {survivor.tracking_code}: same fallen tree"
    (kept_step,) = await world.history(survivor.id)
    assert kept_step.note == f"{duplicate.tracking_code} merged into this request: same fallen tree"
    # The survivor's resolution is heard by both codes.
    resolved: Changed = await in_transaction(
        world,
        lambda c: transition(
            c, URBAN, survivor.id, RequestStatus.RESOLVED, "tree removed", NOW, where=None
        ),
    )
    assert [audience for audience, _ in resolved.events()] == [
        survivor.tracking_code,
        duplicate.tracking_code,
    ]
    assert {event.status for _, event in resolved.events()} == {"RESOLVED"}


async def test_followers_of_a_duplicate_follow_the_survivor_too(world: World) -> None:
    first = await world.request("ASSIGNED")
    second = await world.request("ASSIGNED")
    third = await world.request("ASSIGNED")
    await merge(world, OPERATOR, second.id, first.id)
    kept, _ = await merge(world, OPERATOR, third.id, second.id)
    assert set(kept.audiences) == {third.tracking_code, second.tracking_code, first.tracking_code}


@pytest.mark.parametrize(
    ("survivor_status", "duplicate_status"),
    [("RESOLVED", "ASSIGNED"), ("ASSIGNED", "CLOSED"), ("ASSIGNED", "REJECTED")],
)
async def test_only_open_requests_are_merged(
    world: World, survivor_status: str, duplicate_status: str
) -> None:
    survivor = await world.request(survivor_status)
    duplicate = await world.request(duplicate_status)
    with pytest.raises(Conflict) as refused:
        await merge(world, OPERATOR, survivor.id, duplicate.id)
    assert refused.value.extensions["status"] in {survivor_status, duplicate_status}
    assert await world.history(duplicate.id) == []
    assert (await world.load(duplicate.id)).status == duplicate_status


async def test_a_merge_is_refused_for_itself_twice_or_by_a_stranger(world: World) -> None:
    survivor = await world.request("ASSIGNED")
    duplicate = await world.request("ASSIGNED")
    with pytest.raises(BadUserInput):
        await merge(world, OPERATOR, survivor.id, survivor.id)
    with pytest.raises(Forbidden):
        await merge(world, TRANSPORT, survivor.id, duplicate.id)
    with pytest.raises(NotFound):
        await merge(world, OPERATOR, survivor.id, 2_000_000_000)
    await merge(world, OPERATOR, survivor.id, duplicate.id)
    with pytest.raises(Conflict, match="merged into another already"):
        await merge(world, OPERATOR, survivor.id, duplicate.id)


async def test_a_split_makes_a_child_for_each_department(world: World) -> None:
    parent = await world.request("IN_PROGRESS")
    parts = [Part("urban_services"), Part("transport", "چراغ راهنمایی خاموش است")]
    split = await in_transaction(
        world, lambda c: merging.split(c, URBAN, parent.id, parts, "two jobs", NOW, where=None)
    )
    children = split.children
    assert [c.department for c in children] == ["urban_services", "transport"]
    assert {c.status for c in children} == {"ASSIGNED"}
    assert {c.parent_id for c in children} == {parent.id}
    assert children[1].description == "چراغ راهنمایی خاموش است"
    assert children[0].description == parent.description
    assert {c.citizen_mobile for c in children} == {parent.citizen_mobile}
    # The service's 5 working days from the split: Sunday 29 November → Saturday 5 December.
    assert children[0].deadline_at == dt.datetime(2026, 12, 5, 10, 30, tzinfo=dt.UTC)
    assert len({c.tracking_code for c in children} | {parent.tracking_code}) == 3
    # The parent stays, naming its children; each child names its parent.
    assert (await world.load(parent.id)).status == "IN_PROGRESS"
    (step,) = await world.history(parent.id)
    assert step.event == "SPLIT"
    assert all(c.tracking_code in (step.note or "") for c in children)
    (child_step,) = await world.history(children[1].id)
    assert (child_step.event, child_step.from_status, child_step.to_status) == (
        "SPLIT",
        None,
        "ASSIGNED",
    )
    # The parent's citizen hears each child: a child's change reaches the parent's code.
    moved: Changed = await in_transaction(
        world,
        lambda c: transition(
            c, TRANSPORT, children[1].id, RequestStatus.IN_PROGRESS, "on it", NOW, where=None
        ),
    )
    assert moved.audiences == (children[1].tracking_code, parent.tracking_code)


@pytest.mark.parametrize(
    "parts",
    [
        [Part("transport")],
        [Part("transport"), Part("transport")],
        [Part("transport"), Part("the_mayor")],
    ],
)
async def test_a_split_needs_two_or_more_distinct_departments(
    world: World, parts: list[Part]
) -> None:
    parent = await world.request("ASSIGNED")
    with pytest.raises(BadUserInput) as refused:
        await in_transaction(
            world, lambda c: merging.split(c, URBAN, parent.id, parts, "n", NOW, where=None)
        )
    assert refused.value.extensions["field"] == "parts"


async def test_a_finished_request_is_not_split(world: World) -> None:
    parent = await world.request("RESOLVED")
    parts = [Part("transport"), Part("urban_services")]
    with pytest.raises(Conflict):
        await in_transaction(
            world, lambda c: merging.split(c, URBAN, parent.id, parts, "n", NOW, where=None)
        )


async def test_a_split_draws_again_when_a_tracking_code_is_taken(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = await world.request("ASSIGNED")
    taken = (await world.request("ASSIGNED")).tracking_code
    fresh = iter(["1234567890123452", "2345678901234567"])
    # The first draw collides with a request that exists, and with itself; then fresh codes.
    draws = iter([taken, taken, parent.tracking_code])
    monkeypatch.setattr(merging, "new_tracking_code", lambda: next(draws, None) or next(fresh))
    parts = [Part("urban_services"), Part("transport")]
    split = await in_transaction(
        world, lambda c: merging.split(c, URBAN, parent.id, parts, "two jobs", NOW, where=None)
    )
    assert sorted(c.tracking_code for c in split.children) == [
        "1234567890123452",
        "2345678901234567",
    ]
