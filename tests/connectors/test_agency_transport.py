"""The shared agency transport: correlation headers out, a cap on every answer in."""

from __future__ import annotations

import asyncio
import re
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
    post,
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


# ---------------------------------------------------------------------------------------------
# The connectors' own calls (transport.post): over the shared client's pool, without httpx's
# request and responses, yet the same request on the wire, the same refusals and errors.


class RawAgency:
    """A loopback agency that keeps each request's bytes and gives `answer` to every one."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawAgency:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/soap"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests.append(head + body)
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def raw_answer(body: bytes, *headers: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
    head += b"".join(line + b"\r\n" for line in headers)
    if b"Transfer-Encoding: chunked" in headers:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    elif not any(line.startswith(b"Content-Length") for line in headers):
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


SOAP_HEADERS = [(b"SOAPAction", b'"urn:GetDeed"'), (b"Content-Type", b"text/xml; charset=utf-8")]


async def test_post_sends_what_the_client_would_and_reads_the_answer_whole() -> None:
    async with RawAgency(raw_answer(b"<ok/>", b"X-Extra: 1", b"x-extra: 2")) as agency:
        http = build_client(max_response_bytes=CAP, timeout=httpx.Timeout(10.0))
        try:
            with correlated(Correlation("req-1", "evil\r\nX-Admin: yes", "u", "پرونده")):
                answer = await post(http, httpx.URL(agency.url), SOAP_HEADERS, b"<e/>")
                await http.post(agency.url, headers=SOAP_HEADERS, content=b"<e/>")
        finally:
            await http.aclose()
    lean, generic = agency.requests
    assert lean == generic  # byte for byte: the same head, the same body
    assert b"\r\nX-Road-Client: evil%0D%0AX-Admin: yes\r\n" in lean
    assert b"\r\nAccept-Encoding: identity\r\n" in lean
    assert b"\r\nX-Request-Id: req-1\r\n" in lean
    assert answer.status_code == 200
    assert answer.content == b"<ok/>"
    assert answer.header("content-type") == "text/xml; charset=utf-8"
    assert answer.header("X-Extra") == "1, 2"  # as httpx's Headers.get gives repeats
    assert answer.header("X-Missing", "none") == "none"


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        (raw_answer(b"\x1f\x8b", b"Content-Encoding: gzip"), RefusedResponse),
        (raw_answer(b"", b"Content-Length: %d" % (CAP + 1)), ResponseTooLarge),
        (raw_answer(b"A" * (CAP + 1), b"Transfer-Encoding: chunked"), ResponseTooLarge),
    ],
    ids=["compressed", "declared too large", "streamed past the cap"],
)
async def test_post_refuses_what_the_transport_refuses(
    answer: bytes, refusal: type[Exception]
) -> None:
    async with RawAgency(answer) as agency:
        http = build_client(max_response_bytes=CAP, timeout=httpx.Timeout(10.0))
        try:
            with pytest.raises(refusal) as raised:
                await post(http, httpx.URL(agency.url), SOAP_HEADERS, b"<e/>")
        finally:
            await http.aclose()
    assert isinstance(raised.value, httpx.TransportError)
    assert raised.value.request.url == httpx.URL(agency.url)


async def test_post_refuses_header_values_that_could_split_a_header() -> None:
    async with RawAgency(raw_answer(b"<ok/>")) as agency:
        http = build_client(max_response_bytes=CAP, timeout=httpx.Timeout(10.0))
        try:
            with pytest.raises(httpx.LocalProtocolError):
                await post(http, httpx.URL(agency.url), [(b"SOAPAction", b"a\r\nX: y")], b"<e/>")
        finally:
            await http.aclose()
        assert agency.requests == []


async def test_post_over_another_transport_goes_through_it() -> None:
    echo = Echo()
    async with client(echo) as http:
        with correlated(Correlation("req-1", None, None, None)):
            answer = await post(http, httpx.URL("http://agency.test/"), SOAP_HEADERS, b"<e/>")
    (request,) = echo.requests
    assert request.headers["X-Request-Id"] == "req-1"
    assert request.headers["SOAPAction"] == '"urn:GetDeed"'
    assert request.content == b"<e/>"
    assert answer.status_code == 200
    assert answer.content == b'{"ok":true}'
