"""Durable work on citizen requests: flag the overdue, remind departments of dormant requests,
escalate the long unanswered to the department's manager, and erase citizens' names and
mobile numbers a retention period after closing (audited).

Every process running jobs sweeps (gateway/edge/work.py, every GATEWAY_INQUIRY_SWEEP_S) for
requests that need one of these and queues a job for each (gateway/jobs, on DBOS). A job's
idempotency key names the occasion: the deadline a request passed (a reopened request has a
new deadline, and can fall overdue again), the last change before a request fell dormant, the
request itself for its erasure; so queueing the same occasion twice starts nothing new. Each
job locks the request and checks again that the occasion holds before it records anything,
so a job run twice, or overtaken by a transition, changes nothing the second time.

Each occasion leaves a step in the request's history (OVERDUE, REMINDED, ESCALATED,
ANONYMISED) by the system, which is how the department's queue and the citizen see it; the
status does not change.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engines import Databases, begin_write
from gateway.access.audit import AuditEntry, open_audit_trail
from gateway.clock import WallClock
from gateway.inquiries.runtime import JobRuntime
from gateway.inquiries.workdays import Workweek
from gateway.jobs import JobContext, JobKinds, JobQueue, Payload, RetryPolicy
from gateway.requests import records
from gateway.requests.deadlines import RequestClock, escalation_at, paused_working_days
from gateway.requests.lifecycle import RequestStatus, save
from gateway.requests.records import (
    DATABASE,
    OPEN_STATUSES,
    REQUESTS,
    SERVICES,
    CitizenRequest,
    naive,
)
from gateway.settings import Settings

__all__ = [
    "ANONYMISE_JOB",
    "ESCALATE_JOB",
    "OVERDUE_JOB",
    "REMIND_JOB",
    "Due",
    "LifecyclePolicy",
    "anonymise",
    "due_work",
    "escalate",
    "flag_overdue",
    "register_request_jobs",
    "remind",
    "sweep",
]

log = logging.getLogger("gateway.requests")

OVERDUE_JOB = "request.overdue"
REMIND_JOB = "request.remind"
ESCALATE_JOB = "request.escalate"
ANONYMISE_JOB = "request.anonymise"
RETRY = RetryPolicy(max_attempts=20, base_delay_s=1.0, multiplier=2.0, max_delay_s=300.0)
ANONYMISE = "requests.anonymise"  # the audit trail's name for an erasure
SYSTEM = "system"
# The most requests one sweep queues of each kind: a backlog drains over a few sweeps.
SWEEP_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    dormant_days: int = 3
    escalation_multiple: float = 2.0
    retention: dt.timedelta = dt.timedelta(days=365)

    @classmethod
    def of(cls, settings: Settings) -> LifecyclePolicy:
        return cls(
            dormant_days=settings.request_dormant_days,
            escalation_multiple=settings.request_escalation_multiple,
            retention=dt.timedelta(days=settings.request_retention_days),
        )


@dataclass(frozen=True, slots=True)
class Due:
    """A job to queue: its kind, the request, and the occasion's key."""

    kind: str
    request_id: int
    key: str


def _running(request: CitizenRequest) -> bool:
    """Open and its clock running (not waiting for the citizen)."""
    return (
        request.status in OPEN_STATUSES
        and request.status != RequestStatus.WAITING_FOR_CITIZEN
        and request.deadline_at is not None
    )


def _is_overdue(request: CitizenRequest, now: dt.datetime) -> bool:
    return (
        _running(request)
        and request.overdue_at is None
        and request.deadline_at is not None
        and RequestClock(request.deadline_at).overdue(now)
    )


def _escalates(
    request: CitizenRequest, days: int, policy: LifecyclePolicy, week: Workweek, now: dt.datetime
) -> bool:
    if not _running(request) or request.escalated_at is not None or request.deadline_at is None:
        return False
    return now > escalation_at(request.deadline_at, days, policy.escalation_multiple, week)


def _dormant_days(request: CitizenRequest, now: dt.datetime, week: Workweek) -> int:
    return paused_working_days(request.updated_at, now, week)


def _is_dormant(
    request: CitizenRequest, policy: LifecyclePolicy, week: Workweek, now: dt.datetime
) -> bool:
    if not _running(request) or request.department is None:
        return False
    if request.reminded_at is not None and request.reminded_at >= request.updated_at:
        return False  # reminded of this dormancy already
    days = paused_working_days(request.updated_at, now, week, at_most=policy.dormant_days)
    return days >= policy.dormant_days


def _erasable(request: CitizenRequest, policy: LifecyclePolicy, now: dt.datetime) -> bool:
    return (
        request.status == RequestStatus.CLOSED
        and request.closed_at is not None
        and request.anonymised_at is None
        and now - request.closed_at >= policy.retention
    )


def _stamp(moment: dt.datetime | None) -> str:
    return "" if moment is None else naive(moment).isoformat(timespec="seconds")


async def due_work(
    connection: AsyncConnection, policy: LifecyclePolicy, now: dt.datetime
) -> list[Due]:
    """Every job the requests need now (each kind at most SWEEP_LIMIT)."""
    week = await records.load_workweek(connection)
    moment = naive(now)
    running = REQUESTS.c.status.in_(
        sorted(OPEN_STATUSES - {RequestStatus.WAITING_FOR_CITIZEN.value})
    ) & REQUESTS.c.deadline_at.is_not(None)
    due: list[Due] = []

    late = await connection.execute(
        select(REQUESTS.c.id, REQUESTS.c.deadline_at)
        .where(running, REQUESTS.c.overdue_at.is_(None), REQUESTS.c.deadline_at < moment)
        .order_by(REQUESTS.c.deadline_at)
        .limit(SWEEP_LIMIT)
    )
    due.extend(Due(OVERDUE_JOB, row.id, f"{row.id}:{_stamp(row.deadline_at)}") for row in late)

    # k working days past the deadline are at least k calendar days: a bound per service's
    # allotted days (a few distinct values), so that requests not due yet never fill a sweep.
    allotted = list(await connection.scalars(select(SERVICES.c.deadline_days).distinct()))
    bounds = [
        (SERVICES.c.deadline_days == days)
        & (
            REQUESTS.c.deadline_at
            < naive(now - dt.timedelta(days=math.ceil((policy.escalation_multiple - 1) * days)))
        )
        for days in allotted
    ]
    unanswered = await connection.execute(
        select(REQUESTS, SERVICES.c.deadline_days.label("service_days"))
        .join(SERVICES, SERVICES.c.id == REQUESTS.c.service_id)
        .where(running, REQUESTS.c.escalated_at.is_(None), or_(false(), *bounds))
        .order_by(REQUESTS.c.deadline_at)
        .limit(SWEEP_LIMIT)
    )
    for row in unanswered:
        request = CitizenRequest.from_row(row)
        if _escalates(request, row.service_days, policy, week, now):
            key = f"{request.id}:{_stamp(request.deadline_at)}"
            due.append(Due(ESCALATE_JOB, request.id, key))

    # Dormant for N working days means untouched since before the day N - 1 calendar days ago
    # at least (days off only make it longer): a cheap bound for the index.
    untouched = await connection.execute(
        select(REQUESTS)
        .where(
            running,
            REQUESTS.c.department.is_not(None),
            REQUESTS.c.updated_at < naive(now - dt.timedelta(days=policy.dormant_days - 1)),
            or_(
                REQUESTS.c.reminded_at.is_(None),
                REQUESTS.c.reminded_at < REQUESTS.c.updated_at,
            ),
        )
        .order_by(REQUESTS.c.updated_at)
        .limit(SWEEP_LIMIT)
    )
    for row in untouched:
        request = CitizenRequest.from_row(row)
        if _is_dormant(request, policy, week, now):
            key = f"{request.id}:{_stamp(request.updated_at)}"
            due.append(Due(REMIND_JOB, request.id, key))

    closed = await connection.execute(
        select(REQUESTS.c.id)
        .where(
            REQUESTS.c.status == RequestStatus.CLOSED.value,
            REQUESTS.c.closed_at <= naive(now - policy.retention),
            REQUESTS.c.anonymised_at.is_(None),
        )
        .order_by(REQUESTS.c.closed_at)
        .limit(SWEEP_LIMIT)
    )
    due.extend(Due(ANONYMISE_JOB, row.id, str(row.id)) for row in closed)
    return due


async def sweep(
    databases: Databases, queue: JobQueue, policy: LifecyclePolicy, now: WallClock
) -> int:
    """Queues the jobs the requests need now; returns how many it queued (queueing one again
    is harmless: the same key is the same job)."""
    async with databases.engine(DATABASE).connect() as connection:
        due = await due_work(connection, policy, now())
    for item in due:
        await queue.enqueue(item.kind, {"request": item.request_id}, idempotency_key=item.key)
    return len(due)


# --- What each job records ------------------------------------------------------------------

Action = Callable[[AsyncConnection, int, dt.datetime, LifecyclePolicy], Awaitable[bool]]


async def _locked(connection: AsyncConnection, request_id: int) -> CitizenRequest | None:
    await begin_write(connection)
    return await records.load(connection, request_id, for_update=True)


async def _system_step(
    connection: AsyncConnection,
    request: CitizenRequest,
    event: str,
    job: str,
    now: dt.datetime,
    note: str,
) -> None:
    await records.append_history(
        connection,
        request_id=request.id,
        event=event,
        from_status=request.status,
        to_status=request.status,
        at=now,
        actor_kind=SYSTEM,
        actor=f"job:{job}",
        department=request.department,
        note=note,
    )


async def flag_overdue(
    connection: AsyncConnection, request_id: int, now: dt.datetime, policy: LifecyclePolicy
) -> bool:
    """Marks a request past its deadline as overdue; False when it is not (any more)."""
    request = await _locked(connection, request_id)
    if request is None or not _is_overdue(request, now):
        return False
    assert request.deadline_at is not None
    await save(connection, request, {"overdue_at": naive(now)})
    await _system_step(
        connection,
        request,
        "OVERDUE",
        OVERDUE_JOB,
        now,
        f"past its deadline ({_stamp(request.deadline_at)} UTC)",
    )
    return True


async def remind(
    connection: AsyncConnection, request_id: int, now: dt.datetime, policy: LifecyclePolicy
) -> bool:
    """Reminds the assigned department of a dormant request; False when it is not dormant."""
    request = await _locked(connection, request_id)
    if request is None:
        return False
    week = await records.load_workweek(connection)
    if not _is_dormant(request, policy, week, now):
        return False
    days = _dormant_days(request, now, week)
    await save(connection, request, {"reminded_at": naive(now)})
    await _system_step(
        connection,
        request,
        "REMINDED",
        REMIND_JOB,
        now,
        f"reminder to {request.department}: no change for {days} working days",
    )
    log.info("requests: %s reminded of request %s", request.department, request.id)
    return True


async def escalate(
    connection: AsyncConnection, request_id: int, now: dt.datetime, policy: LifecyclePolicy
) -> bool:
    """Escalates a request unanswered at the multiple of its allotted time to its
    department's manager; False when it is not (any more)."""
    request = await _locked(connection, request_id)
    if request is None:
        return False
    service = await records.load_service(connection, id=request.service_id)
    assert service is not None
    week = await records.load_workweek(connection)
    if not _escalates(request, service.deadline_days, policy, week, now):
        return False
    await save(connection, request, {"escalated_at": naive(now)})
    await _system_step(
        connection,
        request,
        "ESCALATED",
        ESCALATE_JOB,
        now,
        f"escalated to the manager of {request.department or 'the 137 centre'}: unanswered "
        f"at {policy.escalation_multiple:g} times its {service.deadline_days} working days",
    )
    log.info("requests: request %s escalated", request.id)
    return True


async def anonymise(
    connection: AsyncConnection, request_id: int, now: dt.datetime, policy: LifecyclePolicy
) -> bool:
    """Erases the citizen's name and mobile of a request closed longer than the retention
    period. True when the request is anonymised, by this call or an earlier one (so that a
    job replayed after a crash still audits the erasure)."""
    request = await _locked(connection, request_id)
    if request is None:
        return False
    if request.anonymised_at is not None:
        return True
    if not _erasable(request, policy, now):
        return False
    await save(
        connection,
        request,
        {"citizen_name": None, "citizen_mobile": None, "anonymised_at": naive(now)},
    )
    await _system_step(
        connection,
        request,
        "ANONYMISED",
        ANONYMISE_JOB,
        now,
        f"citizen's name and mobile erased, {policy.retention.days} days after closing",
    )
    return True


async def run_action(
    databases: Databases,
    action: Action,
    request_id: int,
    now: dt.datetime,
    policy: LifecyclePolicy,
) -> bool:
    """One action in its own transaction on the contact database."""
    async with databases.engine(DATABASE).connect() as connection:
        done = await action(connection, request_id, now, policy)
        await connection.commit()
    return done


def erasure_entry(request_id: int, job_id: str) -> AuditEntry:
    """The audit trail's record of an erasure, by the system's job."""
    return AuditEntry(
        principal_kind=SYSTEM,
        principal_id=f"job:{ANONYMISE_JOB}",
        action="change",
        operation=ANONYMISE,
        subject_type="CitizenRequest",
        subject_id=str(request_id),
        purpose="retention period ended",
        request_id=job_id[-64:],
    )


def register_request_jobs(kinds: JobKinds, runtime: JobRuntime) -> None:
    """The requests' job kinds, on every process that runs jobs."""
    policy = LifecyclePolicy.of(runtime.settings)

    def flagging(action: Action) -> Callable[[JobContext, Payload], Awaitable[None]]:
        async def handler(job: JobContext, payload: Payload) -> None:
            request_id = int(payload["request"])
            moment = dt.datetime.fromisoformat(await job.step("now", _now(runtime.wall_clock)))
            await job.step(
                "record",
                lambda: run_action(runtime.databases, action, request_id, moment, policy),
            )

        return handler

    kinds.register(OVERDUE_JOB, flagging(flag_overdue), retry=RETRY)
    kinds.register(REMIND_JOB, flagging(remind), retry=RETRY)
    kinds.register(ESCALATE_JOB, flagging(escalate), retry=RETRY)

    @kinds.handler(ANONYMISE_JOB, retry=RETRY)
    async def erase(job: JobContext, payload: Payload) -> None:
        request_id = int(payload["request"])
        moment = dt.datetime.fromisoformat(await job.step("now", _now(runtime.wall_clock)))
        erased = await job.step(
            "erase",
            lambda: run_action(runtime.databases, anonymise, request_id, moment, policy),
        )
        if erased:
            await job.step("audit", lambda: _audit_erasure(runtime, request_id, job.job_id))


def _now(clock: WallClock) -> Callable[[], Coroutine[Any, Any, str]]:
    """The job's "now" (ISO 8601), recorded once, so that a replay judges the same moment."""

    async def read() -> str:
        return clock().isoformat()

    return read


async def _audit_erasure(runtime: JobRuntime, request_id: int, job_id: str) -> None:
    trail = open_audit_trail(runtime.settings, runtime.databases, runtime.wall_clock)
    try:
        await trail.append([erasure_entry(request_id, job_id)])
    finally:
        await trail.close()
