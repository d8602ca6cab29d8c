"""State every gateway process shares through Redis, when `GATEWAY_REDIS_URL` is set.

Several gateway processes, on one machine or several, behind one load balancer, must agree on
what one process alone would know. PostgreSQL holds the durable part (records, the audit
trail, registered operations, jobs); Redis the rest:

- rate limits (gateway/guards/ratelimit.py) and the citizen look-up throttle
  (gateway/requests/lookup.py), windows counted across every process;
- the failed-authentication throttle (gateway/access/authentication.py), through
  `limits_storage` below: an address guessing keys is throttled by every process at once;
- automatic persisted queries (gateway/guards/documents.py);
- subscription events (gateway/events.py, pub/sub) and key revocations;
- a second cache tier for agency answers (`agency_store` below; connectors/shared_cache.py);
- the response cache's entries (gateway/guards/response_cache.py).

Without Redis each of them is kept in the process, as one process needs. When Redis fails,
each degrades as documented where it is used: limits let requests through, a shared cache
misses; nothing fails a request for it.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import coredis
import coredis.exceptions
from limits.aio.storage import MemoryStorage, RedisStorage, Storage

from gateway.settings import Settings

__all__ = [
    "REDIS_TIMEOUTS",
    "InProcessWindows",
    "RedisStore",
    "agency_store",
    "limits_storage",
    "redis_bytes",
    "redis_call",
    "redis_text",
]

log = logging.getLogger("gateway.shared")

WARN_EVERY_S = 60

T = TypeVar("T")

# Every Redis command is bounded, whoever sends it. coredis multiplexes the commands of many
# requests on one pooled connection. A command cancelled mid-flight (its HTTP client went away)
# makes coredis drop that shared connection: every other command in flight on it fails, and
# under uvloop commands racing the drop raise RuntimeError ("the handler is closed"), which no
# Redis user caught, so requests failed until the pool settled. And with no timeout a command
# whose reply never comes waits for ever. So each client is built with a deadline per command
# (`stream_timeout`: a command unanswered by then fails, and its connection is dropped and made
# again) and per connect, and `redis_call` runs a command shielded from the caller's
# cancellation (the shared connection is never dropped for it), waiting for it at most
# REDIS_COMMAND_TIMEOUT_S.
REDIS_COMMAND_TIMEOUT_S = 0.5
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_TIMEOUTS: dict[str, Any] = {
    "stream_timeout": REDIS_COMMAND_TIMEOUT_S,
    "connect_timeout": REDIS_CONNECT_TIMEOUT_S,
}

_running: set[asyncio.Future[Any]] = set()  # shielded commands in flight, kept referenced


def redis_bytes(url: str) -> coredis.Redis[bytes]:
    """A client answering bytes, every command bounded (REDIS_TIMEOUTS)."""
    return coredis.Redis.from_url(url, decode_responses=False, **REDIS_TIMEOUTS)


def redis_text(url: str) -> coredis.Redis[str]:
    """A client answering text, every command bounded (REDIS_TIMEOUTS)."""
    return coredis.Redis.from_url(url, decode_responses=True, **REDIS_TIMEOUTS)


async def redis_call(command: Awaitable[T], timeout_s: float = REDIS_COMMAND_TIMEOUT_S) -> T:
    """Run one Redis command so that cancelling the caller cannot poison the shared
    connection: the command finishes (or times out) on its own, the caller waits for it at
    most `timeout_s` and gets TimeoutError (an OSError) past that; a failure is a RedisError
    or an OSError."""
    task = asyncio.ensure_future(command)
    _running.add(task)
    task.add_done_callback(_finished)
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(task)
    except RuntimeError as error:
        # uvloop's "the handler is closed": coredis wrote on a connection whose transport had
        # just closed. Redis failed, like any other connection error, not the request.
        raise coredis.exceptions.ConnectionError(str(error)) from error


def _finished(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a command failing after its caller left is no news


class InProcessWindows(MemoryStorage):
    """`limits`' windows in this process, their old entries cleared on the event loop's
    thread at most once every EXPIRE_EVERY_S.

    limits' own MemoryStorage starts a clean-up task at every hit that finds none running,
    and the task hands each key's entries to the default executor's thread for a binary
    search (asyncio.to_thread): under steady load about one thread hop per request, with a
    future, a context copy and the GIL's hand-over both ways, for work of a microsecond. A
    window's decision never depends on the clean-up (a moving window compares its oldest
    counted entry's time; a counter's expiry is checked when it is read): the clean-up only
    bounds memory, and once a second does that as well."""

    EXPIRE_EVERY_S = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.expired_at = float("-inf")  # time.monotonic() of the last clean-up

    # limits calls its private `__schedule_expiry` before each hit; this replaces it.
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self.expired_at >= self.EXPIRE_EVERY_S:
            self.expired_at = now
            self.expire()

    def expire(self) -> None:
        """Drops what no window counts any more, in one go (no await: nothing interleaves)."""
        now = time.time()  # limits keeps its entries on the system clock
        for key, entries in list(self.events.items()):
            # Entries are kept newest first; the expired ones are at the end.
            keep = bisect.bisect_left(entries, -now, key=lambda entry: -entry.expiry)
            if keep:
                del entries[keep:]
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


def limits_storage(settings: Settings, name: str) -> Storage:
    """Windows for the `limits` library: in this process, or in Redis under
    `<prefix><name>` for every process when Redis is configured."""
    if settings.redis_url is None:
        return InProcessWindows()
    return RedisStorage(
        settings.redis_url.get_secret_value(),
        key_prefix=f"{settings.redis_key_prefix}{name}",
        wrap_exceptions=True,
        **REDIS_TIMEOUTS,
    )


class RedisStore:
    """Bytes under keys with a TTL in Redis (connectors.shared_cache.SharedStore). A Redis
    that fails is a miss, or a write skipped, with a warning at most once a minute."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._client: coredis.Redis[bytes] | None = None
        self._warned_at = float("-inf")

    @property
    def client(self) -> coredis.Redis[bytes]:
        if self._client is None:
            self._client = redis_bytes(self.url)
        return self._client

    def _unavailable(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("the shared agency cache is unavailable; asking agencies", exc_info=True)

    async def get(self, key: str) -> bytes | None:
        try:
            return await redis_call(self.client.get(self.prefix + key))
        except (coredis.exceptions.RedisError, OSError):
            self._unavailable()
            return None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await redis_call(
                self.client.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))
            )
        except (coredis.exceptions.RedisError, OSError):
            self._unavailable()


def agency_store(settings: Settings) -> RedisStore | None:
    """The shared tier of the agencies' caches, or None without Redis."""
    if settings.redis_url is None:
        return None
    return RedisStore(settings.redis_url.get_secret_value(), settings.redis_key_prefix)
