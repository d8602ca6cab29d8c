"""The gateway's one settings object, read from GATEWAY_* variables and an optional TOML file."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from db.registry import DATABASES

AGENCIES = ("land_registry", "civil_registry", "bank", "postal")


@dataclass(frozen=True)
class AgencySettings:
    """Where one outside agency is. Credentials only ever come from configuration."""

    url: str
    username: str | None
    password: SecretStr | None
    timeout_s: float | None  # None: the agency's default policy
    cache_ttl_s: float | None = None  # each None: the agency's default policy
    max_concurrency: int | None = None
    breaker_failures: int | None = None
    breaker_reset_s: float | None = None


class Settings(BaseSettings):
    """Everything configurable; built once at start-up and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        toml_file=os.environ.get("GATEWAY_CONFIG_FILE") or None,
        extra="forbid",
    )

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Operations (gateway/observe): log lines as JSON (production's default) or as text
    # (development's); Prometheus metrics, also on a port of their own without a key when
    # metrics_port is set (bind it privately); OpenTelemetry traces over OTLP/HTTP when
    # otlp_endpoint is set (off by default); how long in-flight requests may finish on SIGTERM.
    log_format: Literal["json", "text"] | None = None
    # What migrations do (alembic, the job engine's system database): `gateway --verbose`.
    log_migrations: bool = False
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    otlp_endpoint: str | None = None  # e.g. http://collector:4318/v1/traces
    otlp_headers: SecretStr | None = None  # "name=value,name=value" (an API key, say)
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    service_name: str = "municipal-gateway"
    shutdown_grace_s: int = Field(default=20, ge=0)
    # How long an idle HTTP connection is kept open for the caller's next request. Longer than
    # the idle timeout of the clients and proxies in front (httpx's 5 s, Node's 4 s; a load
    # balancer's, often 60 s, needs this raised above it): whoever closes an idle connection
    # first must be the caller, or a request sent on it as the server closes it is lost.
    keep_alive_s: int = Field(default=15, ge=1, le=3600)

    data_dir: Path = Path(".data")
    # Every database in the registry (db/registry.py) by name, each given as its own setting,
    # `<name>_database_url` (GATEWAY_<NAME>_DATABASE_URL); the ones not given are SQLite
    # files under data_dir. Naming a database the registry does not hold is an error.
    database_urls: dict[str, str] = Field(default_factory=dict)
    database_echo: bool = False

    # Seeding on first run (development convenience; production seeds nothing).
    seed_parcels: int = Field(default=2000, ge=0)

    # Outside agencies. The default URLs are the simulated agencies that `make run` starts.
    land_registry_url: str = "http://127.0.0.1:8101"
    land_registry_username: str | None = None
    land_registry_password: SecretStr | None = None
    land_registry_timeout_s: float | None = Field(default=None, gt=0)
    civil_registry_url: str = "http://127.0.0.1:8102"
    civil_registry_username: str | None = None
    civil_registry_password: SecretStr | None = None
    civil_registry_timeout_s: float | None = Field(default=None, gt=0)
    bank_url: str = "http://127.0.0.1:8103"
    bank_username: str | None = None
    bank_password: SecretStr | None = None
    bank_timeout_s: float | None = Field(default=None, gt=0)
    postal_url: str = "http://127.0.0.1:8104"
    postal_timeout_s: float | None = Field(default=None, gt=0)
    agency_max_response_bytes: int = Field(default=5_000_000, ge=1024)
    # SOAP calls through compiled plans ("fast", connectors/soap/fast.py) or zeep's proxy.
    agency_soap_path: Literal["fast", "zeep"] = "fast"
    # How long a failing agency's breaker stays open before a probe (None: its default).
    agency_breaker_reset_s: float | None = Field(default=None, ge=0)
    # Per agency (None: the agency's default policy, connectors/agencies.py): how long an
    # answer is cached, how many calls may be open at once, and after how many consecutive
    # failures its breaker opens and for how long.
    land_registry_cache_ttl_s: float | None = Field(default=None, ge=0)
    land_registry_max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    land_registry_breaker_failures: int | None = Field(default=None, ge=1)
    land_registry_breaker_reset_s: float | None = Field(default=None, ge=0)
    civil_registry_cache_ttl_s: float | None = Field(default=None, ge=0)
    civil_registry_max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    civil_registry_breaker_failures: int | None = Field(default=None, ge=1)
    civil_registry_breaker_reset_s: float | None = Field(default=None, ge=0)
    bank_cache_ttl_s: float | None = Field(default=None, ge=0)
    bank_max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    bank_breaker_failures: int | None = Field(default=None, ge=1)
    bank_breaker_reset_s: float | None = Field(default=None, ge=0)
    postal_cache_ttl_s: float | None = Field(default=None, ge=0)
    postal_max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    postal_breaker_failures: int | None = Field(default=None, ge=1)
    postal_breaker_reset_s: float | None = Field(default=None, ge=0)
    # How this gateway names itself to agencies (X-Road "client").
    agency_client_id: str = "municipality-gateway"
    # Agencies whose answers every process shares through Redis (when redis_url is set), as
    # a second cache tier behind each process's own (connectors/shared_cache.py). The postal
    # company's addresses are not personal; the others' answers are, and go to Redis only
    # when named here.
    agency_shared_cache: list[Literal["land_registry", "civil_registry", "bank", "postal"]] = [
        "postal"
    ]

    # Limits, enforced before anything runs (gateway/guards/).
    max_query_depth: int = Field(default=12, ge=1)
    max_query_tokens: int = Field(default=2000, ge=10)
    # Characters in a document, checked before it is parsed: comments and string literals
    # are one token or none, and every parsed document is kept in the parser cache.
    max_query_length: int = Field(default=20_000, ge=100)
    max_aliases: int = Field(default=30, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_root_fields: int = Field(default=10, ge=1)
    max_batch_operations: int = Field(default=10, ge=1)  # operations in one JSON array
    # Fields in an operation once every fragment spread is replaced by the fragment's fields
    # (counted without expanding: a fragment spread twice into the next, 30 levels deep,
    # is refused at once rather than expanded 2**30 times).
    max_fields: int = Field(default=3_000, ge=10)
    # Wall time an operation may run before it is cut off (QUERY_TOO_COMPLEX, limit "time");
    # within it, execution gives the event loop back at least every loop_slice_ms, so one
    # request's CPU work never holds up the others (or /healthz) for longer than that.
    operation_budget_s: float = Field(default=15, gt=0)
    loop_slice_ms: float = Field(default=20, gt=0)
    # Estimated cost (about the number of objects an operation may return) allowed per
    # operation, by kind of caller; see gateway/guards/cost.py for how it is estimated.
    cost_budget_public: int = Field(default=5_000, ge=1)
    cost_budget_partner: int = Field(default=20_000, ge=1)
    cost_budget_internal: int = Field(default=100_000, ge=1)
    cost_list_size: int = Field(default=10, ge=1)  # assumed length of a list without `first`

    # Trusted documents: in production partners send only registered operations, which are
    # kept in memory and reloaded on a miss at most this often. Internal callers may use
    # automatic persisted queries, kept in an in-process LRU, or in Redis when configured.
    registered_operations_refresh_s: float = Field(default=10, ge=0)
    apq_cache_size: int = Field(default=1000, ge=1)
    apq_ttl_s: int = Field(default=86_400, ge=1)

    # Rate limits per caller ("<count>/<second|minute|hour|day>", see the `limits` library),
    # in memory, or shared by every process through Redis when redis_url is set.
    rate_limit_public: str = "60/minute"  # per client IP
    rate_limit_partner: str = "600/minute"
    rate_limit_internal: str = "6000/minute"
    rate_limit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = (
        "moving-window"
    )
    redis_url: SecretStr | None = None  # may carry a password
    redis_key_prefix: str = "gateway:"

    # The response cache (gateway/guards/response_cache.py): queries whose every selected
    # field carries a cache hint are answered from it, in an LRU of response_cache_size
    # entries in each process, or in Redis when redis_url is set. Off unless turned on; the
    # max age of each kind of data is how stale an answer may be (0: never cached).
    response_cache: bool = False
    response_cache_size: int = Field(default=10_000, ge=1)
    response_cache_memory_mb: int = Field(default=32, ge=1)  # per process, without Redis
    response_cache_max_entry_bytes: int = Field(default=262_144, ge=1024)
    response_cache_planning_max_age_s: int = Field(default=300, ge=0)  # parcels, regions
    response_cache_dues_max_age_s: int = Field(default=10, ge=0)  # changes with each payment
    response_cache_catalogue_max_age_s: int = Field(default=300, ge=0)  # services catalogue

    # Subscriptions over WebSocket (graphql-transport-ws on /graphql): each subscribe counts
    # against the rate limit like an operation; these cap how many run at once, per
    # connection and per principal (anonymous callers: per client address) in each process.
    subscriptions_per_connection: int = Field(default=10, ge=1)
    subscriptions_per_principal: int = Field(default=50, ge=1)
    websocket_max_message_bytes: int = Field(default=65_536, ge=1024)
    websocket_init_timeout_s: float = Field(default=10, gt=0)  # until connection_init
    # Open WebSocket connections a client address may hold at once, in each process (each
    # opening is also charged to the rate limit as one operation).
    websockets_per_address: int = Field(default=100, ge=1)

    # Client addresses (rate limits, the failed-authentication throttle, logs) come from the
    # connection, and from X-Forwarded-For only when the connection is from one of these
    # proxies (addresses or networks). Empty: forwarded headers are never trusted.
    trusted_proxies: list[str] = Field(default_factory=list)

    # The audit trail's chain is keyed (HMAC-SHA256) with this secret, kept outside the
    # database; signed checkpoints of its head go to audit_checkpoint_dir (and to Redis
    # when redis_url is set). The key comes from the environment or the file named here;
    # in development without either, a key is generated once under data_dir.
    audit_key: SecretStr | None = None
    audit_key_file: Path | None = None
    audit_checkpoint_dir: Path | None = None  # default: <data_dir>/audit-checkpoints

    # Durable work (gateway/jobs, on DBOS): the engine's system database (None: a SQLite file
    # under data_dir, for one process; PostgreSQL when several processes share the work),
    # whether each gateway process also runs jobs (else only `gateway worker` does), how
    # many at once, and the heartbeat and lease after which a dead process's jobs are
    # taken over by another.
    jobs_database_url: str | None = None
    # Connections each PostgreSQL/MariaDB database's pool keeps per process (as many again
    # open briefly beyond it); None: 10. Several processes share a server's max_connections.
    database_pool_size: int | None = Field(default=None, ge=1, le=200)
    jobs_in_app: bool = True
    jobs_worker_concurrency: int = Field(default=16, ge=1, le=1000)
    jobs_heartbeat_s: float = Field(default=5.0, gt=0)
    jobs_lease_s: float = Field(default=30.0, gt=0)
    jobs_shutdown_grace_s: int = Field(default=10, ge=0)
    # How often each process polls the engine's queue for jobs to start. Work that should
    # start at once (an inquiry's checks) starts in the process that accepted it; the queue
    # holds backstops and retries, and each poll costs a few statements even when idle.
    jobs_polling_s: float = Field(default=1.0, gt=0, le=60)

    # Inquiries (gateway/inquiries). Answers are signed with Ed25519: the first of
    # inquiry_signing_keys (PEM or JWK text, from the environment) or of
    # inquiry_signing_key_files signs, the others are published beside it; retired keys
    # (public halves) stay in /.well-known/jwks.json so that old letters still verify. In
    # development without any key, one is generated once under data_dir.
    inquiry_signing_keys: list[SecretStr] = Field(default_factory=list)
    inquiry_signing_key_files: list[Path] = Field(default_factory=list)
    inquiry_retired_keys: list[str] = Field(default_factory=list)
    # The answer's issuer, the letters' letterhead, and the address answers name for their
    # status list and letters print for verification (this gateway as the public reaches it).
    municipality_code: str = Field(default="urmia", pattern=r"^[a-z0-9_.-]{1,32}$")
    municipality_name: str = "شهرداری ارومیه"
    public_url: str = "http://127.0.0.1:8000"
    # How long an answer stays valid, and how many working days a department has for a
    # manual check; planning reviews a building against its permit when its newest
    # certificate is older than inquiry_certificate_max_age_years.
    inquiry_validity_days: int = Field(default=30, ge=1, le=3650)
    inquiry_manual_deadline_days: int = Field(default=5, ge=1, le=365)
    inquiry_certificate_max_age_years: int = Field(default=10, ge=1, le=100)
    # Public holidays (ISO dates) that deadlines skip, besides Thursdays and Fridays.
    inquiry_holidays: list[dt.date] = Field(default_factory=list)
    # How often a process looks for accepted work whose job was never started (a process
    # killed between committing an inquiry and queueing its checks).
    inquiry_sweep_s: float = Field(default=30, gt=0)

    # Citizen requests' registration (gateway/requests/registration.py): open requests for
    # the same service within this distance and this many hours before are offered as
    # possible duplicates. A citizen's lookup by tracking code and mobile (lookup.py) is
    # limited per client address, and per tracking code for lookups that found nothing.
    request_duplicate_radius_m: float = Field(default=150, ge=1, le=10_000)
    request_duplicate_window_hours: float = Field(default=72, gt=0, le=24 * 365)
    # Parcel.citizenRequests (gateway/loaders/requests.py): requests without a renewal code
    # located within this distance of the parcel's postal point (the postal company's
    # latitude and longitude of its postal code).
    request_parcel_radius_m: float = Field(default=50, ge=1, le=1_000)
    request_lookup_rate: str = "20/minute"
    request_lookup_failures: str = "5/hour"

    # Citizen requests' scores (gateway/requests/scores.py): the weight of each component
    # (answer time against deadline, resolution rate, reopen rate, citizens' rating) and the
    # credibility constant k, in requests, that blends a small unit's figures with the city's.
    request_score_weight_timeliness: float = Field(default=0.35, ge=0)
    request_score_weight_resolution: float = Field(default=0.25, ge=0)
    request_score_weight_reopening: float = Field(default=0.15, ge=0)
    request_score_weight_rating: float = Field(default=0.25, ge=0)
    request_score_credibility: float = Field(default=20, ge=0)
    # Hotspots: the grid's cell side in metres, and the fewest problems a cell shown holds
    # (fewer could point at one household: the view is public, so 3 is the floor).
    request_hotspot_cell_m: float = Field(default=500, ge=50, le=10_000)
    request_hotspot_min_count: int = Field(default=3, ge=3)
    # In-person appointments (gateway/requests/appointments.py): region offices receive
    # citizens from opens to closes (Tehran) on working days, in slots of this many minutes.
    appointment_opens_at: dt.time = dt.time(8, 0)
    appointment_closes_at: dt.time = dt.time(13, 0)
    appointment_slot_minutes: int = Field(default=30, ge=5, le=240)
    # Citizen requests' lifecycle (gateway/requests/lifecycle.py, request_jobs.py): a rating
    # at or below request_reopen_rating_max reopens a resolved request (0: none does); an
    # open request untouched for request_dormant_days working days reminds its department;
    # one unanswered at request_escalation_multiple times its allotted working days is
    # escalated to the department's manager; a closed request's citizen name and mobile are
    # erased request_retention_days after closing.
    request_reopen_rating_max: int = Field(default=2, ge=0, le=4)
    request_dormant_days: int = Field(default=3, ge=1, le=365)
    request_escalation_multiple: float = Field(default=2.0, ge=1.0, le=20.0)
    request_retention_days: int = Field(default=365, ge=1, le=36_500)

    # Browsers: origins allowed to call /graphql cross-origin (none by default).
    cors_allowed_origins: list[str] = Field(default_factory=list)

    # Authentication (gateway/access/authentication.py). Verified credentials are cached
    # in-process for up to auth_cache_s, so revoking an API key takes effect within that time
    # (0: no cache).
    auth_cache_s: float = Field(default=10, ge=0)
    auth_cache_size: int = Field(default=10_000, ge=1)
    # Failed authentications allowed per client address (in each process) before 429s.
    auth_failures_per_ip: str = "30/minute"
    # OAuth 2 client-credentials JWTs from one trusted issuer; unset, every JWT is refused.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_s: float = Field(default=300, gt=0)  # how long the issuer's keys are kept
    # A token naming an unknown key id refetches the keys, at most this often.
    jwt_jwks_min_refresh_s: float = Field(default=30, ge=0)
    jwt_leeway_s: float = Field(default=30, ge=0, le=300)  # clock skew allowed on exp/nbf/iat

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the TOML file; secrets come only from the environment.
        return (
            init_settings,
            env_settings,
            _DatabaseUrlVariables(settings_cls),
            TomlConfigSettingsSource(settings_cls),
        )

    @model_validator(mode="before")
    @classmethod
    def _gather_database_urls(cls, data: Any) -> Any:
        """Folds each registered database's `<name>_database_url` into database_urls; any other
        `*_database_url` stays behind and is refused as an unknown setting, by its name."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        urls = dict(data.get("database_urls") or {})
        for key in [key for key in data if isinstance(key, str)]:
            entry = DATABASES.by_setting(key)
            if entry is not None:
                url = data.pop(key)
                if url:  # empty: the default
                    urls[entry.name] = url
        data["database_urls"] = urls
        return data

    @field_validator("database_urls")
    @classmethod
    def _registered_databases_only(cls, urls: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(urls) - set(DATABASES.names))
        if unknown:
            raise ValueError(f"no database is registered as {', '.join(unknown)}")
        return urls

    @model_validator(mode="after")
    def _every_database_has_a_url(self) -> Self:
        given = self.database_urls
        self.database_urls = {
            entry.name: given.get(entry.name)
            or f"sqlite+aiosqlite:///{(self.data_dir / f'{entry.name}.sqlite3').resolve()}"
            for entry in DATABASES
        }
        return self

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        """GATEWAY_LOG_FORMAT, else JSON in production and text in development."""
        if self.log_format is not None:
            return self.log_format
        return "text" if self.development else "json"

    def database_url(self, name: str) -> str:
        """The URL of one database of the registry; a SQLite file under data_dir by default."""
        return self.database_urls[name]

    def agency(self, name: str) -> AgencySettings:
        if name not in AGENCIES:
            raise KeyError(name)
        return AgencySettings(
            url=getattr(self, f"{name}_url"),
            username=getattr(self, f"{name}_username", None),
            password=getattr(self, f"{name}_password", None),
            timeout_s=getattr(self, f"{name}_timeout_s"),
            cache_ttl_s=getattr(self, f"{name}_cache_ttl_s"),
            max_concurrency=getattr(self, f"{name}_max_concurrency"),
            breaker_failures=getattr(self, f"{name}_breaker_failures"),
            breaker_reset_s=getattr(self, f"{name}_breaker_reset_s"),
        )


class _DatabaseUrlVariables(PydanticBaseSettingsSource):
    """GATEWAY_<NAME>_DATABASE_URL for every database the registry holds when the settings
    are read (any letter case, as for the other variables)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        environ = {name.upper(): value for name, value in os.environ.items()}
        return {
            entry.url_setting: environ[entry.url_variable]
            for entry in DATABASES
            if entry.url_variable in environ
        }
