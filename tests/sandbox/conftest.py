"""Fixtures for the sandbox: a seeded demo city in SQLite files and the agencies serving it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncEngine
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsse.username import UsernameToken

from db import migrate
from db.demo import seed_demo
from db.engines import Databases
from sandbox.run import Agencies, run_agencies
from sandbox.soap import SoapVersion, envelope_bytes
from sandbox.wsdl import WSDL_DIR
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME, security_header

PARCELS = 200

NAMESPACES = {
    "land_registry": "urn:ir:ssaa:land-registry:v1",
    "civil_registry": "urn:ir:sabteahval:civil-registry:v1",
    "bank": "urn:ir:bank:inquiry:v1",
}
BINDINGS = {
    ("land_registry", "1.1"): "LandRegistrySoap11Binding",
    ("land_registry", "1.2"): "LandRegistrySoap12Binding",
    ("civil_registry", "1.1"): "CivilRegistrySoap11Binding",
    ("bank", "1.1"): "BankSoap11Binding",
}


@dataclass
class City:
    """The seeded demo databases the agencies read."""

    planning_url: str
    revenue_url: str
    databases: Databases

    @property
    def planning(self) -> AsyncEngine:
        return self.databases.planning

    @property
    def revenue(self) -> AsyncEngine:
        return self.databases.revenue


@pytest.fixture(scope="session")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[City]:
    folder: Path = tmp_path_factory.mktemp("sandbox-city")
    urls = {
        name: f"sqlite+aiosqlite:///{folder / f'{name}.sqlite3'}"
        for name in ("planning", "revenue")
    }
    databases = Databases(urls)
    await migrate.upgrade(databases)
    await seed_demo(databases, parcels=PARCELS)
    yield City(urls["planning"], urls["revenue"], databases)
    await databases.dispose()


@pytest.fixture(scope="session")
async def agencies(city: City) -> AsyncIterator[Agencies]:
    async with run_agencies(
        planning_url=city.planning_url, revenue_url=city.revenue_url
    ) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def demo_token(agency: str, **kwargs: Any) -> UsernameToken:
    return UsernameToken(DEMO_USERNAME, DEMO_PASSWORDS[agency], use_digest=True, **kwargs)


@pytest.fixture
async def soap_service(agencies: Agencies) -> AsyncIterator[Callable[..., Any]]:
    """Build a zeep AsyncClient over httpx from the vendored WSDL, pointed at the sandbox.

    `soap_service(agency, version="1.1", wsse=<demo token>|None|token, headers={...})`
    returns the service proxy; every transport built is closed after the test.
    """
    transports: list[AsyncTransport] = []
    sync_clients: list[httpx.Client] = []
    default = object()

    def build(
        agency: str,
        version: str = "1.1",
        wsse: Any = default,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sync_client = httpx.Client()
        sync_clients.append(sync_client)
        transport = AsyncTransport(client=httpx.AsyncClient(timeout=10), wsdl_client=sync_client)
        transports.append(transport)
        # zeep's AsyncTransport replaces the client's headers: add ours afterwards.
        transport.client.headers.update(headers or {})
        token = demo_token(agency) if wsse is default else wsse
        client = zeep.AsyncClient(str(WSDL_DIR / f"{agency}.wsdl"), transport=transport, wsse=token)
        binding = client.wsdl.bindings[f"{{{NAMESPACES[agency]}}}{BINDINGS[agency, version]}"]
        # AsyncClient.create_service returns a synchronous proxy in zeep 4.3; build the async one.
        return AsyncServiceProxy(client, binding, address=f"{agencies.url(agency)}/")

    yield build
    for transport in transports:
        await transport.aclose()
    for sync_client in sync_clients:
        sync_client.close()


PostSoap = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def post_soap(agencies: Agencies, http: httpx.AsyncClient) -> PostSoap:
    """POST a hand-built envelope: `await post_soap(agency, "<tns:Op .../>", version="1.2")`.

    `token=True` adds a valid demo UsernameToken, False none, or pass a header element.
    """

    async def post(
        agency: str,
        payload: str | bytes,
        *,
        version: str = "1.1",
        token: bool | etree._Element = True,
        soap_headers: Sequence[etree._Element] = (),
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        soap_version = SoapVersion.SOAP11 if version == "1.1" else SoapVersion.SOAP12
        blocks = list(soap_headers)
        if token is True:
            blocks.append(security_header(DEMO_USERNAME, DEMO_PASSWORDS[agency]))
        elif isinstance(token, etree._Element):
            blocks.append(token)
        body = envelope_bytes(soap_version, etree.fromstring(payload), blocks)
        return await http.post(
            f"{agencies.url(agency)}/",
            content=body,
            headers={"Content-Type": soap_version.content_type, **(headers or {})},
        )

    return post
