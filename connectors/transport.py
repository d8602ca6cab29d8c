"""The HTTP transport every agency call goes through: correlation headers out, bounded answers in.

`build_client` makes the one `httpx.AsyncClient` the app shares between its connectors.
An answer is streamed and refused as soon as it passes `max_response_bytes`, so a hostile or
broken agency cannot make the gateway hold more than that in memory; compressed answers are
refused too (we ask for none), since a small compressed body can expand past any cap.
"""

from __future__ import annotations

import string
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
from opentelemetry import propagate

from connectors import correlation
from connectors.pool import AgencyPool

__all__ = [
    "AgencyTransport",
    "RefusedResponse",
    "ResponseTooLarge",
    "build_client",
    "send_read",
]

USER_AGENT = "municipal-gateway"

# Header values must be printable ASCII; anything else (a Persian case title, say) is
# percent-encoded, so it arrives intact and cannot split a header.
_HEADER_SAFE = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


class RefusedResponse(httpx.TransportError):
    """The transport refused an agency's answer before handing it on."""


class ResponseTooLarge(RefusedResponse):
    """The answer is larger than the transport's `max_response_bytes`."""


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, limit: int, request: httpx.Request) -> None:
        self._stream = stream
        self._limit = limit
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise ResponseTooLarge(
                    f"the answer exceeds {self._limit} bytes", request=self._request
                )
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


def _header_value(value: str) -> str:
    return quote(value, safe=_HEADER_SAFE)


class AgencyTransport(httpx.AsyncBaseTransport):
    """Wraps another transport: adds correlation headers, caps and checks every answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, max_response_bytes: int) -> None:
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        self._inner = inner
        self.max_response_bytes = max_response_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name, value in correlation.effective().http_headers().items():
            if name not in request.headers:
                request.headers[name] = _header_value(value)
        request.headers["Accept-Encoding"] = "identity"
        # W3C trace context beside the X-Road headers: the agency call's span, or the
        # request's trace id when tracing is off (gateway/observe/tracing.py).
        propagate.inject(request.headers)
        response = await self._inner.handle_async_request(request)
        try:
            self._check(request, response)
        except BaseException:
            await response.aclose()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self.max_response_bytes, request),
            extensions=response.extensions,
        )

    def _check(self, request: httpx.Request, response: httpx.Response) -> None:
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise RefusedResponse(
                "the answer is compressed, which was not asked for", request=request
            )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise ResponseTooLarge(
                f"the answer exceeds {self.max_response_bytes} bytes", request=request
            )

    async def aclose(self) -> None:
        await self._inner.aclose()


async def send_read(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """`await client.send(request)` for the connectors' own calls, without the client's work
    they never use: no auth flow, redirects, event hooks or cookie jar (agencies set no
    cookies we would send back). The request goes through the client's transport (so the
    correlation headers, the caps and the refusals above), and the answer is read whole.
    """
    if client.is_closed:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    transport = client._transport_for_url(request.url)  # httpx's own routing
    response = await transport.handle_async_request(request)
    response.request = request
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def build_client(
    *,
    max_response_bytes: int,
    timeout: httpx.Timeout,
    limits: httpx.Limits | None = None,
    proxy: str | None = None,
) -> httpx.AsyncClient:
    """The shared client for every connector; the app builds one in its lifespan and closes it.

    Keep `timeout` at least as long as the longest agency policy's `timeout_s`: the policy's
    timeout is the one meant to fire, and this one is the backstop.
    """
    limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
    inner: httpx.AsyncBaseTransport
    if proxy is None:
        # A lean HTTP/1.1 transport (connectors/pool.py): a third of an agency call's CPU.
        inner = AgencyPool(limits=limits)
    else:
        inner = httpx.AsyncHTTPTransport(limits=limits, proxy=proxy, trust_env=False)
    return httpx.AsyncClient(
        transport=AgencyTransport(inner, max_response_bytes=max_response_bytes),
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )
