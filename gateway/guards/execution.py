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
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from graphql import (
    GraphQLError,
    GraphQLNonNull,
    GraphQLObjectType,
    is_leaf_type,
    located_error,
)
from graphql.execution import ExecutionResult, ExperimentalIncrementalExecutionResults
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.execution.incremental.incremental_executor import DeliveryGroupMap
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.permission import PermissionExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from gateway.access.permissions import _Requires
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


# graphql-core's step, bound once: calling it directly spares a super() per object.
_core_execute_fields = StrawberryGraphQLCoreExecutionContext.execute_fields


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A field that is an attribute of its object holding a scalar or an enum: strawberry's
    basic field (no resolver, no extension, no argument)."""

    attribute: str
    coerce: Callable[[Any], Any]  # the type's coerce_output_value
    non_null: bool


def _leaves(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> dict[str, _Leaf]:
    """The fields of a selection that are plain leaves, by response name."""
    leaves: dict[str, _Leaf] = {}
    for response_name, field_details_list in grouped_field_set.items():
        node = field_details_list[0].node
        field_def = parent_type.fields.get(node.name.value)
        if field_def is None or field_def.args or node.arguments:
            continue
        strawberry_field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if (
            not isinstance(strawberry_field, StrawberryField)
            or not getattr(field_def.resolve, "_is_default", False)
            or not strawberry_field.is_basic_field
            or strawberry_field.default_resolver is not getattr
        ):
            continue
        field_type = field_def.type
        non_null = isinstance(field_type, GraphQLNonNull)
        leaf_type = field_type.of_type if non_null else field_type
        if is_leaf_type(leaf_type):
            leaves[response_name] = _Leaf(
                strawberry_field.python_name, leaf_type.coerce_output_value, non_null
            )
    return leaves


# One selection's fields in order, each with its leaf (None: graphql-core's path); None
# when no field of the selection is a plain leaf.
_Plan = list[tuple[str, Any, _Leaf | None]] | None

# Values of these types are neither awaitables nor exceptions: no need to ask.
_PLAIN_VALUES = frozenset({str, int, float, bool, Decimal})


def _plan(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> _Plan:
    leaves = _leaves(parent_type, grouped_field_set)
    if not leaves:
        return None
    return [(name, details, leaves.get(name)) for name, details in grouped_field_set.items()]


def _execute_fields(
    self: SharedLoopExecution,
    parent_type: GraphQLObjectType,
    source_value: Any,
    path: Path | None,
    grouped_field_set: GroupedFieldSet,
    position_context: DeliveryGroupMap | None,
) -> AwaitableOrValue[dict[str, Any]]:
    """graphql-core's execute_fields, with plain leaves read and coerced in place.

    graphql-core resolves each field through its resolver with a resolve-info object, a path
    and completion by type; for a field that only reads an attribute holding a scalar or an
    enum (most of a page's fields) that is several times the work of reading and coercing it
    here. A leaf that is not plainly a value (null where it may not be, an exception, an
    awaitable, a value its type refuses) takes graphql-core's own path, so errors, their
    paths and messages are exactly graphql-core's; reading an attribute has no side effect.
    With field middleware (a resolve hook: tracing's spans) every field takes that path."""
    middleware = self.middleware_manager  # strawberry's is there, empty without resolve hooks
    if middleware is not None and middleware.middlewares:
        return _core_execute_fields(
            self, parent_type, source_value, path, grouped_field_set, position_context
        )
    planned = self.leaf_plans.get(id(grouped_field_set))
    if planned is None or planned[0] is not grouped_field_set:
        # Memoized by the selection's identity, as graphql-core memoizes the selection
        # itself: each item of a list shares one. The selection is kept with its plan, so
        # that its id cannot be reused during the operation.
        planned = (grouped_field_set, _plan(parent_type, grouped_field_set))
        self.leaf_plans[id(grouped_field_set)] = planned
    plan = planned[1]
    if plan is None:
        return _core_execute_fields(
            self, parent_type, source_value, path, grouped_field_set, position_context
        )
    results: dict[str, Any] = {}
    is_awaitable = self.is_awaitable
    awaitable_fields: list[str] = []
    try:
        for response_name, field_details_list, leaf in plan:
            if leaf is not None:
                try:
                    value = getattr(source_value, leaf.attribute)
                except Exception:
                    value = Undefined  # graphql-core's path raises it, located
                if value is None:
                    if not leaf.non_null:
                        results[response_name] = None
                        continue
                elif type(value) in _PLAIN_VALUES or (
                    value is not Undefined
                    and not isinstance(value, Exception)
                    and not is_awaitable(value)
                ):
                    try:
                        coerced = leaf.coerce(value)
                    except Exception:
                        coerced = None  # graphql-core's path raises it, located
                    if coerced is not None and coerced is not Undefined:
                        results[response_name] = coerced
                        continue
            result = self.execute_field(
                parent_type,
                source_value,
                field_details_list,
                Path(path, response_name, parent_type.name),
                position_context,
            )
            if result is not Undefined:
                results[response_name] = result
                if is_awaitable(result):
                    awaitable_fields.append(response_name)
    except Exception:
        if awaitable_fields:
            # As graphql-core: awaitables of other fields are settled, as they may fail too.
            self.settle_in_background([results[field] for field in awaitable_fields])
        raise
    return _settled(results, awaitable_fields)


ContainerT = TypeVar("ContainerT", dict[str, Any], list[Any])


def _settled(container: ContainerT, keys: list[Any]) -> AwaitableOrValue[ContainerT]:
    """The container (an object's fields, a list's items) as it is when nothing at `keys`
    is awaitable; else once the awaitables there have given their values, as graphql-core
    settles them: one awaited alone, more together."""
    if not keys:
        return container

    async def settle() -> ContainerT:
        if len(keys) == 1:
            container[keys[0]] = await container[keys[0]]
        else:
            awaited = await gather_with_cancel(*(container[key] for key in keys))
            for key, value in zip(keys, awaited, strict=True):
                container[key] = value
        return container

    return settle()


# One object's fields, as execute_fields takes them.
_Fields = tuple[GraphQLObjectType, Any, Path | None, GroupedFieldSet, DeliveryGroupMap | None]


class SharedLoopExecution(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, checking the clock before each object's fields."""

    policy: ClassVar[ExecutionPolicy]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plain leaves by selection (see _execute_fields), for this operation.
        self.leaf_plans: dict[int, tuple[GroupedFieldSet, _Plan]] = {}

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

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        """graphql-core's completion of a list, with each object of a list of objects
        completed directly: the type check, then its fields, instead of four general calls
        per item (a page's lists hold a thousand objects). An item that is not plainly an
        object of the type (null, an error, an awaitable, another type) takes graphql-core's
        own path, so errors, their paths and null propagation are graphql-core's; so does a
        streamed list."""
        non_null = isinstance(item_type, GraphQLNonNull)
        object_type = item_type.of_type if non_null else item_type
        if (
            type(items) is not list
            or not isinstance(object_type, GraphQLObjectType)
            or self.get_stream_usage(field_details_list, path) is not None
        ):
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        is_awaitable = self.is_awaitable
        is_type_of = object_type.is_type_of
        execute = self.collect_and_execute_subfields
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                if (
                    item is None
                    or isinstance(item, Exception)
                    or is_awaitable(item)
                    or (is_type_of is not None and is_type_of(item, info) is not True)
                ):
                    if is_awaitable(item):
                        completed.append(
                            self.complete_awaitable_list_item_value(
                                item, item_type, field_details_list, info, item_path,
                                position_context,
                            )
                        )  # fmt: skip
                        awaitable_indices.append(index)
                    elif self.complete_list_item_value(
                        item, completed, item_type, field_details_list, info, item_path,
                        position_context,
                    ):  # fmt: skip
                        awaitable_indices.append(index)
                    continue
                try:
                    value = execute(
                        object_type, field_details_list, item_path, item, position_context
                    )
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed.append(None)
                    continue
                if is_awaitable(value):
                    completed.append(
                        self._completed_item(value, item_type, field_details_list, item_path)
                    )
                    awaitable_indices.append(index)
                else:
                    completed.append(value)
        except Exception:
            # As graphql-core: awaitables of other items are settled, as they may fail too.
            if awaitable_indices:
                self.settle_in_background([completed[i] for i in awaitable_indices])
            raise
        return _settled(completed, awaitable_indices)

    async def _completed_item(
        self, value: Any, item_type: Any, field_details_list: Any, item_path: Path
    ) -> Any:
        try:
            return await value
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, field_details_list, item_path)
            return None

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


def lean_resolvers(schema: Any) -> int:
    """Calls the schema's plain resolvers directly; how many fields it changed.

    strawberry resolves a field with a resolver method through a chain made for the general
    case (arguments converted into Python types, field extensions, the resolver's
    parameters matched), several microseconds a field even when there is nothing to do. A
    resolver that asks for `self` and `info` only, whose arguments are all nullable, whose
    only extensions are the gateway's scope checks (`requires`) and that has no exception
    handler, is called directly: the object as `self`, strawberry's Info over graphql-core's
    as `info`, null arguments as None, its scopes checked first. Anything else (an argument
    given a value, a scope the caller lacks) goes through strawberry's own resolver, so
    conversions, refusals and their errors are strawberry's."""
    converter = schema.schema_converter
    config = schema.config
    changed = 0
    for named_type in schema._schema.type_map.values():
        if not isinstance(named_type, GraphQLObjectType) or named_type.name.startswith("__"):
            continue
        for field_def in named_type.fields.values():
            field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            resolve = _lean(field, field_def.resolve, converter, config)
            if resolve is not None:
                field_def.resolve = resolve
                changed += 1
    return changed


def lean_enums(schema: Any) -> int:
    """Serializes the schema's enums by a lookup; how many it changed.

    strawberry serializes an enum member by comparing it with each of its type's values in
    turn, a visible share of a page's CPU (a due item's kind, a parcel's land use). Members
    of the enum's own class are looked up by value instead, with the same answer; anything
    else takes strawberry's (and graphql-core's) path and its errors."""
    changed = 0
    for named_type in schema._schema.type_map.values():
        if not isinstance(named_type, CustomGraphQLEnumType):
            continue
        names = {value.value: name for name, value in named_type.values.items()}
        if len(names) != len(named_type.values):
            continue  # two names for one value: keep strawberry's first-match rule
        named_type.coerce_output_value = _enum_lookup(  # type: ignore[method-assign,assignment]
            named_type.wrapped_cls, names, named_type.coerce_output_value
        )
        changed += 1
    return changed


def _enum_lookup(
    wrapped: Any, names: dict[Any, str], original: Callable[[Any], str]
) -> Callable[[Any], str]:
    def coerce_output_value(output_value: Any) -> str:
        if type(output_value) is wrapped:
            name = names.get(output_value.value)
            if name is not None:
                return name
        return original(output_value)

    return coerce_output_value


def _lean(field: Any, original: Any, converter: Any, config: Any) -> Any:
    """A direct resolver for `field`, or None where strawberry's chain must stay."""
    if (
        type(field) is not StrawberryField
        or original is None
        or field.is_subscription
        or converter._get_field_exception_handlers(field)
    ):
        return None
    resolver = field.base_resolver
    if resolver is None or type(resolver) is not StrawberryResolver:
        return None
    permissions: list[Any] = []
    for extension in field.extensions:
        if type(extension) is not PermissionExtension or resolver.is_async:
            return None
        permissions.extend(extension.permissions)
    if not all(isinstance(permission, _Requires) for permission in permissions):
        return None
    arguments: list[tuple[str, str]] = []
    for argument in field.arguments:
        if not isinstance(argument.type, StrawberryOptional) or isinstance(
            argument.type, StrawberryMaybe
        ):
            return None
        arguments.append((config.name_converter.from_argument(argument), argument.python_name))
    reserved = [p for p in resolver.reserved_parameters.values() if p is not None]
    if (
        resolver.self_parameter is None
        or resolver.root_parameter is not None
        or resolver.parent_parameter is not None
        or len(resolver.signature.parameters) != len(reserved) + len(arguments)
        or not callable(resolver.wrapped_func)
    ):
        return None
    function = resolver.wrapped_func
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    info_class = config.info_class

    def resolve(source: Any, info: Any, **kwargs: Any) -> Any:
        values: dict[str, Any] = {}
        for graphql_name, python_name in arguments:
            if graphql_name in kwargs:
                if kwargs[graphql_name] is not None:
                    return original(source, info, **kwargs)  # strawberry converts it
                values[python_name] = None
        if info_name is not None or permissions:
            strawberry_info = info_class(_raw_info=info, _field=field)
            for permission in permissions:
                if permission.has_permission(source, strawberry_info) is not True:
                    return original(source, info, **kwargs)  # strawberry refuses it
            if info_name is not None:
                values[info_name] = strawberry_info
        return function(source, **values)

    return resolve


def shared_loop_execution(policy: ExecutionPolicy) -> type[SharedLoopExecution]:
    """The executor class for one schema (graphql-core builds one instance per operation)."""

    class Execution(SharedLoopExecution):
        pass

    Execution.policy = policy
    return Execution
