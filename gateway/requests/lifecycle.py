"""A citizen request's lifecycle (چرخه رسیدگی): its states and the one table of the transitions
allowed between them.

Anything not in TRANSITIONS is refused, naming the state the request is in. Two changes are
not transitions of the table: registration (a new request starts SUBMITTED, or ASSIGNED or
REFERRED when routing placed it) and a merge, which closes the duplicate whatever its state
(gateway/requests/merging.py). A satisfaction rating, the citizen's one act, moves a RESOLVED
request along an edge of the table: to REOPENED when it is low, else to CLOSED.

    from \\ to           ASG  INP  WAIT RES  REJ  REF  REOP CLO
    SUBMITTED            ✓                   ✓    ✓
    ASSIGNED                  ✓    ✓    ✓    ✓    ✓
    IN_PROGRESS                    ✓    ✓    ✓    ✓
    WAITING_FOR_CITIZEN       ✓         ✓    ✓
    RESOLVED                                           ✓    ✓
    REJECTED                                           ✓    ✓
    REFERRED                                           ✓    ✓
    REOPENED             ✓    ✓    ✓    ✓    ✓    ✓
    CLOSED               (final)
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.contact import RequestFollowerRecord
from db.engines import begin_write
from gateway.access.principals import Principal, PrincipalKind
from gateway.errors import BadUserInput, Conflict, Forbidden, NotFound
from gateway.events import Topic
from gateway.inquiries.workdays import Workweek
from gateway.requests import records
from gateway.requests.deadlines import RequestClock, due_at
from gateway.requests.records import REPLIES, REQUESTS, CitizenRequest, Reply, naive

__all__ = [
    "OPEN",
    "REQUEST_UPDATED",
    "TRANSITIONS",
    "Changed",
    "RatingPolicy",
    "RequestChanged",
    "RequestStatus",
    "TransitionRefused",
    "allowed",
    "check_transition",
    "rate",
    "rating_outcome",
    "reply",
    "transition",
]


class RequestStatus(StrEnum):
    SUBMITTED = "SUBMITTED"  # ثبت شده
    ASSIGNED = "ASSIGNED"  # ارجاع به واحد مسئول
    IN_PROGRESS = "IN_PROGRESS"  # در دست اقدام
    WAITING_FOR_CITIZEN = "WAITING_FOR_CITIZEN"  # در انتظار شهروند
    RESOLVED = "RESOLVED"  # رسیدگی شده
    REJECTED = "REJECTED"  # رد شده
    REFERRED = "REFERRED"  # ارجاع به دستگاه دیگر
    REOPENED = "REOPENED"  # بازگشایی شده
    CLOSED = "CLOSED"  # مختومه


S = RequestStatus

# The one table: from each state, the states a request may move to.
TRANSITIONS: Mapping[RequestStatus, frozenset[RequestStatus]] = {
    S.SUBMITTED: frozenset({S.ASSIGNED, S.REJECTED, S.REFERRED}),
    S.ASSIGNED: frozenset(
        {S.IN_PROGRESS, S.WAITING_FOR_CITIZEN, S.RESOLVED, S.REJECTED, S.REFERRED}
    ),
    S.IN_PROGRESS: frozenset({S.WAITING_FOR_CITIZEN, S.RESOLVED, S.REJECTED, S.REFERRED}),
    S.WAITING_FOR_CITIZEN: frozenset({S.IN_PROGRESS, S.RESOLVED, S.REJECTED}),
    S.RESOLVED: frozenset({S.REOPENED, S.CLOSED}),
    S.REJECTED: frozenset({S.REOPENED, S.CLOSED}),
    S.REFERRED: frozenset({S.REOPENED, S.CLOSED}),
    S.REOPENED: frozenset(
        {S.ASSIGNED, S.IN_PROGRESS, S.WAITING_FOR_CITIZEN, S.RESOLVED, S.REJECTED, S.REFERRED}
    ),
    S.CLOSED: frozenset(),
}

# States in which the municipality still owes an answer: its deadline runs (or is paused),
# reminders and escalation apply, duplicates may be merged into it.
OPEN = frozenset({S.SUBMITTED, S.ASSIGNED, S.IN_PROGRESS, S.WAITING_FOR_CITIZEN, S.REOPENED})
# Answered, one way or another: a rating or a closing follows.
ANSWERED = frozenset({S.RESOLVED, S.REJECTED, S.REFERRED})


class TransitionRefused(ValueError):
    """A transition the table does not allow from the request's current state."""

    def __init__(self, current: RequestStatus, to: RequestStatus) -> None:
        allowed_now = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        super().__init__(
            f"The request is {current.value}; it cannot move to {to.value} "
            f"(from {current.value}: {allowed_now})."
        )
        self.current = current
        self.to = to


def allowed(current: RequestStatus, to: RequestStatus) -> bool:
    return to in TRANSITIONS[current]


def check_transition(current: RequestStatus, to: RequestStatus) -> None:
    """Raises TransitionRefused unless the table allows `current` → `to`."""
    if not allowed(current, to):
        raise TransitionRefused(current, to)


@dataclass(frozen=True, slots=True)
class RatingPolicy:
    """Ratings from 1 to 5; at or below `reopen_at_most` the request reopens."""

    reopen_at_most: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.reopen_at_most <= 4:
            raise ValueError("reopen_at_most is 0 (never reopen) to 4")


def rating_outcome(rating: int, policy: RatingPolicy) -> RequestStatus:
    """Where a RESOLVED request goes on the citizen's rating: REOPENED when low, else CLOSED."""
    if not 1 <= rating <= 5:
        raise ValueError("a rating is 1 to 5")
    return S.REOPENED if rating <= policy.reopen_at_most else S.CLOSED


# --- Changing a request ----------------------------------------------------------------------

MAX_NOTE = 2000
MAX_REPLY = 4000
# The 137 centre triages every request; the department it is assigned to works on it.
CENTRE = "contact137"


@dataclass(frozen=True)
class RequestChanged:
    """A citizen request changed (subscribers read the rest themselves, through their rights).
    `tracking_code` is the request that changed; the event's audience is a tracking code that
    hears it: its own, or a follower's (a merged duplicate, a split request's parent)."""

    tracking_code: str
    status: str


REQUEST_UPDATED: Topic[RequestChanged] = Topic("request-updated", RequestChanged)


@dataclass(frozen=True)
class Changed:
    """A committed change: the request as it now is, and every tracking code that hears it
    (its own first, then its followers')."""

    request: CitizenRequest
    audiences: tuple[str, ...]

    def events(self) -> list[tuple[str, RequestChanged]]:
        event = RequestChanged(self.request.tracking_code, self.request.status)
        return [(audience, event) for audience in self.audiences]


def actor_of(principal: Principal) -> tuple[str, str]:
    """How history names who acted: the kind of caller and its label."""
    return principal.kind.value, principal.label


def may_handle(principal: Principal, request: CitizenRequest) -> bool:
    """Who moves a request along: operators, the 137 centre, and the department it is
    assigned to (a department that only sees its service reads it but does not act)."""
    if principal.kind is PrincipalKind.OPERATOR:
        return True
    if principal.kind is not PrincipalKind.DEPARTMENT or principal.department is None:
        return False
    return principal.department in (CENTRE, request.department)


def require_handler(principal: Principal, request: CitizenRequest) -> None:
    if not may_handle(principal, request):
        raise Forbidden(
            "Only operators, the 137 centre and the department a request is assigned to may "
            "change it.",
            scope="requests:handle",
        )


def clean_note(note: str, *, field: str = "note", limit: int = MAX_NOTE) -> str:
    text = note.strip()
    if not text or len(text) > limit:
        raise BadUserInput(f"A {field} of 1 to {limit:,} characters is recorded.", field=field)
    return text


async def locked(
    connection: AsyncConnection,
    request_id: int,
    where: ColumnElement[bool] | None,
    *,
    field: str = "id",
) -> CitizenRequest:
    """The request, its row locked for the rest of the transaction, if the caller may see it;
    NOT_FOUND otherwise. The transaction must have begun with `begin_write` (on SQLite that
    takes the write lock, since SQLite locks no rows)."""
    found = await records.load(connection, request_id, where=where, for_update=True)
    if found is None:
        raise NotFound("No citizen request with this id is yours to see.", field=field)
    return found


async def save(
    connection: AsyncConnection, request: CitizenRequest, values: dict[str, Any]
) -> CitizenRequest:
    """Writes `values` to the locked request, bumping its version; returns it as stored."""
    result = await connection.execute(
        update(REQUESTS)
        .where(REQUESTS.c.id == request.id, REQUESTS.c.version == request.version)
        .values(**values, version=request.version + 1)
    )
    if result.rowcount != 1:  # the lock makes this unreachable; a lost update must not pass
        raise Conflict("The request changed meanwhile; read it again.", field="id")
    saved = await records.load(connection, request.id)
    assert saved is not None
    return saved


async def audiences(connection: AsyncConnection, request: CitizenRequest) -> tuple[str, ...]:
    """The tracking codes that hear `request`'s changes: its own and its followers'."""
    followers = cast(Table, RequestFollowerRecord.__table__)
    rows = await connection.execute(
        select(REQUESTS.c.tracking_code)
        .join(followers, followers.c.follower_request_id == REQUESTS.c.id)
        .where(followers.c.request_id == request.id)
        .order_by(followers.c.id)
    )
    return (request.tracking_code, *(row.tracking_code for row in rows))


def effects(
    request: CitizenRequest,
    to: RequestStatus,
    now: dt.datetime,
    week: Workweek,
    deadline_days: int,
) -> dict[str, Any]:
    """The columns a transition to `to` sets, besides the status: the clock stops while the
    request waits for the citizen and runs on after (its deadline moved by the working days
    it waited); a reopened request gets a new deadline from the service's working days."""
    current = RequestStatus(request.status)
    values: dict[str, Any] = {"status": to.value, "updated_at": naive(now)}
    if current is S.WAITING_FOR_CITIZEN and request.paused_since is not None:
        if request.deadline_at is not None:
            clock = RequestClock(request.deadline_at, request.paused_since).resume(now, week)
            values["deadline_at"] = naive(clock.deadline)
        waited = max(0, int((now - request.paused_since).total_seconds()))
        values["paused_since"] = None
        values["paused_seconds"] = request.paused_seconds + waited
    if to is S.WAITING_FOR_CITIZEN:
        values["paused_since"] = naive(now)
    elif to is S.ASSIGNED:
        if request.department is None:
            raise Conflict(
                "The request has no responsible department to be assigned to (routing found "
                "none); refer or reject it.",
                field="to",
                status=request.status,
            )
        values["assigned_at"] = naive(now)
    elif to is S.RESOLVED:
        values["resolved_at"] = naive(now)
    elif to is S.CLOSED:
        values["closed_at"] = naive(now)
    elif to is S.REOPENED:
        values["reopen_count"] = request.reopen_count + 1
        values["resolved_at"] = None
        values["deadline_at"] = naive(due_at(now, deadline_days, week))
        values["overdue_at"] = None
        values["reminded_at"] = None
        values["escalated_at"] = None
    return values


async def _deadline_days(connection: AsyncConnection, request: CitizenRequest) -> int:
    service = await records.load_service(connection, id=request.service_id)
    assert service is not None
    return service.deadline_days


async def _move(
    connection: AsyncConnection,
    request: CitizenRequest,
    to: RequestStatus,
    *,
    note: str,
    now: dt.datetime,
    actor_kind: str,
    actor: str,
    department: str | None,
    extra: dict[str, Any] | None = None,
) -> Changed:
    current = RequestStatus(request.status)
    try:
        check_transition(current, to)
    except TransitionRefused as refused:
        raise Conflict(str(refused), field="to", status=current.value) from None
    week = await records.load_workweek(connection)
    values = effects(request, to, now, week, await _deadline_days(connection, request))
    saved = await save(connection, request, values | (extra or {}))
    await records.append_history(
        connection,
        request_id=request.id,
        event="TRANSITION",
        from_status=current.value,
        to_status=to.value,
        at=now,
        actor_kind=actor_kind,
        actor=actor,
        department=department,
        note=note,
    )
    return Changed(saved, await audiences(connection, saved))


async def transition(
    connection: AsyncConnection,
    principal: Principal,
    request_id: int,
    to: RequestStatus,
    note: str,
    now: dt.datetime,
    *,
    where: ColumnElement[bool] | None,
) -> Changed:
    """Moves a request the caller may see (`where`: its row rule) to `to`, with a note, in
    the caller's transaction. NOT_FOUND for a request the caller may not see; FORBIDDEN for
    one it sees but does not handle; CONFLICT naming the current state for a transition the
    table does not allow."""
    text = clean_note(note)
    await begin_write(connection)
    request = await locked(connection, request_id, where)
    require_handler(principal, request)
    kind, actor = actor_of(principal)
    return await _move(
        connection,
        request,
        to,
        note=text,
        now=now,
        actor_kind=kind,
        actor=actor,
        department=principal.department,
    )


async def reply(
    connection: AsyncConnection,
    principal: Principal,
    request_id: int,
    body: str,
    now: dt.datetime,
    *,
    where: ColumnElement[bool] | None,
) -> tuple[Reply, Changed]:
    """A reply to the citizen (پاسخ), by whoever handles the request; not to a closed one."""
    text = clean_note(body, field="body", limit=MAX_REPLY)
    await begin_write(connection)
    request = await locked(connection, request_id, where)
    require_handler(principal, request)
    if request.status == S.CLOSED:
        raise Conflict(
            "The request is CLOSED; a reply would reach no one.", field="id", status="CLOSED"
        )
    kind, actor = actor_of(principal)
    result = await connection.execute(
        REPLIES.insert().values(
            request_id=request.id,
            at=naive(now),
            author_kind=kind,
            author=actor,
            department=principal.department,
            body=text,
        )
    )
    assert result.inserted_primary_key is not None
    reply_id = result.inserted_primary_key[0]
    saved = await save(connection, request, {"updated_at": naive(now)})
    await records.append_history(
        connection,
        request_id=request.id,
        event="REPLIED",
        from_status=request.status,
        to_status=request.status,
        at=now,
        actor_kind=kind,
        actor=actor,
        department=principal.department,
        note=None,
    )
    row = (await connection.execute(select(REPLIES).where(REPLIES.c.id == reply_id))).one()
    return Reply.from_row(row), Changed(saved, await audiences(connection, saved))


def mobile_matches(request: CitizenRequest, last4: str) -> bool:
    """The citizen's proof: the last four digits of the mobile registered with the request
    (compared in constant time; an anonymised request matches nothing)."""
    mobile = request.citizen_mobile
    if mobile is None or request.anonymised_at is not None:
        return False
    return hmac.compare_digest(mobile[-4:].encode(), last4.encode())


async def rate(
    connection: AsyncConnection,
    tracking_code: str,
    mobile_last4: str,
    rating: int,
    comment: str | None,
    now: dt.datetime,
    policy: RatingPolicy,
) -> Changed:
    """The citizen's rating of a RESOLVED request (1 to 5), proven by the tracking code and
    the mobile's last four digits: a low one reopens the request, any other closes it. A wrong
    code and wrong digits read alike: NOT_FOUND. CONFLICT for a request not RESOLVED."""
    if not 1 <= rating <= 5:
        raise BadUserInput("A rating is 1 to 5.", field="rating")
    text = None if comment is None or not comment.strip() else clean_note(comment, field="comment")
    await begin_write(connection)
    request = await records.load_by_tracking_code(connection, tracking_code, for_update=True)
    if request is None or not mobile_matches(request, mobile_last4):
        raise NotFound("No request has this tracking code and mobile number.", field="trackingCode")
    if request.status != S.RESOLVED:
        raise Conflict(
            f"The request is {request.status}; a rating follows its resolution.",
            field="trackingCode",
            status=request.status,
        )
    to = rating_outcome(rating, policy)
    note = f"rating {rating}/5" + (f": {text}" if text else "")
    return await _move(
        connection,
        request,
        to,
        note=note,
        now=now,
        actor_kind="citizen",
        actor=f"citizen:{request.tracking_code}",
        department=None,
        extra={"rating": rating, "rated_at": naive(now)},
    )
