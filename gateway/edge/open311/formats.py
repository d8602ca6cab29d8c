"""Open311 GeoReport v2 documents as the specification writes them: XML (required) and JSON
(the XML mapped by its "Spark convention"), each from one Python structure.

A document is a root name and its content: a mapping (a `<discovery>` or `<service_definition>`
element; a JSON object) or a list (`<services>` of `<service>`; a JSON array). A list inside a
mapping is an element named for the list holding one element per item (`<attributes>` of
`<attribute>`), and an array in JSON; the items' names are those of the specification
(ITEM_NAMES). Values are strings, numbers, booleans (`true`/`false` in XML) or None (an empty
element in XML, null in JSON); moments are written in the W3C profile of ISO 8601 that the
specification asks for, in UTC, without fractions of a second.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping, Sequence
from typing import Union
from xml.etree import ElementTree

import orjson
from starlette.responses import Response

__all__ = [
    "Document",
    "Format",
    "Value",
    "render",
    "w3_datetime",
]

Value = Union[str, int, float, bool, None, "Mapping[str, Value]", "Sequence[Value]"]

# Each list's items, by the list's name, as the specification names them.
ITEM_NAMES = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "service_requests": "request",
    "errors": "error",
}

# What XML 1.0 cannot hold at all, even escaped: control characters other than tab, line
# feed and carriage return, lone surrogates, U+FFFE and U+FFFF. A citizen's description may
# carry them; a strict parser would refuse the whole document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


class Format(enum.Enum):
    """The formats of every resource, chosen by the address's suffix (`services.xml`)."""

    XML = "xml"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return "text/xml" if self is Format.XML else "application/json"


class Document:
    """What one response holds: the root element's name and its content."""

    __slots__ = ("content", "root")

    def __init__(self, root: str, content: Mapping[str, Value] | Sequence[Value]) -> None:
        self.root = root
        self.content = content

    def to_xml(self) -> bytes:
        element = ElementTree.Element(self.root)
        _fill(element, self.content)
        body: bytes = ElementTree.tostring(element, encoding="utf-8", xml_declaration=False)
        return XML_DECLARATION + body

    def to_json(self) -> bytes:
        return orjson.dumps(_json_value(self.content))


def render(
    document: Document,
    format_: Format,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The response: UTF-8 always, with the charset named, as the specification requires."""
    body = document.to_xml() if format_ is Format.XML else document.to_json()
    return Response(
        body,
        status_code=status_code,
        media_type=f"{format_.media_type}; charset=utf-8",
        headers=dict(headers or {}),
    )


def w3_datetime(moment: dt.datetime) -> str:
    """`2026-11-30T07:12:05Z`: a moment in UTC, whole seconds (a naive one is UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _item_name(list_name: str) -> str:
    return ITEM_NAMES.get(list_name, "item")


def _fill(element: ElementTree.Element, content: Value) -> None:
    if isinstance(content, Mapping):
        for name, value in content.items():
            _fill(ElementTree.SubElement(element, name), value)
    elif isinstance(content, list | tuple):
        item = _item_name(element.tag)
        for value in content:
            _fill(ElementTree.SubElement(element, item), value)
    else:
        text = _text(content)
        if text:
            element.text = text


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _NOT_XML.sub("", str(value))


def _json_value(value: Value) -> object:
    if isinstance(value, Mapping):
        return {name: _json_value(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value
