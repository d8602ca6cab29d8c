"""What the inquiries' jobs work with: the databases, an HTTP client, the agencies, and a way
to tell subscribers that an inquiry changed.

DBOS runs job handlers on an event loop of its own (a background thread), while a gateway
process serves requests on uvicorn's. Async engines and HTTP clients belong to the loop that
made them, so each loop that runs a handler gets its own set, built on first use there and
closed when the runtime closes. In a gateway process the app's loop lends its own (`adopt`)
and handlers hand their database and agency work to it (`at_home`): one set of connection
pools a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from connectors.agencies import Agencies
from db.engines import Databases
from gateway.agencies import build_agencies, build_http_client
from gateway.clock import WallClock, utc_now
from gateway.inquiries.config import InquirySettings, inquiry_settings
from gateway.settings import Settings

log = logging.getLogger("gateway.inquiries")
T = TypeVar("T")

WEBHOOK_TIMEOUT_S = 10.0  # a partner's server answers a delivery within this, or it is retried

# Told the tracking code and new status of an inquiry that changed, from whichever loop
# changed it.
Notify = Callable[[str, str], None]


@dataclass
class _LoopResources:
    databases: Databases
    http: httpx.AsyncClient
    agencies: Agencies
    # Partners' webhooks: a plain client, without the agencies' X-Road headers.
    webhooks: httpx.AsyncClient

    async def close(self) -> None:
        await self.webhooks.aclose()
        await self.http.aclose()
        await self.databases.dispose()


class JobRuntime:
    """Per-loop resources for the inquiries' job handlers, and the process's notifier."""

    def __init__(
        self,
        settings: Settings,
        *,
        wall_clock: WallClock = utc_now,
        notify: Notify | None = None,
    ) -> None:
        self.settings = settings
        self.wall_clock = wall_clock
        self.notify: Notify = notify or (lambda _code, _status: None)
        self._by_loop: dict[asyncio.AbstractEventLoop, _LoopResources] = {}
        self._home: tuple[asyncio.AbstractEventLoop, Databases, Agencies] | None = None

    def adopt(self, databases: Databases, agencies: Agencies) -> None:
        """The calling loop (the app's) lends its databases and agencies: handlers' work runs
        there (`at_home`), so that a gateway process keeps one set of connection pools, not
        one for requests and another for jobs."""
        self._home = (asyncio.get_running_loop(), databases, agencies)

    async def at_home(self, work: Callable[[Databases, Agencies], Awaitable[T]]) -> T:
        """`work` with the adopted databases and agencies, on their loop; in a process that
        adopted none (`gateway worker`), or once that loop has stopped, with this loop's
        own."""
        loop = asyncio.get_running_loop()
        home = self._home
        if home is None or not home[0].is_running():
            return await work(self.databases, self.agencies)
        home_loop, databases, agencies = home
        if home_loop is loop:
            return await work(databases, agencies)
        future = asyncio.run_coroutine_threadsafe(_coroutine(work(databases, agencies)), home_loop)
        return await asyncio.wrap_future(future)

    @property
    def config(self) -> InquirySettings:
        return inquiry_settings(self.settings)

    def _resources(self) -> _LoopResources:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            http = build_http_client(self.settings)
            found = _LoopResources(
                databases=Databases(
                    self.settings.database_urls, pool_size=self.settings.database_pool_size
                ),
                http=http,
                agencies=build_agencies(self.settings, http),
                webhooks=httpx.AsyncClient(
                    timeout=httpx.Timeout(WEBHOOK_TIMEOUT_S), follow_redirects=False
                ),
            )
            self._by_loop[loop] = found
        return found

    def _adopted(self) -> tuple[asyncio.AbstractEventLoop, Databases, Agencies] | None:
        """The app's databases and agencies when called on the app's loop."""
        home = self._home
        return home if home is not None and home[0] is asyncio.get_running_loop() else None

    @property
    def databases(self) -> Databases:
        home = self._adopted()
        return home[1] if home is not None else self._resources().databases

    @property
    def http(self) -> httpx.AsyncClient:
        return self._resources().http

    @property
    def agencies(self) -> Agencies:
        home = self._adopted()
        return home[2] if home is not None else self._resources().agencies

    @property
    def webhooks(self) -> httpx.AsyncClient:
        return self._resources().webhooks

    async def close(self) -> None:
        """Closes each loop's resources on its own loop (a stopped loop's are dropped)."""
        here = asyncio.get_running_loop()
        for loop, resources in list(self._by_loop.items()):
            del self._by_loop[loop]
            if loop is here:
                await resources.close()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(resources.close(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(future)


async def _coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
