"""Rate limits per caller on /graphql, applied by an ASGI middleware after authentication
(gateway/edge/middleware.py).

Each principal has its own window (`principal.label`); anonymous callers have one per client address
(`client_address`, gateway/access/addresses.py, the one way every part of the gateway names
one: the connection's, or X-Forwarded-For's only when the connection comes from a configured
trusted proxy; an IPv6 address counts under its /64, `limit_key`). The limit depends on
the kind of caller: public, partner or internal. Windows are kept in process memory, or in
Redis when `redis_url` is set, so that every gateway process counts against the same limit.

The limits count operations: the middleware counts every request as one, and the view
counts the other n - 1 operations of a batch once it has read the body (`RateLimits.charge`).

Over the limit, the answer is 429 with `Retry-After` (seconds) and a GraphQL-shaped body
whose code is RATE_LIMITED. If Redis cannot be reached, requests pass (and a warning is
logged): an outage of the limiter must not become an outage of the gateway.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from coredis.exceptions import RedisError
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.util import WindowStats

# The one way to name a caller's address, and what a per-address limit counts (re-exported:
# the edge and the resolvers take client_address from here).
from gateway.access.addresses import UNKNOWN_ADDRESS as UNKNOWN_ADDRESS
from gateway.access.addresses import client_address as client_address
from gateway.access.addresses import limit_key
from gateway.access.principals import Principal, PrincipalKind
from gateway.clock import WallClock, utc_now
from gateway.settings import Settings
from gateway.shared import limits_storage, redis_call

log = logging.getLogger("gateway.guards.ratelimit")

WARN_EVERY_S = 60

STRATEGIES: dict[str, type[RateLimiter]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


async def _direct(command: Awaitable[Any]) -> Any:
    return await command


class RateLimits:
    """The policy: which window a caller counts against, and its limit."""

    def __init__(
        self, settings: Settings, storage: Storage | None = None, wall_clock: WallClock = utc_now
    ) -> None:
        self.wall_clock = wall_clock  # the windows' reset times are moments (gateway/clock.py)
        # A malformed limit fails at start-up, naming the setting, not on the first request.
        self.items: dict[str, RateLimitItem] = {}
        for group in ("public", "partner", "internal"):
            text = getattr(settings, f"rate_limit_{group}")
            try:
                self.items[group] = parse(text)
            except ValueError:
                raise ValueError(f"GATEWAY_RATE_LIMIT_{group.upper()} is not a rate") from None
        storage = storage or limits_storage(settings, "ratelimit")
        self.limiter = STRATEGIES[settings.rate_limit_strategy](storage)
        # Windows in this process answer at once: no task, shield and timeout per request.
        self.call: Callable[[Awaitable[Any]], Awaitable[Any]] = (
            _direct if isinstance(storage, MemoryStorage) else redis_call
        )
        self.warned_at = float("-inf")

    def window(self, principal: Principal, client_ip: str) -> tuple[RateLimitItem, str]:
        if principal.kind.internal or principal.kind is PrincipalKind.ROUTER:
            return self.items["internal"], principal.label
        if principal.kind.partner:
            return self.items["partner"], principal.label
        return self.items["public"], f"public:ip:{limit_key(client_ip)}"

    async def charge(self, principal: Principal, client_ip: str, operations: int = 1) -> int | None:
        """Counts `operations` against the caller's window: None when they may run, else the
        seconds until they may be tried again (nothing is counted then)."""
        item, key = self.window(principal, client_ip)
        try:
            # Shielded and bounded: a cancelled request must not poison Redis's connection.
            if await self.call(self.limiter.hit(item, key, cost=operations)):
                return None
            stats: WindowStats = await self.call(self.limiter.get_window_stats(item, key))
        except (StorageError, RedisError, TimeoutError):
            now = time.monotonic()
            if now - self.warned_at >= WARN_EVERY_S:  # once a minute, not once a request
                self.warned_at = now
                log.warning("rate limits unavailable; letting requests through", exc_info=True)
            return None
        return max(1, math.ceil(stats.reset_time - self.wall_clock().timestamp()))
