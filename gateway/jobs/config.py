"""The durable-work engine's configuration: plain values, mapped from Settings by the caller."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.settings import Settings

# Pinned rather than derived from the code's hash (DBOS's default), so that every gateway
# process of one deployment recovers and dequeues the same workflows. Bump it only when the
# job workflow's own sequence of steps changes (gateway/jobs/engine.py), not for handlers.
WORKFLOW_VERSION = "gateway-jobs-1"
QUEUE_NAME = "gateway-jobs"
WORKFLOW_NAME = "gateway.job"


@dataclass(frozen=True)
class JobsConfig:
    """How one process runs jobs.

    `executor_id` names this process to the engine. A process that restarts under the same
    id resumes its own unfinished jobs at once; any other live process takes them over
    when this one's heartbeat is older than `lease_s` (checked every `heartbeat_interval_s`).
    """

    database_url: str  # SQLAlchemy URL; async drivers are accepted and mapped (see below)
    executor_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
    )
    worker_concurrency: int = 16  # jobs one process runs at once
    # How often the queue is polled for new jobs (and the engine's notifications): every
    # poll is a few statements on the engine's database, even with nothing to do.
    polling_interval_s: float = 1.0
    heartbeat_interval_s: float = 5.0
    lease_s: float = 30.0
    shutdown_grace_s: int = 10  # running jobs may finish within this on shutdown
    datasources: dict[str, str] = field(default_factory=dict)  # name -> SQLAlchemy URL
    application_version: str = WORKFLOW_VERSION
    log_level: str = "WARNING"

    def __post_init__(self) -> None:
        if self.lease_s <= 2 * self.heartbeat_interval_s:
            raise ValueError("lease_s must exceed two heartbeat intervals")

    @property
    def system_pool_size(self) -> int:
        """Connections the engine keeps to its database: its bookkeeping writes a few rows a
        job, briefly; a PostgreSQL server shared by several processes has few to give."""
        return max(4, self.worker_concurrency // 2)

    @property
    def takeover_bound_s(self) -> float:
        """The longest a dead process's jobs wait before another process resumes them."""
        return self.lease_s + self.heartbeat_interval_s + self.polling_interval_s

    @property
    def system_database_url(self) -> str:
        return engine_url(self.database_url)


def engine_url(url: str) -> str:
    """The URL DBOS takes: its own drivers (psycopg, sqlite3) in place of the async ones."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    raise ValueError(f"durable work runs on SQLite or PostgreSQL, not {backend}")


def prepare_sqlite(url: str) -> None:
    """Puts a SQLite database in WAL mode (it stays so): the engine commits several small
    transactions per job, and in the default rollback-journal mode each costs a few fsyncs
    and blocks readers. Other URLs are left alone."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # a fresh data folder
    with contextlib.closing(sqlite3.connect(parsed.database)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def jobs_config(settings: Settings, executor_id: str | None = None) -> JobsConfig:
    """The engine's configuration from the gateway's settings (GATEWAY_JOBS_*)."""
    url = settings.jobs_database_url or (
        f"sqlite:///{(settings.data_dir / 'jobs.sqlite3').resolve()}"
    )
    config = JobsConfig(
        database_url=url,
        worker_concurrency=settings.jobs_worker_concurrency,
        heartbeat_interval_s=settings.jobs_heartbeat_s,
        lease_s=settings.jobs_lease_s,
        shutdown_grace_s=settings.jobs_shutdown_grace_s,
        polling_interval_s=settings.jobs_polling_s,
        datasources={"gateway": settings.database_url("gateway")},
    )
    return config if executor_id is None else replace(config, executor_id=executor_id)
