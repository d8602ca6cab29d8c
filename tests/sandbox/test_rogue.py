"""The rogue server misbehaves exactly as each path says (read boundedly, it never ends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from lxml import etree

from sandbox.rogue import HUGE_BYTES, RogueServer
from sandbox.run import run_rogue
from sandbox.soap import safe_parser


@pytest.fixture
async def rogue() -> AsyncIterator[str]:
    async with run_rogue() as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as http:
        yield http


async def test_billion_laughs_sends_nested_entities(rogue: str, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{rogue}/billion-laughs", content=b"<x/>")

    assert response.status_code == 200
    assert "<!ENTITY lol9" in response.text
    assert len(response.content) < 10_000
    # A safe parser refuses it or keeps the entity unexpanded; it never builds a gigabyte.
    try:
        root = etree.fromstring(response.content, safe_parser())
    except etree.XMLSyntaxError:
        return
    assert len(etree.tostring(root)) < 10_000


async def test_external_entity_points_at_a_local_file(
    rogue: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{rogue}/external-entity")

    assert 'SYSTEM "file:///etc/passwd"' in response.text
    root = etree.fromstring(response.content, safe_parser())
    assert b"root:" not in etree.tostring(root)


async def test_huge_announces_50_mib_and_streams_it(rogue: str, client: httpx.AsyncClient) -> None:
    received = 0
    async with client.stream("POST", f"{rogue}/huge") as response:
        assert int(response.headers["content-length"]) == HUGE_BYTES
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received >= 1_000_000:
                break

    assert received >= 1_000_000


async def test_malformed_is_not_well_formed(rogue: str, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{rogue}/malformed")

    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content, safe_parser())


async def test_html_error_is_a_502_page(rogue: str, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{rogue}/html-error")

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


async def test_reset_aborts_the_connection(rogue: str, client: httpx.AsyncClient) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post(f"{rogue}/reset", content=b"<x/>")


async def test_never_ends_keeps_trickling(rogue: str, client: httpx.AsyncClient) -> None:
    chunks = 0
    ended = False

    async def read_all(response: httpx.Response) -> None:
        nonlocal chunks, ended
        async for _ in response.aiter_raw():
            chunks += 1
        ended = True

    async with client.stream("POST", f"{rogue}/never-ends") as response:
        assert response.status_code == 200
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_all(response), timeout=1.0)

    assert chunks >= 2
    assert not ended


async def test_slow_headers_never_answers(rogue: str) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{rogue}/slow-headers", content=b"<x/>")


async def test_unknown_path_lists_the_modes(rogue: str, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{rogue}/")

    assert response.status_code == 404
    assert "/never-ends" in response.text


async def test_closing_ends_connections_that_would_hang_forever() -> None:
    server = RogueServer()
    url = await server.start()
    # /slow-headers as it is, telling the test when the server has the request in hand.
    silent = server.modes["/slow-headers"]
    serving = asyncio.Event()

    async def watched(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving.set()
        await silent(reader, writer)

    server.modes["/slow-headers"] = watched
    try:
        reader, writer = await asyncio.open_connection(*url.removeprefix("http://").split(":"))
        writer.write(b"GET /slow-headers HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):  # a safety net against a hang, not a measure
            await serving.wait()
    finally:
        await server.close()
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()
