"""SOAP 1.1 and 1.2 envelopes for the simulated agencies: safe parsing, answers and faults."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"

# Generous for 200 plates in GetDeeds (about 40 KB), small enough that no caller can tie the
# process up with one request.
MAX_ENVELOPE_BYTES = 1_048_576

# The codes a fault's detail carries (tns:ServiceFault/tns:code); the WSDLs list them too.
MALFORMED_REQUEST = "MALFORMED_REQUEST"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
VERSION_MISMATCH = "VERSION_MISMATCH"
MUST_UNDERSTAND = "MUST_UNDERSTAND"
UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
INVALID_INPUT = "INVALID_INPUT"
NOT_FOUND = "NOT_FOUND"
AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
MESSAGE_EXPIRED = "MESSAGE_EXPIRED"
NONCE_REPLAYED = "NONCE_REPLAYED"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
INTERNAL_ERROR = "INTERNAL_ERROR"


class SoapVersion(enum.Enum):
    SOAP11 = SOAP11_NS
    SOAP12 = SOAP12_NS

    @property
    def namespace(self) -> str:
        return self.value

    @property
    def content_type(self) -> str:
        if self is SoapVersion.SOAP11:
            return "text/xml; charset=utf-8"
        return "application/soap+xml; charset=utf-8"

    @property
    def label(self) -> str:
        return "1.1" if self is SoapVersion.SOAP11 else "1.2"

    @classmethod
    def from_content_type(cls, content_type: str | None) -> SoapVersion:
        """The version a request claims before its envelope is read (for early faults)."""
        if content_type and "application/soap+xml" in content_type.lower():
            return cls.SOAP12
        return cls.SOAP11


class SoapFault(Exception):
    """An error answered as a SOAP fault; `sender` blames the caller (Client/Sender)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        sender: bool = True,
        soap_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sender = sender
        # Overrides Client/Server for the two SOAP-level codes: VersionMismatch, MustUnderstand.
        self.soap_code = soap_code


@dataclass(frozen=True)
class Envelope:
    version: SoapVersion
    header: etree._Element | None
    payload: etree._Element

    @property
    def operation(self) -> str:
        return etree.QName(self.payload).localname

    @property
    def payload_namespace(self) -> str | None:
        return etree.QName(self.payload).namespace


def safe_parser() -> etree.XMLParser:
    """A parser that never expands entities, loads a DTD or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


async def read_body(request: Request, limit: int = MAX_ENVELOPE_BYTES) -> bytes:
    """The request body, refused as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise SoapFault(REQUEST_TOO_LARGE, f"the request exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise SoapFault(REQUEST_TOO_LARGE, f"the request exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_envelope(body: bytes, understood: Iterable[str] = ()) -> Envelope:
    """Parse a request envelope; `understood` names the header namespaces the agency handles."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise SoapFault(REQUEST_TOO_LARGE, f"the request exceeds {MAX_ENVELOPE_BYTES} bytes")
    if not body.strip():
        raise SoapFault(MALFORMED_REQUEST, "the request body is empty")
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault(MALFORMED_REQUEST, "the request is not well-formed XML") from exc
    # SOAP forbids a DTD outright; refusing it also ends entity tricks that survived parsing.
    if root.getroottree().docinfo.doctype:
        raise SoapFault(MALFORMED_REQUEST, "a SOAP message must not contain a DTD")
    name = etree.QName(root)
    if name.localname != "Envelope":
        raise SoapFault(MALFORMED_REQUEST, "the document is not a SOAP envelope")
    if name.namespace not in (SOAP11_NS, SOAP12_NS):
        raise SoapFault(
            VERSION_MISMATCH,
            "the envelope is neither SOAP 1.1 nor SOAP 1.2",
            soap_code="VersionMismatch",
        )
    version = SoapVersion(name.namespace)
    ns = version.namespace
    header = root.find(f"{{{ns}}}Header")
    body_element = root.find(f"{{{ns}}}Body")
    if body_element is None:
        raise SoapFault(MALFORMED_REQUEST, "the envelope has no Body")
    payloads = [child for child in body_element if isinstance(child.tag, str)]
    if len(payloads) != 1:
        raise SoapFault(MALFORMED_REQUEST, "the Body must hold exactly one element")
    if header is not None:
        _check_must_understand(header, version, set(understood))
    return Envelope(version=version, header=header, payload=payloads[0])


def _check_must_understand(
    header: etree._Element, version: SoapVersion, understood: set[str]
) -> None:
    for block in header:
        if not isinstance(block.tag, str):
            continue
        flag = block.get(f"{{{version.namespace}}}mustUnderstand", "0").strip()
        if flag in ("1", "true") and etree.QName(block).namespace not in understood:
            raise SoapFault(
                MUST_UNDERSTAND,
                f"header {etree.QName(block).localname} is not understood",
                soap_code="MustUnderstand",
            )


def envelope_bytes(
    version: SoapVersion,
    payload: etree._Element,
    headers: Iterable[etree._Element] = (),
) -> bytes:
    ns = version.namespace
    root = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    header_blocks = list(headers)
    if header_blocks:
        header = etree.SubElement(root, f"{{{ns}}}Header")
        header.extend(header_blocks)
    body = etree.SubElement(root, f"{{{ns}}}Body")
    body.append(payload)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def answer(
    version: SoapVersion,
    payload: etree._Element,
    headers: Iterable[etree._Element] = (),
    http_headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        envelope_bytes(version, payload, headers),
        status_code=200,
        media_type=version.content_type,
        headers=http_headers,
    )


def fault_element(version: SoapVersion, fault: SoapFault, namespace: str) -> etree._Element:
    """A Fault for the Body; the detail is the agency's tns:ServiceFault(code, message)."""
    ns = version.namespace
    detail = etree.Element(f"{{{namespace}}}ServiceFault", nsmap={"tns": namespace})
    etree.SubElement(detail, f"{{{namespace}}}code").text = fault.code
    etree.SubElement(detail, f"{{{namespace}}}message").text = fault.message
    element = etree.Element(f"{{{ns}}}Fault", nsmap={"soap": ns})
    if version is SoapVersion.SOAP11:
        default = "Client" if fault.sender else "Server"
        etree.SubElement(element, "faultcode").text = f"soap:{fault.soap_code or default}"
        etree.SubElement(element, "faultstring").text = fault.message
        etree.SubElement(element, "detail").append(detail)
    else:
        default = "Sender" if fault.sender else "Receiver"
        code = etree.SubElement(element, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = f"soap:{fault.soap_code or default}"
        reason = etree.SubElement(element, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = fault.message
        etree.SubElement(element, f"{{{ns}}}Detail").append(detail)
    return element


def fault_status(version: SoapVersion, fault: SoapFault) -> int:
    # SOAP 1.1 answers every fault with 500; SOAP 1.2's HTTP binding gives a Sender fault 400.
    if version is SoapVersion.SOAP12 and fault.sender and fault.soap_code is None:
        return 400
    return 500


def fault_answer(
    version: SoapVersion,
    fault: SoapFault,
    namespace: str,
    http_headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        envelope_bytes(version, fault_element(version, fault, namespace)),
        status_code=fault_status(version, fault),
        media_type=version.content_type,
        headers=http_headers,
    )


@dataclass(frozen=True)
class FaultReport:
    """What a fault says, read back by a client: its SOAP code and the agency's detail."""

    version: SoapVersion
    soap_code: str
    code: str | None
    message: str


def read_fault(content: bytes) -> FaultReport | None:
    """The fault in a response envelope, or None when it holds none (for clients and tests)."""
    try:
        root = etree.fromstring(content, safe_parser())
    except etree.XMLSyntaxError:
        return None
    namespace = etree.QName(root).namespace
    if namespace not in (SOAP11_NS, SOAP12_NS):
        return None
    version = SoapVersion(namespace)
    fault = root.find(f"{{{namespace}}}Body/{{{namespace}}}Fault")
    if fault is None:
        return None
    if version is SoapVersion.SOAP11:
        soap_code = fault.findtext("faultcode", "")
        message = fault.findtext("faultstring", "")
    else:
        soap_code = fault.findtext(f"{{{namespace}}}Code/{{{namespace}}}Value", "")
        message = fault.findtext(f"{{{namespace}}}Reason/{{{namespace}}}Text", "")
    code = None
    for element in fault.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "ServiceFault":
            code = element.findtext(f"{{{etree.QName(element).namespace}}}code")
    return FaultReport(version, soap_code.strip(), code, message.strip())
