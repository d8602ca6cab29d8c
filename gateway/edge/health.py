"""`/healthz` and `/readyz`, for a load balancer.

`/healthz`: the process is alive (its event loop answers). `/readyz`: every database of the
registry reachable, each on a new connection, and at the newest revision of its migration
history; the job runner alive when this process runs jobs; and the agencies' breakers
summarised, which never fails readiness (an agency that is down nulls its own fields only,
so taking gateways out of rotation for it would turn a partial answer into none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.agencies import Agencies
from db.engines import Databases
from db.migrate import alembic_config
from gateway.jobs import JobEngine

log = logging.getLogger("gateway")
VERSION_TABLE = "alembic_version"


def _newest_revisions(name: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(name)).get_heads())


def _revisions(connection: Connection) -> set[str]:
    # Read directly: alembic's MigrationContext would log two lines on every probe.
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    return set(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


class Health:
    def __init__(
        self,
        databases: Databases,
        agencies: Callable[[], Agencies | None],
        job_engine: Callable[[], JobEngine | None],
        *,
        runs_jobs: bool,
    ) -> None:
        self.databases = databases
        self.agencies = agencies
        self.job_engine = job_engine
        self.runs_jobs = runs_jobs
        self._heads: dict[str, set[str]] = {}

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        databases = {name: await self._database(name) for name in self.databases.engines}
        failing = [name for name, state in databases.items() if state != "ready"]
        jobs = self._jobs()
        ready = not failing and jobs != "stopped"
        agencies = self.agencies()
        breakers = {stats.name: stats.state for stats in agencies.stats()} if agencies else {}
        return JSONResponse(
            {
                "status": "ready" if ready else "unavailable",
                "databases": databases,
                "failing": failing,
                "jobs": jobs,
                "agencies": breakers,
            },
            status_code=200 if ready else 503,
        )

    async def _database(self, name: str) -> str:
        # A new connection (Databases.probe): a pooled one would hide a database gone since.
        try:
            revisions = await self.databases.probe(name, _revisions)
        except Exception:
            log.exception("database %s is not ready", name)
            return "unavailable"
        heads = self._heads.get(name)
        if heads is None:
            heads = self._heads[name] = _newest_revisions(name)
        if revisions != heads:
            log.error("database %s is not at its newest migration", name)
            return "not migrated"
        return "ready"

    def _jobs(self) -> str:
        """running, or stopped (a process meant to run jobs whose runner is gone), or
        `not run here` (GATEWAY_JOBS_IN_APP=false, or no job kind)."""
        if not self.runs_jobs:
            return "not run here"
        engine = self.job_engine()
        return "running" if engine is not None and engine.alive else "stopped"
