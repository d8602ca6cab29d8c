"""A citizen reading their own request (پیگیری درخواست): with its tracking code and the last
four digits of the mobile number it was registered with, and nothing else.

No oracle: a wrong four digits, a code that was never issued and a request whose personal
data has been erased all answer exactly alike (null), after the same one statement. Guessing
is throttled twice, with the `limits` library the gateway's rate limits use (in memory, or in
Redis when `redis_url` is set, so that every process counts alike):

- per client address, every lookup (`request_lookup_rate`, default 20 a minute);
- per tracking code, every lookup that found nothing (`request_lookup_failures`, default 5
  an hour), whether the code exists or not, so that the throttle itself tells nothing; the
  10,000 possible endings of one mobile number then take years from any number of addresses.

Over either limit the answer is RATE_LIMITED with extensions.retryAfter (seconds).
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from db.engines import Databases
from gateway.access.addresses import limit_key
from gateway.errors import BadUserInput, GatewayError
from gateway.requests.records import DATABASE, CitizenRequest, load_by_tracking_code
from gateway.settings import Settings
from gateway.shared import InProcessWindows
from identifiers import normalize_digits

log = logging.getLogger("gateway.requests.lookup")

__all__ = ["LookupRateLimited", "LookupThrottle", "find_for_citizen", "parse_last4", "throttle_for"]


class LookupRateLimited(GatewayError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many lookups of citizen requests; try again later.", retryAfter=retry_after
        )


def parse_last4(text: str) -> str:
    """Four digits (Persian and Arabic-Indic accepted); BadUserInput (mobileLast4) else."""
    digits = normalize_digits(text).strip()
    if len(digits) != 4 or not digits.isascii() or not digits.isdigit():
        raise BadUserInput(
            "mobileLast4 is the mobile number's last four digits.", field="mobileLast4"
        )
    return digits


class LookupThrottle:
    """The two limits above, over one storage."""

    def __init__(
        self,
        per_address: str,
        failures_per_code: str,
        storage: Storage | None = None,
    ) -> None:
        self.per_address: RateLimitItem = parse(per_address)
        self.failures_per_code: RateLimitItem = parse(failures_per_code)
        self.limiter = MovingWindowRateLimiter(storage or InProcessWindows())
        self.warned_at = float("-inf")

    def _retry_after(self, reset_time: float) -> int:
        # The limits library keeps its windows on the system clock (time.time()).
        return max(1, math.ceil(reset_time - time.time()))

    def _unavailable(self) -> None:
        now = time.monotonic()
        if now - self.warned_at >= 60:
            self.warned_at = now
            log.warning("lookup throttle unavailable; letting lookups through", exc_info=True)

    async def admit(self, address: str, tracking_code: str) -> None:
        """Counts a lookup from `address`, and refuses it (RATE_LIMITED) when the address or
        the tracking code is over its limit."""
        address = limit_key(address)  # an IPv6 caller counts under its /64
        try:
            if not await self.limiter.hit(self.per_address, "address", address):
                stats = await self.limiter.get_window_stats(self.per_address, "address", address)
                raise LookupRateLimited(self._retry_after(stats.reset_time))
            if not await self.limiter.test(self.failures_per_code, "code", tracking_code):
                stats = await self.limiter.get_window_stats(
                    self.failures_per_code, "code", tracking_code
                )
                raise LookupRateLimited(self._retry_after(stats.reset_time))
        except StorageError:
            self._unavailable()

    async def failed(self, tracking_code: str) -> None:
        """Counts a lookup of `tracking_code` that found nothing."""
        try:
            await self.limiter.hit(self.failures_per_code, "code", tracking_code)
        except StorageError:
            self._unavailable()


# By identity: settings objects are not hashable, and each is built once per process.
_BUILT: dict[int, tuple[Settings, LookupThrottle]] = {}


def throttle_for(settings: Settings) -> LookupThrottle:
    """The process's throttle for `settings`, built once."""
    found = _BUILT.get(id(settings))
    if found is not None and found[0] is settings:
        return found[1]
    storage: Storage | None = None
    if settings.redis_url is not None:
        storage = RedisStorage(
            settings.redis_url.get_secret_value(),
            key_prefix=f"{settings.redis_key_prefix}request-lookup",
            wrap_exceptions=True,
        )
    built = LookupThrottle(settings.request_lookup_rate, settings.request_lookup_failures, storage)
    if len(_BUILT) >= 64:  # tests build many settings; a process uses one
        _BUILT.clear()
    _BUILT[id(settings)] = (settings, built)
    return built


async def find_for_citizen(
    databases: Databases, tracking_code: str, last4: str
) -> CitizenRequest | None:
    """The request with this (parsed) tracking code whose mobile ends in `last4`, else None.
    The digits are compared in constant time, and against a placeholder when there is no
    request or no mobile any more, so that every miss costs the same."""
    async with databases.engine(DATABASE).connect() as connection:
        found = await load_by_tracking_code(connection, tracking_code)
    mobile: Any = None if found is None else found.citizen_mobile
    ending = mobile[-4:] if isinstance(mobile, str) and len(mobile) >= 4 else "\x00" * 4
    matches = hmac.compare_digest(ending.encode(), last4.encode())
    return found if matches and found is not None and mobile is not None else None
