"""A lean HTTP/1.1 transport for agency calls: httptools over asyncio streams, with a small pool.

httpx stays the client (requests, responses, timeouts, errors are httpx's); this replaces
the transport under it, httpx's `AsyncHTTPTransport` over httpcore and anyio, whose work per
request was most of an agency call's CPU: httpcore's pool walks every connection twice per
request (asking each idle one whether the server closed it, a system call each) and counts the
idle ones once per connection, and anyio wraps every read and write in cancel scopes. Here:

- a request's head is written here, refusing header names and values that could split a
  header or smuggle one (h11's rules, which httpcore applies); answers are parsed by
  httptools (llhttp, in C; uvicorn's parser), which h11 did in Python at about a fifth of an
  agency call's CPU;
- idle connections are kept per origin, most recently used first, and only the one taken is
  checked: the event loop reads every socket as data arrives, so a connection the agency
  closed (or wrote to) while idle is known from its reader's state without a system call;
- at most `max_connections` requests are in flight; `max_keepalive_connections` idle ones
  are kept, each for `keepalive_expiry` seconds at most;
- httpx's timeouts apply (pool, connect, write, read) and failures leave as httpx's
  exceptions, so `connectors.soap.client` maps them as before.

HTTP/2, proxies and Unix sockets are not handled here: `build_client` keeps httpx's own
transport for a proxy.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping

import httptools
import httpx

__all__ = ["AgencyPool"]

_READ_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


# h11's rules for what a request may send: a header's name is a token; its value holds no
# control character but tab, and neither starts nor ends with white space.
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)
_TARGET = re.compile(rb"[\x21-\x7e]+")


class _Answer:
    """One answer as httptools parses it (its callbacks), read to its end or not."""

    __slots__ = (
        "body",
        "complete",
        "head_only",
        "headers",
        "headers_done",
        "keep_alive",
        "parser",
        "read_out",
        "reason",
        "status",
        "trailing",
    )

    def __init__(self, head_only: bool) -> None:
        self.head_only = head_only  # an answer to HEAD: no body whatever its length says
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.status = 0
        self.headers_done = False
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.trailing = False  # bytes after the answer: never read as the next one
        self.read_out = False  # its reader took its body to the end

    def on_message_begin(self) -> None:
        if self.complete:
            self.trailing = True

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # informational: the answer follows
            self.headers, self.reason = [], b""
            return
        self.status = status
        self.headers_done = True
        if self.head_only:
            self.complete = True
            self.keep_alive = False  # the parser would read a body: start afresh

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.headers_done and not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    def until_close(self) -> bool:
        """Whether the body ends where the connection does (no length, not chunked)."""
        if self.status in (204, 304):
            return False
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def feed(self, data: bytes, request: httpx.Request | None) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:  # bytes after the answer that are no answer
                self.trailing = True
                return
            raise httpx.RemoteProtocolError(f"malformed answer: {exc}", request=request) from exc


class _Connection:
    __slots__ = ("answer", "idle_since", "origin", "reader", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.answer: _Answer | None = None  # the answer being read
        self.idle_since = 0.0

    def usable(self) -> bool:
        """An idle connection the agency has neither closed nor written to since its answer."""
        reader = self.reader
        return not (
            self.writer.transport.is_closing()
            or reader.at_eof()
            or reader.exception() is not None
            or len(reader._buffer)  # type: ignore[attr-defined]  # bytes nobody asked for
        )

    def close(self) -> None:
        if self.reader.exception() is not None:
            self.writer.transport.abort()
        else:
            self.writer.close()


async def _read(
    connection: _Connection, read_s: float | None, request: httpx.Request | None
) -> bytes:
    try:
        if read_s is None:
            return await connection.reader.read(_READ_SIZE)
        async with asyncio.timeout(read_s):
            return await connection.reader.read(_READ_SIZE)
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out reading the answer", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


async def _read_more(
    connection: _Connection, read_s: float | None, request: httpx.Request | None
) -> None:
    """Feeds the connection's answer what arrives next; the end of the connection ends a body
    read until it, and is an error anywhere else."""
    answer = connection.answer
    assert answer is not None
    data = await _read(connection, read_s, request)
    if data:
        answer.feed(data, request)
    elif answer.headers_done and answer.until_close():
        answer.complete = True
        answer.keep_alive = False
    elif answer.headers_done:
        raise httpx.RemoteProtocolError("the answer ended early", request=request)
    else:
        raise httpx.RemoteProtocolError(
            "the server closed the connection without answering", request=request
        )


def _request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], request: httpx.Request | None
) -> list[bytes]:
    """A request's head as it goes on the wire, refusing what could split or smuggle a
    header."""
    if not _TARGET.fullmatch(target):
        raise httpx.LocalProtocolError("illegal request target", request=request)
    head = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise httpx.LocalProtocolError(
                f"illegal header {name[:40]!r}: its name or value could split it", request=request
            )
        head += (name, b": ", value, b"\r\n")
    head.append(b"\r\n")
    return head


async def _request_bytes(request: httpx.Request) -> bytes:
    """An httpx request as it goes on the wire: its head, then its body (chunked if asked)."""
    parts = _request_head(
        request.method.encode(), request.url.raw_path, request.headers.raw, request
    )
    declared = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    sent = 0
    async for chunk in request.stream:  # type: ignore[union-attr]
        if not chunk:
            continue
        sent += len(chunk)
        parts += (b"%x\r\n" % len(chunk), chunk, b"\r\n") if chunked else (chunk,)
    if chunked:
        parts.append(b"0\r\n\r\n")
    elif sent != int(declared or 0):
        raise httpx.LocalProtocolError(
            "the body's length is not the length its Content-Length declares", request=request
        )
    return b"".join(parts)


class _Body(httpx.AsyncByteStream):
    """The answer's body as it arrives; the connection goes back to the pool once it is read
    to its end, and is closed if the reader stops before."""

    def __init__(
        self,
        pool: AgencyPool,
        connection: _Connection,
        request: httpx.Request | None,
        read_s: float | None,
    ) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._request = request
        self._read_s = read_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        answer = connection.answer
        assert answer is not None
        while True:
            if answer.body:
                chunks, answer.body = answer.body, []
                for chunk in chunks:
                    yield chunk
            if answer.complete:
                answer.read_out = True
                return
            await _read_more(connection, self._read_s, self._request)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool._release(connection)


class AgencyPool(httpx.AsyncBaseTransport):
    """An httpx transport: HTTP/1.1 over pooled keep-alive connections (see the module)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.max_connections = limits.max_connections or 1_000_000
        self.max_keepalive = (
            limits.max_keepalive_connections
            if limits.max_keepalive_connections is not None
            else self.max_connections
        )
        self.keepalive_expiry = limits.keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._idle_count = 0
        self._active = 0
        self._slots = asyncio.Semaphore(self.max_connections)
        self._closed = False

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = self._origin(request.url, request)
        timeouts = request.extensions.get("timeout") or {}
        payload = await _request_bytes(request)
        connection = await self._exchange(
            origin, payload, request.method == "HEAD", timeouts, request
        )
        answer = connection.answer
        assert answer is not None
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(self, connection, request, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )

    async def send(
        self,
        method: bytes,
        url: httpx.URL,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        timeouts: Mapping[str, float | None],
    ) -> tuple[int, list[tuple[bytes, bytes]], _Body]:
        """`handle_async_request` without httpx's request and response, for the agencies' own
        calls (connectors.transport): `headers` are sent as they are (Host and Content-Length
        among them), checked as every request's are, then `content`. The answer's status, its
        headers and its body, which the caller reads and closes as a response's stream. Errors
        are httpx's, without a request."""
        origin = self._origin(url, None)
        payload = b"".join(_request_head(method, url.raw_path, headers, None)) + content
        connection = await self._exchange(origin, payload, method == b"HEAD", timeouts, None)
        answer = connection.answer
        assert answer is not None
        return answer.status, answer.headers, _Body(self, connection, None, timeouts.get("read"))

    def _origin(self, url: httpx.URL, request: httpx.Request | None) -> Origin:
        if self._closed:
            raise RuntimeError("the transport is closed")
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"{scheme!r} is not http or https", request=request)
        return (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])

    async def _exchange(
        self,
        origin: Origin,
        payload: bytes,
        head_only: bool,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None,
    ) -> _Connection:
        """Sends `payload` on a connection to `origin` (kept or new) and reads the answer's
        head; the connection, holding the answer, is in flight until `_release`."""
        try:
            pool_s = timeouts.get("pool")
            if pool_s is None or not self._slots.locked():
                await self._slots.acquire()  # free: taken at once, no timer needed
            else:
                async with asyncio.timeout(pool_s):
                    await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection free in time", request=request) from exc
        self._active += 1
        connection = None
        try:
            connection = self._take(origin)
            if connection is None:
                connection = await self._open(origin, request, timeouts.get("connect"))
            writer = connection.writer
            answer = connection.answer = _Answer(head_only)
            try:
                writer.write(payload)
                if writer.transport.get_write_buffer_size():
                    async with asyncio.timeout(timeouts.get("write")):
                        await writer.drain()
            except TimeoutError as exc:
                raise httpx.WriteTimeout("timed out sending the request", request=request) from exc
            except OSError as exc:
                raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc
            read_s = timeouts.get("read")
            while not answer.headers_done:
                await _read_more(connection, read_s, request)
            return connection
        except BaseException:
            if connection is not None:
                connection.close()
            self._active -= 1
            self._slots.release()
            raise

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        expiry = self.keepalive_expiry
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if (expiry is None or now - connection.idle_since < expiry) and connection.usable():
                return connection
            connection.close()
        return None

    async def _open(
        self, origin: Origin, request: httpx.Request | None, connect_s: float | None
    ) -> _Connection:
        # In flight and idle together stay within max_connections.
        self._evict(self.max_connections - self._active)
        scheme, host, port = origin
        secure = scheme == "https"
        try:
            async with asyncio.timeout(connect_s):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=self._ssl_context() if secure else None,
                    server_hostname=host if secure else None,
                    limit=_READ_SIZE,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return _Connection(origin, reader, writer)

    def _release(self, connection: _Connection) -> None:
        """An answer was read to its end or abandoned: keep its connection or close it."""
        self._active -= 1
        self._slots.release()
        answer, connection.answer = connection.answer, None
        if (
            self._closed
            or answer is None
            or not answer.read_out
            or not answer.keep_alive
            # Bytes after the answer that nobody asked for: never read as the next answer.
            or answer.trailing
        ):
            connection.close()
            return
        room = min(self.max_keepalive, self.max_connections - self._active)
        if room <= 0:
            connection.close()
            return
        self._evict(room - 1)
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(connection.origin, deque()).append(connection)
        self._idle_count += 1

    def _evict(self, keep: int) -> None:
        """Close the oldest idle connections until at most `keep` remain."""
        for idle in self._idle.values():
            while idle and self._idle_count > keep:
                idle.popleft().close()
                self._idle_count -= 1
            if self._idle_count <= keep:
                return

    async def aclose(self) -> None:
        self._closed = True
        self._evict(0)
        self._idle.clear()
