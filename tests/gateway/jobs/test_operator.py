"""An operator's hands on durable work: `gateway jobs dead` lists a job that kept failing,
with its last error, and `gateway jobs retry` runs it again, audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from db.engines import Databases
from db.gateway import AuditRecord
from gateway.cli import jobs as jobs_cli
from gateway.cli import main
from gateway.jobs import JobQueue, JobsConfig
from gateway.settings import Settings
from tests.conftest import Backend, cli_env, make_backend
from tests.gateway.jobs.conftest import JobsBackend, wait_until


@pytest.fixture
async def gateway_backend(tmp_path: Path) -> Backend:
    """The gateway's own database, where a retry is audited."""
    backend, _ = await make_backend("sqlite", tmp_path / "gateway", parcels=0)
    return backend


async def _jobs_cli(backend: Backend, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, ["jobs", *args], env=cli_env(backend))


async def test_an_operator_lists_a_dead_job_and_retries_it_audited(
    jobs_backend: JobsBackend,
    job_queue: JobQueue,
    gateway_backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The command reads the engine's configuration from the settings; here, the test's.
    def configured(_settings: Settings) -> JobsConfig:
        return jobs_backend.config

    monkeypatch.setattr(jobs_cli, "jobs_config", configured)
    assert (await _jobs_cli(gateway_backend, "dead")).output == "No dead jobs.\n"

    jobs_backend.start_worker("w0")
    job_id = await job_queue.enqueue("flaky", {"name": "deed-check"}, idempotency_key="op1")

    async def dead() -> bool:
        return [job.id for job in await job_queue.dead()] == [job_id]

    await wait_until(dead, timeout_s=30, what="the job dead")
    listed = await _jobs_cli(gateway_backend, "dead")
    assert listed.exit_code == 0, listed.output
    [line] = listed.output.splitlines()
    found_id, attempts, _died_at, last_error = line.split("\t")
    assert (found_id, attempts) == (job_id, "3 attempts")
    assert last_error == "RuntimeError: agency refused deed-check on attempt 3"

    refused = await _jobs_cli(gateway_backend, "retry", "flaky:nothing-like-it")
    assert refused.exit_code == 1
    assert "No job has the id flaky:nothing-like-it." in refused.output

    jobs_backend.switch_on("deed-check")  # the agency is back
    retried = await _jobs_cli(gateway_backend, "retry", job_id)
    assert retried.exit_code == 0, retried.output

    async def done() -> bool:
        found = await job_queue.get(job_id)
        return found is not None and found.state == "done"

    await wait_until(done, timeout_s=30, what="the retried job done")
    assert jobs_backend.effects_per_job() == {job_id: 1}
    assert (await _jobs_cli(gateway_backend, "dead")).output == "No dead jobs.\n"
    again = await _jobs_cli(gateway_backend, "retry", job_id)
    assert again.exit_code == 1
    assert "Only a dead job is retried" in again.output
    assert "Traceback" not in again.output

    databases = Databases({"gateway": gateway_backend.urls["gateway"]})
    try:
        async with databases.session("gateway") as session:
            audited = (
                await session.execute(
                    select(AuditRecord.operation, AuditRecord.principal_kind).where(
                        AuditRecord.subject_type == "Job", AuditRecord.subject_id == job_id
                    )
                )
            ).all()
    finally:
        await databases.dispose()
    assert [tuple(row) for row in audited] == [(jobs_cli.JOBS_RETRY, "operator")]
