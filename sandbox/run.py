"""Run the simulated agencies on loopback: `python -m sandbox`, or from tests and benchmarks.

Tests and benchmarks use `async with run_agencies() as agencies:` (ephemeral ports, the default
databases unless URLs are given), then `agencies.land_registry` etc. are base URLs; and
`async with run_rogue() as url:` for the hostile server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass

import uvicorn
from sqlalchemy import func, select
from starlette.types import ASGIApp

from db.engines import create_engine
from db.planning import Parcel
from sandbox import bank, civil_registry, land_registry, postal
from sandbox.chaos import Chaos
from sandbox.dataset import Dataset, database_url
from sandbox.rogue import RogueServer
from sandbox.wsse import Credentials

logger = logging.getLogger(__name__)

AGENCIES = ("land_registry", "civil_registry", "bank", "postal")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {"land_registry": 8101, "civil_registry": 8102, "bank": 8103, "postal": 8104}
SHUTDOWN_GRACE_SECONDS = 3


@dataclass(frozen=True)
class Agencies:
    """The base URL of every running agency (no trailing slash)."""

    land_registry: str
    civil_registry: str
    bank: str
    postal: str

    def url(self, agency: str) -> str:
        if agency not in AGENCIES:
            raise KeyError(agency)
        url: str = getattr(self, agency)
        return url

    def wsdl_url(self, agency: str) -> str:
        return f"{self.url(agency)}/?wsdl"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to whoever runs it (tests, or `main`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The explicit protocol matters: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it every small answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_apps(
    dataset: Dataset,
    credentials: Mapping[str, Credentials] | None = None,
    chaos_seed: int = 0,
) -> dict[str, ASGIApp]:
    """The four agencies' ASGI apps over one dataset."""
    given = dict(credentials or {})
    return {
        "land_registry": land_registry.build(
            dataset, credentials=given.get("land_registry"), chaos=Chaos(chaos_seed)
        ).app(),
        "civil_registry": civil_registry.build(
            dataset, credentials=given.get("civil_registry"), chaos=Chaos(chaos_seed)
        ).app(),
        "bank": bank.build(dataset, credentials=given.get("bank"), chaos=Chaos(chaos_seed)).app(),
        "postal": postal.build(dataset, chaos=Chaos(chaos_seed)).app(),
    }


@contextlib.asynccontextmanager
async def run_agencies(
    ports: Mapping[str, int] | None = None,
    *,
    host: str = DEFAULT_HOST,
    planning_url: str | None = None,
    revenue_url: str | None = None,
    credentials: Mapping[str, Credentials] | None = None,
    chaos_seed: int = 0,
) -> AsyncIterator[Agencies]:
    """Serve all four agencies in the running event loop until the block exits.

    `ports` maps agency names to ports; a missing name (or `ports=None`) gets an ephemeral
    port. The databases default to the gateway's (see `dataset.database_url`); credentials
    default to the environment and then to the demo ones (see `wsse`).
    """
    unknown = set(ports or {}) - set(AGENCIES)
    if unknown:
        raise ValueError(f"unknown agencies: {', '.join(sorted(unknown))}")
    planning = create_engine(planning_url or database_url("planning"))
    revenue = create_engine(revenue_url or database_url("revenue"))
    servers: list[tuple[_Server, asyncio.Task[None]]] = []
    try:
        apps = build_apps(Dataset(planning, revenue), credentials, chaos_seed)
        urls: dict[str, str] = {}
        for name in AGENCIES:
            sock = _bind(host, (ports or {}).get(name, 0))
            urls[name] = _url(sock)
            config = uvicorn.Config(
                apps[name],
                lifespan="off",
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve(sockets=[sock]), name=f"sandbox-{name}")
            servers.append((server, task))
        for server, task in servers:
            while not server.started:
                if task.done():
                    task.result()  # raises the reason it stopped
                    raise RuntimeError(f"{task.get_name()} stopped while starting")
                await asyncio.sleep(0.01)
        yield Agencies(**urls)
    finally:
        for server, _ in servers:
            server.should_exit = True
        if servers:
            await asyncio.gather(*(task for _, task in servers), return_exceptions=True)
        await planning.dispose()
        await revenue.dispose()


@contextlib.asynccontextmanager
async def run_rogue(host: str = DEFAULT_HOST, port: int = 0) -> AsyncIterator[str]:
    """Serve the hostile server (see `rogue`) and yield its base URL."""
    server = RogueServer()
    url = await server.start(host, port)
    try:
        yield url
    finally:
        await server.close()


def configured_ports() -> dict[str, int]:
    """SANDBOX_<AGENCY>_PORT, else the default port of each agency."""
    return {
        name: int(os.environ.get(f"SANDBOX_{name.upper()}_PORT") or DEFAULT_PORTS[name])
        for name in AGENCIES
    }


async def _parcel_count(url: str) -> int | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(Parcel)) or 0)
    except Exception:
        return None
    finally:
        await engine.dispose()


# On a first `make run` the gateway, started beside the agencies, migrates and seeds the
# planning database while they start: they wait for it quietly, and warn only when it is
# still empty after this long (seeding the default 2,000 parcels takes a few seconds).
SEED_GRACE_S = 120.0
SEED_POLL_S = 1.0
NOT_SEEDED = (
    "warning: the planning database still holds no parcels; run the gateway once (it seeds "
    "the demo data) or point SANDBOX_PLANNING_DATABASE_URL at a seeded one"
)


def _say(line: str) -> None:
    print(line, flush=True)


async def warn_unless_seeded(
    count: Callable[[], Awaitable[int | None]],
    *,
    grace_s: float = SEED_GRACE_S,
    poll_s: float = SEED_POLL_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    say: Callable[[str], None] | None = None,
) -> bool:
    """Waits for planning to hold parcels (`count`: None while the database is not there
    yet); says NOT_SEEDED once if it still holds none after `grace_s`. True once seeded."""
    waited = 0.0
    while not await count():
        if waited >= grace_s:
            (say or _say)(NOT_SEEDED)
            return False
        await sleep(poll_s)
        waited += poll_s
    return True


async def serve(host: str | None = None, ports: Mapping[str, int] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, printing one line per agency."""
    host = host or os.environ.get("SANDBOX_HOST") or DEFAULT_HOST
    planning_url = database_url("planning")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with run_agencies(ports or configured_ports(), host=host) as agencies:
            for name in AGENCIES:
                print(f"{name:<15} {agencies.url(name)}", flush=True)
            watch = asyncio.create_task(
                warn_unless_seeded(functools.partial(_parcel_count, planning_url))
            )
            try:
                await stop.wait()
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
