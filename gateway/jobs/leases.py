"""Executor heartbeats, and the takeover of a dead executor's jobs.

DBOS resumes a process's unfinished workflows when a process with the same executor id
launches again, and otherwise only when told to (`DBOS._recover_pending_workflows`, which
its hosted Conductor service calls for you). Self-hosted, nobody tells it. So every process
writes a heartbeat here, and each, on its own beat, hands back to the queue the unfinished
jobs of any executor whose heartbeat is older than the lease: they run again elsewhere
within `JobsConfig.takeover_bound_s`.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from gateway.jobs.policy import Clock

metadata = sa.MetaData()
executors = sa.Table(
    "gateway_job_executors",
    metadata,
    sa.Column("executor_id", sa.String(200), primary_key=True),
    sa.Column("heartbeat_at", sa.Float, nullable=False),  # seconds since the epoch
)

Recover = Callable[[str], int]  # hands an executor's unfinished jobs back; returns how many


class Leases:
    def __init__(
        self, engine: sa.Engine, executor_id: str, *, lease_s: float, clock: Clock
    ) -> None:
        self.engine = engine
        self.executor_id = executor_id
        self.lease_s = lease_s
        self.clock = clock

    def create_table(self) -> None:
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DatabaseError:
            # Workers start together: another one created it between the check and here.
            if not sa.inspect(self.engine).has_table(executors.name):
                raise

    def beat(self) -> None:
        now = self.clock()
        with self.engine.begin() as connection:
            updated = connection.execute(
                executors.update()
                .where(executors.c.executor_id == self.executor_id)
                .values(heartbeat_at=now)
            ).rowcount
            if not updated:
                connection.execute(
                    executors.insert().values(executor_id=self.executor_id, heartbeat_at=now)
                )

    def expired(self) -> list[str]:
        cutoff = self.clock() - self.lease_s
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(executors.c.executor_id)
                .where(executors.c.heartbeat_at < cutoff)
                .where(executors.c.executor_id != self.executor_id)
                .order_by(executors.c.heartbeat_at)
            )
            return [row.executor_id for row in rows]

    def take_over(self, recover: Recover) -> dict[str, int]:
        """Recovers each expired executor's jobs, then forgets the executor.

        Recovery comes first and is idempotent (DBOS re-enqueues only jobs still marked as
        the dead executor's), so two processes taking over at once, or one dying halfway,
        lose nothing; the row is deleted only if no new heartbeat arrived meanwhile.
        """
        taken: dict[str, int] = {}
        for executor_id in self.expired():
            taken[executor_id] = recover(executor_id)
            cutoff = self.clock() - self.lease_s
            with self.engine.begin() as connection:
                connection.execute(
                    executors.delete()
                    .where(executors.c.executor_id == executor_id)
                    .where(executors.c.heartbeat_at < cutoff)
                )
        return taken

    def release(self) -> None:
        """On shutdown: expire this executor's lease at once, so that any job it could not
        finish is taken over at the other processes' next beat, not after a whole lease."""
        with self.engine.begin() as connection:
            connection.execute(
                executors.update()
                .where(executors.c.executor_id == self.executor_id)
                .values(heartbeat_at=0.0)
            )
