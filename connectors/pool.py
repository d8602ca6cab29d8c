"""A lean HTTP/1.1 transport for agency calls: h11 over asyncio streams, with a small pool.

httpx stays the client (requests, responses, timeouts, errors are httpx's); this replaces
the transport under it, httpx's `AsyncHTTPTransport` over httpcore and anyio, whose work per
request was most of an agency call's CPU: httpcore's pool walks every connection twice per
request (asking each idle one whether the server closed it, a system call each) and counts the
idle ones once per connection, and anyio wraps every read and write in cancel scopes. Here:

- the protocol is h11's (the same as httpcore's HTTP/1.1): it frames requests, refuses header
  values that could split a header, and parses answers;
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
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpx

__all__ = ["AgencyPool"]

_READ_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class _Connection:
    __slots__ = ("h11", "idle_since", "origin", "reader", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
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


async def _read(connection: _Connection, read_s: float | None, request: httpx.Request) -> bytes:
    try:
        if read_s is None:
            return await connection.reader.read(_READ_SIZE)
        async with asyncio.timeout(read_s):
            return await connection.reader.read(_READ_SIZE)
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out reading the answer", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


def _next_event(connection: _Connection, request: httpx.Request) -> Any:
    try:
        return connection.h11.next_event()
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc


class _Body(httpx.AsyncByteStream):
    """The answer's body as it arrives; the connection goes back to the pool once it is read
    to its end, and is closed if the reader stops before."""

    def __init__(
        self,
        pool: AgencyPool,
        connection: _Connection,
        request: httpx.Request,
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
        request = self._request
        while True:
            event = _next_event(connection, request)
            if event is h11.NEED_DATA:
                connection.h11.receive_data(await _read(connection, self._read_s, request))
            elif type(event) is h11.Data:
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                return
            else:  # a closed connection mid-answer
                raise httpx.RemoteProtocolError("the answer ended early", request=request)

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
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"{scheme!r} is not http or https", request=request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout") or {}
        try:
            if timeouts.get("pool") is None or not self._slots.locked():
                await self._slots.acquire()  # free: taken at once, no timer needed
            else:
                async with asyncio.timeout(timeouts["pool"]):
                    await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection free in time", request=request) from exc
        self._active += 1
        connection = None
        try:
            connection = self._take(origin)
            if connection is None:
                connection = await self._open(origin, request, timeouts.get("connect"))
            return await self._exchange(connection, request, timeouts)
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
        self, origin: Origin, request: httpx.Request, connect_s: float | None
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

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, timeouts: dict[str, Any]
    ) -> httpx.Response:
        protocol = connection.h11
        try:
            parts = [
                protocol.send(
                    h11.Request(
                        method=request.method.encode(),
                        target=request.url.raw_path,
                        headers=request.headers.raw,
                    )
                )
            ]
            async for chunk in request.stream:  # type: ignore[union-attr]
                parts.append(protocol.send(h11.Data(data=chunk)))
            parts.append(protocol.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        writer = connection.writer
        try:
            writer.write(b"".join(p for p in parts if p))
            if writer.transport.get_write_buffer_size():
                async with asyncio.timeout(timeouts.get("write")):
                    await writer.drain()
        except TimeoutError as exc:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc
        read_s = timeouts.get("read")
        while True:
            event = _next_event(connection, request)
            if event is h11.NEED_DATA:
                protocol.receive_data(await _read(connection, read_s, request))
            elif type(event) is h11.Response:
                break
            elif type(event) is h11.InformationalResponse:
                continue
            else:
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without answering", request=request
                )
        return httpx.Response(
            status_code=event.status_code,
            headers=event.headers.raw_items(),
            stream=_Body(self, connection, request, read_s),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason},
        )

    def _release(self, connection: _Connection) -> None:
        """An answer was read to its end or abandoned: keep its connection or close it."""
        self._active -= 1
        self._slots.release()
        protocol = connection.h11
        if (
            self._closed
            or protocol.our_state is not h11.DONE
            or protocol.their_state is not h11.DONE
            # Bytes after the answer that nobody asked for: never read as the next answer.
            or protocol.trailing_data[0]
        ):
            connection.close()
            return
        room = min(self.max_keepalive, self.max_connections - self._active)
        if room <= 0:
            connection.close()
            return
        protocol.start_next_cycle()
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
