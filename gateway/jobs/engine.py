"""The job engine of one process: DBOS Transact, one workflow for every job, and leases.

A job is one DBOS workflow (`gateway.job`) on one DBOS queue, whose id is the job's kind and
idempotency key. The workflow runs the kind's handler; a failure is recorded, followed by a
durable sleep for the policy's backoff, then the next attempt; after the last attempt the
workflow ends in DBOS's ERROR state with the last error: a dead job, which an operator lists
and retries (gateway/jobs/queue.py). DBOS allows one engine per process.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from dbos import DBOS, AsyncSQLAlchemyDatasource, DBOSConfig

from gateway.jobs.config import QUEUE_NAME, WORKFLOW_NAME, JobsConfig, prepare_sqlite
from gateway.jobs.kinds import JobContext, JobKinds, Payload
from gateway.jobs.leases import Leases
from gateway.jobs.policy import Clock, Random, RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPT_STEP = "gateway.job.attempt"
BACKOFF_STEP = "gateway.job.backoff"


class JobDead(Exception):
    """A job failed on every attempt; its message is the last error."""


_engine: JobEngine | None = None  # this process's engine, which the workflow below runs on


@DBOS.workflow(name=WORKFLOW_NAME)
async def job_workflow(kind: str, payload: Payload) -> None:
    if _engine is None:  # pragma: no cover - DBOS runs workflows only once launched
        raise RuntimeError("no job engine in this process")
    await _engine.run(kind, payload)


def describe(error: BaseException) -> str:
    """The last error as an operator reads it: its type and message, kept short."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 2000 else text[:1999] + "…"


class JobEngine:
    """Starts and stops the engine; runs each job's attempts.

    `start()` and `stop()` block (DBOS launches and shuts down synchronously): from async
    code, call them through `asyncio.to_thread`. Handlers run on DBOS's own event loop, in
    its own thread, not on the caller's loop: anything bound to a loop (an async engine's
    connections, an httpx client) must be built for them there, never shared with the app.
    """

    def __init__(
        self,
        config: JobsConfig,
        kinds: JobKinds,
        *,
        clock: Clock = time.time,
        rand: Random = random.random,
    ) -> None:
        self.config = config
        self.kinds = kinds
        self.clock = clock
        self.rand = rand
        self.datasources: dict[str, AsyncSQLAlchemyDatasource] = {}
        self._stop = threading.Event()
        self._beats: threading.Thread | None = None
        self._leases: Leases | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        global _engine
        if _engine is not None:
            raise RuntimeError("a job engine is already running in this process")
        _engine = self
        config = self.config
        self._leases = Leases(
            sa.create_engine(config.system_database_url, pool_size=2, max_overflow=2),
            config.executor_id,
            lease_s=config.lease_s,
            clock=self.clock,
        )
        dbos_config: DBOSConfig = {
            "name": "municipal-gateway",
            "system_database_url": config.system_database_url,
            "executor_id": config.executor_id,
            "application_version": config.application_version,
            "log_level": config.log_level,
            "notification_listener_polling_interval_sec": config.polling_interval_s,
            "sys_db_pool_size": config.system_pool_size,
        }
        prepare_sqlite(config.system_database_url)
        DBOS(config=dbos_config)
        for name, url in config.datasources.items():  # DBOS wants them before launch
            self.datasources[name] = _open_datasource(url)
        DBOS.launch()  # migrates the system database; resumes this executor's own jobs
        self._leases.create_table()
        self._leases.beat()
        DBOS.register_queue(
            QUEUE_NAME,
            worker_concurrency=config.worker_concurrency,
            polling_interval_sec=config.polling_interval_s,
            on_conflict="always_update",
        )
        self._stop.clear()
        self._beats = threading.Thread(target=self._beat_loop, name="job-leases", daemon=True)
        self._beats.start()
        log.info("jobs: executor %s started", config.executor_id)

    def stop(self) -> None:
        """Lets running jobs finish within the grace period, stops taking new ones, and
        hands back what is still unfinished (see Leases.release)."""
        global _engine
        self._stop.set()
        if self._beats is not None:
            self._beats.join()
        DBOS.destroy(workflow_completion_timeout_sec=self.config.shutdown_grace_s)
        if self._leases is not None:
            self._leases.release()
            self._leases.engine.dispose()
        _engine = None
        log.info("jobs: executor %s stopped", self.config.executor_id)

    @property
    def alive(self) -> bool:
        """Started and not stopped: its heartbeat thread runs (for /readyz)."""
        return self._beats is not None and self._beats.is_alive()

    def tick(self) -> dict[str, int]:
        """One beat: renews this executor's lease and takes over expired ones."""
        assert self._leases is not None
        self._leases.beat()
        return self._leases.take_over(_recover)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.config.heartbeat_interval_s):
            try:
                taken = self.tick()
            except Exception:
                log.exception("jobs: heartbeat failed")
                continue
            for executor_id, count in taken.items():
                log.warning("jobs: took over %d jobs of executor %s", count, executor_id)

    # -- one job -----------------------------------------------------------------------

    async def run(self, kind_name: str, payload: Payload) -> None:
        job_id = DBOS.workflow_id
        assert job_id is not None
        kind = self.kinds[kind_name]
        attempt = 1
        while True:
            context = JobContext(job_id, kind_name, attempt, self.datasources)
            try:
                await kind.handler(context, payload)
            except Exception as error:
                last_error = describe(error)
                if attempt >= kind.retry.max_attempts:
                    await DBOS.update_workflow_attributes_async(
                        job_id,
                        {"attempts": attempt, "last_error": last_error, "next_attempt_at": None},
                        merge=True,
                    )
                    raise JobDead(last_error) from error
                delay, at = await DBOS.run_step_async(
                    {"name": BACKOFF_STEP}, self._backoff, kind.retry, attempt
                )
                await DBOS.update_workflow_attributes_async(
                    job_id,
                    {"attempts": attempt, "last_error": last_error, "next_attempt_at": at},
                    merge=True,
                )
                await DBOS.sleep_async(delay)
                # Recorded, so that an operator's retry can rewind a dead job to the start of
                # its last attempt (gateway/jobs/queue.py); the first attempt starts the job.
                attempt = await DBOS.run_step_async({"name": ATTEMPT_STEP}, _next, attempt)
            else:
                return

    async def _backoff(self, retry: RetryPolicy, attempt: int) -> tuple[float, float]:
        delay = retry.delay_s(attempt, self.rand)
        return delay, self.clock() + delay


async def _next(attempt: int) -> int:
    return attempt + 1


def _recover(executor_id: str) -> int:
    return len(DBOS._recover_pending_workflows([executor_id]))


def _open_datasource(url: str) -> AsyncSQLAlchemyDatasource:
    """Creates (and migrates) a database whose transactions record job steps.

    Built on a throwaway loop whose connections are then dropped, so that the engine's pool
    fills anew on DBOS's own loop, where the handlers use it.
    """

    prepare_sqlite(url)

    async def create() -> AsyncSQLAlchemyDatasource:
        source = await AsyncSQLAlchemyDatasource.create(_datasource_url(url))
        await source.engine.dispose()
        return source

    return _run_in_thread(create())


def _run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to its end on a loop of its own, even when called from a loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _datasource_url(url: str) -> str:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
