"""The cost estimate: how many objects an operation could return, refused over the caller's
budget before anything runs (gateway/guards/admission.py compares it with the budget)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
)

from gateway.errors import QueryTooComplex
from gateway.paging import DEFAULT_PAGE_SIZE

# How many items a plain list (one without `first`) is expected to hold: declared next to
# the field, `strawberry.field(metadata=typical_size(3))`, so that a renamed field keeps it;
# other lists count as `Settings.cost_list_size`. Connections count `first` items.
TYPICAL_SIZE = "typical_size"
# Where strawberry keeps a GraphQL field's own definition (StrawberryField).
_STRAWBERRY_FIELD = "strawberry-definition"


def typical_size(items: int) -> dict[str, int]:
    """A list field's metadata: how many items it usually holds, for the cost estimate."""
    return {TYPICAL_SIZE: items}


# A list that holds one item for each item of one of its list arguments (`_entities`: one
# entity per representation): `strawberry.field(metadata=sized_by("representations"))`.
SIZED_BY = "sized_by"


def sized_by(argument: str) -> dict[str, str]:
    """A list field's metadata: it returns as many items as `argument` (a list) holds."""
    return {SIZED_BY: argument}


def _metadata(definition: GraphQLField) -> dict[str, Any]:
    field = (definition.extensions or {}).get(_STRAWBERRY_FIELD)
    return getattr(field, "metadata", None) or {}


def declared_size(definition: GraphQLField) -> int | None:
    """The typical size declared on a field, if any."""
    size = _metadata(definition).get(TYPICAL_SIZE)
    return size if isinstance(size, int) else None


_MAX_WALK_DEPTH = 100


@dataclass(frozen=True)
class CostPolicy:
    max_page_size: int
    list_size: int  # a plain list that declares no typical size


class _Cost:
    """Walks one operation: each object a field may return costs 1, times the length of every
    list around it. A field with a `first` argument (a connection) sets the length of the
    lists directly under it, and `first` over the page-size cap is refused here, before any
    resolver runs. Fields are merged by response key first, as execution merges them, so a
    fragment spread twice counts once (and cannot make the walk itself exponential)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        policy: CostPolicy,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.policy = policy
        self.defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }

    def of(
        self,
        selection_sets: list[SelectionSetNode],
        parent: GraphQLNamedType,
        page: int | None,
        depth: int = 0,
    ) -> int:
        if depth > _MAX_WALK_DEPTH:
            return 0  # only an invalid (cyclic) document gets here; validation refuses it
        fields: dict[tuple[str, str], tuple[GraphQLNamedType, list[FieldNode]]] = {}
        for selection_set in selection_sets:
            self._collect(selection_set, parent, fields, set())
        return sum(self._field(nodes, owner, page, depth) for owner, nodes in fields.values())

    def _collect(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        fields: dict[tuple[str, str], tuple[GraphQLNamedType, list[FieldNode]]],
        spread: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = (parent.name, (selection.alias or selection.name).value)
                fields.setdefault(key, (parent, []))[1].append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                if inner is not None:
                    self._collect(selection.selection_set, inner, fields, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:
                    continue  # unknown (refused by validation) or merged already
                spread.add(name)
                inner = self.schema.get_type(fragment.type_condition.name.value)
                if inner is not None:
                    self._collect(fragment.selection_set, inner, fields, spread)

    def _field(
        self, nodes: list[FieldNode], parent: GraphQLNamedType, page: int | None, depth: int
    ) -> int:
        node = nodes[0]
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        definition = parent.fields.get(name)
        selections = [n.selection_set for n in nodes if n.selection_set is not None]
        if definition is None or not selections:
            return 0  # unknown (validation refused it) or a leaf: leaves come with their object
        items = 1
        if is_list_type(get_nullable_type(definition.type)):
            items = (
                page
                or self._argument_length(node, definition)
                or declared_size(definition)
                or self.policy.list_size
            )
        # Fields merged under one key have the same arguments (validation sees to it).
        inner = self.of(
            selections,
            get_named_type(definition.type),
            self._page_size(node, definition),
            depth + 1,
        )
        return items * (1 + inner)

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The `first` (or `last`) a field asks for (from a literal, a variable or the
        default); DEFAULT_PAGE_SIZE when a connection is given neither."""
        argument = definition.args.get("first")
        if argument is None:
            return None
        values: dict[str, Any] = {
            name: definition.args[name].default_value if name in definition.args else None
            for name in ("first", "last")
        }
        for given in node.arguments or ():
            if given.name.value in values:
                values[given.name.value] = self._value(given.value, values[given.name.value])
        values = {k: None if v is Undefined else v for k, v in values.items()}
        name = "last" if values["last"] is not None and values["first"] is None else "first"
        value = values[name]
        cap = self.policy.max_page_size
        if value is None:
            return min(DEFAULT_PAGE_SIZE, cap)
        if not isinstance(value, int) or isinstance(value, bool):
            return cap  # not an integer: coercion refuses it later; count the worst case
        if value > cap:
            raise QueryTooComplex(
                f"{name} may be at most {cap}; page through the rest with a cursor.",
                field=name,
                max=cap,
                limit="pageSize",
            )
        return max(value, 1)

    def _argument_length(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """How many items the list argument a field is sized by holds (literal or variable),
        when it declares one: as many objects as the caller sends keys for."""
        name = _metadata(definition).get(SIZED_BY)
        if not isinstance(name, str):
            return None
        for given in node.arguments or ():
            if given.name.value == name:
                value = given.value
                if isinstance(value, ListValueNode):
                    return len(value.values)
                found = self._value(value, None)
                return len(found) if isinstance(found, list) else 1
        return None

    def _value(self, node: ValueNode, default: Any) -> Any:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                return self.variables[name]
            given = self.defaults.get(name)
            return default if given is None else self._value(given, default)
        if isinstance(node, IntValueNode):
            return int(node.value)
        return default


class _Reading(Mapping[str, Any]):
    """The operation's variables, noting which of them the walk read."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self.variables = variables
        self.read: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        value = self.read[name] = self.variables[name]
        return value

    def __contains__(self, name: object) -> bool:
        if name in self.variables:
            return True
        self.read[str(name)] = Undefined
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)


def _shape(value: Any) -> Hashable:
    """What the walk can tell of a variable's value (a page size, a list's length): equal
    shapes give equal costs. Other values make the estimate not worth remembering."""
    if value is None or value is Undefined or type(value) in (int, bool, str):
        return (type(value), value)
    if isinstance(value, list):
        return (list, len(value))
    raise TypeError


# The estimates of a schema (kept on it, so that they go with it), by document (the parser
# cache hands out one document object per text; each is kept with its estimates, so that
# its id is not reused), then by operation and policy, with the shapes of the variables the
# walk read. A look-up's estimate was a visible share of its CPU.
_ESTIMATES = "gateway_cost_estimates"
_MAX_DOCUMENTS = 1024
_MAX_SHAPES = 64
_Known = dict[int, tuple[DocumentNode, dict[tuple[str | None, CostPolicy], list[tuple[Any, int]]]]]


def estimate_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    policy: CostPolicy,
) -> int:
    """The estimated cost of the operation to run; QueryTooComplex for a page over the cap.

    Remembered: the walk depends on the schema, the document, the operation, the policy and
    the shapes of the variables it reads (page sizes, list lengths), on nothing else."""
    variables = variables or {}
    known: _Known = schema.__dict__.setdefault(_ESTIMATES, {})
    remembered = known.get(id(document))
    if remembered is None or remembered[0] is not document:
        if len(known) >= _MAX_DOCUMENTS:
            known.clear()
        remembered = known[id(document)] = (document, {})
    estimates = remembered[1].setdefault((operation_name, policy), [])
    for shapes, cost in estimates:
        if _same_shapes(shapes, variables):
            return cost
    reading = _Reading(variables)
    cost = _estimate(schema, document, operation_name, reading, policy)
    try:
        shapes = tuple((name, _shape(value)) for name, value in reading.read.items())
    except TypeError:
        return cost
    if len(estimates) < _MAX_SHAPES:
        estimates.append((shapes, cost))
    return cost


def _same_shapes(shapes: tuple[tuple[str, Hashable], ...], variables: Mapping[str, Any]) -> bool:
    try:
        return all(_shape(variables.get(name, Undefined)) == shape for name, shape in shapes)
    except TypeError:
        return False


def _estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
    policy: CostPolicy,
) -> int:
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation else None
    if operation is None or root is None:
        return 0  # graphql-core refuses these with its own errors
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Cost(schema, operation, fragments, variables, policy)
    return walk.of([operation.selection_set], root, None)
