"""Durable work: jobs that survive restarts, shared by every gateway process, on DBOS.

kinds = JobKinds()

@kinds.handler("inquiry.check", retry=RetryPolicy(max_attempts=10))
async def run_check(job: JobContext, payload: Payload) -> None:
    deed = await job.step("deed", lambda: registry.deed(..., key=job.idempotency_key("deed")))
    await job.transaction("gateway", "record", lambda session: record(session, deed))

await queue.enqueue("inquiry.check", {"check": 17}, idempotency_key="17")
"""

from gateway.jobs.config import JobsConfig, jobs_config
from gateway.jobs.engine import JobDead, JobEngine
from gateway.jobs.kinds import JobContext, JobKinds, Payload, UnknownJobKind
from gateway.jobs.policy import RetryPolicy
from gateway.jobs.queue import Job, JobNotDead, JobNotFound, JobQueue
from gateway.jobs.worker import run_worker

__all__ = [
    "Job",
    "JobContext",
    "JobDead",
    "JobEngine",
    "JobKinds",
    "JobNotDead",
    "JobNotFound",
    "JobQueue",
    "JobsConfig",
    "Payload",
    "RetryPolicy",
    "UnknownJobKind",
    "jobs_config",
    "run_worker",
]
