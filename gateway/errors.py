"""The errors a client can act on, each with one code from the documented list.

GatewayError                 extensions.code
├── BadUserInput             BAD_USER_INPUT      (names the field or argument)
├── NotFound                 NOT_FOUND
├── Conflict                 CONFLICT            (the record is not in a state the change fits)
├── Forbidden                FORBIDDEN           (names the missing scope)
├── QueryTooComplex          QUERY_TOO_COMPLEX
└── (anything else)          INTERNAL            (masked, with a request id for the logs)

Errors GraphQL itself raises before execution are classified in gateway/edge/errors.py:
GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT (a literal or a
variable of the wrong type), QUERY_TOO_COMPLEX (depth, token, alias and field limits).
Agency failures (AGENCY_UNAVAILABLE, AGENCY_TIMEOUT, AGENCY_REJECTED) come from connectors/.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_CODES: dict[str, str] = {
    "BAD_USER_INPUT": "An argument or variable is invalid; extensions.field names it.",
    "NOT_FOUND": (
        "The record a mutation or command names does not exist or is not the caller's to "
        "see, or the path is not one the gateway serves (HTTP 404)."
    ),
    "CONFLICT": (
        "The record a mutation names is not in a state the change applies to (a key "
        "already revoked, an inquiry check answered already), or an idempotency key was "
        "used before with a different input (extensions.field); nothing was changed."
    ),
    "UNAUTHENTICATED": "A credential was sent but is unknown, expired or revoked (HTTP 401).",
    "FORBIDDEN": (
        "The caller lacks the scope a field needs; the field is null (extensions.scope). "
        "For submitInquiry: a kind of inquiry this kind of caller may not ask "
        "(extensions.scope is inquiries:ask:<KIND>)."
    ),
    "QUERY_TOO_COMPLEX": (
        "The operation exceeds a limit, named by extensions.limit: depth, tokens, aliases, "
        "rootFields, fields (once fragments are spread), repeatedFields, introspectionDepth, "
        "pageSize, length, cost "
        "(with extensions.cost and .budget), batch (HTTP 400) or body (HTTP 413), all before "
        "it runs; or time, when it ran past its budget and was stopped (data is null)."
    ),
    "PERSISTED_QUERY_NOT_FOUND": (
        "The document is not known: a hash the gateway does not hold (send the full text "
        "with it, if your kind of caller may), or, from a partner in production, an "
        "operation that is not registered."
    ),
    "BAD_REQUEST": (
        "The HTTP request is not a GraphQL request: not JSON, not sent as application/json, "
        "`query` not a string, `variables` or `extensions` not an object, JSON nested too "
        "deep, no query, or a method other than GET and POST (HTTP 400, or 405); a mutation "
        "over GET; a query or mutation over WebSocket, which carries subscriptions only."
    ),
    "RATE_LIMITED": (
        "Too many requests from this caller (HTTP 429); retry after Retry-After s "
        "(extensions.retryAfter). Over WebSocket also too many subscriptions at once "
        "(extensions.limit: subscriptionsPerConnection or subscriptionsPerPrincipal)."
    ),
    "SERVICE_NOT_AVAILABLE_IN_REGION": (
        "A citizen request names a service of the catalogue that is not enabled in the "
        "region its location resolves to (a service is piloted in one region first): "
        "extensions.serviceCode, .region and .regions (where it is enabled); nothing was stored."
    ),
    "GRAPHQL_PARSE_FAILED": "The document is not valid GraphQL syntax.",
    "GRAPHQL_VALIDATION_FAILED": (
        "The document does not match the schema; extensions.reason is 'introspection' when "
        "__schema or __type is asked for by a caller who may not (production: internal only)."
    ),
    "AGENCY_UNAVAILABLE": "An outside agency is down or answered unusably; its fields are null.",
    "AGENCY_TIMEOUT": "An outside agency did not answer in time; its fields are null.",
    "AGENCY_REJECTED": "An outside agency refused the request; its fields are null.",
    "INTERNAL": "An unexpected error; extensions.requestId finds it in the logs.",
}


class GatewayError(Exception):
    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.extensions = extensions


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)


class NotFound(GatewayError):
    code = "NOT_FOUND"


class Conflict(GatewayError):
    code = "CONFLICT"


class Forbidden(GatewayError):
    code = "FORBIDDEN"

    def __init__(self, message: str, *, scope: str) -> None:
        super().__init__(message, scope=scope)


class ServiceNotAvailableInRegion(GatewayError):
    code = "SERVICE_NOT_AVAILABLE_IN_REGION"


class AuditUnavailable(Exception):
    """The audit trail could not be written; personal data is then not served (INTERNAL)."""


class QueryTooComplex(GatewayError):
    code = "QUERY_TOO_COMPLEX"
