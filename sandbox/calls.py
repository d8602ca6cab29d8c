"""The bounded record of the calls an agency received, so tests can prove what the gateway sent."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# X-Road-style correlation header blocks, declared as optional headers in every WSDL.
XROAD_NS = "urn:ir:gsb:xroad:v1"
XROAD_FIELDS = ("client", "service", "id", "userId", "issue")
# The HTTP headers that carry the same correlation for REST calls (and for SOAP, alongside).
CORRELATION_HEADERS = ("x-request-id", "x-road-client", "x-road-userid", "x-road-issue")
# Never recorded: whatever could carry a secret.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
)
CAPACITY = 500


@dataclass
class Call:
    agency: str
    method: str
    path: str
    http_headers: dict[str, str]
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    operation: str | None = None
    soap_version: str | None = None
    soap_headers: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    outcome: str = "pending"
    status: int | None = None
    duration_ms: float | None = None

    @property
    def correlation(self) -> dict[str, str]:
        return {
            name: self.http_headers[name]
            for name in CORRELATION_HEADERS
            if name in self.http_headers
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "agency": self.agency,
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "soapVersion": self.soap_version,
            "httpHeaders": self.http_headers,
            "correlation": self.correlation,
            "soapHeaders": self.soap_headers,
            "username": self.username,
            "outcome": self.outcome,
            "status": self.status,
            "durationMs": self.duration_ms,
        }


def recordable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's HTTP headers, lower-cased, without any that could carry a secret."""
    return {
        name.lower(): value for name, value in headers.items() if name.lower() not in SECRET_HEADERS
    }


def xroad_headers(header: etree._Element | None) -> dict[str, str]:
    """The X-Road-style correlation blocks of a SOAP Header, by field name."""
    found: dict[str, str] = {}
    if header is None:
        return found
    for name in XROAD_FIELDS:
        element = header.find(f"{{{XROAD_NS}}}{name}")
        if element is not None:
            found[name] = (element.text or "").strip()
    return found


class CallLog:
    """The last CAPACITY calls, oldest first; served at GET /_calls, emptied by DELETE."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._calls: collections.deque[Call] = collections.deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._calls)

    def start(self, agency: str, request: Request) -> Call:
        call = Call(
            agency=agency,
            method=request.method,
            path=request.url.path,
            http_headers=recordable_headers(request.headers),
        )
        self._calls.append(call)
        return call

    def calls(self) -> list[Call]:
        return list(self._calls)

    def clear(self) -> None:
        self._calls.clear()

    async def endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear()
            return Response(status_code=204)
        return JSONResponse({"calls": [call.as_json() for call in self._calls]})

    def routes(self) -> list[Route]:
        return [Route("/_calls", self.endpoint, methods=["GET", "DELETE"])]
