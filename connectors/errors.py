"""
Errors an agency call can end in, as the gateway and its clients see them:

* AgencyError
  x AgencyUnavailable   AGENCY_UNAVAILABLE: unreachable, 5xx, malformed or oversized answer
    + AgencyCircuitOpen   the breaker is open, so the call failed fast without being made
  x AgencyTimeout       AGENCY_TIMEOUT: no answer within the policy's timeout
  x AgencyRejected      AGENCY_REJECTED: the agency answered with a fault about our request

Connectors map transport and parser exceptions into these at the boundary with
`raise AgencyUnavailable(...) from exc`, so the cause stays in the logs. The
message is built here from the agency and operation names only: it never holds
a URL, XML, credentials or personal data, and is safe to show to a client.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AgencyCircuitOpen",
    "AgencyError",
    "AgencyRejected",
    "AgencyTimeout",
    "AgencyUnavailable",
]


class AgencyError(Exception):
    """Base class: a call to `agency`'s `operation` did not give an answer we can use."""

    code: ClassVar[str] = "AGENCY_ERROR"
    summary: ClassVar[str] = "failed"

    def __init__(self, agency: str, operation: str) -> None:
        self.agency = agency
        self.operation = operation
        super().__init__(f"{agency}.{operation}: {self.summary}")

    def __reduce__(self) -> tuple[type[AgencyError], tuple[object, ...]]:
        return (type(self), (self.agency, self.operation))


class AgencyUnavailable(AgencyError):
    code = "AGENCY_UNAVAILABLE"
    summary = "agency unavailable"


class AgencyCircuitOpen(AgencyUnavailable):
    summary = "agency unavailable (recent calls failed; not retried yet)"


class AgencyTimeout(AgencyError):
    code = "AGENCY_TIMEOUT"
    summary = "agency did not answer in time"


class AgencyRejected(AgencyError):
    """The agency is working and said no to this request (a SOAP fault or an HTTP 4xx).

    `fault_code` is the agency's own machine-readable code, when it gave one.
    """

    code = "AGENCY_REJECTED"
    summary = "agency rejected the request"

    def __init__(self, agency: str, operation: str, fault_code: str | None = None) -> None:
        super().__init__(agency, operation)
        self.fault_code = fault_code

    def __reduce__(self) -> tuple[type[AgencyError], tuple[object, ...]]:
        return (type(self), (self.agency, self.operation, self.fault_code))
