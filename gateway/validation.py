"""Validation before anything runs: operation limits, and input errors tagged BAD_USER_INPUT."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import ProvidedRequiredArgumentsRule, ValuesOfCorrectTypeRule
from strawberry.extensions import SchemaExtension

TOO_COMPLEX = {"code": "QUERY_TOO_COMPLEX"}


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    visiting: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue  # introspection meta-fields are not data depth
            depth = 1 + _depth(selection.selection_set, fragments, visiting)
        elif isinstance(selection, InlineFragmentNode):
            depth = _depth(selection.selection_set, fragments, visiting)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visiting:
                continue  # unknown or cyclic: other rules report it
            depth = _depth(fragment.selection_set, fragments, visiting | {name})
        else:
            continue
        deepest = max(deepest, depth)
    return deepest


def operation_limits(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A rule refusing operations deeper than max_depth or with more than max_aliases aliases."""

    class OperationLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            self.fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            self.aliases = 0

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.alias is not None:
                self.aliases += 1

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            depth = _depth(node.selection_set, self.fragments, frozenset())
            if depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(
                    GraphQLError(
                        f"Operation '{name}' is {depth} levels deep; the limit is {max_depth}.",
                        node,
                        extensions={**TOO_COMPLEX, "limit": "depth", "max": max_depth},
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

    return OperationLimits


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
