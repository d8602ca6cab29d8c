"""The SOAP plumbing the agency connectors share: one vendored WSDL bound to one endpoint.

A `SoapService` loads its WSDL once, synchronously, from the file beside this module (never
over the network), then calls operations through zeep over the app's shared httpx client.
Every call carries a WS-Security UsernameToken (PasswordDigest) when credentials are given
and the X-Road correlation blocks the WSDLs declare; every failure leaves as a
`connectors.errors` exception, and answers leave as plain data (`serialize_object`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar

import httpx
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsse.username import UsernameToken

from connectors import correlation
from connectors.errors import AgencyRejected, AgencyTimeout, AgencyUnavailable
from connectors.resilience import AgencyGuard
from connectors.soap.fast import (
    Envelope,
    OperationPlan,
    UsernameTokenText,
    compile_operation,
    parse_answer,
    without_illegal,
)
from connectors.soap.fast import escape as xml_escape
from connectors.transport import Answer, post

__all__ = ["WSDL_DIR", "XROAD_NS", "SoapService"]

WSDL_DIR = Path(__file__).resolve().parent / "wsdl"

#: The namespace of the X-Road-style correlation header blocks the WSDLs declare.
XROAD_NS = "urn:ir:gsb:xroad:v1"

logger = logging.getLogger(__name__)

# A fault code is shown to clients: keep only what looks like a code, never free text.
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")
# SOAP 1.1 Server and SOAP 1.2 Receiver: the agency itself failed, not our request.
_AGENCY_FAULTS = frozenset({"Server", "Receiver"})
_XML_MEDIA_TYPES = ("text/xml", "application/soap+xml", "application/xml")
# The X-Road header blocks' tags as the fast path writes them; characters XML 1.0 cannot hold
# are dropped from their values rather than failing the call.
_XROAD_TAGS = {
    name: (f'<xrd:{name} xmlns:xrd="{XROAD_NS}">', f"</xrd:{name}>")
    for name in ("client", "service", "id", "userId", "issue")
}


def _settings() -> zeep.Settings:
    return zeep.Settings(
        strict=True,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
        xml_huge_tree=False,
    )


class _Exchange:
    """Whether this call's request went out and an answer came back, to tell who failed."""

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = False


_exchange: ContextVar[_Exchange | None] = ContextVar("connectors.soap.exchange", default=None)


class _HttpHeaders:
    """What zeep's bindings set their HTTP headers on."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _NotSoap(Exception):
    """An HTTP error answered with something other than a SOAP envelope (a proxy's HTML page)."""


class _Transport(AsyncTransport):
    """zeep's AsyncTransport over the shared client, without its side effects.

    AsyncTransport.__init__ replaces the client's headers and builds clients of its own, so it
    is not called. WSDLs are vendored: nothing is ever fetched to load one. Messages are not
    logged, since they hold personal data and the WS-Security token.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._close_session = False
        self.cache = None
        self.load_timeout = None
        self.operation_timeout = None
        self.client = client
        self.wsdl_client = None
        self.logger = logger

    def _load_remote_data(self, url: str) -> bytes:
        raise zeep.exceptions.ExternalReferenceForbidden(url)  # type: ignore[no-untyped-call]

    async def post(self, address: str, message: bytes, headers: dict[str, str]) -> httpx.Response:
        response = await self.client.post(address, content=message, headers=headers)
        exchange = _exchange.get()
        if exchange is not None:
            exchange.answered = True
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code >= 400 and media_type not in _XML_MEDIA_TYPES:
            raise _NotSoap(response.status_code)
        return response

    async def post_fast(
        self, url: httpx.URL, message: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Answer:
        """`post` for the fast path: the answer read whole, without httpx's request and
        response objects or the client's auth, redirect and cookie handling
        (connectors.transport.post)."""
        answer = await post(self.client, url, headers, message)
        exchange = _exchange.get()
        if exchange is not None:
            exchange.answered = True
        media_type = answer.header("Content-Type").split(";")[0].strip().lower()
        if answer.status_code >= 400 and media_type not in _XML_MEDIA_TYPES:
            raise _NotSoap(answer.status_code)
        return answer

    async def get(self, address: str, params: Any, headers: Any) -> Any:
        raise zeep.exceptions.ExternalReferenceForbidden(address)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        """The shared client belongs to the app, which closes it."""


def _fault_codes(fault: zeep.exceptions.Fault) -> tuple[str | None, str | None]:
    """The SOAP fault code's local name ("Client", "Receiver") and the agency's own code."""
    soap_code = None
    if isinstance(fault.code, str):
        soap_code = fault.code.rpartition(":")[2].split(".")[0].strip() or None
    agency_code = None
    detail = fault.detail
    if isinstance(detail, etree._Element):
        for element in detail.iter():
            if isinstance(element.tag, str) and etree.QName(element).localname == "ServiceFault":
                for child in element:
                    if isinstance(child.tag, str) and etree.QName(child).localname == "code":
                        agency_code = (child.text or "").strip() or None
                break
    return soap_code, agency_code


def _safe_code(code: str | None) -> str | None:
    return code if code is not None and _CODE.fullmatch(code) else None


class SoapService:
    """One agency's SOAP service: `await service.call("GetDeed", section=…)` → plain data.

    `binding` is the local name of one of the WSDL's bindings (it picks SOAP 1.1 or 1.2);
    `address` is the endpoint to call, whatever the WSDL says. With `fast` (the default),
    operations whose types `connectors.soap.fast` covers are called through their compiled
    plans (text envelopes, answers read straight into plain data); the others, and every
    fault and error answer, through zeep.
    """

    def __init__(
        self,
        agency: str,
        *,
        wsdl: str | Path,
        binding: str,
        http: httpx.AsyncClient,
        address: str,
        username: str | None = None,
        password: str | None = None,
        fast: bool = True,
    ) -> None:
        self.agency = agency
        self.address = address
        self._url = httpx.URL(address)
        token = None
        self._token_text = None
        if username is not None and password is not None:
            token = UsernameToken(username, password, use_digest=True)  # type: ignore[no-untyped-call]
            self._token_text = UsernameTokenText(username, password)
        path = Path(wsdl) if Path(wsdl).is_absolute() else WSDL_DIR / wsdl
        transport = _Transport(http)
        self._transport = transport
        self._client = zeep.AsyncClient(  # type: ignore[no-untyped-call]
            str(path), transport=transport, settings=_settings(), wsse=token
        )
        bindings = {etree.QName(name).localname: found for name, found in self._bindings()}
        if binding not in bindings:
            raise ValueError(f"{path.name} has no binding {binding}")
        # AsyncClient.create_service gives a synchronous proxy in zeep 4.3: build the async one.
        chosen = bindings[binding]
        self._proxy = AsyncServiceProxy(  # type: ignore[no-untyped-call]
            self._client, chosen, address=address
        )
        self.xroad = self._declares_xroad()
        self._binding = chosen
        envelope_ns = chosen.nsmap["soap-env"]
        self._envelope = Envelope(envelope_ns)
        self._body_tag = f"{{{envelope_ns}}}Body"
        self._fault_tag = f"{{{envelope_ns}}}Fault"
        self._plans: dict[str, OperationPlan] = {}
        if fast:
            for name, operation in chosen._operations.items():
                headers = _HttpHeaders(
                    {"SOAPAction": f'"{operation.soapaction}"' if operation.soapaction else '""'}
                )
                chosen._set_http_headers(headers, operation)
                plan = compile_operation(chosen, name, headers.headers)
                if plan is not None:
                    self._plans[name] = plan

    @property
    def fast_operations(self) -> frozenset[str]:
        """The operations called through compiled plans rather than zeep's proxy."""
        return frozenset(self._plans)

    def __repr__(self) -> str:
        return f"SoapService({self.agency!r})"

    def _bindings(self) -> list[tuple[str, Any]]:
        return list(self._client.wsdl.bindings.items())

    def _declares_xroad(self) -> bool:
        try:
            self._client.get_element(f"{{{XROAD_NS}}}client")  # type: ignore[no-untyped-call]
        except zeep.exceptions.LookupError:
            return False
        return True

    def max_occurs(self, element: str, child: str) -> int | None:
        """How many `child` elements the WSDL lets one `element` hold; None for unbounded."""
        found = self._client.get_element(element)  # type: ignore[no-untyped-call]
        for name, particle in found.type.elements:
            if name == child:
                limit = particle.max_occurs
                return limit if isinstance(limit, int) else None
        raise KeyError(child)

    def _soap_headers(self, operation: str) -> list[etree._Element]:
        if not self.xroad:
            return []
        found = correlation.effective()
        values = {
            "client": found.client,
            "service": f"{self.agency}.{operation}",
            "id": found.request_id,
            "userId": found.user_id,
            "issue": found.issue,
        }
        blocks = []
        for name, value in values.items():
            if value:
                block = etree.Element(f"{{{XROAD_NS}}}{name}", nsmap={"xrd": XROAD_NS})
                block.text = without_illegal(value)
                blocks.append(block)
        return blocks

    def _soap_header_text(self, operation: str) -> list[str]:
        """The same header blocks as _soap_headers (and the token), as text."""
        blocks = []
        if self.xroad:
            found = correlation.effective()
            values = {
                "client": found.client,
                "service": f"{self.agency}.{operation}",
                "id": found.request_id,
                "userId": found.user_id,
                "issue": found.issue,
            }
            for name, value in values.items():
                if value:
                    open_tag, close_tag = _XROAD_TAGS[name]
                    blocks.append(open_tag + xml_escape(without_illegal(value)) + close_tag)
        if self._token_text is not None:
            blocks.append(self._token_text.header())
        return blocks

    async def _fast_call(
        self, plan: OperationPlan, arguments: dict[str, Any], exchange: _Exchange
    ) -> Any:
        try:
            message = self._envelope.build(self._soap_header_text(plan.name), plan.body(arguments))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{self.agency}.{plan.name}: the request does not fit the WSDL"
            ) from exc
        answer = await self._transport.post_fast(self._url, message, plan.raw_headers)
        exchange.answered = True
        content = answer.content
        media_type = answer.header("Content-Type", "text/xml").split(";")[0].strip()
        client = self._client
        binding = self._binding
        operation = binding._operations[plan.name]
        if answer.status_code != 200 or not content or media_type == "multipart/related":
            # Faults, empty and multipart answers: zeep's own reading, as on its path.
            response = self._transport.new_response(  # type: ignore[no-untyped-call]
                answer.response(self._url)
            )
            reply = binding.process_reply(client, operation, response)
            return serialize_object(reply)  # type: ignore[no-untyped-call]
        # zeep's parser settings and refusals (no DTD, no entities, no external references),
        # with the parser built once (connectors/soap/fast.py).
        document = parse_answer(content, client.settings, self._transport)
        # document.find("soap-env:Body") and find("soap-env:Body/soap-env:Fault"), without
        # compiling the paths each time: the first Body, and a Fault in any Body.
        body = None
        for candidate in document.iterchildren(self._body_tag):
            if next(candidate.iterchildren(self._fault_tag), None) is not None:
                binding.process_error(document, operation)
            if body is None:
                body = candidate
        return plan.answer(body)

    async def call(
        self, operation: str, *, not_found: Collection[str] = (), **arguments: Any
    ) -> Any:
        """The operation's answer as plain data; None when the agency faults with a code in
        `not_found`. Raises AgencyRejected, AgencyUnavailable or AgencyTimeout."""
        agency = self.agency
        exchange = _Exchange()
        token = _exchange.set(exchange)
        plan = self._plans.get(operation)
        try:
            if plan is not None:
                result = await self._fast_call(plan, arguments, exchange)
            else:
                result = serialize_object(  # type: ignore[no-untyped-call]
                    await self._proxy[operation](
                        **arguments, _soapheaders=self._soap_headers(operation)
                    )
                )
        except zeep.exceptions.Fault as exc:
            soap_code, agency_code = _fault_codes(exc)
            if soap_code is None or soap_code in _AGENCY_FAULTS:
                raise AgencyUnavailable(agency, operation) from exc
            if agency_code is not None and agency_code in not_found:
                return None
            raise AgencyRejected(agency, operation, _safe_code(agency_code or soap_code)) from exc
        except httpx.TimeoutException as exc:
            raise AgencyTimeout(agency, operation) from exc
        except (httpx.TransportError, _NotSoap) as exc:
            raise AgencyUnavailable(agency, operation) from exc
        except Exception as exc:
            if not exchange.answered:
                # zeep could not build our request from these arguments: a bug on our side.
                raise ValueError(
                    f"{agency}.{operation}: the request does not fit the WSDL"
                ) from exc
            # Whatever zeep trips over in an answer (bad XML, a DTD or entities, a body that
            # breaks the schema) is the answer's fault.
            raise AgencyUnavailable(agency, operation) from exc
        finally:
            _exchange.reset(token)
        if result is None:
            # Every operation in our WSDLs answers with a body: an empty one is no answer.
            raise AgencyUnavailable(agency, operation)
        return result


class SoapConnector:
    """One agency's connector: its SOAP service, called through its guard.

    A subclass names its agency, vendored WSDL and binding, and adds typed methods.
    """

    agency: ClassVar[str]
    wsdl: ClassVar[str]
    binding: ClassVar[str]

    def __init__(
        self,
        http: httpx.AsyncClient,
        guard: AgencyGuard,
        *,
        address: str,
        username: str | None = None,
        password: str | None = None,
        binding: str | None = None,
        fast: bool = True,
    ) -> None:
        self.guard = guard
        self._service = SoapService(
            self.agency,
            wsdl=self.wsdl,
            binding=binding or self.binding,
            http=http,
            address=address,
            username=username,
            password=password,
            fast=fast,
        )

    def __repr__(self) -> str:
        # Never the address or credentials.
        return f"{type(self).__name__}()"
