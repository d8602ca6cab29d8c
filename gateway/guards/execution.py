"""Execution that shares the event loop: an operation gives the loop back between slices of
CPU work, and is stopped once it runs past its time budget.

graphql-core completes a result synchronously wherever resolvers answer synchronously (which
look-ahead makes the common case), so a large result could hold a worker's event loop, and
every other request on it and /healthz, for as long as it takes. Here each object's fields
begin with one clock read. Work that runs past its slice (`GATEWAY_LOOP_SLICE_MS`) before the
loop has had a turn waits for the operation's runner, which runs what waits in order, a slice
per turn of the loop; work resumed after an await (the database answered) starts a new slice.
Past the operation's budget (`GATEWAY_OPERATION_BUDGET_S`) an object's fields raise
QueryTooComplex (limit "time"), and the client gets that one error with null data instead of
one per field left.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

from graphql import GraphQLError, GraphQLObjectType, located_error
from graphql.execution import ExecutionResult, ExperimentalIncrementalExecutionResults
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.execution.incremental.incremental_executor import DeliveryGroupMap
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.errors import QueryTooComplex
from gateway.loaders.batching import DispatchGate, dispatch_gate

Clock = Callable[[], float]


@dataclass(frozen=True)
class ExecutionPolicy:
    budget_s: float  # wall time an operation may run
    slice_s: float  # synchronous work between two turns of the event loop
    clock: Clock = time.perf_counter
    # The deepest an operation nests (validation refuses deeper): what objects that waited
    # for a turn ask for comes up to a turn or two per level later (see DispatchGate).
    max_depth: int = 12


# The unchecked step, bound once: calling it directly spares a super() per object.
_execute_fields = StrawberryGraphQLCoreExecutionContext.execute_fields

# One object's fields, as execute_fields takes them.
_Fields = tuple[GraphQLObjectType, Any, Path | None, GroupedFieldSet, DeliveryGroupMap | None]


class SharedLoopExecution(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, checking the clock before each object's fields."""

    policy: ClassVar[ExecutionPolicy]

    def execute_operation(
        self, serially: bool | None = None
    ) -> AwaitableOrValue[ExecutionResult | ExperimentalIncrementalExecutionResults]:
        policy = self.policy
        self.clock = policy.clock
        now = self.clock()
        self.deadline = now + policy.budget_s
        self.slice_s = policy.slice_s
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None  # executed synchronously: there is no loop to give back
            self.slice_s = math.inf
        self.turned = False
        self._new_slice(now)
        self.cut_off: QueryTooComplex | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], _Fields]] = deque()
        self.runner: asyncio.Task[None] | None = None
        self.gate = DispatchGate(turns_after_release=2 * policy.max_depth + 2)
        dispatch_gate.set(self.gate)
        return super().execute_operation(serially)

    def execute_root_grouped_field_set(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: GroupedFieldSet,
        serially: bool,
        position_context: DeliveryGroupMap | None,
    ) -> AwaitableOrValue[dict[str, Any]]:
        # The root runs at once: its slice has just begun, and a time-out raised here
        # would escape graphql-core's error handling.
        if serially:
            return self.execute_fields_serially(
                root_type, root_value, None, grouped_field_set, position_context
            )
        return _execute_fields(
            self, root_type, root_value, None, grouped_field_set, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: DeliveryGroupMap | None,
    ) -> AwaitableOrValue[dict[str, Any]]:
        # The check every object pays: one clock read and one comparison.
        now = self.clock()
        if now < self.slice_end:
            return _execute_fields(
                self, parent_type, source_value, path, grouped_field_set, position_context
            )
        if now >= self.deadline:
            raise self._out_of_time()
        if self.turned:
            # The loop has had a turn since this slice began (this is work resumed after
            # a wait, say for the database): a new slice.
            self._new_slice(now)
            return _execute_fields(
                self, parent_type, source_value, path, grouped_field_set, position_context
            )
        return self._wait_for_turn(
            (parent_type, source_value, path, grouped_field_set, position_context)
        )

    def _new_slice(self, now: float) -> None:
        self.slice_end = min(now + self.slice_s, self.deadline)
        if self.loop is not None:
            self.turned = False
            # A callback scheduled now runs on the loop's next turn, after it polled for I/O.
            self.loop.call_soon(self._turn)

    def _turn(self) -> None:
        self.turned = True

    def _out_of_time(self) -> QueryTooComplex:
        error = QueryTooComplex(
            f"The operation ran past its time budget of {self.policy.budget_s:g} s and was "
            "stopped; ask for less at once.",
            limit="time",
            max=self.policy.budget_s,
        )
        if self.cut_off is None:
            self.cut_off = error
        return error

    def _wait_for_turn(self, fields: _Fields) -> Coroutine[Any, Any, dict[str, Any]]:
        """These fields, run by the operation's runner on a later turn of the loop. Its
        batches wait meanwhile (see DispatchGate), so that what the fields load joins them."""
        assert self.loop is not None  # the slice is infinite without a loop
        ran: asyncio.Future[Any] = self.loop.create_future()
        self.waiting.append((ran, fields))
        if self.runner is None:
            self.gate.hold()
            self.runner = self.loop.create_task(self._run_waiting())
        return self._after(ran)

    async def _after(self, ran: asyncio.Future[Any]) -> dict[str, Any]:
        result = await ran
        if self.is_awaitable(result):
            return await result  # type: ignore[no-any-return]
        return result  # type: ignore[no-any-return]

    async def _run_waiting(self) -> None:
        """Runs the waiting objects' fields in order, a slice per turn of the loop (and at
        least one object, so that every operation on the loop makes progress)."""
        waiting = self.waiting
        try:
            while waiting:
                now = self.clock()
                if now >= self.slice_end and self.turned:
                    self._new_slice(now)
                self._run(*waiting.popleft())
                while waiting and self.clock() < self.slice_end:
                    self._run(*waiting.popleft())
                if waiting:
                    await asyncio.sleep(0)
        finally:
            self.runner = None
            self.gate.release()

    def _run(self, ran: asyncio.Future[Any], fields: _Fields) -> None:
        if ran.done():
            return  # cancelled: whatever awaited it has failed already
        try:
            if self.cut_off is not None:
                raise self._out_of_time()  # stopped already: what waits fails at once
            result = _execute_fields(self, *fields)
        except Exception as error:
            ran.set_exception(error)
        else:
            ran.set_result(result)

    def build_response(
        self, data: dict[str, Any] | None
    ) -> ExecutionResult | ExperimentalIncrementalExecutionResults:
        if self.cut_off is None:
            return super().build_response(data)
        # One error for the client, where the budget ran out, instead of one per field
        # that was left, and no half-finished data.
        self.run_async_work_finished_hook()
        cut_off = self.cut_off
        error: GraphQLError = next(
            (e for e in self.collected_errors.errors if e.original_error is cut_off),
            located_error(cut_off, None, None),
        )
        return ExecutionResult(None, [error])


def shared_loop_execution(policy: ExecutionPolicy) -> type[SharedLoopExecution]:
    """The executor class for one schema (graphql-core builds one instance per operation)."""

    class Execution(SharedLoopExecution):
        pass

    Execution.policy = policy
    return Execution
