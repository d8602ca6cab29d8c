"""The agencies the gateway calls: their configuration, and one connector and guard for each.

The app builds `Agencies` once in its lifespan, from the settings and the shared HTTP client
(see `connectors.transport.build_client`); the WSDLs are loaded then, not on a request.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from connectors.postal import GET_ADDRESS, PostalAddress, PostalService
from connectors.resilience import (
    AgencyGuard,
    AgencyPolicy,
    AgencyStats,
    BreakerState,
    CallRecord,
)
from connectors.shared_cache import SharedStore, SharedTier
from connectors.soap.bank import CHECK_ACCOUNT_HOLDER, AccountHolder, Bank
from connectors.soap.civil_registry import GET_PERSON, CivilRecord, CivilRegistry
from connectors.soap.land_registry import GET_DEED, Deed, LandRegistry

__all__ = ["AGENCY_NAMES", "DEFAULT_POLICIES", "SHARED_ANSWERS", "Agencies", "AgencyConfig"]

AGENCY_NAMES = ("land_registry", "civil_registry", "bank", "postal")

# Three attempts when failures are quick, at most two when the agency is slow: the deadline
# is three timeouts, and an attempt starts only if its whole timeout still fits.
_COMMON = AgencyPolicy(
    timeout_s=3.0,
    retries=2,
    breaker_failure_threshold=5,
    breaker_reset_s=10.0,
    max_concurrency=16,
    cache_max_entries=20_000,
    deadline_s=9.0,
)
_FAST = dataclasses.replace(_COMMON, timeout_s=2.0, deadline_s=6.0, max_concurrency=32)

DEFAULT_POLICIES: dict[str, AgencyPolicy] = {
    "land_registry": dataclasses.replace(_COMMON, cache_ttl_s=300.0),
    "civil_registry": dataclasses.replace(_FAST, cache_ttl_s=3600.0),
    # The TTL is for account holders: payments are never cached (see connectors.soap.bank).
    "bank": dataclasses.replace(_COMMON, cache_ttl_s=600.0, cache_max_entries=10_000),
    "postal": dataclasses.replace(_FAST, cache_ttl_s=86_400.0),
}


# What each agency's answers may put in the shared cache tier, by operation, with the type
# they read back as. Batch look-ups (GetDeeds) and payments (never cached) are not shared.
SHARED_ANSWERS: dict[str, dict[str, Any]] = {
    "land_registry": {GET_DEED: Deed},
    "civil_registry": {GET_PERSON: CivilRecord},
    "bank": {CHECK_ACCOUNT_HOLDER: AccountHolder},
    "postal": {GET_ADDRESS: PostalAddress},
}


@dataclass(frozen=True, slots=True)
class AgencyConfig:
    """Where one agency is and how to call it. `policy` None means DEFAULT_POLICIES[name].

    Credentials are the WS-Security UsernameToken's (sent as a PasswordDigest), never part
    of `url`; the password is kept out of repr.
    """

    name: str
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    policy: AgencyPolicy | None = None
    soap_version: Literal["1.1", "1.2"] = "1.1"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.name}: the url must be an http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{self.name}: credentials belong in username/password, not the url")
        if (self.username is None) != (self.password is None):
            raise ValueError(f"{self.name}: give both username and password, or neither")
        if self.policy is None and self.name not in DEFAULT_POLICIES:
            raise ValueError(f"{self.name}: no default policy; give one")

    @property
    def effective_policy(self) -> AgencyPolicy:
        return self.policy or DEFAULT_POLICIES[self.name]


class Agencies:
    """Every agency's connector, each behind its own AgencyGuard.

    `on_call` receives a CallRecord for every call (for logs and metrics), `on_transition`
    each change of a breaker's state, `on_cache` each cache look-up; none may block.
    `clock` is the guards' (breakers, caches, call durations): tests move it by hand.
    """

    def __init__(
        self,
        configs: Mapping[str, AgencyConfig],
        http: httpx.AsyncClient,
        *,
        on_call: Callable[[CallRecord], None] | None = None,
        on_transition: Callable[[str, BreakerState], None] | None = None,
        on_cache: Callable[[str, bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared_store: SharedStore | None = None,
        shared_agencies: Collection[str] = (),
        soap_fast_path: bool = True,
    ) -> None:
        """`shared_store`: a cache every process shares (Redis), for the answers of the
        agencies named in `shared_agencies` (see SHARED_ANSWERS). `soap_fast_path`: SOAP
        operations through compiled plans (connectors/soap/fast.py) rather than zeep's proxy."""
        missing = [name for name in AGENCY_NAMES if name not in configs]
        if missing:
            raise ValueError(f"no configuration for: {', '.join(missing)}")
        for key, config in configs.items():
            if key != config.name:
                raise ValueError(f"configuration {key!r} is named {config.name!r}")
        self.configs = dict(configs)
        self.guards = {
            name: AgencyGuard(
                name,
                configs[name].effective_policy,
                on_call=on_call,
                on_transition=on_transition,
                on_cache=on_cache,
                clock=clock,
                shared=(
                    SharedTier(shared_store, name, SHARED_ANSWERS[name])
                    if shared_store is not None and name in shared_agencies
                    else None
                ),
            )
            for name in AGENCY_NAMES
        }
        land = configs["land_registry"]
        self.land_registry = LandRegistry(
            http,
            self.guards["land_registry"],
            address=land.url,
            username=land.username,
            password=land.password,
            soap_version=land.soap_version,
            fast=soap_fast_path,
        )
        civil = self._soap_11(configs["civil_registry"])
        self.civil_registry = CivilRegistry(
            http,
            self.guards["civil_registry"],
            address=civil.url,
            username=civil.username,
            password=civil.password,
            fast=soap_fast_path,
        )
        bank = self._soap_11(configs["bank"])
        self.bank = Bank(
            http,
            self.guards["bank"],
            address=bank.url,
            username=bank.username,
            password=bank.password,
            fast=soap_fast_path,
        )
        self.postal = PostalService(http, self.guards["postal"], address=configs["postal"].url)

    @staticmethod
    def _soap_11(config: AgencyConfig) -> AgencyConfig:
        if config.soap_version != "1.1":
            raise ValueError(f"{config.name} offers SOAP 1.1 only")
        return config

    def __repr__(self) -> str:
        return f"Agencies({', '.join(self.guards)})"

    def stats(self) -> list[AgencyStats]:
        return [guard.stats() for guard in self.guards.values()]
