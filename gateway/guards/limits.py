"""Checks before anything runs: operation limits (depth, aliases, root fields, fields once
fragments are spread, introspection depth), hidden introspection and suggestions, and input
errors tagged BAD_USER_INPUT."""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import (
    NoSchemaIntrospectionCustomRule,
    ProvidedRequiredArgumentsRule,
    ValuesOfCorrectTypeRule,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

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


# The most fields one selection set may ask for under one response key, fragments merged in.
# graphql-core's check that fields can merge (OverlappingFieldsCanBeMerged) compares them
# pairwise, and their sub-selections pairwise again: 283 `...{owners{share}}` in one set
# cost a second of a worker's CPU before anything ran. Sixteen leaves room for the many
# fragments of a component-based client that each ask for `id`.
MAX_REPEATED_FIELDS = 16


class _Repeats:
    """The most fields sharing one response key in any selection set of a document, with the
    fields of the fragments spread (or inlined) into a set counted as that set's own, as the
    overlap check merges them. Each fragment's keys, and the sets nested in it, are counted
    once, however often it is spread."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.level: dict[str, Counter[str]] = {}
        self.nested: dict[str, int] = {}

    def keys(
        self,
        selection_set: SelectionSetNode,
        visiting: frozenset[str],
        spread: set[str] | None = None,
    ) -> Counter[str]:
        """The response keys of one set, its fragments' fields merged in (a fragment spread
        twice into one set counts once, as graphql-core collects it)."""
        spread = set() if spread is None else spread
        keys: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                keys[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                keys.update(self.keys(selection.selection_set, visiting, spread))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting or name in spread:
                    continue  # unknown or cyclic (other rules report it), or merged already
                spread.add(name)
                if name not in self.level:
                    self.level[name] = self.keys(fragment.selection_set, visiting | {name})
                keys.update(self.level[name])
        return keys

    def most(self, selection_set: SelectionSetNode, visiting: frozenset[str]) -> int:
        """The largest count of one key in this set or any set nested in it."""
        most = max(self.keys(selection_set, visiting).values(), default=0)
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode | InlineFragmentNode):
                if selection.selection_set is not None:
                    most = max(most, self.most(selection.selection_set, visiting))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting:
                    continue
                if name not in self.nested:
                    self.nested[name] = self.most(fragment.selection_set, visiting | {name})
                most = max(most, self.nested[name])
        return most


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
            self.repeats = _Repeats(self.fragments)
            self.aliases = 0
            self.wide: list[GraphQLError] = []
            self.refused = False

        def report_error(self, error: GraphQLError) -> None:
            self.refused = True
            super().report_error(error)

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
            # Only when no size limit spoke already: a fan-out over `fields` repeats its
            # fields too, and one limit is the one to tell.
            repeated = 0
            if not self.refused:
                repeated = self.repeats.most(node.selection_set, frozenset())
            if repeated > MAX_REPEATED_FIELDS:
                self.report_error(
                    GraphQLError(
                        f"Operation '{name}' asks for one field {repeated} times in one "
                        f"selection (fragments merged in); the limit is {MAX_REPEATED_FIELDS}.",
                        node,
                        extensions={
                            **TOO_COMPLEX,
                            "limit": "repeatedFields",
                            "max": MAX_REPEATED_FIELDS,
                        },
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


class CachedValidation:
    """Each distinct document validated once (the newest `maxsize` kept), the operation limits
    first and alone: a document over a limit is refused before graphql-core's own rules see
    it, since their overlap check is quadratic in a selection's fields. Replaces strawberry's
    ValidationCache, which runs every rule in one pass."""

    def __init__(self, limits: type[ValidationRule], maxsize: int = 512) -> None:
        self.limits = limits
        self.maxsize = maxsize
        # By the document's identity (strawberry's parse cache gives one document per
        # query text): hashing a document hashes its whole tree, every request. The document
        # is kept with its errors, so that its id cannot be reused while the entry lives.
        self._known: OrderedDict[Hashable, tuple[DocumentNode, list[GraphQLError]]] = OrderedDict()

    def errors(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        key = (id(document), rules)
        known = self._known.get(key)
        if known is not None and known[0] is document:
            self._known.move_to_end(key)
            return known[1]
        errors = validate_document(schema, document, (self.limits,))
        if not errors:
            errors = validate_document(
                schema, document, tuple(r for r in rules if r is not self.limits)
            )
        self._known[key] = (document, errors)
        self._known.move_to_end(key)
        while len(self._known) > self.maxsize:
            self._known.popitem(last=False)
        return errors


class GatewayValidation(SchemaExtension):
    """Adds the operation limits, tags input-value errors so clients get BAD_USER_INPUT, and
    validates through the cache (limits first)."""

    def __init__(self, limits: type[ValidationRule], validation: CachedValidation) -> None:
        # The rule class must be built once: the validation cache is keyed by the rules.
        self.limits = limits
        self.validation = validation

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (
            *(_REPLACED.get(rule, rule) for rule in context.validation_rules),
            self.limits,
        )
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.graphql_document is not None and execution.pre_execution_errors is None:
            execution.pre_execution_errors = self.validation.errors(
                execution.schema._schema, execution.graphql_document, execution.validation_rules
            )
        yield
