"""The vendored WSDLs load in zeep with the operations the connectors rely on."""

from __future__ import annotations

import pytest
import zeep
from lxml import etree

from sandbox.soap import INVALID_INPUT, SoapFault
from sandbox.wsdl import WSDL_DIR, load

EXPECTED = {
    "land_registry": {
        "LandRegistrySoap11Binding": {"GetDeed", "GetDeeds"},
        "LandRegistrySoap12Binding": {"GetDeed", "GetDeeds"},
    },
    "civil_registry": {"CivilRegistrySoap11Binding": {"GetPerson"}},
    "bank": {"BankSoap11Binding": {"VerifyPayment", "CheckAccountHolder"}},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wsdl_loads_in_zeep_with_its_bindings_and_operations(name: str) -> None:
    client = zeep.Client(str(WSDL_DIR / f"{name}.wsdl"))

    bindings = {
        etree.QName(qname).localname: set(binding._operations)
        for qname, binding in client.wsdl.bindings.items()
    }
    assert bindings == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_operation_takes_the_optional_xroad_headers(name: str) -> None:
    client = zeep.Client(str(WSDL_DIR / f"{name}.wsdl"))

    for binding in client.wsdl.bindings.values():
        for operation in binding._operations.values():
            header = operation.input.header
            assert [name for name, _ in header.type.elements] == [
                "client",
                "service",
                "id",
                "userId",
                "issue",
            ]


def test_each_wsdl_has_its_own_target_namespace() -> None:
    namespaces = {load(name).target_namespace for name in EXPECTED}

    assert len(namespaces) == len(EXPECTED)


def test_served_wsdl_points_every_port_at_the_address() -> None:
    served = etree.fromstring(load("land_registry").served_at("http://10.0.0.1:1/"))

    locations = [element.get("location") for element in served.iter("{*}address")]
    assert locations == ["http://10.0.0.1:1/", "http://10.0.0.1:1/"]


def test_validation_names_the_field_but_not_the_value() -> None:
    payload = etree.fromstring(
        '<GetPerson xmlns="urn:ir:sabteahval:civil-registry:v1">'
        "<nationalCode>12ab</nationalCode></GetPerson>"
    )

    with pytest.raises(SoapFault) as raised:
        load("civil_registry").validate(payload)

    assert raised.value.code == INVALID_INPUT
    assert "nationalCode" in raised.value.message
    assert "12ab" not in raised.value.message
