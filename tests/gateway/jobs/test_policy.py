"""Backoff with jitter, and the engine's configuration, without an engine."""

from __future__ import annotations

import pytest

from gateway.jobs import JobsConfig, RetryPolicy
from gateway.jobs.config import engine_url


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=2, multiplier=2, max_delay_s=60)
    ceilings = [policy.delay_s(attempt, lambda: 1.0) for attempt in range(1, 8)]
    assert ceilings == [2, 4, 8, 16, 32, 60, 60]


def test_jitter_spreads_each_delay_over_the_upper_half_of_its_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=8, multiplier=2, max_delay_s=600)
    assert policy.delay_s(1, lambda: 0.0) == 4
    assert policy.delay_s(1, lambda: 0.5) == 6
    assert policy.delay_s(3, lambda: 0.0) == 16


def test_a_policy_needs_one_attempt_and_sane_delays() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)


def test_the_lease_outlasts_two_heartbeats_and_bounds_a_takeover() -> None:
    with pytest.raises(ValueError, match="lease_s"):
        JobsConfig(database_url="sqlite:///x", heartbeat_interval_s=5, lease_s=10)
    config = JobsConfig(
        database_url="sqlite:///x", heartbeat_interval_s=5, lease_s=30, polling_interval_s=1
    )
    assert config.takeover_bound_s == 36


def test_async_driver_urls_map_to_the_engines_own() -> None:
    assert engine_url("sqlite+aiosqlite:////data/jobs.sqlite3") == "sqlite:////data/jobs.sqlite3"
    assert (
        engine_url("postgresql+asyncpg://gw:secret@db/gateway")
        == "postgresql://gw:secret@db/gateway"
    )
    with pytest.raises(ValueError, match="mysql"):
        engine_url("mysql+asyncmy://root@db/gateway")
