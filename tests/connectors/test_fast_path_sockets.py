"""The agencies' HTTP client checks idle connections through connectors/sockets.py: the pool
uses it, and a connection the agency closed while idle is still noticed before reuse."""

from __future__ import annotations

import asyncio

import httpx

from connectors.sockets import ReadabilityBackend, _Stream
from connectors.transport import AgencyTransport, build_client

TIMEOUT_S = 10


def test_the_shared_client_uses_the_backend() -> None:
    client = build_client(max_response_bytes=1024, timeout=httpx.Timeout(1.0))
    transport = client._transport
    assert isinstance(transport, AgencyTransport)
    inner = transport._inner
    assert isinstance(inner, httpx.AsyncHTTPTransport)
    assert isinstance(inner._pool._network_backend, ReadabilityBackend)


async def test_a_connection_the_agency_closed_while_idle_is_not_reused() -> None:
    connections = 0
    closed = asyncio.Event()
    close_now = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Keep-alive was not refused, but the agency drops the connection once idle.
        await close_now.wait()
        writer.close()
        await writer.wait_closed()
        closed.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = build_client(max_response_bytes=1024, timeout=httpx.Timeout(TIMEOUT_S))
    async with server:
        first = await client.get(f"http://127.0.0.1:{port}/")
        assert first.text == "ok"
        pool = client._transport._inner._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1
        stream = pool.connections[0]._connection._network_stream
        assert isinstance(stream, _Stream)
        assert not stream.get_extra_info("is_readable")
        close_now.set()
        await asyncio.wait_for(closed.wait(), TIMEOUT_S)
        # The close reaches our socket: poll until it is readable, as the pool will see it.
        for _ in range(1000):
            if stream.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.005)
        assert stream.get_extra_info("is_readable")
        second = await client.get(f"http://127.0.0.1:{port}/")
        assert second.text == "ok"
        assert connections == 2
    await client.aclose()
