"""Wiring the outside agencies into the gateway: configuration, call records, correlation."""

from __future__ import annotations

import dataclasses
import logging

import httpx

from connectors.agencies import AGENCY_NAMES, DEFAULT_POLICIES, Agencies, AgencyConfig
from connectors.resilience import CallRecord
from connectors.transport import build_client
from gateway.cost import current_cost
from gateway.observe import metrics
from gateway.observe.logs import fields
from gateway.settings import Settings
from gateway.shared import agency_store

log = logging.getLogger("gateway.agencies")


def agency_configs(settings: Settings) -> dict[str, AgencyConfig]:
    configs = {}
    for name in AGENCY_NAMES:
        agency = settings.agency(name)
        policy = DEFAULT_POLICIES[name]
        if agency.timeout_s is not None:
            # The overall deadline follows the timeout: attempts are sized by it.
            policy = dataclasses.replace(
                policy, timeout_s=agency.timeout_s, deadline_s=agency.timeout_s * 3
            )
        if settings.agency_breaker_reset_s is not None:
            policy = dataclasses.replace(policy, breaker_reset_s=settings.agency_breaker_reset_s)
        # Each agency's own settings, where given, over the defaults and the common reset.
        overrides = {
            "cache_ttl_s": agency.cache_ttl_s,
            "max_concurrency": agency.max_concurrency,
            "breaker_failure_threshold": agency.breaker_failures,
            "breaker_reset_s": agency.breaker_reset_s,
        }
        given = {name: value for name, value in overrides.items() if value is not None}
        if given:
            policy = dataclasses.replace(policy, **given)  # type: ignore[arg-type]
        configs[name] = AgencyConfig(
            name=name,
            url=agency.url,
            username=agency.username,
            password=None if agency.password is None else agency.password.get_secret_value(),
            policy=policy,
        )
    return configs


def record_call(record: CallRecord) -> None:
    """Every agency call leaves a line (agency, operation, outcome, duration, attempts; the
    request id and trace id as every line has them) and its metrics.

    No arguments, keys or answers: they can be personal data.
    """
    if record.attempts:
        cost = current_cost.get()
        if cost is not None:
            cost.agency_calls += record.attempts
    metrics.observe_agency_call(
        record.agency, record.operation, record.outcome, record.duration_ms / 1000
    )
    if not log.isEnabledFor(logging.INFO):
        return  # below the level: no fields gathered for a line nobody writes
    log.info(
        "agency call %s.%s outcome=%s duration_ms=%.1f attempts=%d request_id=%s",
        record.agency,
        record.operation,
        record.outcome,
        record.duration_ms,
        record.attempts,
        record.request_id or "-",
        extra=fields(
            agency=record.agency,
            agency_operation=record.operation,
            outcome=record.outcome,
            duration_ms=round(record.duration_ms, 2),
            attempts=record.attempts,
            **({"request_id": record.request_id} if record.request_id else {}),
        ),
    )


def record_transition(agency: str, state: str) -> None:
    """A breaker changed state: a line, and the metrics' state and transitions."""
    metrics.observe_breaker(agency, state)
    log.warning("agency %s: breaker %s", agency, state, extra=fields(agency=agency, breaker=state))


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    longest = max(
        (settings.agency(name).timeout_s or DEFAULT_POLICIES[name].timeout_s)
        for name in AGENCY_NAMES
    )
    # The policies' timeouts are meant to fire first; this one is the backstop.
    return build_client(
        max_response_bytes=settings.agency_max_response_bytes,
        timeout=httpx.Timeout(longest + 1.0),
    )


def build_agencies(settings: Settings, http: httpx.AsyncClient) -> Agencies:
    """Loads every vendored WSDL: call once, at start-up."""
    agencies = Agencies(
        agency_configs(settings),
        http,
        on_call=record_call,
        on_transition=record_transition,
        on_cache=metrics.observe_cache,
        # A second cache tier in Redis, shared by every process (gateway/shared.py).
        shared_store=agency_store(settings),
        shared_agencies=settings.agency_shared_cache,
        soap_fast_path=settings.agency_soap_path == "fast",
    )
    for name in agencies.guards:  # every breaker starts closed
        metrics.observe_breaker(name, "closed", moved=False)
    return agencies
