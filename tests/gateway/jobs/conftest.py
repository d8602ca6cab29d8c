"""Fixtures for durable work: a job database on SQLite or PostgreSQL, an effects table the
test handlers write to, and real worker processes (worker_app.py) that tests may SIGKILL."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gateway.jobs import JobQueue, JobsConfig

WORKER_APP = Path(__file__).with_name("worker_app.py")
ROOT = Path(__file__).parents[3]
HEARTBEAT_S = 0.2
LEASE_S = 1.5  # short, so that a takeover test waits little; production uses 30 s
READY_TIMEOUT_S = 30.0


@dataclass
class JobsBackend:
    name: str
    database_url: str  # the engine's system database
    effects_url: str  # where the test handlers record their effects
    effects: sa.Engine
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def config(self) -> JobsConfig:
        return JobsConfig(
            database_url=self.database_url,
            heartbeat_interval_s=HEARTBEAT_S,
            lease_s=LEASE_S,
            polling_interval_s=0.05,
            datasources={"effects": self.effects_url},
        )

    def start_worker(self, executor_id: str, *, concurrency: int = 16) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER_APP),
                f"--database-url={self.database_url}",
                f"--effects-url={self.effects_url}",
                f"--executor-id={executor_id}",
                f"--concurrency={concurrency}",
                f"--heartbeat={HEARTBEAT_S}",
                f"--lease={LEASE_S}",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        self.workers.append(process)
        _wait_for_ready(process)
        return process

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()

    def effects_per_job(self) -> dict[str, int]:
        with self.effects.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT job_id, COUNT(*) AS n FROM effects GROUP BY job_id")
            )
            return {row.job_id: row.n for row in rows}

    def switch_on(self, name: str) -> None:
        with self.effects.begin() as connection:
            connection.execute(sa.text("INSERT INTO switches (name) VALUES (:n)"), {"n": name})


def _wait_for_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if selector.select(timeout=deadline - time.monotonic()):
            line = process.stdout.readline()
            if line.strip() == "ready":
                return
            if not line:
                break
    process.kill()
    raise AssertionError(f"worker did not start (exit code {process.poll()})")


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout_s: float, what: str
) -> float:
    """Polls `condition` every 50 ms until it holds; returns the seconds it took."""
    started = time.monotonic()
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


EFFECTS_DDL = (
    "CREATE TABLE effects (id {serial} PRIMARY KEY, job_id VARCHAR(200) NOT NULL, n INTEGER)",
    "CREATE TABLE switches (name VARCHAR(200) PRIMARY KEY)",
)


@pytest.fixture(params=["sqlite", "postgres"])
def jobs_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobsBackend]:
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
        effects_url = f"sqlite:///{tmp_path / 'effects.sqlite3'}"
        serial, drop = "INTEGER", None
    else:
        admin = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
        if not admin:
            pytest.skip("postgres: set GATEWAY_TEST_POSTGRES_URL to run against it")
        name = f"gwjobs_{uuid.uuid4().hex[:10]}"
        admin_url = make_url(admin).set(drivername="postgresql+psycopg")
        server = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        database_url = effects_url = url
        serial, drop = "SERIAL", name
    effects = sa.create_engine(
        effects_url.replace("postgresql+psycopg://", "postgresql+psycopg://"),
    )
    with effects.begin() as connection:
        for statement in EFFECTS_DDL:
            connection.execute(sa.text(statement.format(serial=serial)))
    backend = JobsBackend(request.param, database_url, effects_url, effects)
    try:
        yield backend
    finally:
        backend.stop_workers()
        effects.dispose()
        if drop is not None:
            with server.connect() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {drop} WITH (FORCE)"))
            server.dispose()


@pytest.fixture
async def job_queue(jobs_backend: JobsBackend) -> AsyncIterator[JobQueue]:
    queue = await JobQueue(jobs_backend.config).open()
    try:
        yield queue
    finally:
        await queue.close()
