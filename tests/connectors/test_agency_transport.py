"""The shared agency transport: correlation headers out, a cap on every answer in."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from connectors.correlation import Correlation, correlated
from connectors.resilience import current_request_id
from connectors.transport import (
    USER_AGENT,
    AgencyTransport,
    RefusedResponse,
    ResponseTooLarge,
    build_client,
)

CAP = 256 * 1024
CHUNK = 64 * 1024


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    transport = AgencyTransport(httpx.MockTransport(handler), max_response_bytes=CAP)
    return httpx.AsyncClient(transport=transport)


class Echo:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})


async def test_correlation_becomes_x_road_headers() -> None:
    echo = Echo()
    async with client(echo) as http:
        with correlated(Correlation("req-1", "partner-7", "operator-3", "case-12")):
            await http.get("http://agency.test/")
    headers = echo.requests[0].headers
    assert headers["X-Request-Id"] == "req-1"
    assert headers["X-Road-Client"] == "partner-7"
    assert headers["X-Road-UserId"] == "operator-3"
    assert headers["X-Road-Issue"] == "case-12"
    assert headers["Accept-Encoding"] == "identity"


async def test_without_correlation_only_the_guards_request_id_is_sent() -> None:
    echo = Echo()
    async with client(echo) as http:
        await http.get("http://agency.test/")
        token = current_request_id.set("req-from-guard")
        try:
            await http.get("http://agency.test/")
        finally:
            current_request_id.reset(token)
    first, second = (request.headers for request in echo.requests)
    assert not any(name.lower().startswith(("x-road-", "x-request-id")) for name in first)
    assert second["X-Request-Id"] == "req-from-guard"
    assert "X-Road-Client" not in second


async def test_a_header_the_caller_set_is_kept_and_values_cannot_split_headers() -> None:
    echo = Echo()
    async with client(echo) as http:
        with correlated(Correlation("req-1", "evil\r\nX-Admin: yes", None, "پرونده")):
            await http.get("http://agency.test/", headers={"X-Request-Id": "mine"})
    headers = echo.requests[0].headers
    assert headers["X-Request-Id"] == "mine"
    assert "X-Admin" not in headers
    assert headers["X-Road-Client"] == "evil%0D%0AX-Admin: yes"
    assert headers["X-Road-Issue"].isascii()
    assert "X-Road-UserId" not in headers


def streamed(total: int, produced: list[int], *, declare: bool = False) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            piece = min(CHUNK, total - sent)
            produced.append(piece)
            sent += piece
            yield b"A" * piece

    headers = {"Content-Length": str(total)} if declare else {}
    return httpx.Response(200, content=body(), headers=headers)


async def test_an_answer_past_the_cap_is_refused_while_streaming() -> None:
    produced: list[int] = []
    tracemalloc.start()
    try:
        async with client(lambda request: streamed(50 * 1024 * 1024, produced)) as http:
            with pytest.raises(ResponseTooLarge):
                await http.get("http://agency.test/")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # It stopped reading just past the cap: 50 MiB were never produced, nor held.
    assert sum(produced) <= CAP + CHUNK
    assert peak < 8 * CAP


async def test_an_answer_declared_too_large_is_refused_before_reading() -> None:
    produced: list[int] = []
    async with client(lambda request: streamed(CAP + 1, produced, declare=True)) as http:
        with pytest.raises(ResponseTooLarge):
            await http.get("http://agency.test/")
    assert produced == []


async def test_an_answer_within_the_cap_passes_whole() -> None:
    produced: list[int] = []
    async with client(lambda request: streamed(CAP, produced)) as http:
        response = await http.get("http://agency.test/")
    assert len(response.content) == CAP


async def test_a_compressed_answer_is_refused() -> None:
    def gzipped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})

    async with client(gzipped) as http:
        with pytest.raises(RefusedResponse):
            await http.get("http://agency.test/")


async def test_refusals_are_transport_errors_so_connectors_map_them_like_any_outage() -> None:
    assert issubclass(ResponseTooLarge, httpx.TransportError)
    assert issubclass(RefusedResponse, httpx.TransportError)


async def test_the_shared_client_keeps_its_headers_after_connectors_are_built(
    make_agencies: Callable[..., object], agency_http: httpx.AsyncClient
) -> None:
    make_agencies()
    assert agency_http.headers["User-Agent"] == USER_AGENT


async def test_build_client_refuses_a_zero_cap() -> None:
    with pytest.raises(ValueError, match="max_response_bytes"):
        build_client(max_response_bytes=0, timeout=httpx.Timeout(1.0))
