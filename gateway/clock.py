"""The gateway's one notion of "now": wall time, aware, in UTC, from a clock that is handed to
whatever needs it (keys, the audit trail and its checkpoints, authentication's cache and
throttle, rate limits, durable work), so that tests set the time instead of waiting for it.

Intervals (timeouts, budgets, breakers) are measured on the monotonic clock instead; this one
is for moments that are stored or shown. The gateway's own tables keep naive UTC, the portable
choice across SQLite, PostgreSQL and MariaDB: `naive_utc` is what goes into a column, `as_utc`
what comes out of one on its way out of the domain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

# A wall clock: returns the current moment, aware, in UTC.
WallClock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The system's wall clock."""
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Aware, in UTC; a naive moment (as the gateway's columns hold them) is UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """Naive UTC, as the gateway's columns hold it; a naive moment is taken to be UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def epoch_seconds(clock: WallClock) -> Callable[[], float]:
    """The same clock as seconds since the epoch, for code that counts in them (the `limits`
    library's windows, the durable-work engine)."""
    return lambda: clock().timestamp()
