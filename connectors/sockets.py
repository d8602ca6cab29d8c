"""A cheaper readability check for the agencies' pooled connections.

Before every request httpcore's pool asks each idle connection whether its socket is
readable (a server that closed it); through anyio each ask rebuilds the stream's table of
attributes, a `getpeername` system call among them, so with 16 connections open a call paid
for some 40 of them (a profile put it at a third of the HTTP client's CPU). This backend
keeps each plain TCP stream's socket and asks it directly; the check itself (a zero-timeout
poll) is httpcore's own, and TLS streams keep httpcore's path.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOBackend, AnyIOStream
from httpcore._utils import is_socket_readable

__all__ = ["ReadabilityBackend", "use_readability_backend"]


class _Stream(AnyIOStream):
    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        super().__init__(stream)
        self._socket: socket.socket | None = stream.extra(
            anyio.abc.SocketAttribute.raw_socket, None
        )

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        return super().get_extra_info(info)


class ReadabilityBackend(AnyIOBackend):
    """httpcore's anyio backend, whose TCP streams answer "is_readable" from their socket."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await super().connect_tcp(host, port, timeout, local_address, socket_options)
        assert isinstance(stream, AnyIOStream)
        return _Stream(stream._stream)


def use_readability_backend(transport: httpx.AsyncHTTPTransport) -> bool:
    """Give a direct (not proxied) transport's pool the backend; False when it has none."""
    pool = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        return False  # httpx or httpcore changed: their own check, slower, stays
    pool._network_backend = ReadabilityBackend()
    return True
