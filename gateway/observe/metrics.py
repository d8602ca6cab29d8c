"""Prometheus metrics (prometheus-client), the same whether one process serves or several.

`gateway run` with several workers points PROMETHEUS_MULTIPROC_DIR at a folder of its own
before they start (gateway/edge/serve.py): each process then writes its figures to files
there, and whichever process answers a scrape adds up every process's (`render`). Gauges say
how they combine: a pool's connections in use are summed over live processes, a breaker's
state is the worst any live process sees, the job queue's figures the most recent reading.

Labels are bounded: operation names go through `operation_label` (requests.py), outcomes are
documented error codes, agencies and their operations are the connectors' own names.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

requests = Counter(
    "gateway_requests",
    "HTTP requests by route, GraphQL operation name and outcome (the first error code, or OK).",
    ["route", "operation", "outcome"],
)
request_seconds = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer an HTTP request, by route, operation name and outcome.",
    ["route", "operation", "outcome"],
    buckets=_LATENCY,
)
rejected_operations = Counter(
    "gateway_rejected_operations",
    "Operations refused before they ran (QUERY_TOO_COMPLEX), by the limit they hit.",
    ["limit"],
)
rate_limited = Counter(
    "gateway_rate_limited_requests",
    "Requests answered 429 RATE_LIMITED, by kind of caller (unauthenticated: the throttle "
    "of failed authentications).",
    ["caller"],
)
agency_calls = Counter(
    "gateway_agency_calls",
    "Agency calls by agency, operation and outcome (ok, cached, rejected, unavailable, "
    "timeout, cancelled, error).",
    ["agency", "operation", "outcome"],
)
agency_seconds = Histogram(
    "gateway_agency_call_duration_seconds",
    "Agency calls' duration as the gateway saw it (cache, retries and backoff included).",
    ["agency", "operation", "outcome"],
    buckets=_LATENCY,
)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
breaker_state = Gauge(
    "gateway_agency_breaker_state",
    "An agency's circuit breaker: 0 closed, 1 half-open, 2 open (the worst of live processes).",
    ["agency"],
    multiprocess_mode="livemax",
)
breaker_transitions = Counter(
    "gateway_agency_breaker_transitions",
    "Changes of an agency's circuit breaker, by the state it moved to.",
    ["agency", "to"],
)
cache_lookups = Counter(
    "gateway_agency_cache_lookups",
    "Look-ups in an agency's answer cache, by result (hit or miss).",
    ["agency", "result"],
)
pool_in_use = Gauge(
    "gateway_db_pool_connections_in_use",
    "Connections of a database's pool checked out now (summed over live processes).",
    ["database"],
    multiprocess_mode="livesum",
)
pool_checkouts = Counter(
    "gateway_db_pool_checkouts",
    "Connections taken from a database's pool.",
    ["database"],
)
jobs_waiting = Gauge(
    "gateway_jobs",
    "Durable jobs not finished, by kind and state (queued, scheduled, running).",
    ["kind", "state"],
    multiprocess_mode="mostrecent",
)
jobs_oldest_due = Gauge(
    "gateway_jobs_oldest_due_age_seconds",
    "How long the oldest job that is due (queued, or past its next attempt) has waited.",
    ["kind"],
    multiprocess_mode="mostrecent",
)
audit_appends = Counter(
    "gateway_audit_appends",
    "Appends to the audit trail (one group commit each), by outcome (ok or failed).",
    ["outcome"],
)
audit_records = Counter("gateway_audit_records", "Records appended to the audit trail.")
audit_seconds = Histogram(
    "gateway_audit_append_duration_seconds",
    "Time one append to the audit trail took.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def multiprocess_dir() -> Path | None:
    given = os.environ.get(MULTIPROCESS_DIR)
    return Path(given) if given else None


def prepare_multiprocess(directory: Path) -> None:
    """Empties the folder the workers of a new start will write to (figures of an earlier
    run would be added to theirs) and names it for them: before they start."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR] = str(directory)


def process_gone(pid: int) -> None:
    """A worker exited: its live gauges no longer count."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's figures when several serve, else this one's."""
    if multiprocess_dir() is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def render() -> bytes:
    return generate_latest(registry())


# Bounded as the labels are: routes, operation names (at most 500) and error codes.
_request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_request(
    route: str,
    operation: str,
    outcome: str,
    seconds: float,
    limits: Iterable[str],
    status: int,
    caller: str,
) -> None:
    labelled = _request_children.get((route, operation, outcome))
    if labelled is None:  # the labels' children once per combination (their look-up locks)
        labelled = (
            requests.labels(route, operation, outcome),
            request_seconds.labels(route, operation, outcome),
        )
        _request_children[route, operation, outcome] = labelled
    labelled[0].inc()
    labelled[1].observe(seconds)
    for limit in limits:
        rejected_operations.labels(limit).inc()
    if status == 429:
        rate_limited.labels(caller).inc()


def observe_agency_call(agency: str, operation: str, outcome: str, seconds: float) -> None:
    agency_calls.labels(agency, operation, outcome).inc()
    agency_seconds.labels(agency, operation, outcome).observe(seconds)


def observe_breaker(agency: str, state: str, moved: bool = True) -> None:
    breaker_state.labels(agency).set(BREAKER_STATES.get(state, 2))
    if moved:
        breaker_transitions.labels(agency, state).inc()


def observe_cache(agency: str, hit: bool) -> None:
    cache_lookups.labels(agency, "hit" if hit else "miss").inc()


def observe_audit_append(records: int, seconds: float, ok: bool) -> None:
    audit_appends.labels("ok" if ok else "failed").inc()
    if ok:
        audit_records.inc(records)
    audit_seconds.observe(seconds)


def observe_jobs(
    counts: Mapping[tuple[str, str], int], oldest_due: Mapping[str, float], kinds: Iterable[str]
) -> None:
    """One reading of the job queue: counts by (kind, state), the oldest due job's age by
    kind; kinds with nothing waiting read 0."""
    for kind in kinds:
        for state in ("queued", "scheduled", "running"):
            jobs_waiting.labels(kind, state).set(counts.get((kind, state), 0))
        jobs_oldest_due.labels(kind).set(oldest_due.get(kind, 0.0))


def watch_pools(engines: Mapping[str, AsyncEngine]) -> None:
    """Counts each database's pooled connections in use, through the pool's own events."""
    for name, engine in engines.items():
        gauge = pool_in_use.labels(name)
        checkouts = pool_checkouts.labels(name)

        def checkout(*_args: Any, gauge: Any = gauge, checkouts: Any = checkouts) -> None:
            gauge.inc()
            checkouts.inc()

        def checkin(*_args: Any, gauge: Any = gauge) -> None:
            gauge.dec()

        event.listen(engine.sync_engine, "checkout", checkout)
        event.listen(engine.sync_engine, "checkin", checkin)
