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
import datetime as dt
import math
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import EnumType
from keyword import iskeyword
from typing import Any, ClassVar, TypeVar, cast

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    is_leaf_type,
    located_error,
)
from graphql.execution import ExecutionResult, ExperimentalIncrementalExecutionResults
from graphql.execution.collect_fields import CollectedFields, GroupedFieldSet
from graphql.execution.incremental.incremental_executor import DeliveryGroupMap
from graphql.execution.values import get_argument_values
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.permission import PermissionExtension
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
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
    # A value of exactly this type is its own output (String and ID: str, Boolean: bool,
    # Int: int within 32 bits), with no call to coerce it; for an enum, its class.
    plain: type | None = None
    # An enum's names by its members' values (lean_enums): a member is named in place.
    names: dict[Any, str] | None = None


# Standard scalars whose output is the value itself for a value of exactly this type.
_OWN_OUTPUT: dict[Any, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
    GraphQLInt: int,  # within 32 bits only: checked where it is read
}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# Custom scalars' serialize functions that give a value of exactly this type back unchanged:
# str (the identifiers' scalars serialize with it), and those registered with
# serializes_as_itself. Such a value is its own output too.
_OWN_OUTPUT_SERIALIZERS: dict[Any, type] = {str: str}

SerializeT = TypeVar("SerializeT", bound=Callable[[Any], Any])


def serializes_as_itself(python_type: type) -> Callable[[SerializeT], SerializeT]:
    """Declares a scalar's serialize function to give any value of exactly `python_type`
    back unchanged (Money's, for an int), so that such a value is used as it is, without
    the call. An int is so used within 32 bits only; beyond, the function is called."""

    def register(serialize: SerializeT) -> SerializeT:
        _OWN_OUTPUT_SERIALIZERS[serialize] = python_type
        return serialize

    return register


def _own_output(leaf_type: Any) -> type | None:
    """The type whose values are their own output for this leaf type, if any."""
    plain = _OWN_OUTPUT.get(leaf_type)
    if plain is None:
        plain = _OWN_OUTPUT_SERIALIZERS.get(getattr(leaf_type, "coerce_output_value", None))
    return plain


# graphql-core's GraphQLResolveInfo begins so; the path is the only entry that differs from
# one object to the next.
_INFO_HEAD = ("field_name", "field_nodes", "return_type", "parent_type", "path")


def _plain_leaf(field_def: GraphQLField) -> _Leaf | None:
    """The field as a plain leaf, when it is one: an attribute of its object holding a scalar
    or an enum (strawberry's basic field: no resolver, no extension, no argument)."""
    if field_def.args:
        return None
    strawberry_field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(strawberry_field, StrawberryField)
        or not getattr(field_def.resolve, "_is_default", False)
        or not strawberry_field.is_basic_field
        or strawberry_field.default_resolver is not getattr
    ):
        return None
    field_type = field_def.type
    non_null = isinstance(field_type, GraphQLNonNull)
    leaf_type = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if not is_leaf_type(leaf_type):
        return None
    names = getattr(leaf_type.coerce_output_value, "enum_names", None)
    if names is not None:
        return _Leaf(
            strawberry_field.python_name,
            leaf_type.coerce_output_value,
            non_null,
            getattr(leaf_type.coerce_output_value, "enum_class", None),
            names,
        )
    return _Leaf(
        strawberry_field.python_name,
        leaf_type.coerce_output_value,
        non_null,
        _own_output(leaf_type),
    )


@dataclass(frozen=True, slots=True)
class _FieldKind:
    """How a field may be executed, as its definition says (the same for every operation,
    so worked out once per field of the schema)."""

    leaf: _Leaf | None  # a plain leaf, read in place when its node gives no argument
    resolvable: bool  # has a resolver of its own: called directly (_Resolved)
    coerce: Callable[[Any], Any] | None  # a leaf type's coerce_output_value
    object_type: GraphQLObjectType | None  # an object type, or a list's objects' type
    item_type: GraphQLOutputType | None  # a list of objects' item type
    plain: type | None = None  # a leaf type whose values of this type are their own output
    attribute: str | None = None  # a basic field's attribute (_attribute_reader)
    # A resolver that answers what its object loaded ahead (answers_prefetched): its name
    # there and the scopes its field requires.
    ahead: tuple[str, tuple[Any, ...]] | None = None


def _field_kind(field_def: GraphQLField) -> _FieldKind:
    resolvable = field_def.resolve is not None
    field_type = field_def.type
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    if is_leaf_type(field_type):
        leaf = _plain_leaf(field_def)
        return _FieldKind(
            leaf, resolvable, field_type.coerce_output_value, None, None,
            _own_output(field_type),
        )  # fmt: skip
    item_type = None
    if isinstance(field_type, GraphQLList):
        item_type = field_type.of_type
        field_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    if not isinstance(field_type, GraphQLObjectType):
        return _FieldKind(None, resolvable, None, None, None)  # graphql-core completes it
    attribute = getattr(field_def.resolve, "attribute", None)
    ahead = None if field_def.args else getattr(field_def.resolve, "ahead", None)
    return _FieldKind(None, resolvable, None, field_type, item_type, None, attribute, ahead)


@dataclass(slots=True)
class _Resolved:
    """A field whose resolver is called directly, its value completed without graphql-core's
    general steps where it is plainly a leaf's value, an object or a list of objects."""

    field_def: GraphQLField
    nodes: list[FieldNode]  # the field's nodes, as its resolve-info holds them
    coerce: Callable[[Any], Any] | None  # a leaf type's coerce_output_value
    object_type: GraphQLObjectType | None  # an object type, or a list's objects' type
    item_type: GraphQLOutputType | None  # a list of objects' item type
    # What is the same for every object of the operation (a plan lives for one operation,
    # and the field's nodes and the variables are fixed for it), once known: its arguments
    # and its objects' selection.
    arguments: dict[str, Any] | None = None
    collected: CollectedFields | None = None
    # Its resolve-info's first four entries (name, nodes, return type, parent type).
    info_head: tuple[Any, ...] | None = None
    # A value of exactly this type is its own output (see _Leaf.plain).
    plain: type | None = None
    # A basic field's attribute, read in place of calling its resolver (_attribute_reader).
    attribute: str | None = None
    # What its object loaded ahead, read in place once its scopes are held (_FieldKind).
    ahead: tuple[str, tuple[Any, ...]] | None = None


# How a field of a plan is executed.
_GENERAL, _PLAIN_LEAF, _RESOLVED, _ENUM_LEAF = 0, 1, 2, 3

# One selection's fields in order, each flat for the loop that reads them: response name,
# field details, how, then for a plain leaf its attribute, coercion, non-null and own-output
# type, for an enum leaf its attribute, names by value, non-null and class, for a resolved
# field its _Resolved. None when every field takes graphql-core's path.
_Plan = list[tuple[str, Any, int, Any, Any, bool, type | None]] | None

# Values of these types are neither awaitables nor exceptions: no need to ask.
_PLAIN_VALUES: frozenset[type] = frozenset({str, int, float, bool, Decimal})
# What a field's execution gives that is plainly not awaitable: a leaf's output, an object's
# fields, a list's items, null. Asked by exact type before is_awaitable is called.
_SETTLED_VALUES: frozenset[type] = frozenset({str, int, float, bool, dict, list, type(None)})

# A path segment built without NamedTuple's __new__ in Python (graphql-core's Path is a named
# tuple of prev, key and typename): one per field with a resolver and per item of a list.
_tuple_new = tuple.__new__
if not issubclass(Path, tuple) or Path._fields != ("prev", "key", "typename"):
    raise ImportError("graphql-core's Path is no longer a named tuple of prev, key, typename")


# Each field's kind by the id of its definition, kept with the definition (so that its id is
# not reused meanwhile); one per schema (see shared_loop_execution).
_FieldKinds = dict[int, tuple[GraphQLField, _FieldKind]]


def _plan(
    kinds: _FieldKinds, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
) -> _Plan:
    plan: list[tuple[str, Any, int, Any, Any, bool, type | None]] = []
    general = True  # every field takes graphql-core's path, so far
    for name, details in grouped_field_set.items():
        node = details[0].node
        # Meta fields (__typename) are not among the type's fields: graphql-core's path.
        field_def = parent_type.fields.get(node.name.value)
        if field_def is None:
            plan.append((name, details, _GENERAL, None, None, False, None))
            continue
        known = kinds.get(id(field_def))
        if known is None or known[0] is not field_def:
            known = kinds[id(field_def)] = (field_def, _field_kind(field_def))
        kind = known[1]
        leaf = kind.leaf
        if leaf is not None and leaf.names is not None and not node.arguments:
            plan.append(
                (name, details, _ENUM_LEAF, leaf.attribute, leaf.names, leaf.non_null,
                 leaf.plain)
            )  # fmt: skip
        elif leaf is not None and not node.arguments:
            plan.append(
                (name, details, _PLAIN_LEAF, leaf.attribute, leaf.coerce, leaf.non_null,
                 leaf.plain)
            )  # fmt: skip
        elif kind.resolvable and (
            details[0].fragment_variable_values is None
            if len(details) == 1
            else all(d.fragment_variable_values is None for d in details)
        ):
            resolved = _Resolved(
                field_def, [d.node for d in details], kind.coerce, kind.object_type,
                kind.item_type, None, None, None, kind.plain, kind.attribute, kind.ahead,
            )  # fmt: skip
            plan.append((name, details, _RESOLVED, resolved, None, False, None))
        else:
            plan.append((name, details, _GENERAL, None, None, False, None))
            continue
        general = False
    return None if general else plan


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
        plan = _plan(self.field_kinds, parent_type, grouped_field_set)
        planned = (grouped_field_set, plan, _leaves_only(self.leaf_functions, plan))
        self.leaf_plans[id(grouped_field_set)] = planned
    leaves = planned[2]
    if leaves is not None:
        done = leaves(source_value)
        if done is not None:
            return done
    plan = planned[1]
    if plan is None:
        return _core_execute_fields(
            self, parent_type, source_value, path, grouped_field_set, position_context
        )
    results: dict[str, Any] = {}
    is_awaitable = self.is_awaitable
    plain_types = self.plain_types
    awaitable_fields: list[str] = []
    value: Any
    try:
        for response_name, field_details_list, how, target, coerce, non_null, plain in plan:
            if how == _PLAIN_LEAF:
                try:
                    value = getattr(source_value, target)
                except Exception:
                    value = Undefined  # graphql-core's path raises it, located
                value_type = type(value)
                if value_type is plain and (plain is not int or _INT_MIN <= value <= _INT_MAX):
                    results[response_name] = value
                    continue
                if value is None:
                    if not non_null:
                        results[response_name] = None
                        continue
                elif value_type in plain_types or (
                    value is not Undefined
                    and not isinstance(value, Exception)
                    and not is_awaitable(value)
                ):
                    try:
                        coerced = coerce(value)
                    except Exception:
                        coerced = None  # graphql-core's path raises it, located
                    if coerced is not None and coerced is not Undefined:
                        results[response_name] = coerced
                        continue
            elif how == _RESOLVED:
                result = self._execute_resolved(
                    target,
                    parent_type,
                    source_value,
                    field_details_list,
                    _tuple_new(Path, (path, response_name, parent_type.name)),
                    position_context,
                )
                results[response_name] = result
                if type(result) not in self.settled_types and is_awaitable(result):
                    awaitable_fields.append(response_name)
                continue
            elif how == _ENUM_LEAF:
                # A member of the enum's own class, named by its value (as lean_enums'
                # coerce_output_value names it), or null where the field may be; anything
                # else takes graphql-core's path below.
                try:
                    value = getattr(source_value, target)
                except Exception:
                    value = Undefined
                if type(value) is plain:
                    name = coerce.get(value._value_)  # type: ignore[attr-defined]  # an enum member
                    if name is not None:
                        results[response_name] = name
                        continue
                elif value is None and not non_null:
                    results[response_name] = None
                    continue
            result = self.execute_field(
                parent_type,
                source_value,
                field_details_list,
                _tuple_new(Path, (path, response_name, parent_type.name)),
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
    if not awaitable_fields:
        return results  # as _settled returns it, without the call (once per object)
    return _settled(results, awaitable_fields)


# An object's fields when its selection is only leaves, or None where one of them is not plainly
# a value of its type: the plan's loop then executes the object, errors and all.
_LeafFunction = Callable[[Any], dict[str, Any] | None]
# By the plan's leaves (their names, attributes, coercions and types), one per schema.
_LeafFunctions = dict[tuple[Any, ...], _LeafFunction | None]
# Values a leaf function coerces itself: neither awaitables nor exceptions, whatever their
# type's coercion makes of them.
_COERCED_IN_PLACE = _PLAIN_VALUES | {dt.date, dt.datetime, dt.time}
# Selections of leaves told apart at most (plans are per document; beyond, the loop runs).
_MAX_LEAF_FUNCTIONS = 2048


def _leaves_only(functions: _LeafFunctions, plan: _Plan) -> _LeafFunction | None:
    """A function that completes an object whose selection is only plain and enum leaves
    (a due item, a permit, a date), made once per schema and selection: each leaf read and
    checked in a line of its own instead of a turn of the plan's loop, which unpacks its
    entry and asks its kind. It gives None, and the loop runs (reading the attributes once
    more, which has no side effect), for anything that is not plainly a value of its type:
    null where it may not be, an exception, an awaitable, a value its type refuses."""
    if not plan or any(entry[2] not in (_PLAIN_LEAF, _ENUM_LEAF) for entry in plan):
        return None
    key = tuple((name, how, target, coerce if how == _PLAIN_LEAF else id(coerce), non_null,
                 plain) for name, _, how, target, coerce, non_null, plain in plan)  # fmt: skip
    if key in functions:
        return functions[key]
    made = _make_leaves_only(plan) if len(functions) < _MAX_LEAF_FUNCTIONS else None
    functions[key] = made
    return made


def _make_leaves_only(plan: list[tuple[str, Any, int, Any, Any, bool, type | None]]) -> Any:
    namespace: dict[str, Any] = {"_Undefined": Undefined}
    lines = ["def leaves(source):", "    results = {}"]
    for index, (name, _, how, target, coerce, non_null, plain) in enumerate(plan):
        if not (isinstance(target, str) and target.isidentifier() and not iskeyword(target)):
            return None
        if not (isinstance(name, str) and name.isidentifier()):
            return None
        namespace[f"_plain{index}"] = plain
        namespace[f"_coerce{index}"] = coerce
        lines += [
            "    try:",
            f"        value = source.{target}",
            "    except Exception:",
            "        return None",
        ]
        if how == _ENUM_LEAF:  # coerce: the names by value, plain: the enum's class
            lines += [
                f"    if type(value) is _plain{index}:",
                f"        named = _coerce{index}.get(value._value_)",
                "        if named is None:",
                "            return None",
                f"        results[{name!r}] = named",
            ]
        elif plain is not None:
            within = f" and {_INT_MIN} <= value <= {_INT_MAX}" if plain is int else ""
            lines += [
                f"    if type(value) is _plain{index}{within}:",
                f"        results[{name!r}] = value",
            ]
        else:
            # Only values of the types plainly values are coerced here (no awaitable, no
            # exception); a coercion that raises or refuses is left to the loop.
            namespace[f"_values{index}"] = _COERCED_IN_PLACE
            lines += [
                f"    if type(value) in _values{index}:",
                "        try:",
                f"            coerced = _coerce{index}(value)",
                "        except Exception:",
                "            return None",
                "        if coerced is None or coerced is _Undefined:",
                "            return None",
                f"        results[{name!r}] = coerced",
            ]
        if not non_null:
            lines += ["    elif value is None:", f"        results[{name!r}] = None"]
        lines += ["    else:", "        return None"]
    lines.append("    return results")
    exec("\n".join(lines), namespace)  # as dataclasses makes __init__
    return namespace["leaves"]


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


# Work that waits for a turn of the loop: a function and its arguments (an object's fields,
# or the rest of a list of objects).
_Work = tuple[Callable[..., Any], tuple[Any, ...]]


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


def _tracking(executor: SharedLoopExecution) -> Callable[[Sequence[Any]], None]:
    """The executor's track_async_work through a weak reference (see async_helpers)."""
    reference = weakref.ref(executor)

    def track(values: Sequence[Any]) -> None:
        alive = reference()
        if alive is not None:
            alive.track_async_work(values)

    return track


class SharedLoopExecution(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, checking the clock before each object's fields."""

    policy: ClassVar[ExecutionPolicy]
    field_kinds: ClassVar[_FieldKinds]
    leaf_functions: ClassVar[_LeafFunctions]
    # Classes whose instances are plainly values, neither null, an error nor an awaitable,
    # and what a field's execution gives that is plainly not awaitable (see plain_values).
    plain_types: ClassVar[frozenset[type]] = _PLAIN_VALUES
    settled_types: ClassVar[frozenset[type]] = _SETTLED_VALUES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core's helpers are the executor's own bound methods, a reference cycle
        # (executor → helpers → executor) that kept each request's whole graph (context,
        # request, loaders, cost, results) alive until the cyclic collector's next
        # generation-1 pass, a pause of about 20 ms in a loaded worker every few hundred
        # requests. The same two helpers without the cycle: gather is graphql-core's own
        # gather_async_work, which never reads the executor, and track reaches the
        # executor weakly (a resolver only tracks work while its executor runs).
        self.async_helpers = GraphQLResolveInfoHelpers(gather=_gather, track=_tracking(self))
        # Plain leaves by selection (see _execute_fields), for this operation.
        self.leaf_plans: dict[int, tuple[GroupedFieldSet, _Plan, _LeafFunction | None]] = {}
        # The resolve-info's class and its entries after the path, the same for every field
        # of the operation, once one was built (see _resolve_info).
        self.info_shared: tuple[type, tuple[Any, ...]] | None = None
        self.info_checked = False

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
        self.waiting: deque[tuple[asyncio.Future[Any], _Work]] = deque()
        self.runner: asyncio.Task[None] | None = None
        self.gate = DispatchGate(turns_after_release=2 * policy.max_depth + 2)
        # Without @stream in the schema no list is streamed (validation refuses it), and
        # there is no need to ask of each list.
        self.may_stream = self.schema.get_directive("stream") is not None
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
            _execute_fields,
            (self, parent_type, source_value, path, grouped_field_set, position_context),
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
        """graphql-core's completion of a list, with a list of objects completed by
        _complete_objects; anything else (a tuple, a streamed list, a deferred fragment in
        the items' selection) takes graphql-core's path."""
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            type(items) is list
            and isinstance(object_type, GraphQLObjectType)
            and position_context is None
            and (not self.may_stream or self.get_stream_usage(field_details_list, path) is None)
        ):
            collected = self.collect_subfields(object_type, field_details_list)
            if not collected.new_defer_usages:
                return self._complete_objects(
                    item_type, object_type, collected.grouped_field_set,
                    field_details_list, info, path, items,
                )  # fmt: skip
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _complete_objects(
        self,
        item_type: Any,
        object_type: GraphQLObjectType,
        grouped_field_set: GroupedFieldSet,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: list[Any],
        start: int = 0,
        resumed: bool = False,
        field: _Resolved | None = None,
        parent_type: GraphQLObjectType | None = None,
    ) -> AwaitableOrValue[list[Any]]:
        """A list of objects (from `start` on), each completed directly: the type check,
        then its fields, instead of four general calls per item (a page's lists hold a
        thousand objects). An item that is not plainly an object of the type (null, an
        error, an awaitable, another type) takes graphql-core's own path, so errors, their
        paths and null propagation are graphql-core's.

        Once the slice is over, the rest of the list waits for a turn as one piece of work
        rather than as one per object; `resumed` is that work run by the runner, which
        completes at least its first item.

        `info` is None when not made yet: the list is `field` of `parent_type`, whose
        resolve-info is made once an item needs a general step."""
        is_awaitable = self.is_awaitable
        plain_types = self.plain_types
        is_type_of = object_type.is_type_of
        exact = getattr(is_type_of, "exact_class", None)  # _quick_type_check's
        clock = self.clock
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        rest: Any = None
        try:
            for index in range(start, len(items)):
                item = items[index]
                item_path = _tuple_new(Path, (path, index, None))
                item_class = type(item)
                if item_class not in plain_types or not (
                    is_type_of is None
                    or (item_class is exact and TYPE_CAST_ATTRIBUTE not in item.__dict__)
                ):
                    if info is None:
                        info = self._info(field, parent_type, path)  # type: ignore[arg-type]
                    if not (
                        (
                            item_class in plain_types
                            or not (
                                item is None or isinstance(item, Exception) or is_awaitable(item)
                            )
                        )
                        and (is_type_of is None or is_type_of(item, info) is True)
                    ):
                        if is_awaitable(item):
                            completed.append(
                                self.complete_awaitable_list_item_value(
                                    item, item_type, field_details_list, info, item_path, None
                                )
                            )
                            awaitable_indices.append(index - start)
                        elif self.complete_list_item_value(
                            item, completed, item_type, field_details_list, info, item_path, None
                        ):
                            awaitable_indices.append(index - start)
                        continue
                    # else plainly an object of the type after all (a subclass, a cast)
                now = clock()
                if now >= self.slice_end and now < self.deadline and not self.turned:
                    if not (resumed and index == start):
                        rest = self._wait_for_turn(
                            self._complete_objects,
                            (item_type, object_type, grouped_field_set, field_details_list,
                             info, path, items, index, True, field, parent_type),
                        )  # fmt: skip
                        break
                    now = -math.inf  # the runner's work completes its first item at least
                try:
                    if now < self.slice_end:
                        value = _execute_fields(
                            self, object_type, item, item_path, grouped_field_set, None
                        )
                    else:  # past the budget, or a new slice: execute_fields decides
                        value = self.execute_fields(
                            object_type, item, item_path, grouped_field_set, None
                        )
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed.append(None)
                    continue
                if type(value) is not dict and is_awaitable(value):
                    completed.append(
                        self._completed(value, item_type, field_details_list, item_path)
                    )
                    awaitable_indices.append(index - start)
                else:
                    completed.append(value)
        except Exception:
            # As graphql-core: awaitables of other items are settled, as they may fail too.
            if awaitable_indices:
                self.settle_in_background([completed[i] for i in awaitable_indices])
            raise
        if rest is None:
            if not awaitable_indices:
                return completed
            return _settled(completed, awaitable_indices)
        # The rest's items in place of its awaitable, once it has run.
        head = len(completed)
        completed.append(rest)
        awaitable_indices.append(head)
        settled = cast(Awaitable[list[Any]], _settled(completed, awaitable_indices))

        async def joined() -> list[Any]:
            values = await settled
            return values[:head] + values[head]  # type: ignore[no-any-return]

        return joined()

    def _execute_resolved(
        self,
        field: _Resolved,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: DeliveryGroupMap | None,
    ) -> Any:
        """graphql-core's execute_field, with its arguments read once per operation and
        its completion's general steps (the type's kind asked again and again, then an
        object's selection collected and executed through two more calls) skipped where
        the value is plainly a leaf's value, an object of the type or a list of objects
        (most of a page's fields). Anything else (null, an error, an awaitable, another type,
        a deferred fragment) is completed by graphql-core's own complete_value, so errors,
        their paths and null propagation are graphql-core's."""
        field_def = field.field_def
        return_type = field_def.type
        # The resolve-info is made only for a resolver, or once a general step needs it: an
        # attribute read in place and a value loaded ahead need none.
        info: Any = None
        try:
            arguments = field.arguments
            if arguments is None:
                first = field_details_list[0].node
                arguments = {}
                if field_def.args or first.arguments:
                    arguments = get_argument_values(
                        field_def, first, self.variable_values, None, self.hide_suggestions
                    )
                field.arguments = arguments
            ahead = field.ahead
            if field.attribute is not None:
                result = getattr(source, field.attribute)
            elif (
                ahead is not None
                and not arguments
                and (not ahead[1] or all(map(self.context_value.principal.has, ahead[1])))
                and (result := source.prefetched.get(ahead[0], _ABSENT)) is not _ABSENT
            ):
                pass  # as its resolver would answer (answers_prefetched), without the call
            else:
                info = self._info(field, parent_type, path)
                if arguments:
                    result = field_def.resolve(source, info, **arguments)  # type: ignore[misc]
                else:
                    result = field_def.resolve(source, info)  # type: ignore[misc]
            result_type = type(result)
            if result_type not in self.settled_types and self.is_awaitable(result):
                if info is None:
                    info = self._info(field, parent_type, path)
                return self.complete_awaitable_value(
                    return_type, field_details_list, info, path, result, position_context
                )
            completed: AwaitableOrValue[Any] = Undefined
            coerce = field.coerce
            if coerce is not None:
                if result_type is field.plain and (
                    result_type is not int or _INT_MIN <= result <= _INT_MAX
                ):
                    completed = result  # its own output, as for a plain leaf
                elif result is not None and not isinstance(result, Exception):
                    completed = coerce(result)
                    if completed is None:
                        completed = Undefined  # refused: complete_value raises its error
            elif field.object_type is not None and position_context is None:
                completed = self._complete_composite(
                    field, field_details_list, info, path, result, parent_type
                )
            if completed is Undefined:
                if info is None:
                    info = self._info(field, parent_type, path)
                completed = self.complete_value(
                    return_type, field_details_list, info, path, result, position_context
                )
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if type(completed) not in self.settled_types and self.is_awaitable(completed):
            return self._completed(completed, return_type, field_details_list, path)
        return completed

    def _info(self, field: _Resolved, parent_type: GraphQLObjectType, path: Path) -> Any:
        head, shared = field.info_head, self.info_shared
        if head is not None and shared is not None:  # _resolve_info's common case
            return _tuple_new(shared[0], (*head, path, *shared[1]))
        return self._resolve_info(field, parent_type, path)

    def _resolve_info(self, field: _Resolved, parent_type: GraphQLObjectType, path: Path) -> Any:
        """strawberry's resolve-info for the field at `path`, the first time the field is met
        in this operation: the same tuple strawberry's build_resolve_info makes, its first
        four entries the field's (name, nodes, return type, parent type), then the path, then
        the operation's, the same for every field. The operation's first field is built by
        strawberry, and its layout checked; if it is another, strawberry builds every one."""
        field_def, nodes = field.field_def, field.nodes
        head = (nodes[0].name.value, nodes, field_def.type, parent_type)
        shared = self.info_shared
        if shared is not None:
            field.info_head = head
            return _tuple_new(shared[0], (*head, path, *shared[1]))
        info = self.build_resolve_info(field_def, nodes, parent_type, path)
        if (
            not self.info_checked
            and type(info)._fields[:5] == _INFO_HEAD
            and tuple(info[:4]) == head
            and info[4] is path
        ):
            field.info_head = head
            self.info_shared = (type(info), tuple(info[5:]))
        self.info_checked = True
        return info

    def _complete_composite(
        self,
        field: _Resolved,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        parent_type: GraphQLObjectType,
    ) -> AwaitableOrValue[Any]:
        """An object's or a list of objects' value completed directly, or Undefined where
        graphql-core's complete_value must do it (null, an error, an awaitable, another type,
        a deferred fragment, a streamed list). `info` is None when not made yet."""
        object_type = field.object_type
        assert object_type is not None
        collected = field.collected
        if collected is None:
            collected = field.collected = self.collect_subfields(object_type, field_details_list)
        if collected.new_defer_usages:
            return Undefined
        item_type = field.item_type
        if item_type is not None:
            if type(result) is not list or self.may_stream:
                return Undefined
            return self._complete_objects(
                item_type, object_type, collected.grouped_field_set,
                field_details_list, info, path, result, 0, False, field, parent_type,
            )  # fmt: skip
        if not self._plain_object(object_type, result, info, field, parent_type, path):
            return Undefined
        return self.execute_fields(object_type, result, path, collected.grouped_field_set, None)

    def _plain_object(
        self,
        object_type: GraphQLObjectType,
        value: Any,
        info: Any,
        field: _Resolved,
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> bool:
        """Whether the value is plainly an object of the type: not null, not an error, not
        an awaitable, and of the type by its is_type_of where the type has one (asked with
        the field's resolve-info, made here if it was not yet)."""
        if type(value) not in self.plain_types and (
            value is None or isinstance(value, Exception) or self.is_awaitable(value)
        ):
            return False
        is_type_of = object_type.is_type_of
        if is_type_of is None or (
            type(value) is getattr(is_type_of, "exact_class", None)
            and TYPE_CAST_ATTRIBUTE not in value.__dict__
        ):
            return True
        if info is None:
            info = self._info(field, parent_type, path)
        return is_type_of(value, info) is True

    async def _completed(
        self, value: Any, return_type: Any, field_details_list: Any, path: Path
    ) -> Any:
        """An awaited completion, its error handled where it was raised (graphql-core's)."""
        try:
            return await value
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
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

    def _wait_for_turn(
        self, function: Callable[..., Any], arguments: tuple[Any, ...]
    ) -> Coroutine[Any, Any, Any]:
        """This work (an object's fields, the rest of a list), run by the operation's runner
        on a later turn of the loop. Its batches wait meanwhile (see DispatchGate), so that
        what the work loads joins them."""
        assert self.loop is not None  # the slice is infinite without a loop
        ran: asyncio.Future[Any] = self.loop.create_future()
        self.waiting.append((ran, (function, arguments)))
        if self.runner is None:
            self.gate.hold()
            self.runner = self.loop.create_task(self._run_waiting())
        return self._after(ran)

    async def _after(self, ran: asyncio.Future[Any]) -> Any:
        try:
            result = await ran
        except asyncio.CancelledError:
            # Cancelled (a sibling failed, and gather_with_cancel cancels the rest) just after
            # the work ran: what it gave back and still waits for (the rest of a list, put
            # off again) is settled in the background, as graphql-core settles a failed
            # object's other awaitables, rather than dropped unawaited.
            if (
                ran.done()
                and not ran.cancelled()
                and ran.exception() is None
                and self.is_awaitable(ran.result())
            ):
                self.settle_in_background([ran.result()])
            raise
        if self.is_awaitable(result):
            return await result
        return result

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

    def _run(self, ran: asyncio.Future[Any], work: _Work) -> None:
        if ran.done():
            return  # cancelled: whatever awaited it has failed already
        try:
            if self.cut_off is not None:
                raise self._out_of_time()  # stopped already: what waits fails at once
            function, arguments = work
            result = function(*arguments)
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
            # _value_: the member's own attribute, which its `value` property returns
            # through two calls.
            name = names.get(output_value._value_)
            if name is not None:
                return name
        return original(output_value)

    # For the executor's plans, which name a member in place (_ENUM_LEAF).
    coerce_output_value.enum_names = names  # type: ignore[attr-defined]
    coerce_output_value.enum_class = wrapped  # type: ignore[attr-defined]
    return coerce_output_value


def plain_values(schema: Any) -> int:
    """Tells the schema's executor which classes' instances are plainly values: the
    schema's enums and its object types' classes; how many it added.

    graphql-core asks of every value whether it is awaitable (is_awaitable: two isinstance
    checks and a hasattr for anything but a builtin), and of every item of a list whether it
    is null or an error too: a page's thousand objects and enum members. An instance of
    exactly one of these classes is none of those (a class is taken only if neither it nor
    its metaclass can make it so), and is not asked."""
    execution = schema.execution_context_class
    if not (isinstance(execution, type) and issubclass(execution, SharedLoopExecution)):
        return 0
    found: set[type] = set()
    for named_type in schema._schema.type_map.values():
        if isinstance(named_type, CustomGraphQLEnumType):
            found.add(named_type.wrapped_cls)
        elif isinstance(named_type, GraphQLObjectType):
            definition = named_type.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            origin = getattr(definition, "origin", None)
            if isinstance(origin, type):
                found.add(origin)
    plain = {
        cls
        for cls in found
        if type(cls) in (type, EnumType)
        and not issubclass(cls, (BaseException, Awaitable, Generator))
        and not hasattr(cls, "__await__")
    }
    execution.plain_types = _PLAIN_VALUES | plain
    execution.settled_types = _SETTLED_VALUES | plain
    for named_type in schema._schema.type_map.values():
        if isinstance(named_type, GraphQLObjectType):
            _quick_type_check(named_type)
    return len(plain)


def _quick_type_check(object_type: GraphQLObjectType) -> None:
    """strawberry's is_type_of for a type with interfaces (a Node: a parcel, a permit) asks
    first whether the object was strawberry.cast to a type, by a getattr that misses and so
    raises and catches an AttributeError inside, then isinstance: a page asks it of 370
    objects. An instance of exactly the type's class that holds no cast is of the type, as
    strawberry's check would find; anything else is asked of strawberry's."""
    original = object_type.is_type_of
    definition = object_type.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    origin = getattr(definition, "origin", None)
    if (
        original is None
        or getattr(original, "__qualname__", "") != _STRAWBERRY_IS_TYPE_OF
        or not isinstance(origin, type)
        or getattr(definition, "concrete_of", None) is not None
        or "__slots__" in vars(origin)
        or hasattr(origin, TYPE_CAST_ATTRIBUTE)
    ):
        return

    def is_type_of(value: Any, info: Any) -> bool:
        if type(value) is origin and TYPE_CAST_ATTRIBUTE not in value.__dict__:
            return True
        return bool(original(value, info))

    # The executor asks the first question in place, without the call or a resolve-info.
    is_type_of.exact_class = origin  # type: ignore[attr-defined]
    object_type.is_type_of = is_type_of


_STRAWBERRY_IS_TYPE_OF = (
    "GraphQLCoreConverter.from_object.<locals>._get_is_type_of.<locals>.is_type_of"
)


_ABSENT = object()
FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])


def answers_prefetched(name: str) -> Callable[[FunctionT], FunctionT]:
    """Declares that a resolver, called with every argument null, returns its object's
    `prefetched[name]` whenever that is there (what a list loaded ahead for each of its
    objects: a page's parcels' owners, permits, dues). The executor's direct resolver then
    reads it there, after the field's scope checks, without calling the resolver and making
    its Info: a page has six such fields on each of its hundred parcels."""

    def mark(function: FunctionT) -> FunctionT:
        function.answers_prefetched = name  # type: ignore[attr-defined]
        return function

    return mark


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
    if resolver is None:
        return _attribute_reader(field, original)
    if type(resolver) is not StrawberryResolver:
        return None
    permissions: list[Any] = []
    for extension in field.extensions:
        if type(extension) is not PermissionExtension:
            return None
        permissions.extend(extension.permissions)
    if not all(
        isinstance(permission, _Requires)
        and type(permission).has_permission is _Requires.has_permission
        for permission in permissions
    ):
        return None
    # _Requires.has_permission is this: the principal holds the scope.
    scopes = tuple(permission.scope for permission in permissions)
    # Each argument's GraphQL and Python names, and whether its value is passed as given: a
    # scalar's or an enum's (strawberry's convert_argument returns it unchanged); for any
    # other, only null is (a value given takes strawberry's path, which converts it).
    arguments: list[tuple[str, str, bool]] = []
    for argument in field.arguments:
        argument_type: Any = argument.type
        if isinstance(argument_type, StrawberryMaybe):
            return None
        optional = isinstance(argument_type, StrawberryOptional)
        if optional:
            argument_type = argument_type.of_type
        as_given = _as_given(argument_type, converter.scalar_registry)
        if not (optional or as_given):
            return None  # a required argument of another kind: strawberry converts it
        arguments.append(
            (config.name_converter.from_argument(argument), argument.python_name, as_given)
        )
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
    ahead: str | None = getattr(function, "answers_prefetched", None)
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    info_class = config.info_class

    def refused(info: Any) -> bool:
        # map, not a generator expression: no frame of its own (a scope check per field)
        return not all(map(info.context.principal.has, scopes))

    if not arguments:
        # The common case, called positionally: `def owners(self, info)`, `def total(self)`.
        takes_info = info_name is not None
        if takes_info and list(resolver.signature.parameters) != [
            resolver.self_parameter.name,
            info_name,
        ]:
            return None

        def resolve_plainly(source: Any, info: Any, **kwargs: Any) -> Any:
            if scopes and refused(info):
                return original(source, info, **kwargs)  # strawberry refuses it
            if takes_info:
                return function(source, info_class(info, field))
            return function(source)

        def resolve_ahead(source: Any, info: Any, **kwargs: Any) -> Any:
            if scopes and refused(info):
                return original(source, info, **kwargs)  # strawberry refuses it
            value = source.prefetched.get(ahead, _ABSENT)
            if value is not _ABSENT:
                return value
            if takes_info:
                return function(source, info_class(info, field))
            return function(source)

        if ahead is None:
            return resolve_plainly
        # What the executor reads in place (_Resolved.ahead): the scopes held, then this.
        resolve_ahead.ahead = (ahead, scopes)  # type: ignore[attr-defined]
        return resolve_ahead

    def resolve(source: Any, info: Any, **kwargs: Any) -> Any:
        values: dict[str, Any] = {}
        given = False  # an argument other than null: what was loaded ahead does not answer
        for graphql_name, python_name, as_given in arguments:
            if graphql_name in kwargs:
                value = kwargs[graphql_name]
                if value is not None:
                    if not as_given:
                        return original(source, info, **kwargs)  # strawberry converts it
                    given = True
                values[python_name] = value
        if scopes and refused(info):
            return original(source, info, **kwargs)  # strawberry refuses it
        if ahead is not None and not given:
            value = source.prefetched.get(ahead, _ABSENT)
            if value is not _ABSENT:
                return value
        if info_name is not None:
            values[info_name] = info_class(info, field)
        return function(source, **values)

    return resolve


def _as_given(argument_type: Any, scalar_registry: Any) -> bool:
    """Whether strawberry passes an argument of this type to its resolver as graphql-core
    parsed it: a scalar (but a GlobalID, which it decodes) or an enum."""
    if argument_type is GlobalID:
        return False
    if isinstance(argument_type, StrawberryEnumDefinition) or has_enum_definition(argument_type):
        return True
    try:
        return bool(is_scalar(argument_type, scalar_registry))
    except Exception:
        return False


def _attribute_reader(field: StrawberryField, original: Any) -> Any:
    """strawberry's basic field (no resolver, no extension) reads its object's attribute
    through three calls (get_result, then the base_resolver and python_name properties);
    this reads it directly, and names the attribute for the executor (_Resolved.attribute),
    which reads it in place: an edge's node, a parcel's dues items, a certificate's date."""
    if (
        not getattr(original, "_is_default", False)
        or not field.is_basic_field
        or field.default_resolver is not getattr
    ):
        return None
    name = field.python_name

    def read_attribute(source: Any, info: Any, **kwargs: Any) -> Any:
        return getattr(source, name)

    read_attribute._is_default = True  # type: ignore[attr-defined]  # as strawberry's
    read_attribute.attribute = name  # type: ignore[attr-defined]
    return read_attribute


def shared_loop_execution(policy: ExecutionPolicy) -> type[SharedLoopExecution]:
    """The executor class for one schema (graphql-core builds one instance per operation)."""

    class Execution(SharedLoopExecution):
        pass

    Execution.policy = policy
    Execution.field_kinds = {}
    Execution.leaf_functions = {}
    return Execution
