"""Envelopes are parsed safely, answered in the caller's SOAP version, and faults are real."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lxml import etree

from sandbox.run import Agencies
from sandbox.soap import (
    SOAP11_NS,
    SOAP12_NS,
    SoapFault,
    SoapVersion,
    parse_envelope,
    read_fault,
)

LAND = "urn:ir:ssaa:land-registry:v1"
GET_DEED = (
    f'<GetDeed xmlns="{LAND}"><section>11</section><mainPlate>1</mainPlate>'
    "<subPlate>1</subPlate></GetDeed>"
)


async def post_raw(
    http: httpx.AsyncClient, url: str, body: bytes, content_type: str = "text/xml; charset=utf-8"
) -> httpx.Response:
    return await http.post(f"{url}/", content=body, headers={"Content-Type": content_type})


async def test_malformed_xml_is_a_soap_11_client_fault(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    response = await post_raw(http, agencies.land_registry, b"<soap:Envelope><oops>")

    assert response.status_code == 500
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    fault = read_fault(response.content)
    assert fault is not None
    assert fault.version is SoapVersion.SOAP11
    assert (fault.soap_code, fault.code) == ("soap:Client", "MALFORMED_REQUEST")


async def test_malformed_soap_12_request_gets_a_soap_12_sender_fault(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    response = await post_raw(
        http, agencies.land_registry, b"not xml", "application/soap+xml; charset=utf-8"
    )

    # SOAP 1.2's HTTP binding answers a Sender fault with 400.
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/soap+xml")
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP12_NS}}}Body/{{{SOAP12_NS}}}Fault")
    assert fault is not None
    assert fault.findtext(f"{{{SOAP12_NS}}}Code/{{{SOAP12_NS}}}Value") == "soap:Sender"
    assert fault.findtext(f"{{{SOAP12_NS}}}Reason/{{{SOAP12_NS}}}Text")
    assert fault.findtext(f"{{{SOAP12_NS}}}Detail/{{*}}ServiceFault/{{*}}code") == (
        "MALFORMED_REQUEST"
    )


async def test_unknown_operation_is_a_fault(post_soap: Any) -> None:
    response = await post_soap("land_registry", f'<Demolish xmlns="{LAND}"/>')

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.code == "UNKNOWN_OPERATION"


async def test_operation_of_another_namespace_is_unknown(post_soap: Any) -> None:
    response = await post_soap(
        "land_registry", GET_DEED.replace(LAND, "urn:ir:sabteahval:civil-registry:v1")
    )

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.code == "UNKNOWN_OPERATION"


async def test_missing_field_is_invalid_input_over_soap_12(post_soap: Any) -> None:
    response = await post_soap(
        "land_registry",
        f'<GetDeed xmlns="{LAND}"><section>11</section><mainPlate>1</mainPlate></GetDeed>',
        version="1.2",
    )

    fault = read_fault(response.content)
    assert response.status_code == 400
    assert fault is not None
    assert (fault.soap_code, fault.code) == ("soap:Sender", "INVALID_INPUT")
    assert "subPlate" in fault.message


async def test_wrongly_typed_field_is_invalid_input_without_echoing_it(post_soap: Any) -> None:
    response = await post_soap("land_registry", GET_DEED.replace(">11<", ">secret-value<"))

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.code == "INVALID_INPUT"
    assert "secret-value" not in response.text


async def test_a_dtd_is_refused_without_expanding_it(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY l0 "lol">{laughs}'
        '<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f'<soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Body>'
        f'<GetDeed xmlns="{LAND}"><section>&l9;</section><mainPlate>&xxe;</mainPlate>'
        "<subPlate>1</subPlate></GetDeed></soap:Body></soap:Envelope>"
    ).encode()

    response = await post_raw(http, agencies.land_registry, body)

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.code == "MALFORMED_REQUEST"
    assert "root:" not in response.text


async def test_an_oversized_request_is_refused(agencies: Agencies, http: httpx.AsyncClient) -> None:
    body = b"<x>" + b"a" * 2_000_000 + b"</x>"

    response = await post_raw(http, agencies.land_registry, body)

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.code == "REQUEST_TOO_LARGE"


async def test_unknown_envelope_namespace_is_a_version_mismatch(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    body = b'<e:Envelope xmlns:e="urn:not-soap"><e:Body/></e:Envelope>'

    response = await post_raw(http, agencies.land_registry, body)

    fault = read_fault(response.content)
    assert fault is not None
    assert fault.soap_code == "soap:VersionMismatch"


async def test_a_header_that_must_be_understood_but_is_not_is_refused(post_soap: Any) -> None:
    block = etree.Element("{urn:unknown}Routing")
    block.set(f"{{{SOAP11_NS}}}mustUnderstand", "1")

    response = await post_soap("land_registry", GET_DEED, soap_headers=[block])

    fault = read_fault(response.content)
    assert fault is not None
    assert (fault.soap_code, fault.code) == ("soap:MustUnderstand", "MUST_UNDERSTAND")


def test_parse_envelope_finds_version_header_and_operation() -> None:
    body = (
        f'<s:Envelope xmlns:s="{SOAP12_NS}"><s:Header><h xmlns="urn:h">1</h></s:Header>'
        f"<s:Body>{GET_DEED}</s:Body></s:Envelope>"
    ).encode()

    envelope = parse_envelope(body)

    assert envelope.version is SoapVersion.SOAP12
    assert envelope.operation == "GetDeed"
    assert envelope.payload_namespace == LAND
    assert envelope.header is not None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<a/>",
        f'<s:Envelope xmlns:s="{SOAP11_NS}"/>'.encode(),
        f'<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body><a/><b/></s:Body></s:Envelope>'.encode(),
    ],
    ids=["empty", "not-an-envelope", "no-body", "two-payloads"],
)
def test_parse_envelope_refuses_what_is_not_one_request(body: bytes) -> None:
    with pytest.raises(SoapFault) as raised:
        parse_envelope(body)

    assert raised.value.code == "MALFORMED_REQUEST"
