"""Who and what an agency call is for, carried with it the way X-Road does.

The gateway sets `current` for each request (see `correlated`); the shared HTTP transport
sends it as X-Request-Id / X-Road-* headers, and SOAP connectors also as xrd: header blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from connectors.resilience import current_request_id

__all__ = [
    "HEADER_CLIENT",
    "HEADER_ISSUE",
    "HEADER_REQUEST_ID",
    "HEADER_USER_ID",
    "Correlation",
    "correlated",
    "current",
    "effective",
]

HEADER_REQUEST_ID = "X-Request-Id"
HEADER_CLIENT = "X-Road-Client"
HEADER_USER_ID = "X-Road-UserId"
HEADER_ISSUE = "X-Road-Issue"


@dataclass(frozen=True, slots=True)
class Correlation:
    """`client` is the calling principal (a partner, the municipality's own app), `user_id` the
    person or operator behind it, `issue` the case or inquiry the call serves."""

    request_id: str | None = None
    client: str | None = None
    user_id: str | None = None
    issue: str | None = None

    def http_headers(self) -> dict[str, str]:
        pairs = (
            (HEADER_REQUEST_ID, self.request_id),
            (HEADER_CLIENT, self.client),
            (HEADER_USER_ID, self.user_id),
            (HEADER_ISSUE, self.issue),
        )
        return {name: value for name, value in pairs if value}


current: ContextVar[Correlation | None] = ContextVar("connectors.correlation.current", default=None)


def effective() -> Correlation:
    """The correlation of the running request; the request id falls back to the guard's."""
    found = current.get()
    request_id = current_request_id.get()
    if found is None:
        return Correlation(request_id=request_id)
    if found.request_id is None and request_id is not None:
        return Correlation(request_id, found.client, found.user_id, found.issue)
    return found


@contextmanager
def correlated(correlation: Correlation) -> Iterator[Correlation]:
    """Run the block's agency calls on behalf of `correlation`."""
    token = current.set(correlation)
    try:
        yield correlation
    finally:
        current.reset(token)
