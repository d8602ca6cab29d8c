"""The fast SOAP path: envelopes from a plan compiled once per operation, answers read straight.

zeep stays the authority on the WSDL: it loads and validates it once, and each operation's
plan is compiled from zeep's own view of it (elements, their order and occurrences, and
zeep's simple types, whose `xmlvalue`/`pythonvalue` write and read every value). What the
plan replaces is zeep's per-call work: building an lxml envelope object by object through
its type machinery, serialising it, deserialising the answer into CompoundValues and
`serialize_object`-ing those into plain data. The plan writes the envelope as text and reads
the answer's elements directly into the same plain data (`dict`s in the schema's order,
lists for repeated elements, None for absent ones) that `serialize_object` gave.

What is not the common case goes through zeep exactly as before: every answer is parsed by
zeep's `parse_xml` with the service's settings (no DTD, no entities, no external
references, no huge trees), and an answer that is not a 200 or that holds a SOAP Fault is
handed to zeep's binding, so faults raise the same `zeep.exceptions.Fault`. An operation
whose types the plan does not cover (choices, attributes, mixed or complex simple content,
headers in the answer, several namespaces in one body) is not compiled: `compile_operation`
returns None and the service keeps calling it through zeep.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from zeep.exceptions import DTDForbidden, EntitiesForbidden, XMLSyntaxError
from zeep.loader import ImportResolver
from zeep.xsd import ComplexType, Element, Sequence
from zeep.xsd.types.builtins import Boolean, Date, Decimal, Integer, Long, String
from zeep.xsd.types.simple import AnySimpleType

__all__ = [
    "Envelope",
    "OperationPlan",
    "UsernameTokenText",
    "compile_operation",
    "parse_answer",
]

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
_BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
# Characters XML 1.0 cannot hold: lxml refuses them (ValueError), and so does the plan.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Unsupported(Exception):
    """A type the plan does not cover: the operation stays on zeep's path."""


def _plain(text: str) -> bool:
    """Printable ASCII only (most values): nothing XML cannot hold."""
    return text.isascii() and text.isprintable()


def escape(text: str) -> str:
    """Element text as lxml writes it; ValueError for what XML cannot hold, as lxml's."""
    if not _plain(text) and _NOT_XML.search(text):
        raise ValueError("All strings must be XML compatible")
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def without_illegal(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold."""
    return text if _plain(text) else _NOT_XML.sub("", text)


@dataclass(frozen=True, slots=True)
class _Child:
    name: str
    tag: str  # Clark notation, as lxml names the element
    open: str  # its start tag as written in our envelopes
    close: str  # its end tag
    many: bool
    required: bool
    simple: Any  # a zeep simple type, or None for a complex one
    read: Callable[[str], Any] | None  # its reading of a text; None: the text as it is
    node: _Node | None


@dataclass(frozen=True, slots=True)
class _Node:
    """A complex type that is a plain sequence of elements."""

    children: tuple[_Child, ...]
    by_tag: dict[str, _Child]
    names: frozenset[str]


# zeep's readings that depend on the text alone and give immutable values (a bool, an int, a
# Decimal, a date): remembered for short texts, at most _REMEMBERED of them per element.
_PURE_READINGS = frozenset(
    {
        Boolean.pythonvalue,
        Date.pythonvalue,
        Decimal.pythonvalue,
        Integer.pythonvalue,
        Long.pythonvalue,
    }
)
_REMEMBERED = 4096
_SHORT = 40
_UNSEEN = object()


def _reading(simple: Any) -> Callable[[str], Any] | None:
    """How a simple type's text is read: None for as it is (zeep's String gives it back
    untouched), else zeep's `pythonvalue`, remembered when the text alone decides it."""
    method = type(simple).pythonvalue
    if method is String.pythonvalue:
        return None
    read: Callable[[str], Any] = simple.pythonvalue
    if method not in _PURE_READINGS:
        return read
    seen: dict[str, Any] = {}

    def remembered(text: str) -> Any:
        value = seen.get(text, _UNSEEN)
        if value is _UNSEEN:
            value = read(text)  # an error is raised, never remembered
            if len(text) <= _SHORT:
                if len(seen) >= _REMEMBERED:
                    seen.clear()
                seen[text] = value
        return value

    return remembered


def _compile_type(xsd_type: Any, namespaces: dict[str, str], depth: int = 0) -> _Node:
    if depth > 20 or not isinstance(xsd_type, ComplexType):
        raise _Unsupported("not a complex type")
    if xsd_type.attributes:
        raise _Unsupported("attributes")
    nested = xsd_type.elements_nested
    if len(nested) > 1 or (nested and not isinstance(nested[0][1], Sequence)):
        raise _Unsupported("not one sequence")
    children = []
    for name, element in xsd_type.elements:
        if type(element) is not Element or element.qname is None:
            raise _Unsupported("not a plain element")
        namespace = element.qname.namespace
        if namespace:
            prefix = namespaces.setdefault(namespace, f"ns{len(namespaces)}")
            if prefix != "ns0":
                raise _Unsupported("more than one namespace")
            prefixed = f"{prefix}:{element.qname.localname}"
        else:
            prefixed = element.qname.localname
        max_occurs = element.max_occurs
        many = max_occurs == "unbounded" or (isinstance(max_occurs, int) and max_occurs > 1)
        if isinstance(element.type, AnySimpleType):
            simple, node = element.type, None
        else:
            simple, node = None, _compile_type(element.type, namespaces, depth + 1)
        children.append(
            _Child(
                name=name,
                tag=element.qname.text,
                open=f"<{prefixed}>",
                close=f"</{prefixed}>",
                many=many,
                required=element.min_occurs > 0 and not element.nillable,
                simple=simple,
                read=None if simple is None else _reading(simple),
                node=node,
            )
        )
    return _Node(
        tuple(children),
        {child.tag: child for child in children},
        frozenset(child.name for child in children),
    )


def _render(node: _Node, values: Mapping[str, Any], out: list[str]) -> None:
    if not node.names.issuperset(values):
        raise TypeError(f"unexpected arguments: {sorted(set(values) - node.names)}")
    for child in node.children:
        value = values.get(child.name)
        if value is None:
            if child.required:
                raise ValueError(f"missing element {child.name}")
            continue
        for one in value if child.many and isinstance(value, list | tuple) else (value,):
            if one is None:
                continue
            if child.node is not None:
                if not isinstance(one, Mapping):
                    raise TypeError(f"{child.name} must be a mapping")
                out.append(child.open)
                _render(child.node, one, out)
                out.append(child.close)
            else:
                out += (child.open, escape(str(child.simple.xmlvalue(one))), child.close)


def _read(node: _Node, element: etree._Element) -> dict[str, Any]:
    """One element of a compiled type as plain data; raises on what the type does not hold."""
    found: dict[str, Any] = {}
    by_tag = node.by_tag
    for item in element:
        tag = item.tag
        if not isinstance(tag, str):  # a processing instruction: zeep refuses it too
            raise ValueError("not an element")
        child = by_tag.get(tag)
        if child is None:
            raise ValueError(f"unexpected element {tag}")
        value: Any
        # keys() first: most elements have no attribute, and it costs a quarter of a get().
        if item.keys() and item.get(_XSI_NIL) in ("true", "1"):
            value = None
        elif child.node is not None:
            value = _read(child.node, item)
        else:
            value = item.text
            if value is not None and child.read is not None:
                value = child.read(value)
        if child.many:
            found.setdefault(child.name, []).append(value)
        elif child.name in found:
            raise ValueError(f"{child.name} repeated")
        else:
            found[child.name] = value
    return {
        child.name: found.get(child.name, [] if child.many else None) for child in node.children
    }


@dataclass(frozen=True, slots=True)
class OperationPlan:
    """One operation: how to write its request body and read its answer's body."""

    name: str
    request_open: str  # the body's element, declaring its namespace
    request_close: str
    request: _Node
    response_tag: str
    response: _Node
    unwrap: str | None  # zeep returns the answer's only child rather than the answer
    http_headers: dict[str, str]
    raw_headers: list[tuple[bytes, bytes]]  # http_headers, encoded once

    def body(self, arguments: Mapping[str, Any]) -> str:
        out = [self.request_open]
        _render(self.request, arguments, out)
        out.append(self.request_close)
        return "".join(out)

    def answer(self, body: etree._Element | None) -> Any:
        """The answer's plain data from the envelope's Body, as zeep + serialize_object gave."""
        if body is None:
            raise ValueError("no Body")
        elements = [item for item in body if isinstance(item.tag, str)]
        if len(elements) != 1 or elements[0].tag != self.response_tag:
            raise ValueError("not the answer this operation gives")
        data = _read(self.response, elements[0])
        return data[self.unwrap] if self.unwrap is not None else data


def _body_element(message: Any) -> Element:
    body = message.body
    if body is None or type(body) is not Element:
        raise _Unsupported("no single body element")
    element: Element = body
    return element


def compile_operation(
    binding: Any, name: str, http_headers: dict[str, str]
) -> OperationPlan | None:
    """The plan of `binding`'s operation `name`, or None when zeep must keep it."""
    operation = binding._operations[name]
    if operation.style != "document":
        return None
    try:
        request = _body_element(operation.input)
        response = _body_element(operation.output)
        header = operation.output.header
        if header is not None and header.type.elements:
            raise _Unsupported("headers in the answer")
        if response.type.attributes:
            raise _Unsupported("attributes")
        request_node = _compile_type(request.type, {request.qname.namespace: "ns0"})
        response_node = _compile_type(response.type, {response.qname.namespace: "ns0"})
    except _Unsupported:
        return None
    namespace = request.qname.namespace
    unwrap = None
    if len(response_node.children) == 1:
        unwrap = response_node.children[0].name
    local = request.qname.localname
    return OperationPlan(
        name=name,
        request_open=f'<ns0:{local} xmlns:ns0="{namespace}">',
        request_close=f"</ns0:{local}>",
        request=request_node,
        response_tag=response.qname.text,
        response=response_node,
        unwrap=unwrap,
        http_headers=http_headers,
        raw_headers=[(k.encode("ascii"), v.encode("ascii")) for k, v in http_headers.items()],
    )


_parsers = threading.local()


def _parser(settings: Any, transport: Any) -> etree.XMLParser:
    """zeep's parser for answers (`zeep.loader.parse_xml`'s), built once per thread: lxml's
    parsers may be reused one document after another, not shared between threads."""
    key = (id(settings), id(transport))
    found: dict[tuple[int, int], tuple[Any, Any, etree.XMLParser]] = (
        getattr(_parsers, "by_key", None) or {}
    )
    entry = found.get(key)
    if entry is None or entry[0] is not settings or entry[1] is not transport:
        parser = etree.XMLParser(
            remove_comments=True,
            resolve_entities=False,
            recover=not settings.strict,
            huge_tree=settings.xml_huge_tree,
        )
        parser.resolvers.add(ImportResolver(transport, settings))  # type: ignore[no-untyped-call]
        entry = (settings, transport, parser)
        found[key] = entry
        _parsers.by_key = found
    return entry[2]


def parse_answer(content: bytes, settings: Any, transport: Any) -> etree._Element:
    """An answer parsed as `zeep.loader.parse_xml` parses it, with the same refusals (a DTD,
    entities, external references, huge trees: zeep's exceptions), on a parser built once."""
    parser = _parser(settings, transport)
    try:
        document = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise XMLSyntaxError(  # type: ignore[no-untyped-call]
            f"Invalid XML content received ({exc.msg})", content=content
        ) from exc
    docinfo = document.getroottree().docinfo
    if docinfo.doctype and settings.forbid_dtd:
        raise DTDForbidden(  # type: ignore[no-untyped-call]
            docinfo.doctype, docinfo.system_url, docinfo.public_id
        )
    if settings.forbid_entities:
        for dtd in docinfo.internalDTD, docinfo.externalDTD:
            if dtd is None:
                continue
            for entity in dtd.iterentities():
                raise EntitiesForbidden(entity.name, entity.content)  # type: ignore[no-untyped-call]
    return document


def _fresh_nonce() -> bytes:
    return os.urandom(16)


class UsernameTokenText:
    """A WS-Security UsernameToken with a PasswordDigest, written as zeep's UsernameToken
    writes it: a fresh 16-byte nonce and the time of creation (to the second, UTC) in each.
    `clock` gives the time in seconds since the epoch."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], bytes] = _fresh_nonce,
    ) -> None:
        self._password = password.encode()
        self._clock = clock
        self._nonce = nonce
        self._created: tuple[int, str] | None = None  # the last second written, as text
        self._open = (
            f'<wsse:Security xmlns:wsse="{_WSSE_NS}"><wsse:UsernameToken>'
            f"<wsse:Username>{escape(username)}</wsse:Username>"
            f'<wsse:Password Type="{_PROFILE}#PasswordDigest">'
        )

    def __repr__(self) -> str:
        return "UsernameTokenText()"

    def _created_text(self) -> str:
        second = math.floor(self._clock())
        created = self._created
        if created is None or created[0] != second:
            moment = dt.datetime.fromtimestamp(second, dt.UTC).replace(tzinfo=None)
            created = (second, moment.isoformat() + "+00:00")
            self._created = created
        return created[1]

    def header(self) -> str:
        nonce = self._nonce()
        created = self._created_text()
        digest = hashlib.sha1(nonce + created.encode() + self._password).digest()
        return (
            f"{self._open}{binascii.b2a_base64(digest, newline=False).decode()}"
            f'</wsse:Password><wsse:Nonce EncodingType="{_BASE64}#Base64Binary">'
            f"{binascii.b2a_base64(nonce, newline=False).decode()}</wsse:Nonce>"
            f'<wsu:Created xmlns:wsu="{_WSU_NS}">{created}</wsu:Created>'
            "</wsse:UsernameToken></wsse:Security>"
        )


class Envelope:
    """A SOAP envelope's text around header blocks and a body, for one SOAP version."""

    def __init__(self, envelope_ns: str) -> None:
        self._open = (
            "<?xml version='1.0' encoding='utf-8'?>\n"
            f'<soap-env:Envelope xmlns:soap-env="{envelope_ns}">'
        )

    def build(self, headers: list[str], body: str) -> bytes:
        header = f"<soap-env:Header>{''.join(headers)}</soap-env:Header>" if headers else ""
        return (
            f"{self._open}{header}<soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"
        ).encode()
