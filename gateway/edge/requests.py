"""Requests at the edge: whose address one comes from, its request ids, and refusals' one shape.

- `client_address(scope)` is the only way the gateway names a caller's address (rate limits,
  the failed-authentication throttle, the citizen lookups' throttle, logs; defined in
  gateway/access/addresses.py so that resolvers and the domain reach it too). It is the
  connection's peer, or what X-Forwarded-For says when that peer is one of `trusted_proxies`
  (uvicorn's ProxyHeadersMiddleware, added by `create_app`, rewrites `scope["client"]` then).
- `request_ids(scope)` gives a request the gateway's own id, and keeps the caller's
  X-Request-Id beside it when it is sane (gateway/edge/middleware.py's RequestIds calls it
  first, and answers every response with the gateway's id).
- `refusal(...)` answers a request refused at the edge, with the one error body that
  gateway/edge/errors.py builds: {"errors": [{message, extensions: {code, ...}}]}.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

# The one way to name a caller's address, kept where the resolvers' throttles can use it too
# (re-exported: the edge's modules take it from here).
from gateway.access.addresses import UNKNOWN_ADDRESS as UNKNOWN_ADDRESS
from gateway.access.addresses import client_address as client_address
from gateway.edge.errors import error_response

# The gateway's own id for a request: always generated here, unique, in every log line.
REQUEST_ID = "gateway.request_id"
# The id the caller sent in X-Request-Id, when sane (kept for correlation, never trusted).
CALLER_REQUEST_ID = "gateway.caller_request_id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def sane_token(value: str) -> str | None:
    """A caller-chosen id (a request id, a case number) if it is short and plain, else None."""
    return value if _SANE_ID.fullmatch(value) else None


def refusal(
    status: int,
    message: str,
    code: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A request answered at the edge, in the shape of a GraphQL error."""
    return error_response(status, message, code, headers=headers, **extensions)


def bad_request(message: str, status: int = 400) -> Response:
    """The HTTP request itself is malformed: not JSON, not a GraphQL request, too deep."""
    return refusal(status, message, "BAD_REQUEST")


def http_refusal(status: int, reason: str) -> Response:
    """An HTTP-level refusal (unknown path, method not allowed, …) as a documented error."""
    if status == 404:
        return refusal(404, "Not found.", "NOT_FOUND")
    return bad_request(reason or "Bad request.", status)


async def http_exception(_request: Request, exc: Exception) -> Response:
    """Starlette's exception handler for its own HTTPException (404s and 405s of routing)."""
    assert isinstance(exc, HTTPException)
    return http_refusal(exc.status_code, exc.detail)


# --- client addresses ---------------------------------------------------------------------


def trusted_proxies(proxies: list[str]) -> list[str]:
    """The proxies whose X-Forwarded-For is believed, checked at start-up: addresses or
    networks only, since uvicorn would take anything else (even "*") silently."""
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError("GATEWAY_TRUSTED_PROXIES must list IP addresses or networks") from None
    return proxies


# --- request ids ----------------------------------------------------------------------------


def request_ids(scope: Scope) -> tuple[str, str | None]:
    """(the gateway's id, the caller's id or None), assigned on first use."""
    if REQUEST_ID not in scope:
        given = [value for name, value in scope.get("headers", ()) if name == b"x-request-id"]
        # Two X-Request-Id headers are no id at all, rather than a guess between them.
        caller = sane_token(given[0].decode("latin-1")) if len(given) == 1 else None
        scope[REQUEST_ID] = uuid.uuid4().hex
        scope[CALLER_REQUEST_ID] = caller
    return scope[REQUEST_ID], scope[CALLER_REQUEST_ID]


def rate_limited(retry_after: int) -> Response:
    return refusal(
        429,
        f"Too many requests; try again in {retry_after} s.",
        "RATE_LIMITED",
        headers={"Retry-After": str(retry_after)},
        retryAfter=retry_after,
    )
