"""The durable work a gateway process takes part in: the job kinds every area registers, and
the engine and queue that the app's lifespan starts and stops (gateway/jobs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gateway.jobs import JobEngine, JobKinds, JobQueue, jobs_config
from gateway.settings import Settings


def job_kinds() -> JobKinds:
    """Every job kind this gateway runs. Each workflow area registers its handlers here, so
    that every process sharing the engine's database (gateway processes and `gateway worker`
    alike) runs the same kinds."""
    return JobKinds()


@contextlib.asynccontextmanager
async def running_jobs(settings: Settings, kinds: JobKinds) -> AsyncIterator[JobQueue | None]:
    """The job queue for this process, and its share of the work when GATEWAY_JOBS_IN_APP
    (the default); nothing at all while no kind is registered. The engine launches and
    stops synchronously (DBOS), so off the event loop."""
    if not any(True for _ in kinds):
        yield None
        return
    config = jobs_config(settings)
    engine = JobEngine(config, kinds) if settings.jobs_in_app else None
    if engine is not None:
        await asyncio.to_thread(engine.start)
    queue = await JobQueue(config).open()
    try:
        yield queue
    finally:
        await queue.close()
        if engine is not None:
            await asyncio.to_thread(engine.stop)
