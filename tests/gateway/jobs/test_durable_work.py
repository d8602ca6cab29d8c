"""Durable work through real worker processes: effects once, SIGKILL, dead jobs and retry.

Every test runs on the SQLite default with one worker process and on PostgreSQL (skipped
without GATEWAY_TEST_POSTGRES_URL), where two processes share the work.
"""

from __future__ import annotations

import asyncio
import signal
import time

from gateway.jobs import JobQueue
from tests.gateway.jobs.conftest import LEASE_S, JobsBackend, wait_until


async def enqueue_effects(queue: JobQueue, count: int, *, sleep_ms: int = 0) -> None:
    for first in range(0, count, 50):  # 50 at a time, as concurrent requests would
        await asyncio.gather(
            *(
                queue.enqueue("effect", {"n": n, "sleep_ms": sleep_ms}, idempotency_key=str(n))
                for n in range(first, min(first + 50, count))
            )
        )


def exactly_once(backend: JobsBackend, count: int) -> None:
    effects = backend.effects_per_job()
    assert len(effects) == count
    assert set(effects.values()) == {1}


async def test_every_job_takes_effect_exactly_once(
    jobs_backend: JobsBackend, job_queue: JobQueue
) -> None:
    postgres = jobs_backend.name == "postgres"
    count = 1000 if postgres else 200
    for name in ["w0", "w1"] if postgres else ["w0"]:
        jobs_backend.start_worker(name)
    await enqueue_effects(job_queue, count)
    # The same idempotency key names the same job: nothing new runs.
    assert await job_queue.enqueue("effect", {"n": 0}, idempotency_key="0") == "effect:0"

    await wait_until(
        lambda: sum(jobs_backend.effects_per_job().values()) >= count,
        timeout_s=60,
        what=f"{count} effects",
    )
    exactly_once(jobs_backend, count)

    # A job's effect commits before its own status does: wait for the last status.
    async def all_done() -> bool:
        return len(await job_queue.list(["SUCCESS"], limit=count + 1)) >= count

    await wait_until(all_done, timeout_s=30, what=f"{count} jobs marked done")
    done = await job_queue.list(["SUCCESS"], limit=count + 1)
    assert len(done) == count
    exactly_once(jobs_backend, count)
    if postgres:  # both processes took a share
        assert {job.executor_id for job in done} == {"w0", "w1"}


async def test_a_killed_worker_loses_nothing_when_it_restarts(
    jobs_backend: JobsBackend, job_queue: JobQueue
) -> None:
    count = 200
    worker = jobs_backend.start_worker("w0")
    await enqueue_effects(job_queue, count, sleep_ms=20)
    await wait_until(
        lambda: len(jobs_backend.effects_per_job()) >= 20, timeout_s=30, what="a batch under way"
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert len(jobs_backend.effects_per_job()) < count  # it died mid-batch

    jobs_backend.start_worker("w0")  # the same executor resumes its own jobs at launch
    await wait_until(
        lambda: len(jobs_backend.effects_per_job()) >= count, timeout_s=60, what="all effects"
    )
    exactly_once(jobs_backend, count)


async def test_another_process_takes_over_a_killed_worker_within_the_lease(
    jobs_backend: JobsBackend, job_queue: JobQueue
) -> None:
    count = 200
    victim = jobs_backend.start_worker("victim")
    if jobs_backend.name == "postgres":
        jobs_backend.start_worker("survivor")
    await enqueue_effects(job_queue, count, sleep_ms=100)

    async def victim_busy() -> bool:
        held = await job_queue.list(["PENDING"], limit=count)
        victims = [job for job in held if job.executor_id == "victim"]
        return len(jobs_backend.effects_per_job()) >= 10 and len(victims) >= 5

    await wait_until(victim_busy, timeout_s=30, what="the victim in the middle of a batch")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    watching_from = time.monotonic()
    assert len(jobs_backend.effects_per_job()) < count
    if jobs_backend.name == "sqlite":  # one process at a time: the survivor starts now
        jobs_backend.start_worker("survivor")
        # Its start-up (seconds on a loaded machine) is not the takeover's: the lease has
        # been running since the kill, so the bound still holds from here.
        watching_from = time.monotonic()

    async def victim_released() -> bool:
        held = await job_queue.list(["PENDING"], limit=count)
        return not any(job.executor_id == "victim" for job in held)

    await wait_until(victim_released, timeout_s=60, what="the victim's jobs taken over")
    # The documented bound (JobsConfig.takeover_bound_s), with room for a loaded machine's
    # scheduling; the remaining work's own duration is not part of it.
    assert time.monotonic() - watching_from < jobs_backend.config.takeover_bound_s + 5
    await wait_until(
        lambda: len(jobs_backend.effects_per_job()) >= count, timeout_s=60, what="all effects"
    )
    exactly_once(jobs_backend, count)
    assert jobs_backend.config.takeover_bound_s < LEASE_S + 1


async def test_a_failing_job_ends_dead_with_its_last_error_and_an_operator_retries_it(
    jobs_backend: JobsBackend, job_queue: JobQueue
) -> None:
    jobs_backend.start_worker("w0")
    job_id = await job_queue.enqueue("flaky", {"name": "seizure-check"}, idempotency_key="k1")

    async def dead() -> bool:
        return [job.id for job in await job_queue.dead()] == [job_id]

    await wait_until(dead, timeout_s=30, what="the job dead")
    job = await job_queue.get(job_id)
    assert job is not None
    assert job.state == "dead"
    assert job.attempts == 3
    assert job.last_error == "RuntimeError: agency refused seizure-check on attempt 3"
    assert jobs_backend.effects_per_job() == {}

    jobs_backend.switch_on("seizure-check")  # the agency is back
    await job_queue.retry(job_id)

    async def done() -> bool:
        found = await job_queue.get(job_id)
        return found is not None and found.state == "done"

    await wait_until(done, timeout_s=30, what="the retried job done")
    assert jobs_backend.effects_per_job() == {job_id: 1}
    assert await job_queue.dead() == []
