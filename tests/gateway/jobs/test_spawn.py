"""JobQueue.spawn: a job's first attempt, run at once in the enqueuing process beside the
request: at most the engine's concurrency at a time, failures logged and never raised, and
cut short when the queue closes (the durable job is the backstop)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.jobs import JobQueue, JobsConfig

WAIT_S = 10  # a safety net against a hang, never a measure


def _queue(tmp_path: Path, concurrency: int) -> JobQueue:
    config = JobsConfig(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", worker_concurrency=concurrency)
    return JobQueue(config)


async def test_spawned_work_runs_at_most_the_engines_concurrency_at_once(tmp_path: Path) -> None:
    queue = _queue(tmp_path, concurrency=2)
    running, most, done = 0, 0, 0
    release = asyncio.Event()
    two_running = asyncio.Event()
    all_done = asyncio.Event()

    async def work() -> None:
        nonlocal running, most, done
        running += 1
        most = max(most, running)
        if running == 2:
            two_running.set()
        await release.wait()
        running -= 1
        done += 1
        if done == 5:
            all_done.set()

    for _ in range(5):
        queue.spawn(work())
    async with asyncio.timeout(WAIT_S):
        await two_running.wait()
    for _ in range(3):
        await asyncio.sleep(0)  # the others had their chance to start, and did not
    assert (running, most) == (2, 2)
    release.set()
    async with asyncio.timeout(WAIT_S):
        await all_done.wait()
    assert most == 2
    await queue.close()


async def test_a_failure_is_logged_not_raised_and_closing_cuts_work_short(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(tmp_path, concurrency=4)
    started = asyncio.Event()
    cancelled = asyncio.Event()
    failed = asyncio.Event()

    async def fails() -> None:
        failed.set()
        raise RuntimeError("agency on fire")

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with caplog.at_level(logging.ERROR, logger="gateway.jobs.queue"):
        queue.spawn(fails())
        queue.spawn(forever())
        async with asyncio.timeout(WAIT_S):
            await started.wait()
            await failed.wait()
        await asyncio.sleep(0)  # the failing task's wrapper logs on its next step
    async with asyncio.timeout(WAIT_S):
        await queue.close()
    assert cancelled.is_set()
    logged = [record for record in caplog.records if record.exc_text]
    assert len(logged) == 1
    assert "agency on fire" in (logged[0].exc_text or "")
