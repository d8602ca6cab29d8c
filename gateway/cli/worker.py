"""`gateway worker`: a process that runs jobs only (durable work), until SIGTERM or SIGINT."""

from __future__ import annotations

import click

from gateway.cli.configuration import load_settings
from gateway.edge.work import ProcessJobs, sweeping_in_thread, worker_notify
from gateway.jobs import jobs_config, run_worker
from gateway.observe.logs import configure_logging


@click.command()
@click.option(
    "--executor-id",
    default=None,
    help="A stable name for this worker: restarted under it, it resumes its own jobs at once "
    "(otherwise another process takes them over once its lease has expired).",
)
def worker(executor_id: str | None) -> None:
    """Run jobs, and nothing else, until SIGTERM or SIGINT."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.effective_log_format)  # as `gateway run`
    config = jobs_config(settings, executor_id)
    click.echo(f"Worker {config.executor_id} running jobs.")
    jobs = ProcessJobs(settings)
    jobs.runtime.notify = worker_notify(settings)
    with sweeping_in_thread(jobs, config):
        run_worker(config, jobs.kinds)
