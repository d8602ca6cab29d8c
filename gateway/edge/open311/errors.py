"""Open311's errors: `<errors><error><code/><description/></error></errors>` (a JSON array of
`{code, description}`), in the format the address asked for, never HTML.

The HTTP status is the specification's: 404 for what does not exist, 403 for a missing or
invalid api_key, 400 for any other request that cannot be fulfilled; beyond it, 429 when the
caller's rate limit is spent (with Retry-After) and 500/503 when the gateway fails. Each error's
`code` is that status, as the specification's examples and its clients have it, and its
description ends with the gateway's own documented code (README, "Error codes") in brackets,
so that a client can tell `BAD_USER_INPUT` from `CONFLICT` within a 400.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

from gateway.edge.language import LANGUAGE, PERSIAN
from gateway.edge.open311.formats import Document, Format, render
from gateway.errors import ERROR_CODES, GatewayError
from gateway.messages_fa import persian_message

__all__ = ["Open311Error", "error_response", "from_gateway_error"]

# The specification's statuses for the gateway's codes; anything else is a 400.
_STATUSES = {
    "NOT_FOUND": 404,
    "UNAUTHENTICATED": 403,
    "FORBIDDEN": 403,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
}


class Open311Error(Exception):
    """A request refused, as Open311 answers it: `status`, a description a person can read,
    the gateway's documented code, and headers (Retry-After)."""

    def __init__(
        self,
        status: int,
        description: str,
        code: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"{code!r} is not a documented error code (gateway/errors.py)")
        super().__init__(description)
        self.status = status
        self.description = description
        self.code = code
        self.headers = dict(headers or {})

    @classmethod
    def bad_request(cls, description: str) -> Open311Error:
        return cls(400, description, "BAD_USER_INPUT")

    @classmethod
    def not_found(cls, description: str = "Not found.") -> Open311Error:
        return cls(404, description, "NOT_FOUND")

    def document(self) -> Document:
        description = self.description
        if LANGUAGE.get() == PERSIAN:  # Accept-Language: fa (gateway/edge/language.py)
            description = persian_message(description, self.code)
        return Document(
            "errors", [{"code": self.status, "description": f"{description} ({self.code})"}]
        )


def from_gateway_error(
    error: GatewayError, fields: Mapping[str, str] | None = None
) -> Open311Error:
    """A domain function's documented error, as Open311 answers it. BAD_USER_INPUT names its
    field as the domain does (`extensions.field`); `fields` renames it as Open311 calls it."""
    description = str(error)
    field = error.extensions.get("field")
    if field is not None and fields:
        renamed = fields.get(field, field)
        description = description.replace(f"'{field}'", f"'{renamed}'")
        field = renamed
    if field and field not in description:
        description = f"{description} (field: {field})"
    return Open311Error(_STATUSES.get(error.code, 400), description, error.code)


def error_response(error: Open311Error, format_: Format) -> Response:
    headers = {"Cache-Control": "no-store", **error.headers}
    return render(error.document(), format_, status_code=error.status, headers=headers)
