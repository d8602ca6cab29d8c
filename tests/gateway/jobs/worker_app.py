"""A job worker for the tests alone: `python worker_app.py --database-url URL --effects-url URL`.

Kinds: `effect` records one row in `effects` (exactly once, in a transaction that also
records the step), after waiting `sleep_ms` as an agency would; `flaky` fails with the last
error an operator should see until the row named by its payload is in `switches`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.jobs import JobContext, JobKinds, JobsConfig, Payload, RetryPolicy, run_worker

kinds = JobKinds()


@kinds.handler("effect")
async def effect(job: JobContext, payload: Payload) -> None:
    async def agency() -> None:
        await asyncio.sleep(payload.get("sleep_ms", 0) / 1000)

    await job.step("agency", agency)

    async def record(session: AsyncSession) -> None:
        await session.execute(
            text("INSERT INTO effects (job_id, n) VALUES (:job, :n)"),
            {"job": job.job_id, "n": payload["n"]},
        )

    await job.transaction("effects", "record", record)


@kinds.handler("flaky", retry=RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.1))
async def flaky(job: JobContext, payload: Payload) -> None:
    async def switched_on(session: AsyncSession) -> bool:
        found = await session.execute(
            text("SELECT 1 FROM switches WHERE name = :name"), {"name": payload["name"]}
        )
        return found.first() is not None

    if not await job.transaction("effects", "switch", switched_on):
        raise RuntimeError(f"agency refused {payload['name']} on attempt {job.attempt}")

    async def record(session: AsyncSession) -> None:
        await session.execute(
            text("INSERT INTO effects (job_id, n) VALUES (:job, 0)"), {"job": job.job_id}
        )

    await job.transaction("effects", "record", record)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--effects-url", required=True)
    parser.add_argument("--executor-id", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--heartbeat", type=float, default=0.2)
    parser.add_argument("--lease", type=float, default=1.5)
    arguments = parser.parse_args()
    config = JobsConfig(
        database_url=arguments.database_url,
        executor_id=arguments.executor_id,
        worker_concurrency=arguments.concurrency,
        polling_interval_s=0.05,
        heartbeat_interval_s=arguments.heartbeat,
        lease_s=arguments.lease,
        shutdown_grace_s=2,
        datasources={"effects": arguments.effects_url},
        log_level="WARNING",
    )

    run_worker(config, kinds, on_ready=lambda: print("ready", flush=True))
    sys.exit(0)


if __name__ == "__main__":
    main()
