"""Merging duplicates into one request, and splitting one request into several.

A merge (ادغام) is an officer's decision that two open requests are about the same thing: the
duplicate is closed into the surviving one, and its citizen follows the survivor, hearing its
updates through their own tracking code (request_followers); the duplicate's own followers
follow the survivor too. Neither history is rewritten: each request keeps its own, and each
gains a MERGED step naming the other, so both stay readable by whoever may read them.

A split (تفکیک) makes child requests for several departments out of one that needs them all
(a fallen tree that broke a water pipe and blocks a street): each child is assigned to its
department with the service's deadline from the moment of the split, carries the parent's
place, service and citizen, and is followed by the parent, whose citizen therefore hears
each child's progress. The parent stays as it is, its history naming its children.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.contact import RequestFollowerRecord
from db.engines import begin_write
from gateway.access.principals import DEPARTMENTS, Principal
from gateway.errors import BadUserInput, Conflict
from gateway.inquiries.tracking import new_tracking_code
from gateway.requests import records
from gateway.requests.deadlines import due_at
from gateway.requests.lifecycle import (
    OPEN,
    Changed,
    RequestStatus,
    actor_of,
    audiences,
    clean_note,
    locked,
    require_handler,
    save,
)
from gateway.requests.records import REQUESTS, CitizenRequest, naive

__all__ = ["MAX_PARTS", "Part", "Split", "merge", "split"]

FOLLOWERS = cast(Table, RequestFollowerRecord.__table__)
MAX_PARTS = 10


async def _free_tracking_codes(connection: AsyncConnection, count: int) -> list[str]:
    """`count` distinct tracking codes no request holds, drawn again while one is taken
    (registration retries its insert instead; a split's children go in inside the
    caller's transaction, where a failed insert would abort it)."""
    codes: list[str] = []
    for _draw in range(5):
        drawn = {new_tracking_code() for _ in range(count - len(codes))} - set(codes)
        taken = set(
            await connection.scalars(
                select(REQUESTS.c.tracking_code).where(REQUESTS.c.tracking_code.in_(drawn))
            )
        )
        codes += sorted(drawn - taken)
        if len(codes) >= count:
            return codes[:count]
    raise RuntimeError("no free tracking codes after five draws")


def _require_open(request: CitizenRequest, field: str) -> None:
    if request.merged_into_id is not None:
        raise Conflict(
            "This request was merged into another already.", field=field, status=request.status
        )
    if RequestStatus(request.status) not in OPEN:
        raise Conflict(
            f"The request is {request.status}; only open requests are merged or split.",
            field=field,
            status=request.status,
        )


async def _follow(
    connection: AsyncConnection, request_id: int, follower_id: int, now: dt.datetime
) -> None:
    """`follower_id` hears `request_id`'s changes (once, however often it is asked)."""
    known = await connection.scalar(
        select(FOLLOWERS.c.id).where(
            FOLLOWERS.c.request_id == request_id, FOLLOWERS.c.follower_request_id == follower_id
        )
    )
    if known is None and request_id != follower_id:
        await connection.execute(
            insert(FOLLOWERS).values(
                request_id=request_id, follower_request_id=follower_id, since=naive(now)
            )
        )


async def merge(
    connection: AsyncConnection,
    principal: Principal,
    survivor_id: int,
    duplicate_id: int,
    note: str,
    now: dt.datetime,
    *,
    where: ColumnElement[bool] | None,
) -> tuple[Changed, Changed]:
    """Closes the duplicate into the survivor, in the caller's transaction; returns both as
    changed (the survivor first). Both must be open, visible to the caller and handled by it.
    BAD_USER_INPUT for a request merged into itself; CONFLICT for one merged or finished
    already."""
    text = clean_note(note)
    if survivor_id == duplicate_id:
        raise BadUserInput("A request is not a duplicate of itself.", field="duplicateId")
    # Locked in id order, so that two merges of the same pair cannot wait on each other.
    first, second = sorted((survivor_id, duplicate_id))
    await begin_write(connection)
    locked_first = await locked(
        connection, first, where, field="survivorId" if first == survivor_id else "duplicateId"
    )
    locked_second = await locked(
        connection, second, where, field="survivorId" if second == survivor_id else "duplicateId"
    )
    by_id = {locked_first.id: locked_first, locked_second.id: locked_second}
    survivor, duplicate = by_id[survivor_id], by_id[duplicate_id]
    require_handler(principal, survivor)
    require_handler(principal, duplicate)
    _require_open(survivor, "survivorId")
    _require_open(duplicate, "duplicateId")
    kind, actor = actor_of(principal)
    closed = await save(
        connection,
        duplicate,
        {
            "status": RequestStatus.CLOSED.value,
            "merged_into_id": survivor.id,
            "closed_at": naive(now),
            "updated_at": naive(now),
            "paused_since": None,
        },
    )
    kept = await save(connection, survivor, {"updated_at": naive(now)})
    await records.append_history(
        connection,
        request_id=duplicate.id,
        event="MERGED",
        from_status=duplicate.status,
        to_status=RequestStatus.CLOSED.value,
        at=now,
        actor_kind=kind,
        actor=actor,
        department=principal.department,
        note=f"merged into {survivor.tracking_code}: {text}",
    )
    await records.append_history(
        connection,
        request_id=survivor.id,
        event="MERGED",
        from_status=survivor.status,
        to_status=survivor.status,
        at=now,
        actor_kind=kind,
        actor=actor,
        department=principal.department,
        note=f"{duplicate.tracking_code} merged into this request: {text}",
    )
    # The duplicate's citizen, and whoever followed the duplicate, now follow the survivor.
    await _follow(connection, survivor.id, duplicate.id, now)
    for follower in await connection.scalars(
        select(FOLLOWERS.c.follower_request_id).where(FOLLOWERS.c.request_id == duplicate.id)
    ):
        await _follow(connection, survivor.id, follower, now)
    return (
        Changed(kept, await audiences(connection, kept)),
        Changed(closed, await audiences(connection, closed)),
    )


@dataclass(frozen=True)
class Part:
    """One child of a split: the department that answers it and, if given, what it asks of
    that department (else the parent's description)."""

    department: str
    description: str | None = None


@dataclass(frozen=True)
class Split:
    parent: Changed
    children: tuple[CitizenRequest, ...]


def _check_parts(parts: Sequence[Part]) -> list[Part]:
    if not 2 <= len(parts) <= MAX_PARTS:
        raise BadUserInput(f"A split makes 2 to {MAX_PARTS} requests.", field="parts")
    seen: set[str] = set()
    cleaned: list[Part] = []
    for part in parts:
        if part.department not in DEPARTMENTS:
            raise BadUserInput("Not a department of the municipality.", field="parts")
        if part.department in seen:
            raise BadUserInput("Each part goes to another department.", field="parts")
        seen.add(part.department)
        description = (
            None
            if part.description is None
            else clean_note(part.description, field="parts", limit=4000)
        )
        cleaned.append(Part(part.department, description))
    return cleaned


async def split(
    connection: AsyncConnection,
    principal: Principal,
    request_id: int,
    parts: Sequence[Part],
    note: str,
    now: dt.datetime,
    *,
    where: ColumnElement[bool] | None,
) -> Split:
    """Makes one child request per part, each ASSIGNED to its department, in the caller's
    transaction. The parent must be open, visible to the caller and handled by it."""
    text = clean_note(note)
    wanted = _check_parts(parts)
    await begin_write(connection)
    parent = await locked(connection, request_id, where)
    require_handler(principal, parent)
    _require_open(parent, "id")
    service = await records.load_service(connection, id=parent.service_id)
    assert service is not None
    week = await records.load_workweek(connection)
    deadline = naive(due_at(now, service.deadline_days, week))
    kind, actor = actor_of(principal)
    codes = await _free_tracking_codes(connection, len(wanted))
    children: list[CitizenRequest] = []
    for number, part in enumerate(wanted, start=1):
        # The registrar's idempotency keys are its own: the split's are named after it.
        key = f"split:{parent.tracking_code}:{number}"
        result = await connection.execute(
            insert(REQUESTS).values(
                tracking_code=codes[number - 1],
                kind=parent.kind,
                status=RequestStatus.ASSIGNED.value,
                service_id=parent.service_id,
                channel=parent.channel,
                registered_by_kind=parent.registered_by_kind,
                registered_by=parent.registered_by,
                idempotency_key=key,
                input_digest=hashlib.sha256(key.encode()).hexdigest(),
                description=part.description or parent.description,
                latitude=parent.latitude,
                longitude=parent.longitude,
                address=parent.address,
                renewal_code=parent.renewal_code,
                region=parent.region,
                department=part.department,
                region_office=parent.region_office,
                referred_to=None,
                routing_rule_id=None,
                citizen_name=parent.citizen_name,
                citizen_mobile=parent.citizen_mobile,
                photo_urls=list(parent.photo_urls),
                answers=dict(parent.answers),
                parent_id=parent.id,
                registered_at=naive(now),
                updated_at=naive(now),
                assigned_at=naive(now),
                deadline_at=deadline,
                paused_seconds=0,
                reopen_count=0,
                public_consent=parent.public_consent,
                version=1,
            )
        )
        assert result.inserted_primary_key is not None
        child_id = int(result.inserted_primary_key[0])
        await records.append_history(
            connection,
            request_id=child_id,
            event="SPLIT",
            from_status=None,
            to_status=RequestStatus.ASSIGNED.value,
            at=now,
            actor_kind=kind,
            actor=actor,
            department=part.department,
            note=f"split from {parent.tracking_code}: {text}",
        )
        # The parent's citizen hears each child's progress through the parent's code.
        await _follow(connection, child_id, parent.id, now)
        child = await records.load(connection, child_id)
        assert child is not None
        children.append(child)
    kept = await save(connection, parent, {"updated_at": naive(now)})
    listed = ", ".join(f"{c.tracking_code} ({c.department})" for c in children)
    await records.append_history(
        connection,
        request_id=parent.id,
        event="SPLIT",
        from_status=parent.status,
        to_status=parent.status,
        at=now,
        actor_kind=kind,
        actor=actor,
        department=principal.department,
        note=f"split into {listed}: {text}",
    )
    return Split(Changed(kept, await audiences(connection, kept)), tuple(children))
