"""Durable-work benchmark: jobs per second through the engine (DBOS), end to end.

    .venv/bin/python bench/jobs.py [--jobs 1000] [--postgres-url postgresql://postgres@127.0.0.1/postgres]

Starts real worker processes (`run_worker`, as `gateway worker` does), then enqueues the jobs,
50 at a time as concurrent requests would, and times until every job is done. Each job has
the shape a workflow's job has: one recorded step (an agency call, here instant) and one
transaction that records its effect exactly once. Runs SQLite with one worker, PostgreSQL
with one and with two (skipped when the server does not answer; GATEWAY_TEST_POSTGRES_URL is
used when set), and prints a table: jobs per second, and the CPU milliseconds per job of the
workers and of the enqueuing process (read from /proc; these hold on a busy machine, where
jobs per second do not). SQLite keeps the effects in a file of their own beside the system
database, as the gateway's tables are beside jobs.sqlite3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from gateway.jobs import (  # noqa: E402
    JobContext,
    JobKinds,
    JobQueue,
    JobsConfig,
    Payload,
    run_worker,
)

RUN_TIMEOUT_S = 300.0  # a safety net against a hang, not a measure
kinds = JobKinds()


@kinds.handler("bench")
async def bench_job(job: JobContext, payload: Payload) -> None:
    async def agency() -> int:
        return int(payload["n"])

    n = await job.step("agency", agency)

    async def record(session: AsyncSession) -> None:
        await session.execute(
            sa.text("INSERT INTO effects (job_id, n) VALUES (:job, :n)"),
            {"job": job.job_id, "n": n},
        )

    await job.transaction("effects", "record", record)


def config(url: str, effects_url: str, executor_id: str = "bench") -> JobsConfig:
    return JobsConfig(
        database_url=url,
        executor_id=executor_id,
        polling_interval_s=0.05,
        heartbeat_interval_s=1.0,
        lease_s=5.0,
        shutdown_grace_s=1,
        datasources={"effects": effects_url},
    )


def start_worker(url: str, effects_url: str, executor_id: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", url, effects_url, executor_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=30) or process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("worker did not start")
    return process


def prepare(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    serial = "INTEGER" if url.startswith("sqlite") else "SERIAL"
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"CREATE TABLE effects (id {serial} PRIMARY KEY, job_id TEXT, n INTEGER)")
        )
    engine.dispose()


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc: on a shared machine the
    figure that other work does not inflate, unlike jobs per second."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    url: str, effects_url: str, workers: int, jobs: int
) -> tuple[float, float, float, float]:
    """Returns (enqueued per second, done per second), both from the first enqueue, and the
    CPU milliseconds per job of the workers and of the enqueuing process. The
    effects are recorded in `effects_url`: on SQLite a file of their own beside the system
    database, as the gateway's tables are beside jobs.sqlite3 (one file for both makes every
    exactly-once transaction wait on the engine's own writes)."""
    prepare(effects_url)
    queue = await JobQueue(config(url, effects_url)).open()
    processes = [start_worker(url, effects_url, f"bench-{index}") for index in range(workers)]
    try:
        workers_cpu = sum(cpu_seconds(process.pid) for process in processes)
        own_cpu = time.process_time()
        started = time.monotonic()
        for first in range(0, jobs, 50):
            await asyncio.gather(
                *(
                    queue.enqueue("bench", {"n": n}, idempotency_key=str(n))
                    for n in range(first, min(first + 50, jobs))
                )
            )
        enqueued = time.monotonic() - started
        while (done := await queue.count(["SUCCESS"])) < jobs:
            if time.monotonic() - started > RUN_TIMEOUT_S:
                raise RuntimeError(f"only {done} of {jobs} jobs done in {RUN_TIMEOUT_S} s")
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        workers_cpu = sum(cpu_seconds(process.pid) for process in processes) - workers_cpu
        own_cpu = time.process_time() - own_cpu
        per_job = 1000 / jobs
        return jobs / enqueued, jobs / elapsed, workers_cpu * per_job, own_cpu * per_job
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        await queue.close()


def postgres_database(admin: str) -> tuple[str, sa.Engine, str] | None:
    admin_url = sa.make_url(admin).set(drivername="postgresql+psycopg")
    server = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"gwbench_{uuid.uuid4().hex[:8]}"
    try:
        with server.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError:
        return None
    url = admin_url.set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False), server, name


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    arguments = parser.parse_args()
    rows: list[tuple[str, int, float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'jobs.sqlite3'}"
        effects_url = f"sqlite:///{Path(folder) / 'effects.sqlite3'}"
        rows.append(("SQLite", 1, *await measure(url, effects_url, 1, arguments.jobs)))
    for workers in (1, 2):
        created = postgres_database(arguments.postgres_url)
        if created is None:
            print(f"PostgreSQL at {arguments.postgres_url} does not answer: skipped")
            break
        url, server, name = created
        try:
            measured = await measure(url, url, workers, arguments.jobs)
            rows.append(("PostgreSQL", workers, *measured))
        finally:
            with server.connect() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            server.dispose()
    print(f"\n{arguments.jobs} jobs each (one recorded step and one exactly-once transaction)\n")
    print(
        "| Database | Workers | Enqueued/s | Jobs done/s "
        "| Workers' CPU ms/job | Enqueuer's CPU ms/job |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for database, workers, enqueued, done, workers_ms, own_ms in rows:
        print(
            f"| {database} | {workers} | {enqueued:,.0f} | {done:,.0f} "
            f"| {workers_ms:.1f} | {own_ms:.1f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        run_worker(
            config(sys.argv[2], sys.argv[3], sys.argv[4]),
            kinds,
            on_ready=lambda: print("ready", flush=True),
        )
    else:
        asyncio.run(main())
