"""Kinds of job: a name, the handler that does the work, and its retry policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dbos import DBOS, AsyncSQLAlchemyDatasource
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.jobs.policy import RetryPolicy

T = TypeVar("T")
Payload = dict[str, Any]  # JSON-able: it is stored with the job


@dataclass(frozen=True)
class JobContext:
    """What a handler knows about the job it runs, and the two ways it records effects.

    A handler is replayed after a crash, up to the last effect it recorded: it must ask for
    its steps in the same order each time (no branching on the clock or on randomness
    outside a step), as DBOS requires of a workflow.
    """

    job_id: str
    kind: str
    attempt: int  # 1-based, within this round of retries
    datasources: Mapping[str, AsyncSQLAlchemyDatasource] = field(repr=False)

    def idempotency_key(self, step: str) -> str:
        """The key to send an agency for `step`: the same on every attempt and after a
        crash, so an agency that already did the work can answer instead of redoing it."""
        return f"{self.job_id}/{step}"

    async def step(self, name: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Runs `call` once and records its result; replayed from the record afterwards.
        A crash after the call and before the record repeats it: pass the agency
        `idempotency_key(name)` so that the repeat is harmless."""

        # Wrapped: DBOS tells async steps by their function, and a lambda that returns a
        # coroutine would be taken for a synchronous step (and its coroutine recorded).
        async def body() -> T:
            return await call()

        return await DBOS.run_step_async({"name": name}, body)

    async def transaction(
        self, datasource: str, name: str, work: Callable[[AsyncSession], Awaitable[T]]
    ) -> T:
        """Runs `work` in one transaction of a configured database whose commit also records
        the step: its effect happens exactly once, even across crashes and takeovers."""
        source = self.datasources[datasource]

        async def body() -> T:
            return await work(source.sql_session())

        # SQLite serialises writers anyway; PostgreSQL needs no more than READ COMMITTED for
        # the step's record, whose primary key already refuses a second commit.
        sqlite = source.engine.dialect.name == "sqlite"
        return await source.run_tx_step_async(
            {"name": name, "isolation_level": "SERIALIZABLE" if sqlite else "READ COMMITTED"},
            body,
        )


Handler = Callable[[JobContext, Payload], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    retry: RetryPolicy


class UnknownJobKind(LookupError):
    pass


class JobKinds:
    """The handlers a process can run, one per kind; every process sharing a database
    registers the same kinds."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, name: str, handler: Handler, *, retry: RetryPolicy | None = None) -> None:
        if name in self._kinds:
            raise ValueError(f"job kind {name!r} is registered twice")
        if ":" in name:
            raise ValueError("a job kind's name may not contain ':'")
        self._kinds[name] = JobKind(name, handler, retry or RetryPolicy())

    def handler(
        self, name: str, *, retry: RetryPolicy | None = None
    ) -> Callable[[Handler], Handler]:
        """`@kinds.handler("inquiry.check")` registers the function below it."""

        def register(handler: Handler) -> Handler:
            self.register(name, handler, retry=retry)
            return handler

        return register

    def __getitem__(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(f"no handler for job kind {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)
