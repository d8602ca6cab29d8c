"""Wiring the outside agencies into the gateway: configuration, call records, correlation."""

from __future__ import annotations

import dataclasses
import logging

import httpx

from connectors.agencies import AGENCY_NAMES, DEFAULT_POLICIES, Agencies, AgencyConfig
from connectors.resilience import CallRecord
from connectors.transport import build_client
from gateway.cost import current_cost
from gateway.settings import Settings

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
        configs[name] = AgencyConfig(
            name=name,
            url=agency.url,
            username=agency.username,
            password=None if agency.password is None else agency.password.get_secret_value(),
            policy=policy,
        )
    return configs


def record_call(record: CallRecord) -> None:
    """Every agency call leaves a line: agency, operation, outcome, duration, request id.

    No arguments, keys or answers: they can be personal data.
    """
    if record.attempts:
        cost = current_cost.get()
        if cost is not None:
            cost.agency_calls += record.attempts
    log.info(
        "agency call %s.%s outcome=%s duration_ms=%.1f attempts=%d request_id=%s",
        record.agency,
        record.operation,
        record.outcome,
        record.duration_ms,
        record.attempts,
        record.request_id or "-",
    )


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
    return Agencies(agency_configs(settings), http, on_call=record_call)
