"""The agencies' WSDLs: one copy, vendored for the gateway's connectors and served from here."""

from __future__ import annotations

import copy
import re
from pathlib import Path

from lxml import etree

from sandbox.soap import INVALID_INPUT, SoapFault, safe_parser

WSDL_DIR = Path(__file__).resolve().parent.parent / "connectors" / "soap" / "wsdl"

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_ADDRESS_NAMESPACES = (
    "http://schemas.xmlsoap.org/wsdl/soap/",
    "http://schemas.xmlsoap.org/wsdl/soap12/",
)

# libxml2 quotes the offending value in its messages; a national code is personal data.
_QUOTED_VALUE = re.compile(r"'[^']*'(?= is not)|(?<=The value )'[^']*'")


class Wsdl:
    """One agency's WSDL and the schema of its messages, compiled for validating requests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = etree.parse(str(path), safe_parser())
        root = self.tree.getroot()
        self.target_namespace = root.get("targetNamespace", "")
        schema = root.find(
            f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema[@targetNamespace='{self.target_namespace}']"
        )
        if schema is None:
            raise ValueError(f"{path.name} has no schema for {self.target_namespace}")
        # The embedded schema declares every prefix it uses, so it stands alone.
        self.schema = etree.XMLSchema(etree.ElementTree(copy.deepcopy(schema)))

    def served_at(self, address: str) -> bytes:
        """The WSDL with every port's address pointing at `address`, as a real server serves it."""
        tree = copy.deepcopy(self.tree)
        for namespace in _ADDRESS_NAMESPACES:
            for element in tree.iter(f"{{{namespace}}}address"):
                element.set("location", address)
        return etree.tostring(tree, xml_declaration=True, encoding="utf-8")

    def validate(self, payload: etree._Element) -> None:
        """Raise an INVALID_INPUT fault when the payload breaks the schema."""
        if self.schema.validate(payload):
            return
        error = self.schema.error_log.last_error
        message = _QUOTED_VALUE.sub("the value", error.message) if error else "invalid request"
        raise SoapFault(INVALID_INPUT, f"the request does not match the schema: {message}")


def load(name: str) -> Wsdl:
    """The WSDL called `name` (land_registry, civil_registry, bank)."""
    return Wsdl(WSDL_DIR / f"{name}.wsdl")
