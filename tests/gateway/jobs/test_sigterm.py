"""Graceful shutdown of the jobs, with real worker processes (worker_app.py, the engine that
`gateway run` and `gateway worker` both stop the same way): a worker that receives SIGTERM
while it holds jobs finishes those that end within its grace period (2 s here), hands the
others back by releasing its lease, and exits 0; another process completes them. Every job
takes effect exactly once: none lost, none doubled.

On SQLite one process works at a time, so the other starts once the first has exited; on
PostgreSQL (skipped without GATEWAY_TEST_POSTGRES_URL) it runs beside it all along.
"""

from __future__ import annotations

import asyncio
import signal

import sqlalchemy as sa

from gateway.jobs import JobQueue
from gateway.jobs.config import engine_url
from gateway.jobs.leases import executors
from tests.gateway.jobs.conftest import JobsBackend, wait_until

SHORT, LONG = 4, 4
SHORT_MS = 300  # ends well within the worker's 2-s grace
LONG_MS = 6000  # cannot end within it: handed back
WAIT_S = 60  # safety nets against a hang, never measures


async def enqueue(queue: JobQueue) -> tuple[set[str], set[str]]:
    short = await asyncio.gather(
        *(
            queue.enqueue("effect", {"n": n, "sleep_ms": SHORT_MS}, idempotency_key=f"short{n}")
            for n in range(SHORT)
        )
    )
    long = await asyncio.gather(
        *(
            queue.enqueue("effect", {"n": n, "sleep_ms": LONG_MS}, idempotency_key=f"long{n}")
            for n in range(LONG)
        )
    )
    return set(short), set(long)


def heartbeat_of(backend: JobsBackend, executor_id: str) -> float | None:
    engine = sa.create_engine(engine_url(backend.database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(executors.c.heartbeat_at).where(executors.c.executor_id == executor_id)
            ).scalar()
    finally:
        engine.dispose()


async def test_a_worker_stopped_by_sigterm_finishes_or_hands_back_its_jobs(
    jobs_backend: JobsBackend, job_queue: JobQueue
) -> None:
    postgres = jobs_backend.name == "postgres"
    stopping = jobs_backend.start_worker("stopping")
    short, long = await enqueue(job_queue)

    async def all_claimed() -> bool:
        held = await job_queue.list(["PENDING"], limit=100)
        return {job.id for job in held if job.executor_id == "stopping"} >= short | long

    # Every job is under way on the stopping worker, none has taken effect yet.
    await wait_until(all_claimed, timeout_s=WAIT_S, what="all jobs claimed by one worker")
    if postgres:
        jobs_backend.start_worker("other")  # idle: the queue holds nothing unclaimed
    assert jobs_backend.effects_per_job().keys() <= short

    stopping.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stopping.wait, WAIT_S) == 0
    # The short jobs ended within the grace period, on the worker that had them.
    assert set(jobs_backend.effects_per_job()) == short
    for id in short:
        job = await job_queue.get(id)
        assert job is not None
        assert (job.state, job.executor_id) == ("done", "stopping")
    # The long ones were not finished there, and its lease was released, not left to expire
    # (on PostgreSQL the other worker may already have taken them over and forgotten it).
    assert heartbeat_of(jobs_backend, "stopping") in ((0.0, None) if postgres else (0.0,))
    if not postgres:
        jobs_backend.start_worker("other")

    async def all_done() -> bool:
        done = await job_queue.list(["SUCCESS"], limit=100)
        return {job.id for job in done} >= short | long

    await wait_until(all_done, timeout_s=WAIT_S, what="every job done")
    effects = jobs_backend.effects_per_job()
    assert effects == dict.fromkeys(short | long, 1)  # none lost, none doubled
    for id in long:
        job = await job_queue.get(id)
        assert job is not None
        assert (job.state, job.executor_id) == ("done", "other")
