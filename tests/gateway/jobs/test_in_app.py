"""The gateway process's own share of the durable work: its lifespan starts the engine and
the queue when kinds are registered, runs jobs, and stops them; `gateway worker` exists."""

from __future__ import annotations

import threading
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.edge.app import create_app
from gateway.jobs import JobContext, JobKinds, JobQueue, Payload
from tests.conftest import make_backend, settings_for
from tests.gateway.jobs.conftest import wait_until


async def test_the_app_runs_the_jobs_of_its_kinds_in_its_lifespan(tmp_path: Path) -> None:
    backend, _ = await make_backend("sqlite", tmp_path / "databases", parcels=0)
    seen: list[int] = []
    ran = threading.Event()  # the engine runs handlers on its own loop, in its own thread
    kinds = JobKinds()

    @kinds.handler("test.note")
    async def note(job: JobContext, payload: Payload) -> None:
        seen.append(await job.step("note", lambda: _value(payload)))
        ran.set()

    settings = settings_for(
        backend,
        data_dir=tmp_path / "data",
        jobs_heartbeat_s=0.2,
        jobs_lease_s=1.0,
        jobs_in_app=True,
    )
    app = create_app(settings, kinds=kinds)
    async with app.router.lifespan_context(app):
        queue = app.state.job_queue
        assert isinstance(queue, JobQueue)
        job_id = await queue.enqueue("test.note", {"n": 7}, idempotency_key="seven")
        await wait_until(ran.is_set, timeout_s=30, what="the job ran")

        async def done() -> bool:
            job = await queue.get(job_id)
            return job is not None and job.state == "done"

        await wait_until(done, timeout_s=30, what="the job is recorded as done")
    assert seen == [7]
    assert (tmp_path / "data" / "jobs.sqlite3").exists()  # the default system database


async def _value(payload: Payload) -> int:
    value = payload["n"]
    assert isinstance(value, int)
    return value


async def test_an_app_with_no_job_kinds_starts_no_engine(tmp_path: Path) -> None:
    backend, _ = await make_backend("sqlite", tmp_path / "databases", parcels=0)
    app = create_app(settings_for(backend, data_dir=tmp_path / "data"), kinds=JobKinds())
    async with app.router.lifespan_context(app):
        assert app.state.job_queue is None
    assert not (tmp_path / "data" / "jobs.sqlite3").exists()


def test_gateway_worker_is_a_command() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0, result.output
    assert "--executor-id" in result.output
