"""Checks before anything runs: operation limits (depth, aliases, root fields, fields once
fragments are spread, introspection depth), the cost estimate, hidden introspection, and
input errors tagged BAD_USER_INPUT."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
)
from graphql.validation import (
    NoSchemaIntrospectionCustomRule,
    ProvidedRequiredArgumentsRule,
    ValuesOfCorrectTypeRule,
)
from strawberry.extensions import SchemaExtension

from gateway.errors import QueryTooComplex

TOO_COMPLEX = {"code": "QUERY_TOO_COMPLEX"}


class _Nesting:
    """The deepest nesting of the fields `weight` counts (1), descends through without
    counting (0) or leaves out with what is below them (None). A fragment's nesting is
    computed once, however often it is spread (a document spreading each fragment twice into
    the next would otherwise cost 2**n steps)."""

    def __init__(
        self,
        fragments: dict[str, FragmentDefinitionNode],
        weight: Callable[[FieldNode], int | None],
    ) -> None:
        self.fragments = fragments
        self.weight = weight
        self.known: dict[str, int] = {}

    def of(self, selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                weight = self.weight(selection)
                if weight is None:
                    continue
                depth = weight + self.of(selection.selection_set, visiting)
            elif isinstance(selection, InlineFragmentNode):
                depth = self.of(selection.selection_set, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting:
                    continue  # unknown or cyclic: other rules report it
                if name not in self.known:
                    self.known[name] = self.of(fragment.selection_set, visiting | {name})
                depth = self.known[name]
            else:
                continue
            deepest = max(deepest, depth)
        return deepest


def _data_depth(field: FieldNode) -> int | None:
    return None if field.name.value.startswith("__") else 1  # introspection is not data


def _of_type_depth(field: FieldNode) -> int:
    return 1 if field.name.value == "ofType" else 0


# `ofType` nested as deep as the standard introspection query nests it (graphql-core's
# get_introspection_query(), type_depth=9; GraphiQL's asks for fewer); its other lists
# (fields, interfaces, possibleTypes, inputFields) are capped by MaxIntrospectionDepthRule.
MAX_OF_TYPE_DEPTH = 9


class _Size:
    """How many fields a selection set has once every fragment spread is replaced by the
    fragment's fields. Each fragment is counted once (its own fields plus the size of what it
    spreads), so counting is linear in the document however the spreads multiply; a count
    stops soon after it passes `cap`."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], cap: int) -> None:
        self.fragments = fragments
        self.cap = cap
        self.known: dict[str, int] = {}

    def of(self, selection_set: SelectionSetNode, visiting: frozenset[str]) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1
                if selection.selection_set is not None:
                    total += self.of(selection.selection_set, visiting)
            elif isinstance(selection, InlineFragmentNode):
                total += self.of(selection.selection_set, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting:
                    continue  # unknown or cyclic: other rules report it
                if name not in self.known:
                    self.known[name] = self.of(fragment.selection_set, visiting | {name})
                total += self.known[name]
            if total > self.cap:
                return total  # over the limit already: the exact figure does not matter
        return total


def _root_keys(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    keys: set[str],
    spread: set[str],
) -> None:
    """The response keys an operation asks for at its root: fields sharing a key merge."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                keys.add((selection.alias or selection.name).value)
        elif isinstance(selection, InlineFragmentNode):
            _root_keys(selection.selection_set, fragments, keys, spread)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in spread:
                spread.add(name)
                _root_keys(fragment.selection_set, fragments, keys, spread)


def operation_limits(
    max_depth: int,
    max_aliases: int,
    max_root_fields: int | None = None,
    max_fields: int | None = None,
) -> type[ValidationRule]:
    """A rule refusing operations deeper than max_depth, with more than max_aliases aliases,
    asking for more than max_root_fields fields at their root or more than max_fields fields
    in all (fragments spread), or nesting `ofType` deeper than introspection needs."""

    class OperationLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            self.fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            self.depth = _Nesting(self.fragments, _data_depth)
            self.of_type = _Nesting(self.fragments, _of_type_depth)
            self.size = _Size(self.fragments, max_fields or 0)
            self.aliases = 0
            self.wide: list[GraphQLError] = []

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.alias is not None:
                self.aliases += 1

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            name = node.name.value if node.name else "anonymous"
            depth = self.depth.of(node.selection_set, frozenset())
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"Operation '{name}' is {depth} levels deep; the limit is {max_depth}.",
                        node,
                        extensions={**TOO_COMPLEX, "limit": "depth", "max": max_depth},
                    )
                )
            if self.of_type.of(node.selection_set, frozenset()) > MAX_OF_TYPE_DEPTH:
                self.report_error(
                    GraphQLError(
                        f"Operation '{name}' nests ofType more than {MAX_OF_TYPE_DEPTH} deep, "
                        "deeper than the standard introspection query (or any type here) needs.",
                        node,
                        extensions={
                            **TOO_COMPLEX,
                            "limit": "introspectionDepth",
                            "max": MAX_OF_TYPE_DEPTH,
                        },
                    )
                )
            if (
                max_fields is not None
                and self.size.of(node.selection_set, frozenset()) > max_fields
            ):
                self.report_error(
                    GraphQLError(
                        f"Operation '{name}' asks for more than {max_fields} fields once its "
                        "fragments are spread; ask for fewer, or spread each fragment once.",
                        node,
                        extensions={**TOO_COMPLEX, "limit": "fields", "max": max_fields},
                    )
                )
            if max_root_fields is None:
                return
            keys: set[str] = set()
            _root_keys(node.selection_set, self.fragments, keys, set())
            if len(keys) > max_root_fields:
                self.wide.append(
                    GraphQLError(
                        f"Operation '{name}' asks for {len(keys)} root fields; "
                        f"the limit is {max_root_fields}.",
                        node,
                        extensions={**TOO_COMPLEX, "limit": "rootFields", "max": max_root_fields},
                    )
                )

        def leave_document(self, *_args: Any) -> None:
            if self.aliases > max_aliases:
                self.report_error(
                    GraphQLError(
                        f"The document uses {self.aliases} aliases; the limit is {max_aliases}.",
                        extensions={**TOO_COMPLEX, "limit": "aliases", "max": max_aliases},
                    )
                )
            # After the alias error: aliasing one field many times trips both, and the alias
            # limit is the one to tell.
            for error in self.wide:
                self.report_error(error)

    return OperationLimits


class HiddenSchema(NoSchemaIntrospectionCustomRule):
    """Refuses `__schema` and `__type` (not `__typename`): for callers who may not introspect."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED", "reason": "introspection"}
        super().report_error(error)


_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def hide_suggestions(errors: list[GraphQLError]) -> None:
    """Drops graphql-core's "Did you mean …?" from messages: they spell out the schema."""
    for error in errors:
        if "Did you mean" in error.message:
            error.message = _SUGGESTION.sub("", error.message)


_REQUIRED_ARGUMENT = re.compile(r"\((\w+):\)")


class _BadValue(ValuesOfCorrectTypeRule):
    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {"code": "BAD_USER_INPUT"}
        super().report_error(error)


class _MissingArgument(ProvidedRequiredArgumentsRule):
    def report_error(self, error: GraphQLError) -> None:
        match = _REQUIRED_ARGUMENT.search(error.message)
        error.extensions = {"code": "BAD_USER_INPUT", **({"field": match[1]} if match else {})}
        super().report_error(error)


_REPLACED: dict[type[ASTValidationRule], type[ASTValidationRule]] = {
    ValuesOfCorrectTypeRule: _BadValue,
    ProvidedRequiredArgumentsRule: _MissingArgument,
}


class GatewayValidation(SchemaExtension):
    """Adds the operation limits, and tags input-value errors so clients get BAD_USER_INPUT."""

    def __init__(self, limits: type[ValidationRule]) -> None:
        # The rule class must be built once: the validation cache is keyed by the rules.
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (
            *(_REPLACED.get(rule, rule) for rule in context.validation_rules),
            self.limits,
        )
        yield


# How many items a plain list (one without `first`) is expected to hold, by "Type.field";
# other lists count as `Settings.cost_list_size`. Connections count `first` items.
LIST_SIZES: dict[str, int] = {
    "Query.agencies": 4,
    "Person.parcels": 3,
    "Parcel.owners": 3,
    "Parcel.buildings": 2,
    "Parcel.permits": 3,
    "Parcel.certificates": 2,
    "Parcel.violations": 3,
    "Deed.owners": 3,
    "Deed.mortgages": 2,
    "Deed.seizures": 2,
}


_MAX_WALK_DEPTH = 100


@dataclass(frozen=True)
class CostPolicy:
    max_page_size: int
    list_size: int
    list_sizes: Mapping[str, int] = field(default_factory=lambda: LIST_SIZES)


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
            items = page or self.policy.list_sizes.get(
                f"{parent.name}.{name}", self.policy.list_size
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
        """The `first` a field asks for (from a literal, a variable or the default)."""
        argument = definition.args.get("first")
        if argument is None:
            return None
        value: Any = argument.default_value
        for given in node.arguments or ():
            if given.name.value == "first":
                value = self._value(given.value, value)
        cap = self.policy.max_page_size
        if not isinstance(value, int) or isinstance(value, bool):
            return cap  # not an integer: coercion refuses it later; count the worst case
        if value > cap:
            raise QueryTooComplex(
                f"first may be at most {cap}; page through the rest with after.",
                field="first",
                max=cap,
                limit="pageSize",
            )
        return max(value, 1)

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


def estimate_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    policy: CostPolicy,
) -> int:
    """The estimated cost of the operation to run; QueryTooComplex for a page over the cap."""
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation else None
    if operation is None or root is None:
        return 0  # graphql-core refuses these with its own errors
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Cost(schema, operation, fragments, variables or {}, policy)
    return walk.of([operation.selection_set], root, None)
