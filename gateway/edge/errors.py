"""Turns GraphQL errors into what clients see: one documented code each, nothing internal."""

from __future__ import annotations

import logging
from typing import Any

from graphql import ArgumentNode, GraphQLError, ObjectFieldNode, Visitor, parse, visit

from connectors.errors import AgencyError
from gateway.errors import GatewayError
from identifiers import InvalidIdentifier

log = logging.getLogger("gateway.errors")


class _FindArgument(Visitor):
    """Finds the argument or input field whose value starts at a given offset."""

    def __init__(self, offset: int) -> None:
        super().__init__()
        self.offset = offset
        self.name: str | None = None

    def enter(self, node: Any, *_args: Any) -> None:
        if isinstance(node, ArgumentNode | ObjectFieldNode):
            loc = node.value.loc
            if loc is not None and loc.start == self.offset:
                self.name = node.name.value


def _field_of(error: GraphQLError) -> str | None:
    """The argument, input field or variable a coercion error is about."""
    if error.message.startswith("Variable '$"):
        return error.message.split("'", 2)[1].removeprefix("$")
    node = error.nodes[0] if error.nodes else None
    if node is None or node.loc is None or error.source is None:
        return None
    finder = _FindArgument(node.loc.start)
    visit(parse(error.source.body, no_location=False), finder)
    return finder.name


def _bad_input(error: GraphQLError, reason: str | None) -> tuple[str, dict[str, Any]]:
    field = _field_of(error)
    extensions: dict[str, Any] = {"code": "BAD_USER_INPUT"}
    if field is not None:
        extensions["field"] = field
    if reason is None:
        return error.message, extensions
    subject = f"'{field}'" if field else "A value"
    return f"{subject} is invalid: {reason}.", extensions


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    original = error.original_error
    # graphql-core wraps coercion failures of a scalar in another GraphQLError.
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    extensions: dict[str, Any]
    if isinstance(original, GatewayError):
        message, extensions = str(original), {"code": original.code, **original.extensions}
    elif isinstance(original, AgencyError):
        message = str(original)
        extensions = {"code": original.code, "agency": original.agency}
    elif isinstance(original, InvalidIdentifier):
        message, extensions = _bad_input(error, str(original))
    elif original is None or isinstance(original, GraphQLError):
        message, extensions = error.message, dict(error.extensions or {})
        if extensions.get("code") == "BAD_USER_INPUT" and "field" not in extensions:
            field = _field_of(error)
            if field is not None:
                extensions["field"] = field
        if "code" not in extensions:
            if "tokens. Parsing aborted" in error.message:
                extensions["code"] = "QUERY_TOO_COMPLEX"
                extensions["limit"] = "tokens"
            elif error.message.startswith("Syntax Error"):
                extensions["code"] = "GRAPHQL_PARSE_FAILED"
            elif error.message.startswith("Variable '$"):
                message, extensions = _bad_input(error, None)
            else:
                extensions["code"] = "GRAPHQL_VALIDATION_FAILED"
    elif isinstance(original, ValueError) and error.path is None:
        # A scalar refused a value before execution started.
        message, extensions = _bad_input(error, str(original))
    else:
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(map(str, error.path or [])) or "operation",
            request_id,
            exc_info=original,
        )
        message, extensions = "Internal error.", {"code": "INTERNAL"}
    if extensions["code"] == "INTERNAL" or isinstance(original, AgencyError):
        extensions["requestId"] = request_id
    formatted: dict[str, Any] = {"message": message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path is not None:
        formatted["path"] = error.path
    formatted["extensions"] = extensions
    return formatted


def is_request_error(data: object, errors: list[GraphQLError]) -> bool:
    """A request error: the operation never started executing (parse, validation, coercion)."""
    return data is None and bool(errors) and all(e.path is None for e in errors)
