"""A SOAP agency as an ASGI app: its WSDL, its operations, security, chaos and call record."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandbox.calls import XROAD_NS, Call, CallLog, xroad_headers
from sandbox.chaos import Chaos, down_response
from sandbox.soap import (
    INTERNAL_ERROR,
    INVALID_INPUT,
    SERVICE_UNAVAILABLE,
    UNKNOWN_OPERATION,
    SoapFault,
    SoapVersion,
    answer,
    fault_answer,
    parse_envelope,
    read_body,
)
from sandbox.wsdl import Wsdl
from sandbox.wsse import WSSE_NS, UsernameTokenGuard

logger = logging.getLogger(__name__)

# An operation takes the request's payload element, already valid against the WSDL's schema,
# and returns the response payload element.
Operation = Callable[[etree._Element], Awaitable[etree._Element]]


class SoapAgency:
    def __init__(
        self,
        name: str,
        wsdl: Wsdl,
        operations: Mapping[str, Operation],
        guard: UsernameTokenGuard,
        *,
        chaos: Chaos | None = None,
        calls: CallLog | None = None,
    ) -> None:
        self.name = name
        self.wsdl = wsdl
        self.namespace = wsdl.target_namespace
        self.operations = dict(operations)
        self.guard = guard
        self.chaos = chaos or Chaos()
        self.calls = calls or CallLog()

    def app(self) -> Starlette:
        routes = [
            Route("/", self.root, methods=["GET", "POST"]),
            Route("/wsdl", self.serve_wsdl, methods=["GET"]),
            *self.chaos.routes(),
            *self.calls.routes(),
        ]
        app = Starlette(routes=routes)
        app.state.agency = self
        return app

    async def root(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.call(request)
        if "wsdl" in request.query_params:
            return await self.serve_wsdl(request)
        operations = ", ".join(sorted(self.operations))
        return PlainTextResponse(
            f"{self.name}: POST SOAP 1.1 or 1.2 here ({operations}); the WSDL is at ?wsdl\n"
        )

    async def serve_wsdl(self, request: Request) -> Response:
        if self.chaos.down:
            return down_response()
        return Response(self.wsdl.served_at(str(request.base_url)), media_type="text/xml")

    async def call(self, request: Request) -> Response:
        call = self.calls.start(self.name, request)
        started = time.perf_counter()
        try:
            response = await self._call(request, call)
        finally:
            call.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        call.status = response.status_code
        return response

    async def _call(self, request: Request, call: Call) -> Response:
        if self.chaos.down:
            call.outcome = "chaos:down"
            return down_response()
        await self.chaos.delay()
        version = SoapVersion.from_content_type(request.headers.get("content-type"))
        request_id = request.headers.get("x-request-id")
        http_headers = {"X-Request-Id": request_id} if request_id else None
        echoed: list[etree._Element] = []
        try:
            envelope = parse_envelope(await read_body(request), understood={WSSE_NS, XROAD_NS})
            version = envelope.version
            call.soap_version = version.label
            call.operation = envelope.operation
            call.soap_headers = xroad_headers(envelope.header)
            if envelope.header is not None:
                # X-Road answers with the correlation blocks it was sent.
                echoed = [
                    copy.deepcopy(block)
                    for block in envelope.header
                    if isinstance(block.tag, str) and etree.QName(block).namespace == XROAD_NS
                ]
            if self.chaos.should_fail():
                call.outcome = "chaos:error"
                raise SoapFault(
                    SERVICE_UNAVAILABLE, "the service is temporarily unavailable", sender=False
                )
            call.username = self.guard.authenticate(envelope.header)
            operation = None
            if envelope.payload_namespace == self.namespace:
                operation = self.operations.get(envelope.operation)
            if operation is None:
                raise SoapFault(UNKNOWN_OPERATION, f"{self.name} has no such operation")
            self.wsdl.validate(envelope.payload)
            payload = await operation(envelope.payload)
        except SoapFault as fault:
            if call.outcome == "pending":
                call.outcome = f"fault:{fault.code}"
            return fault_answer(version, fault, self.namespace, http_headers)
        except Exception:
            logger.exception("%s failed on %s", self.name, call.operation)
            call.outcome = f"fault:{INTERNAL_ERROR}"
            internal = SoapFault(INTERNAL_ERROR, "the agency failed to answer", sender=False)
            return fault_answer(version, internal, self.namespace, http_headers)
        call.outcome = "ok"
        return answer(version, payload, echoed, http_headers)


class Payload:
    """Builds response payload elements in one agency's namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def root(self, name: str) -> etree._Element:
        return etree.Element(f"{{{self.namespace}}}{name}", nsmap={"tns": self.namespace})

    def add(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, f"{{{self.namespace}}}{name}")
        if text is not None:
            child.text = text
        return child


def xs_boolean(value: bool) -> str:
    return "true" if value else "false"


def xs_decimal(value: Decimal) -> str:
    # normalize() drops trailing zeros ("6.0000" -> "6"); "f" keeps it out of exponent form.
    return format(value.normalize(), "f")


def xs_date(value: str) -> dt.date:
    """An xs:date the schema accepted, which may carry a time zone after its ten characters."""
    return dt.date.fromisoformat(value[:10])


def child_text(parent: etree._Element, name: str) -> str | None:
    """The stripped text of `parent`'s child `name` in the parent's own namespace."""
    namespace = etree.QName(parent).namespace
    element = parent.find(f"{{{namespace}}}{name}" if namespace else name)
    if element is None or element.text is None:
        return None
    return element.text.strip()


def required_text(parent: etree._Element, name: str) -> str:
    # The schema has already made sure required fields are there.
    value = child_text(parent, name)
    if value is None:
        raise SoapFault(INVALID_INPUT, f"{name} is required")
    return value
