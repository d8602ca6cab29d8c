"""Serving: one uvicorn process per worker, each with its own SO_REUSEPORT socket.

uvicorn's own multi-worker mode shares one listening socket, and whichever process is
awake accepts: a burst of new connections (a load balancer's pool, a benchmark) can land
on one worker and leave the other cores idle for the connections' whole life. With a
socket per worker the kernel spreads connections across them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from types import FrameType

import uvicorn

from gateway.settings import Settings


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that name it,
    # and without it every small response waits ~40 ms for the delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        "gateway.edge.app:create_app",
        factory=True,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
        # The app alone decides whose X-Forwarded-For to believe (GATEWAY_TRUSTED_PROXIES);
        # uvicorn's default would trust it from loopback, where anyone local can forge it.
        proxy_headers=False,
        # A WebSocket frame over the limit closes the socket (1009) before it is assembled;
        # the app checks each message again (gateway/edge/websocket.py).
        ws_max_size=settings.websocket_max_message_bytes,
    )


def _worker(host: str, port: int) -> None:
    settings = Settings()
    sock = _listening_socket(host, port)
    uvicorn.Server(_config(settings)).run(sockets=[sock])


def serve(settings: Settings) -> None:
    """Runs until SIGINT or SIGTERM; a worker that dies takes the others down with it,
    so that a supervisor (systemd, the container runtime) restarts a whole gateway."""
    if settings.workers == 1:
        _worker(settings.host, settings.port)
        return
    # Bind once here first, so a port already taken fails before any worker starts.
    _listening_socket(settings.host, settings.port).close()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(settings.host, settings.port), name=f"worker-{n}")
        for n in range(settings.workers)
    ]
    for process in workers:
        process.start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for process in workers:
            if process.is_alive():
                process.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sentinels = [process.sentinel for process in workers]
    multiprocessing.connection.wait(sentinels)
    stop(signal.SIGTERM, None)
    for process in workers:
        process.join(timeout=10)
    if any(process.exitcode not in (0, -signal.SIGTERM) for process in workers):
        sys.exit(1)
