"""The requests' durable work: overdue requests flagged, departments reminded of dormant ones,
the long unanswered escalated at a multiple of their deadline, and citizens' names and mobile
numbers erased a retention period after closing, audited; each occasion once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from db.gateway import AuditRecord
from gateway.edge.app import create_app
from gateway.inquiries.runtime import JobRuntime
from gateway.inquiries.workdays import TEHRAN
from gateway.jobs import JobKinds, JobQueue
from gateway.requests import records, request_jobs
from gateway.requests.request_jobs import (
    ANONYMISE_JOB,
    ESCALATE_JOB,
    OVERDUE_JOB,
    REMIND_JOB,
    LifecyclePolicy,
    run_action,
)
from tests.conftest import settings_for
from tests.gateway.jobs.conftest import wait_until
from tests.gateway.requests.lifecycle_world import Clock, World, make_world

POLICY = LifecyclePolicy(dormant_days=3, escalation_multiple=2.0, retention=dt.timedelta(days=365))


def tehran(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=TEHRAN)


@pytest.fixture(scope="module")
def world(lifecycle_world: World) -> World:
    """The session's world on this backend (conftest.py): requests of other modules' tests
    are in it too, so every test looks at its own requests only."""
    return lifecycle_world


async def due(world: World, now: dt.datetime, request_id: int) -> set[str]:
    async with world.databases.engine(records.DATABASE).connect() as connection:
        found = await request_jobs.due_work(connection, POLICY, now)
    return {item.kind for item in found if item.request_id == request_id}


async def test_a_request_past_its_deadline_is_flagged_overdue_once(world: World) -> None:
    # Registered Sunday 29 November; due Monday 30 November at 14:00 in Tehran.
    request = await world.request(
        "IN_PROGRESS", registered_at=tehran(11, 29), deadline_at=tehran(11, 30, 14)
    )
    assert await due(world, tehran(11, 30, 13), request.id) == set()
    assert await due(world, tehran(11, 30, 15), request.id) == {OVERDUE_JOB}
    action = request_jobs.flag_overdue
    assert await run_action(world.databases, action, request.id, tehran(11, 30, 15), POLICY)
    assert not await run_action(world.databases, action, request.id, tehran(11, 30, 16), POLICY)
    flagged = await world.load(request.id)
    assert flagged.overdue_at == tehran(11, 30, 15)
    assert flagged.status == "IN_PROGRESS"
    steps = [(h.event, h.actor_kind, h.actor) for h in await world.history(request.id)]
    assert steps == [("OVERDUE", "system", "job:request.overdue")]
    assert await due(world, tehran(11, 30, 17), request.id) == set()


async def test_a_request_waiting_for_the_citizen_is_not_flagged(world: World) -> None:
    request = await world.request(
        "WAITING_FOR_CITIZEN",
        registered_at=tehran(11, 29),
        deadline_at=tehran(11, 30, 14),
        paused_since=tehran(11, 29, 12),
    )
    assert await due(world, tehran(12, 20), request.id) == set()
    action = request_jobs.flag_overdue
    assert not await run_action(world.databases, action, request.id, tehran(12, 20), POLICY)


async def test_escalation_comes_at_twice_the_allotted_working_days(world: World) -> None:
    # The service allows 5 working days; twice that is 5 working days past the deadline
    # (Monday 30 November): Tuesday 1, Wednesday 2, Thursday 3, Saturday 5, Sunday 6 December.
    request = await world.request(
        "ASSIGNED",
        registered_at=tehran(11, 22),
        deadline_at=tehran(11, 30, 14),
        updated_at=tehran(12, 6, 9),  # touched lately: no reminder in the way
    )
    assert await due(world, tehran(12, 6, 13), request.id) == {OVERDUE_JOB}
    assert await due(world, tehran(12, 6, 15), request.id) == {OVERDUE_JOB, ESCALATE_JOB}
    action = request_jobs.escalate
    assert not await run_action(world.databases, action, request.id, tehran(12, 6, 13), POLICY)
    assert await run_action(world.databases, action, request.id, tehran(12, 6, 15), POLICY)
    assert not await run_action(world.databases, action, request.id, tehran(12, 6, 16), POLICY)
    (step,) = await world.history(request.id)
    assert (step.event, step.department) == ("ESCALATED", "urban_services")
    assert step.note == (
        "escalated to the manager of urban_services: unanswered at 2 times its 5 working days"
    )
    assert await due(world, tehran(12, 7), request.id) == {OVERDUE_JOB}


async def test_a_dormant_request_reminds_its_department_once_per_dormancy(world: World) -> None:
    request = await world.request(
        "IN_PROGRESS", registered_at=tehran(11, 29), deadline_at=tehran(12, 20, 14)
    )
    # Untouched on Sunday 29, Monday 30 November and Tuesday 1 December: dormant on the 2nd.
    assert await due(world, tehran(12, 1, 20), request.id) == set()
    assert await due(world, tehran(12, 2, 9), request.id) == {REMIND_JOB}
    action = request_jobs.remind
    assert await run_action(world.databases, action, request.id, tehran(12, 2, 9), POLICY)
    assert not await run_action(world.databases, action, request.id, tehran(12, 3, 9), POLICY)
    assert await due(world, tehran(12, 10), request.id) == set()
    (step,) = await world.history(request.id)
    assert step.note == "reminder to urban_services: no change for 3 working days"
    # Someone acts on it, then it falls dormant again: a new reminder, under a new key.
    async with world.databases.engine(records.DATABASE).begin() as connection:
        await connection.execute(
            records.REQUESTS.update()
            .where(records.REQUESTS.c.id == request.id)
            .values(updated_at=records.naive(tehran(12, 5, 9)))
        )
    async with world.databases.engine(records.DATABASE).connect() as connection:
        keys = {
            item.key
            for item in await request_jobs.due_work(connection, POLICY, tehran(12, 9, 9))
            if item.request_id == request.id
        }
    assert keys == {f"{request.id}:2026-12-05T05:30:00"}


async def test_a_closed_request_is_anonymised_after_the_retention_period(world: World) -> None:
    closed_at = tehran(11, 29, 12)
    request = await world.request("CLOSED", registered_at=tehran(11, 1), closed_at=closed_at)
    almost = closed_at + dt.timedelta(days=364)
    assert await due(world, almost, request.id) == set()
    action = request_jobs.anonymise
    assert not await run_action(world.databases, action, request.id, almost, POLICY)
    later = closed_at + dt.timedelta(days=365, minutes=1)
    assert await due(world, later, request.id) == {ANONYMISE_JOB}
    assert await run_action(world.databases, action, request.id, later, POLICY)
    erased = await world.load(request.id)
    assert (erased.citizen_name, erased.citizen_mobile) == (None, None)
    assert erased.anonymised_at == later
    # A replay says it is anonymised (so its audit step still runs) and records nothing more.
    assert await run_action(world.databases, action, request.id, later, POLICY)
    assert [h.event for h in await world.history(request.id)] == ["ANONYMISED"]
    assert await due(world, later + dt.timedelta(days=1), request.id) == set()


async def test_an_open_request_is_never_anonymised(world: World) -> None:
    request = await world.request("RESOLVED", registered_at=tehran(1, 1), resolved_at=tehran(1, 2))
    much_later = tehran(1, 2) + dt.timedelta(days=5000)
    assert ANONYMISE_JOB not in await due(world, much_later, request.id)
    action = request_jobs.anonymise
    assert not await run_action(world.databases, action, request.id, much_later, POLICY)
    assert (await world.load(request.id)).citizen_mobile is not None


async def test_the_jobs_run_on_the_engine_and_the_erasure_is_audited(tmp_path: Path) -> None:
    world = await make_world("sqlite", tmp_path / "databases")
    try:
        clock = Clock(tehran(12, 20))
        overdue = await world.request(
            "ASSIGNED", registered_at=tehran(12, 1), deadline_at=tehran(12, 6, 14)
        )
        closed = await world.request(
            "CLOSED", registered_at=tehran(1, 1), closed_at=tehran(1, 2) - dt.timedelta(days=30)
        )
        settings = settings_for(
            world.backend, data_dir=tmp_path / "data", jobs_in_app=True, jobs_heartbeat_s=0.2
        )
        kinds = JobKinds()
        runtime = JobRuntime(settings, wall_clock=clock)
        request_jobs.register_request_jobs(kinds, runtime)
        app = create_app(settings, kinds=kinds, wall_clock=clock)
        async with app.router.lifespan_context(app):
            queue = app.state.job_queue
            assert isinstance(queue, JobQueue)
            queued = await request_jobs.sweep(world.databases, queue, POLICY, clock)
            # Overdue, escalated (2 × 5 days past 6 December), reminded, erased.
            assert queued == 4
            # Sweeping again queues the same jobs: nothing new happens.
            assert await request_jobs.sweep(world.databases, queue, POLICY, clock) == 4

            async def settled() -> bool:
                first = await world.load(overdue.id)
                second = await world.load(closed.id)
                return (
                    first.overdue_at is not None
                    and first.escalated_at is not None
                    and first.reminded_at is not None
                    and second.anonymised_at is not None
                )

            await wait_until(settled, timeout_s=60, what="the requests' jobs ran")

            async def audited() -> bool:
                async with world.databases.gateway.connect() as connection:
                    rows = (
                        await connection.execute(
                            select(AuditRecord.__table__).where(
                                AuditRecord.__table__.c.operation == "requests.anonymise"
                            )
                        )
                    ).all()
                return [(r.subject_type, r.subject_id, r.principal_kind) for r in rows] == [
                    ("CitizenRequest", str(closed.id), "system")
                ]

            await wait_until(audited, timeout_s=60, what="the erasure is audited")
        events = sorted(h.event for h in await world.history(overdue.id))
        assert events == ["ESCALATED", "OVERDUE", "REMINDED"]
    finally:
        await world.close()
