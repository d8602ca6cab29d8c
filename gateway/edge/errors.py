"""What clients see of every error, built here alone: one documented code each, nothing
internal.

- `client_error(message, code, ...)` is one error as it leaves the gateway,
  `{message, locations?, path?, extensions: {code, ...}}`, its code from gateway/errors.py;
- `format_error(error, request_id)` turns a GraphQL error into one;
- `error_response(status, message, code, ...)` answers a request refused before GraphQL ran
  (authentication, body size, rate limits, malformed requests, batches): `{"errors": [...]}`
  and no `data`, as GraphQL over HTTP has it for a request that never executed;
- `is_request_error(data, errors)` tells those apart from errors of an operation that ran.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from graphql import ArgumentNode, GraphQLError, ObjectFieldNode, Visitor, parse, visit
from starlette.responses import Response

from connectors.errors import AgencyError
from gateway.edge.language import LANGUAGE, PERSIAN
from gateway.errors import ERROR_CODES, AuditUnavailable, GatewayError, QueryTooComplex
from gateway.messages_fa import persian_message
from gateway.observe.requests import current_trace_id, note_error
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


def client_error(
    message: str,
    code: str,
    *,
    locations: list[dict[str, int]] | None = None,
    path: list[str | int] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """One error as a client receives it; `code` must be one of the documented ERROR_CODES.
    Its message is in the caller's language (gateway/edge/language.py): Persian when asked."""
    if code not in ERROR_CODES:
        raise ValueError(f"{code!r} is not a documented error code (gateway/errors.py)")
    if LANGUAGE.get() == PERSIAN:
        message = persian_message(message, code)
    error: dict[str, Any] = {"message": message}
    if locations:
        error["locations"] = locations
    if path is not None:
        error["path"] = path
    error["extensions"] = {"code": code, **extensions}
    note_error(code, extensions.get("limit"))  # for the request's log line and metrics
    return error


def error_response(
    status: int,
    message: str,
    code: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A request answered before any operation ran: one error, no `data` entry."""
    return Response(
        orjson.dumps({"errors": [client_error(message, code, **extensions)]}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


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
    if extensions["code"] not in ERROR_CODES:
        log.error("undocumented error code %r (request %s)", extensions["code"], request_id)
        message, extensions = "Internal error.", {"code": "INTERNAL"}
    if extensions["code"] == "INTERNAL" or isinstance(original, AgencyError):
        extensions["requestId"] = request_id
        trace_id = current_trace_id()
        if trace_id is not None:  # finds the request's spans, and the agency's
            extensions["traceId"] = trace_id
    locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
    return client_error(
        message, extensions.pop("code"), locations=locations, path=error.path, **extensions
    )


def drop_tracebacks(errors: Iterable[BaseException]) -> None:
    """Forget the tracebacks of an answered operation's errors and of what they wrap.

    An error's traceback holds the frames it passed through, and those hold the executor and
    the request's context, which hold the error again: a reference cycle that kept every
    failed request's objects alive until the cyclic collector's next pass. Once the errors
    are formatted (and an unexpected one logged with its traceback) nothing reads them.
    """
    pending = list(errors)
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = None
        for wrapped in (getattr(error, "original_error", None), error.__cause__, error.__context__):
            if isinstance(wrapped, BaseException):
                pending.append(wrapped)


def is_request_error(data: object, errors: list[GraphQLError]) -> bool:
    """A request error: the operation never started executing (parse, validation, variable
    coercion, a refusal before execution). An operation that ran and was stopped as a whole
    (its time budget, an audit trail that could not record) is not one: its data is null."""
    return (
        data is None
        and bool(errors)
        and all(e.path is None and not _stopped_while_running(e) for e in errors)
    )


def _stopped_while_running(error: GraphQLError) -> bool:
    original = error.original_error
    if isinstance(original, AuditUnavailable):
        return True
    return isinstance(original, QueryTooComplex) and original.extensions.get("limit") == "time"
