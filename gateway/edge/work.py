"""The durable work a gateway process takes part in: the job kinds every area registers, and
the engine and queue that the app's lifespan starts and stops (gateway/jobs).

Inquiries' jobs run on DBOS's own event loop (gateway/inquiries/runtime.py); what they change
reaches this process's subscribers through `notify`, which hands the event to the loop the
subscriptions listen on (and, with Redis, to every process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

from connectors.agencies import Agencies
from db.engines import Databases
from gateway.clock import WallClock, utc_now
from gateway.events import Events, build_events
from gateway.inquiries import webhooks, workflow
from gateway.inquiries.runtime import JobRuntime
from gateway.jobs import JobEngine, JobKinds, JobQueue, JobsConfig, jobs_config
from gateway.requests import request_jobs
from gateway.settings import Settings

log = logging.getLogger("gateway.jobs")


# Publications under way: the loop keeps only weak references to its tasks.
_PUBLISHING: set[asyncio.Task[None]] = set()


def _spawn(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None]) -> None:
    task = loop.create_task(work)
    _PUBLISHING.add(task)
    task.add_done_callback(_PUBLISHING.discard)


class ProcessJobs:
    """This process's job kinds, the runtime their handlers use, and its queue once open."""

    def __init__(self, settings: Settings, *, wall_clock: WallClock = utc_now) -> None:
        self.settings = settings
        self.queue: JobQueue | None = None
        self.engine: JobEngine | None = None  # while this process runs jobs (for /readyz)
        self.runtime = JobRuntime(settings, wall_clock=wall_clock)
        self.kinds = job_kinds(self.runtime, lambda: self.queue)

    def notify_through(
        self,
        events: Events,
        *,
        databases: Databases | None = None,
        agencies: Agencies | None = None,
    ) -> None:
        """Inquiries changed by a job are announced on `events`, from the loop calling this
        (the app's), whichever loop the job ran on. With the app's `databases` and
        `agencies`, jobs do their database and agency work with them, on this loop: one set
        of connection pools for the process."""
        loop = asyncio.get_running_loop()
        if databases is not None and agencies is not None:
            self.runtime.adopt(databases, agencies)

        def publish(tracking_code: str, status: str) -> None:
            event = workflow.InquiryChanged(tracking_code, status)

            def start() -> None:
                _spawn(loop, events.publish(workflow.INQUIRY_UPDATED, tracking_code, event))

            loop.call_soon_threadsafe(start)

        self.runtime.notify = publish


def job_kinds(runtime: JobRuntime, queue_of: Callable[[], JobQueue | None]) -> JobKinds:
    """Every job kind this gateway runs. Each workflow area registers its handlers here, so
    that every process sharing the engine's database (gateway processes and `gateway worker`
    alike) runs the same kinds."""
    kinds = JobKinds()
    workflow.register_jobs(kinds, runtime, queue_of)
    webhooks.register_webhook_jobs(kinds, runtime)
    request_jobs.register_request_jobs(kinds, runtime)
    return kinds


async def _sweep_forever(jobs: ProcessJobs) -> None:
    """Queues again, every inquiry_sweep_s, accepted work whose job never started."""
    while True:
        await asyncio.sleep(jobs.settings.inquiry_sweep_s)
        queue = jobs.queue
        if queue is None:
            continue
        try:
            await workflow.sweep(jobs.runtime.databases, queue, jobs.runtime.wall_clock)
        except Exception:
            log.exception("inquiries: the sweep failed; it runs again")
        await _sweep_requests(jobs, queue)


async def _sweep_requests(jobs: ProcessJobs, queue: JobQueue) -> None:
    """Queues the citizen requests' deadline, reminder, escalation and erasure jobs."""
    try:
        await request_jobs.sweep(
            jobs.runtime.databases,
            queue,
            request_jobs.LifecyclePolicy.of(jobs.settings),
            jobs.runtime.wall_clock,
        )
    except Exception:
        log.exception("requests: the sweep failed; it runs again")


@contextlib.asynccontextmanager
async def running_jobs(settings: Settings, jobs: ProcessJobs) -> AsyncIterator[JobQueue | None]:
    """The job queue for this process, and its share of the work when GATEWAY_JOBS_IN_APP
    (the default); nothing at all while no kind is registered. The engine launches and
    stops synchronously (DBOS), so off the event loop."""
    if not any(True for _ in jobs.kinds):
        yield None
        return
    config = jobs_config(settings)
    engine = JobEngine(config, jobs.kinds) if settings.jobs_in_app else None
    if engine is not None:
        await asyncio.to_thread(engine.start)
        jobs.engine = engine
    queue = await JobQueue(config).open()
    jobs.queue = queue
    sweeper = asyncio.create_task(_sweep_forever(jobs)) if engine is not None else None
    try:
        yield queue
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        jobs.queue = None
        await queue.close()
        if engine is not None:
            jobs.engine = None
            await asyncio.to_thread(engine.stop)
        await jobs.runtime.close()


def worker_notify(settings: Settings) -> Callable[[str, str], None]:
    """For `gateway worker`, which serves no subscriptions: changes are published from the
    job's own loop, reaching other processes' subscribers through Redis when configured."""
    by_loop: dict[asyncio.AbstractEventLoop, Events] = {}

    def publish(tracking_code: str, status: str) -> None:
        loop = asyncio.get_running_loop()
        events = by_loop.get(loop)
        if events is None:
            events = by_loop[loop] = build_events(settings)
        event = workflow.InquiryChanged(tracking_code, status)
        _spawn(loop, events.publish(workflow.INQUIRY_UPDATED, tracking_code, event))

    return publish


@contextlib.contextmanager
def sweeping_in_thread(jobs: ProcessJobs, config: JobsConfig) -> Iterator[None]:
    """The sweep, for `gateway worker`: on a loop of its own in a daemon thread."""
    stop = threading.Event()

    async def sweep_until_stopped() -> None:
        queue = await JobQueue(config).open()
        jobs.queue = queue
        try:
            while not stop.is_set():
                await asyncio.to_thread(stop.wait, jobs.settings.inquiry_sweep_s)
                if stop.is_set():
                    break
                try:
                    await workflow.sweep(jobs.runtime.databases, queue, jobs.runtime.wall_clock)
                except Exception:
                    log.exception("inquiries: the sweep failed; it runs again")
                await _sweep_requests(jobs, queue)
        finally:
            await jobs.runtime.close()
            await queue.close()

    thread = threading.Thread(target=asyncio.run, args=(sweep_until_stopped(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
