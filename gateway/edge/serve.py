"""Serving: one uvicorn process per worker, each with its own SO_REUSEPORT socket.

uvicorn's own multi-worker mode shares one listening socket, and whichever process is
awake accepts: a burst of new connections (a load balancer's pool, a benchmark) can land
on one worker and leave the other cores idle for the connections' whole life. With a
socket per worker the kernel spreads connections across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn
from prometheus_client import start_http_server

from gateway.migration_logs import quiet_migrations
from gateway.observe import metrics
from gateway.observe.logs import configure_logging
from gateway.settings import Settings

log = logging.getLogger("gateway.serve")
DRAIN_S = 0.05


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
        # Lines in the gateway's own format (gateway/observe/logs.py), one per request from
        # the app itself (gateway/edge/observe.py) instead of uvicorn's access log.
        log_config=None,
        access_log=False,
        # On SIGTERM: stop accepting, let in-flight requests finish within the grace period
        # (WebSockets are closed with 1012, "service restart"), then the lifespan's shutdown.
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        # uvicorn's default is 5 s, httpx's own expiry: a connection the client reused just
        # as the server closed it failed with a ReadError (see Settings.keep_alive_s).
        timeout_keep_alive=settings.keep_alive_s,
        # The app alone decides whose X-Forwarded-For to believe (GATEWAY_TRUSTED_PROXIES);
        # uvicorn's default would trust it from loopback, where anyone local can forge it.
        proxy_headers=False,
        # A WebSocket frame over the limit closes the socket (1009) before it is assembled;
        # the app checks each message again (gateway/edge/websocket.py).
        ws_max_size=settings.websocket_max_message_bytes,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it has stopped accepting (the first step of its graceful
    shutdown) and how many connections it still finishes."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        # A request whose bytes arrived just before the signal is read now, so that uvicorn
        # finishes it instead of closing its connection as idle.
        await asyncio.sleep(DRAIN_S)
        log.info(
            "stopped accepting connections; finishing %d within %s s",
            len(self.server_state.connections),
            self.config.timeout_graceful_shutdown,
        )
        await super().shutdown(sockets)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _worker(host: str, port: int) -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    # uvicorn raises the signal again once its graceful shutdown is done, with the handler it
    # found: this one, so that a stop on SIGTERM exits 0 rather than killed by the signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    quiet_migrations(show=settings.log_migrations)  # a spawned worker, as its parent
    sock = _listening_socket(host, port)
    _Server(_config(settings)).run(sockets=[sock])


@contextlib.contextmanager
def _metrics_port(settings: Settings) -> Iterator[None]:
    """`/metrics` without a key on GATEWAY_METRICS_PORT (bind it privately), every
    worker's figures added up, while the gateway runs."""
    if settings.metrics_port is None:
        yield
        return
    server, thread = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry()
    )
    try:
        yield
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextlib.contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """Several workers write their figures to a folder of files that any of them (and the
    metrics port) adds up; a fresh folder for each start, removed after it."""
    if workers == 1:
        yield
        return
    given = metrics.multiprocess_dir()
    directory = given or Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    metrics.prepare_multiprocess(directory)
    try:
        yield
    finally:
        if given is None:
            shutil.rmtree(directory, ignore_errors=True)


def serve(settings: Settings) -> None:
    """Runs until SIGINT or SIGTERM; a worker that dies takes the others down with it,
    so that a supervisor (systemd, the container runtime) restarts a whole gateway."""
    configure_logging(settings.log_level, settings.effective_log_format)
    with _multiprocess_metrics(settings.workers), _metrics_port(settings):
        if settings.workers == 1:
            _worker(settings.host, settings.port)
        else:
            _serve_workers(settings)


def _serve_workers(settings: Settings) -> None:
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
        # Each finishes its in-flight requests and hands back its jobs first.
        process.join(timeout=settings.shutdown_grace_s + settings.jobs_shutdown_grace_s + 10)
        if process.pid is not None:
            metrics.process_gone(process.pid)
    if any(process.exitcode not in (0, -signal.SIGTERM) for process in workers):
        sys.exit(1)
