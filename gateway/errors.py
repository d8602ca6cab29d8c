"""The errors a client can act on, each with one code from the documented list.

GatewayError                 extensions.code
├── BadUserInput             BAD_USER_INPUT      (names the field or argument)
├── NotFound                 NOT_FOUND
├── QueryTooComplex          QUERY_TOO_COMPLEX
└── (anything else)          INTERNAL            (masked, with a request id for the logs)

Errors GraphQL itself raises before execution are classified in gateway/results.py:
GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT (a literal or a
variable of the wrong type), QUERY_TOO_COMPLEX (depth, token and alias limits).
Agency failures (AGENCY_UNAVAILABLE, AGENCY_TIMEOUT, AGENCY_REJECTED) come from connectors/.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_CODES: dict[str, str] = {
    "BAD_USER_INPUT": "An argument or variable is invalid; extensions.field names it.",
    "NOT_FOUND": "The record asked for by id does not exist.",
    "QUERY_TOO_COMPLEX": "The operation exceeds a depth, token, alias or page-size limit.",
    "GRAPHQL_PARSE_FAILED": "The document is not valid GraphQL syntax.",
    "GRAPHQL_VALIDATION_FAILED": "The document does not match the schema.",
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


class QueryTooComplex(GatewayError):
    code = "QUERY_TOO_COMPLEX"
