"""Connectors against agencies that answer with attacks, garbage or nothing at all: each ends
in a clean AgencyUnavailable or AgencyTimeout within the policy's timeout."""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from connectors.errors import AgencyError, AgencyTimeout, AgencyUnavailable
from connectors.resilience import AgencyGuard
from connectors.soap.bank import Bank
from connectors.soap.civil_registry import CivilRegistry
from connectors.soap.land_registry import LandRegistry, Plate
from connectors.transport import AgencyTransport
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME

TIMEOUT_S = 0.5

MODES = {
    "billion-laughs": AgencyUnavailable,
    "external-entity": AgencyUnavailable,
    "huge": AgencyUnavailable,
    "malformed": AgencyUnavailable,
    "empty": AgencyUnavailable,
    "html-error": AgencyUnavailable,
    "reset": AgencyUnavailable,
    "never-ends": AgencyTimeout,
    "slow-headers": AgencyTimeout,
}

Call = Callable[[Any, AgencyGuard, str], Awaitable[object]]


async def land_deed(http: Any, guard: AgencyGuard, address: str) -> object:
    registry = LandRegistry(
        http,
        guard,
        address=address,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORDS["land_registry"],
    )
    return await registry.deed(Plate(11, 125, 102))


async def land_deeds(http: Any, guard: AgencyGuard, address: str) -> object:
    registry = LandRegistry(http, guard, address=address, soap_version="1.2")
    return await registry.deeds([Plate(11, 125, n) for n in range(1, 30)])


async def civil_person(http: Any, guard: AgencyGuard, address: str) -> object:
    registry = CivilRegistry(http, guard, address=address)
    return await registry.person("1234567891")


CALLS: dict[str, Call] = {
    "land-deed": land_deed,
    "land-deeds-1.2": land_deeds,
    "civil-person": civil_person,
}


def causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call", CALLS)
async def test_a_hostile_answer_ends_cleanly_within_the_timeout(
    rogue: str, agency_http: httpx.AsyncClient, quick_policy: Any, mode: str, call: str
) -> None:
    agency = "civil_registry" if call.startswith("civil") else "land_registry"
    guard = AgencyGuard(agency, quick_policy(timeout_s=TIMEOUT_S))
    with pytest.raises(AgencyError) as caught:
        await CALLS[call](agency_http, guard, f"{rogue}/{mode}")
    # Within the timeout, without reading a clock: an answer that hung would have ended in
    # the guard's timeout (asyncio's TimeoutError), and only the modes that hang do; the
    # shared client's own, longer timeout (an httpx timeout) never acts first.
    assert type(caught.value) is MODES[mode]
    timed_out = type(caught.value.__cause__) is TimeoutError
    assert timed_out == (MODES[mode] is AgencyTimeout)
    message = str(caught.value)
    assert message.startswith(f"{agency}.Get")
    assert rogue not in message
    # Nothing was expanded or fetched: no line of /etc/passwd anywhere in the chain.
    assert not any("root:" in str(exc) for exc in causes(caught.value))
    assert guard.stats().failures == 1


async def test_a_50_mib_answer_is_cut_at_the_cap_and_memory_stays_bounded(
    rogue: str, agency_http: httpx.AsyncClient, quick_policy: Any
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(AgencyUnavailable):
            await land_deed(agency_http, AgencyGuard("x", quick_policy()), f"{rogue}/huge")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "urn:ir:ssaa:land-registry:v1"


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11}">'
        f'<soap:Body xmlns:tns="{NS}">{body}</soap:Body></soap:Envelope>'
    ).encode()


DEED = (
    "<tns:GetDeedResponse><tns:deed><tns:found>{found}</tns:found>"
    "<tns:plate><tns:section>11</tns:section><tns:mainPlate>125</tns:mainPlate>"
    "<tns:subPlate>{sub}</tns:subPlate></tns:plate>{rest}</tns:deed></tns:GetDeedResponse>"
)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, envelope("<tns:Nonsense/>")),
        (200, envelope(DEED.format(found="true", sub=102, rest=""))),
        (200, envelope(DEED.format(found="false", sub=999, rest=""))),
        (200, envelope(DEED.format(found="true", sub=102, rest="<tns:extra>1</tns:extra>"))),
        (
            500,
            envelope(
                "<soap:Fault><faultcode>soap:Server</faultcode>"
                "<faultstring>x</faultstring></soap:Fault>"
            ),
        ),
        (500, envelope("<tns:GetDeedResponse/>")),
        (200, b"<?xml version='1.0'?><html><body>not soap</body></html>"),
    ],
    ids=[
        "unknown-element",
        "found-without-a-deed",
        "another-plates-deed",
        "unexpected-element",
        "server-fault",
        "500-without-a-fault",
        "xml-but-not-soap",
    ],
)
async def test_an_answer_that_breaks_the_wsdl_means_the_agency_failed(
    quick_policy: Any, status: int, body: bytes
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": "text/xml"})

    transport = AgencyTransport(httpx.MockTransport(handler), max_response_bytes=1 << 20)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(AgencyUnavailable) as caught:
            await land_deed(http, AgencyGuard("land_registry", quick_policy()), "http://lr.test/")
    assert str(caught.value) == "land_registry.GetDeed: agency unavailable"


async def test_an_agency_that_is_not_listening_is_unavailable(
    agency_http: httpx.AsyncClient, quick_policy: Any
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bank = Bank(
        agency_http, AgencyGuard("bank", quick_policy()), address=f"http://127.0.0.1:{port}/"
    )
    with pytest.raises(AgencyUnavailable) as caught:
        await bank.verify_payment("REF-1")
    # Refused at once: not a timeout, and not the breaker failing fast.
    assert type(caught.value) is AgencyUnavailable


async def test_an_empty_body_is_no_answer_rather_than_nobody_found(quick_policy: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=envelope(""), headers={"Content-Type": "text/xml"})

    transport = AgencyTransport(httpx.MockTransport(handler), max_response_bytes=1 << 20)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(AgencyUnavailable):
            await civil_person(http, AgencyGuard("civil_registry", quick_policy()), "http://cr/")
