"""`gateway jobs`: durable work's dead jobs, listed and retried by an operator. A job that
kept failing ends dead after its kind's retries, with its last error; a retry runs its last
attempt again (effects recorded before it are not repeated) and is written to the audit
trail under the operator who ran it."""

from __future__ import annotations

import asyncio
import datetime as dt

import click

from gateway.access.audit import record_cli_change
from gateway.cli.configuration import load_settings
from gateway.cli.databases import open_databases
from gateway.jobs import Job, JobNotDead, JobNotFound, JobQueue, jobs_config

JOBS_RETRY = "jobs.retry"

jobs = click.Group("jobs", help="Durable work: list the dead jobs, retry one.")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC).replace(microsecond=0)
    return moment.isoformat()


def _line(job: Job) -> str:
    attempts = f"{job.attempts} attempt{'' if job.attempts == 1 else 's'}"
    return "\t".join((job.id, attempts, _when(job.updated_at), job.last_error or "-"))


@jobs.command("dead")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="The most jobs listed, most recent first.",
)
def dead(limit: int) -> None:
    """List dead jobs, most recent first: id, attempts, when it died (UTC), last error."""
    settings = load_settings()

    async def go() -> list[Job]:
        queue = await JobQueue(jobs_config(settings)).open()
        try:
            return await queue.dead(limit=limit)
        finally:
            await queue.close()

    found = asyncio.run(go())
    if not found:
        click.echo("No dead jobs.")
    for job in found:
        click.echo(_line(job))


@jobs.command("retry")
@click.argument("job_id")
def retry(job_id: str) -> None:
    """Run a dead job's last attempt again (audited); it ends done, or dead again with the
    new error."""
    settings = load_settings()

    async def go() -> None:
        queue = await JobQueue(jobs_config(settings)).open()
        try:
            await queue.retry(job_id)
        except JobNotFound:
            raise click.ClickException(f"No job has the id {job_id}.") from None
        except JobNotDead as exc:
            raise click.ClickException(f"Only a dead job is retried: {exc}.") from None
        finally:
            await queue.close()
        async with open_databases(settings, "gateway") as databases:
            await record_cli_change(databases, JOBS_RETRY, "Job", job_id, settings=settings)

    asyncio.run(go())
    click.echo(f"Job {job_id} runs again; `gateway jobs dead` lists it if it fails again.")
