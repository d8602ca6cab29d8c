"""The HTTP transport every agency call goes through: correlation headers out, bounded answers in.

`build_client` makes the one `httpx.AsyncClient` the app shares between its connectors.
An answer is streamed and refused as soon as it passes `max_response_bytes`, so a hostile or
broken agency cannot make the gateway hold more than that in memory; compressed answers are
refused too (we ask for none), since a small compressed body can expand past any cap.
"""

from __future__ import annotations

import string
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import httpx
from opentelemetry import propagate

from connectors import correlation
from connectors.pool import AgencyPool

__all__ = [
    "AgencyTransport",
    "Answer",
    "RefusedResponse",
    "ResponseTooLarge",
    "build_client",
    "post",
]

USER_AGENT = "municipal-gateway"
_IDENTITY = (b"Accept-Encoding", b"identity")

# Header values must be printable ASCII; anything else (a Persian case title, say) is
# percent-encoded, so it arrives intact and cannot split a header.
_HEADER_SAFE = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


class RefusedResponse(httpx.TransportError):
    """The transport refused an agency's answer before handing it on."""


class ResponseTooLarge(RefusedResponse):
    """The answer is larger than the transport's `max_response_bytes`."""


class Answer:
    """An agency's answer, read whole: what `post` gives the connectors' own calls."""

    __slots__ = ("_fields", "content", "headers", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        fields: dict[bytes, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self._fields = _fields(headers) if fields is None else fields

    def header(self, name: str, default: str = "") -> str:
        """The header's value as httpx's `Headers.get` gives it (repeats joined by ", ")."""
        return self._fields.get(name.lower().encode(), default)

    def response(self, url: httpx.URL) -> httpx.Response:
        """The answer as an httpx response (to a POST to `url`), for zeep's reading."""
        return httpx.Response(
            self.status_code,
            headers=self.headers,
            content=self.content,
            request=httpx.Request("POST", url),
        )


def _fields(headers: list[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """Each header's value by its name in lower case, repeats joined by ", " (as httpx's
    `Headers.get` gives them)."""
    fields: dict[bytes, str] = {}
    for name, value in headers:
        lowered = name.lower()
        text = value.decode("latin-1")
        fields[lowered] = f"{fields[lowered]}, {text}" if lowered in fields else text
    return fields


class _CappedStream(httpx.AsyncByteStream):
    def __init__(
        self, stream: httpx.AsyncByteStream, limit: int, request: httpx.Request | None
    ) -> None:
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
    if value.isascii() and value.isprintable() and "%" not in value:
        return value  # every character is in _HEADER_SAFE: quote() would give it back
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
            self._check(
                response.headers.get("Content-Encoding"),
                response.headers.get("Content-Length"),
                request,
            )
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

    async def post(
        self,
        url: httpx.URL,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        timeouts: Mapping[str, float | None],
    ) -> Answer:
        """`handle_async_request` of `httpx.Request("POST", url, headers=headers,
        content=content)`, its answer read whole: the same headers out (Host, Content-Length,
        correlation, Accept-Encoding, trace context), the same refusals and cap, the same
        errors; over `AgencyPool`, without building httpx's request and two responses."""
        pool = self._inner
        # One pass: the names present, and Accept-Encoding set to identity where it stands
        # (the first one takes the value, the others go, as httpx's Headers do).
        out: list[tuple[bytes, bytes]] = []
        names: set[bytes] = set()
        for item in headers:
            lowered = item[0].lower()
            if lowered == b"accept-encoding":
                if lowered in names:
                    continue
                item = _IDENTITY
            names.add(lowered)
            out.append(item)
        if (
            not isinstance(pool, AgencyPool)
            or b"content-length" in names
            or b"transfer-encoding" in names
        ):
            request = httpx.Request(
                "POST", url, headers=headers, content=content, extensions={"timeout": timeouts}
            )
            return await _read_whole(self, request)
        if b"host" not in names:
            out.insert(0, (b"Host", url.netloc))
        out.append((b"Content-Length", b"%d" % len(content)))
        for name, value in correlation.effective().http_headers().items():
            if name.lower().encode() not in names:
                out.append((name.encode(), _header_value(value).encode()))
        if b"accept-encoding" not in names:
            out.append(_IDENTITY)
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        for name, value in carrier.items():
            key = name.encode()
            if key.lower() in names:
                _set(out, key, value.encode())
            else:
                out.append((key, value.encode()))
        try:
            status, answer_headers, body = await pool.send(b"POST", url, out, content, timeouts)
            try:
                fields = _fields(answer_headers)
                self._check(fields.get(b"content-encoding"), fields.get(b"content-length"), None)
                chunks = [
                    chunk async for chunk in _CappedStream(body, self.max_response_bytes, None)
                ]
            finally:
                await body.aclose()
        except httpx.RequestError as exc:
            try:
                exc.request  # noqa: B018  # set already?
            except RuntimeError:
                exc.request = httpx.Request("POST", url, headers=out, content=content)
            raise
        return Answer(status, answer_headers, b"".join(chunks), fields)

    def _check(
        self, encoding: str | None, declared: str | None, request: httpx.Request | None
    ) -> None:
        if (encoding or "identity").strip().lower() not in ("", "identity"):
            raise RefusedResponse(
                "the answer is compressed, which was not asked for", request=request
            )
        if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise ResponseTooLarge(
                f"the answer exceeds {self.max_response_bytes} bytes", request=request
            )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _set(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """`headers[name] = value` as httpx's `Headers` does it: the first of the name's headers
    takes the value, the others go; a new name goes last."""
    lowered = name.lower()
    found = [i for i, (key, _) in enumerate(headers) if key.lower() == lowered]
    if not found:
        headers.append((name, value))
        return
    for i in reversed(found[1:]):
        del headers[i]
    headers[found[0]] = (name, value)


async def _read_whole(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> Answer:
    response = await transport.handle_async_request(request)
    try:
        content = await response.aread()
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers.raw, content)


async def post(
    client: httpx.AsyncClient, url: httpx.URL, headers: list[tuple[bytes, bytes]], content: bytes
) -> Answer:
    """`await client.post(url, headers=headers, content=content)` for the connectors' own
    calls, read whole, without the client's work they never use: no auth flow, redirects,
    event hooks or cookie jar (agencies set no cookies we would send back). The client's
    headers and timeouts apply, and the request goes through its transport (so the
    correlation headers, the caps and the refusals above); over the shared `AgencyTransport`
    without httpx's request and response objects (`AgencyTransport.post`).
    """
    if client.is_closed:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    names = {name.lower() for name, _ in headers}
    merged = [item for item in client.headers.raw if item[0].lower() not in names] + headers
    timeouts = client.timeout.as_dict()
    transport = client._transport_for_url(url)  # httpx's own routing
    if isinstance(transport, AgencyTransport):
        return await transport.post(url, merged, content, timeouts)
    request = httpx.Request(
        "POST", url, headers=merged, content=content, extensions={"timeout": timeouts}
    )
    return await _read_whole(transport, request)


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
