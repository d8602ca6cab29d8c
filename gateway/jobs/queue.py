"""The job API the workflows use: enqueue, look up, list dead jobs, retry one.

It talks to the engine's database only (a DBOS client), so it works the same in a gateway
process, in `gateway worker`, in the CLI and in tests, whether or not this process runs jobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, EnqueueOptions, WorkflowHandleAsync, WorkflowStatus
from dbos._schemas.datasource_database import datasource_outputs_table

from gateway.jobs.config import (
    QUEUE_NAME,
    WORKFLOW_NAME,
    JobsConfig,
    engine_url,
    prepare_sqlite,
)
from gateway.jobs.engine import ATTEMPT_STEP
from gateway.jobs.kinds import Payload

log = logging.getLogger(__name__)

# Connections the queue's client keeps to the engine's database: each enqueue is one short
# write, and a PostgreSQL server shared by several processes has few to give.
CLIENT_POOL_SIZE = 2

DEAD_STATES = ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
STATES = {
    "DELAYED": "scheduled",
    "ENQUEUED": "queued",
    "PENDING": "running",  # or waiting for its next attempt: see Job.next_attempt_at
    "SUCCESS": "done",
    "ERROR": "dead",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "dead",  # it took its process down too often
    "CANCELLED": "cancelled",
}


class JobNotFound(LookupError):
    pass


class JobNotDead(Exception):
    pass


@dataclass(frozen=True)
class Job:
    id: str  # "<kind>:<idempotency key>"
    kind: str
    payload: Payload
    state: str  # one of STATES' values
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    executor_id: str | None
    created_at: float | None  # seconds since the epoch
    updated_at: float | None

    @classmethod
    def from_status(cls, status: WorkflowStatus) -> Job:
        attributes: dict[str, Any] = status.attributes or {}
        arguments = status.input["args"] if status.input else ("", {})
        last_error = attributes.get("last_error")
        if status.status in DEAD_STATES and last_error is None:
            last_error = str(status.error) if status.error else status.status
        return cls(
            id=status.workflow_id,
            kind=str(arguments[0]),
            payload=dict(arguments[1]),
            state=STATES.get(status.status, status.status.lower()),
            attempts=int(attributes.get("attempts", 0)),
            last_error=last_error,
            next_attempt_at=attributes.get("next_attempt_at")
            if status.status == "PENDING"
            else None,
            executor_id=status.executor_id,
            created_at=status.created_at / 1000 if status.created_at else None,
            updated_at=status.updated_at / 1000 if status.updated_at else None,
        )


def job_id(kind: str, idempotency_key: str) -> str:
    return f"{kind}:{idempotency_key}"


class JobQueue:
    def __init__(self, config: JobsConfig) -> None:
        self.config = config
        self._client: DBOSClient | None = None
        self._spawned: set[asyncio.Task[None]] = set()
        self._turns: asyncio.Semaphore | None = None

    async def open(self) -> JobQueue:
        def connect() -> DBOSClient:
            # A client never creates the system database; an engine may not have run yet.
            prepare_sqlite(self.config.system_database_url)
            DBOS.migrate(self.config.system_database_url)
            return DBOSClient(
                system_database_url=self.config.system_database_url,
                system_database_pool_size=CLIENT_POOL_SIZE,
            )

        self._client = await asyncio.to_thread(connect)
        return self

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` now, in this process, on the caller's loop, beside the request that
        queued a job: the job's first attempt, when it should not wait for the queue to be
        polled. It must be safe to run beside, or before, the durable job, which stays the
        backstop: `work` may be cut short at any point (the queue closing, the process dying).
        Its failures are logged, never raised."""
        if self._turns is None:
            # As many at once as the engine runs jobs (more wait their turn): each holds
            # database connections while it reads, and pools are sized for that.
            self._turns = asyncio.Semaphore(self.config.worker_concurrency)
        turns = self._turns

        async def run() -> None:
            async with turns:
                try:
                    await work
                except Exception:
                    log.exception("jobs: work started at once failed; its job is the backstop")

        task = asyncio.get_running_loop().create_task(run())
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def close(self) -> None:
        """Cancels the work spawned here that is still running (its jobs finish it), then
        lets go of the engine's database."""
        spawned = list(self._spawned)
        for task in spawned:
            task.cancel()
        if spawned:
            await asyncio.wait(spawned)
        if self._client is not None:
            await asyncio.to_thread(self._client.destroy)
            self._client = None

    @property
    def client(self) -> DBOSClient:
        if self._client is None:
            raise RuntimeError("the job queue is not open")
        return self._client

    async def enqueue(
        self, kind: str, payload: Payload, *, idempotency_key: str, delay_s: float = 0.0
    ) -> str:
        """Adds a job unless one with this kind and key exists; returns its id either way
        (the first payload stands). It runs once, on whichever process takes it first."""
        options: EnqueueOptions = {
            "workflow_name": WORKFLOW_NAME,
            "queue_name": QUEUE_NAME,
            "workflow_id": job_id(kind, idempotency_key),
            "app_version": self.config.application_version,
        }
        if delay_s > 0:
            options["delay_seconds"] = delay_s
        handle: WorkflowHandleAsync[None] = await self.client.enqueue_async(options, kind, payload)
        return handle.get_workflow_id()

    async def withdraw(self, ids: Sequence[str]) -> None:
        """Withdraws jobs whose work was done otherwise (JobQueue.spawn): a job not started
        yet never starts, and reads `cancelled`; one that has finished is left as it is.
        Queueing the same kind and key again starts nothing (the first job stands), so
        withdraw only a job whose work can never be needed again."""
        if ids:
            await self.client.cancel_workflows_async(list(ids))

    async def get(self, id: str) -> Job | None:
        found = await self.client.list_workflows_async(workflow_ids=[id])
        return Job.from_status(found[0]) if found else None

    async def dead(self, *, limit: int = 100, offset: int = 0) -> list[Job]:
        """Dead jobs, most recent first."""
        return await self.list(DEAD_STATES, limit=limit, offset=offset)

    async def count(self, states: Sequence[str]) -> int:
        """How many jobs are in the given DBOS states (see STATES)."""
        found = await self.client.list_workflows_async(
            name=WORKFLOW_NAME, status=list(states), load_input=False, load_output=False
        )
        return len(found)

    async def retry(self, id: str) -> None:
        """Runs a dead job's last attempt again; earlier recorded effects are not repeated.
        It ends done, or dead again with the new error."""
        job = await self.get(id)
        if job is None:
            raise JobNotFound(id)
        if job.state != "dead":
            raise JobNotDead(f"job {id} is {job.state}, not dead")
        steps = await self.client.list_workflow_steps_async(id, load_output=False)
        starts = [step["function_id"] for step in steps if step["function_name"] == ATTEMPT_STEP]
        start = starts[-1] if starts else 1
        # What DBOS.rewind_workflow does in a launched process, which a client cannot: the
        # rewound steps' records in the job databases go, or they would replay, not rerun.
        await asyncio.to_thread(self._forget_transactions, id, start)
        await self.client.rewind_workflow_async(
            id,
            start_step=start,
            application_version=self.config.application_version,
            queue_name=QUEUE_NAME,
        )

    async def list(self, states: Sequence[str], *, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs in the given DBOS states (see STATES), most recent first."""
        found = await self.client.list_workflows_async(
            name=WORKFLOW_NAME,
            status=list(states),
            limit=limit,
            offset=offset,
            sort_desc=True,
            load_output=False,
        )
        return [Job.from_status(status) for status in found]

    def _forget_transactions(self, id: str, start: int) -> None:
        for url in self.config.datasources.values():
            database_url = engine_url(url)
            schema = None if database_url.startswith("sqlite") else "dbos"
            outputs = datasource_outputs_table(schema)
            engine = sa.create_engine(
                database_url.replace("postgresql://", "postgresql+psycopg://")
            )
            try:
                with engine.begin() as connection:
                    connection.execute(
                        outputs.delete()
                        .where(outputs.c.workflow_id == id)
                        .where(outputs.c.step_id >= start)
                    )
            finally:
                engine.dispose()
