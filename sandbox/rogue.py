"""A hostile HTTP server on a raw socket, to prove that the gateway's connectors survive it.

Not ASGI, so it can misbehave below HTTP. Every connection serves one request, whose path
(any method) picks the misbehaviour:

| path             | answer                                                               |
|------------------|----------------------------------------------------------------------|
| /billion-laughs  | 200, a SOAP envelope whose DTD nests entities a billion laughs deep  |
| /external-entity | 200, a SOAP envelope whose DTD pulls in file:///etc/passwd            |
| /huge            | 200, a 50 MiB well-formed envelope, streamed as fast as it is read   |
| /malformed       | 200, text/xml that is not well-formed                                |
| /empty           | 200, text/xml with an empty body                                     |
| /html-error      | 502 with an HTML page, as a proxy in front of a dead service says    |
| /reset           | reads the request, then aborts the connection (TCP RST)              |
| /never-ends      | 200 headers, then a chunked body that trickles a byte at a time      |
| /slow-headers    | reads the request and never answers                                  |
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

HUGE_BYTES = 50 * 1024 * 1024
TRICKLE_INTERVAL = 0.2  # seconds between the bytes of /never-ends
MAX_REQUEST_BODY = 10 * 1024 * 1024  # read and discarded, so the client can finish sending
_CHUNK = 64 * 1024

_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_ENVELOPE_START = (
    f'<?xml version="1.0" encoding="utf-8"?>\n<soap:Envelope xmlns:soap="{_SOAP11}"><soap:Body>'
)
_ENVELOPE_END = "</soap:Body></soap:Envelope>"

BILLION_LAUGHS = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    "<!DOCTYPE lolz [\n"
    ' <!ENTITY lol "lol">\n'
    ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    + "".join(f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(2, 10))
    + "]>\n"
    f'<soap:Envelope xmlns:soap="{_SOAP11}"><soap:Body>'
    "<GetDeedResponse><deed><serial>&lol9;</serial></deed></GetDeedResponse>"
    f"{_ENVELOPE_END}"
)

EXTERNAL_ENTITY = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    f'<soap:Envelope xmlns:soap="{_SOAP11}"><soap:Body>'
    "<GetDeedResponse><deed><serial>&xxe;</serial></deed></GetDeedResponse>"
    f"{_ENVELOPE_END}"
)

MALFORMED = (
    f"{_ENVELOPE_START}<GetDeedResponse><deed><found>true</found><serial>A/1</deed></soap:Body>"
)

HTML_ERROR = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream server sent an invalid response.</p></body>"
    "</html>\n"
)


class _Request:
    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers


Mode = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RogueServer:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.modes: dict[str, Mode] = {
            "/billion-laughs": _fixed(200, "OK", "text/xml; charset=utf-8", BILLION_LAUGHS),
            "/external-entity": _fixed(200, "OK", "text/xml; charset=utf-8", EXTERNAL_ENTITY),
            "/huge": _huge,
            "/malformed": _fixed(200, "OK", "text/xml; charset=utf-8", MALFORMED),
            "/empty": _fixed(200, "OK", "text/xml; charset=utf-8", ""),
            "/html-error": _fixed(502, "Bad Gateway", "text/html; charset=utf-8", HTML_ERROR),
            "/reset": _reset,
            "/never-ends": _never_ends,
            "/slow-headers": _silent,
        }

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and return the base URL."""
        self._server = await asyncio.start_server(self._connection, host, port)
        bound = self._server.sockets[0].getsockname()
        return f"http://{_url_host(bound[0])}:{bound[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # /never-ends and /slow-headers would otherwise outlive the server.
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            request = await _read_request(reader)
            if request is not None:
                mode = self.modes.get(request.path)
                if mode is None:
                    index = "".join(f"{path}\n" for path in sorted(self.modes))
                    await _fixed(404, "Not Found", "text/plain; charset=utf-8", index)(
                        reader, writer
                    )
                else:
                    await mode(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client gave up, which is what it should do with most of these
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, separator, value = line.partition(":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    remaining = min(int(length), MAX_REQUEST_BODY) if length.isdigit() else 0
    while remaining > 0:
        chunk = await reader.read(min(remaining, _CHUNK))
        if not chunk:
            break
        remaining -= len(chunk)
    return _Request(method, target.split("?", 1)[0], headers)


def _head(status: int, reason: str, content_type: str, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", "Connection: close"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _fixed(status: int, reason: str, content_type: str, body: str) -> Mode:
    payload = body.encode()

    async def mode(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(status, reason, content_type, len(payload)) + payload)
        await writer.drain()

    return mode


async def _huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    start = (_ENVELOPE_START + '<GetDeedResponse xmlns="urn:rogue"><padding>').encode()
    end = ("</padding></GetDeedResponse>" + _ENVELOPE_END).encode()
    padding = HUGE_BYTES - len(start) - len(end)
    writer.write(_head(200, "OK", "text/xml; charset=utf-8", HUGE_BYTES) + start)
    block = b"A" * _CHUNK
    while padding > 0:
        piece = block if padding >= _CHUNK else block[:padding]
        writer.write(piece)
        padding -= len(piece)
        await writer.drain()
    writer.write(end)
    await writer.drain()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Linger zero turns close() into a RST instead of an orderly FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _never_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_head(200, "OK", "text/xml; charset=utf-8", None))
    first = _ENVELOPE_START.encode()
    writer.write(f"{len(first):x}\r\n".encode() + first + b"\r\n")
    await writer.drain()
    while not reader.at_eof() and not writer.is_closing():
        await asyncio.sleep(TRICKLE_INTERVAL)
        writer.write(b"1\r\n \r\n")
        await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Returns only when the client hangs up (or the server closes).
    while await reader.read(_CHUNK):
        pass


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
