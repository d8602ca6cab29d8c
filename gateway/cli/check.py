"""`gateway check-config`: validates a configuration without starting anything.

It reads the settings as `gateway run` would (the environment, GATEWAY_CONFIG_FILE), then
checks what start-up would otherwise find one failure at a time: the keys production needs,
each agency's address and policy, database and Redis URLs, rate limits, the ports. It opens
no connection and writes no file (a development key that does not exist yet is reported as
"generated on first start"). Every problem names its setting, never its value; the exit
status is 1 when there is one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

import click
from limits import parse_many
from sqlalchemy.engine import make_url

from gateway.access.audit_key import AuditKeyError, load_audit_key
from gateway.agencies import agency_configs
from gateway.cli.configuration import load_settings
from gateway.edge.requests import trusted_proxies
from gateway.inquiries.keys import SigningConfig, SigningKeyError, load_key_set
from gateway.settings import AGENCIES, Settings

ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "asyncmy"}


def _problems(settings: Settings) -> list[str]:
    problems: list[str] = []

    def check(setting: str, test: Callable[[], object]) -> None:
        try:
            test()
        except (ValueError, AuditKeyError, SigningKeyError) as exc:
            message = str(exc).removeprefix("invalid configuration: ")
            problems.append(f"{setting}: {message}" if setting not in message else message)

    if settings.audit_key is not None or settings.audit_key_file is not None:
        check("GATEWAY_AUDIT_KEY", lambda: load_audit_key(settings))
    elif not settings.development:
        problems.append("GATEWAY_AUDIT_KEY or GATEWAY_AUDIT_KEY_FILE must be set in production")
    signing = SigningConfig(
        signing_keys=tuple(key.get_secret_value() for key in settings.inquiry_signing_keys),
        signing_key_files=tuple(settings.inquiry_signing_key_files),
        retired_keys=tuple(settings.inquiry_retired_keys),
        development=False,
        data_dir=settings.data_dir,
    )
    if signing.signing_keys or signing.signing_key_files or not settings.development:
        check("GATEWAY_INQUIRY_SIGNING_KEYS", lambda: load_key_set(signing))
    check("GATEWAY_<AGENCY>_URL, _USERNAME, _PASSWORD", lambda: agency_configs(settings))
    for name, url in settings.database_urls.items():
        check(f"GATEWAY_{name.upper()}_DATABASE_URL", functools.partial(_database_url, url))
    if settings.jobs_database_url is not None:
        check("GATEWAY_JOBS_DATABASE_URL", lambda: make_url(settings.jobs_database_url or ""))
    if settings.redis_url is not None:
        redis = settings.redis_url.get_secret_value()
        check("GATEWAY_REDIS_URL", lambda: _url(redis, ("redis", "rediss", "unix")))
    for setting in ("rate_limit_public", "rate_limit_partner", "rate_limit_internal"):
        check(
            f"GATEWAY_{setting.upper()}", functools.partial(_rate_limit, getattr(settings, setting))
        )
    check("GATEWAY_AUTH_FAILURES_PER_IP", lambda: _rate_limit(settings.auth_failures_per_ip))
    check("GATEWAY_TRUSTED_PROXIES", lambda: trusted_proxies(settings.trusted_proxies))
    if settings.metrics_port is not None and settings.metrics_port == settings.port:
        problems.append("GATEWAY_METRICS_PORT: must differ from GATEWAY_PORT")
    if settings.otlp_endpoint is not None:
        endpoint = settings.otlp_endpoint
        check("GATEWAY_OTLP_ENDPOINT", lambda: _url(endpoint, ("http", "https")))
    check("GATEWAY_PUBLIC_URL", lambda: _url(settings.public_url, ("http", "https")))
    if not settings.development:
        defaults = Settings.model_fields
        for name in AGENCIES:
            if getattr(settings, f"{name}_url") == defaults[f"{name}_url"].default:
                problems.append(
                    f"GATEWAY_{name.upper()}_URL: production still names the simulated agency"
                )
    if not settings.development and settings.workers > 1 and settings.redis_url is None:
        problems.append(
            "GATEWAY_REDIS_URL: several workers in production need Redis to share rate limits "
            "and subscription events"
        )
    return problems


def _rate_limit(value: str) -> None:
    try:
        parse_many(value)
    except ValueError:  # its message repeats the value
        raise ValueError("not a rate limit such as 600/minute") from None


def _database_url(url: str) -> None:
    parsed = make_url(url)
    driver = ASYNC_DRIVERS.get(parsed.get_backend_name())
    if driver is None:
        raise ValueError("not a SQLite, PostgreSQL or MariaDB URL")
    if parsed.get_driver_name() != driver:
        raise ValueError(f"needs the async driver ({parsed.get_backend_name()}+{driver})")


def _url(url: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not (parts.hostname or parts.scheme == "unix"):
        raise ValueError(f"must be a {' or '.join(schemes)} URL")


def _summary(settings: Settings) -> list[str]:
    configs = agency_configs(settings)
    traces = settings.otlp_endpoint
    lines = [
        f"environment       {settings.env}, {settings.workers} worker(s) on "
        f"{settings.host}:{settings.port}",
        f"logs              {settings.effective_log_format}, from {settings.log_level}",
        "metrics           /metrics (operators' key)"
        + (
            f"; without a key on {settings.metrics_host}:{settings.metrics_port}"
            if settings.metrics_port
            else ""
        ),
        f"traces            {'OTLP to ' + traces if traces else 'off'}",
        f"shared state      {'Redis' if settings.redis_url else 'in each process (no Redis)'}",
    ]
    for name, url in settings.database_urls.items():
        shown = make_url(url).render_as_string(hide_password=True)
        lines.append(f"database {name:<13}{shown}")
    for name, config in configs.items():
        policy = config.effective_policy
        lines.append(
            f"agency {name:<15}{config.url} timeout {policy.timeout_s:g}s, cache "
            f"{policy.cache_ttl_s:g}s, {policy.max_concurrency} at once, breaker after "
            f"{policy.breaker_failure_threshold} failures for {policy.breaker_reset_s:g}s"
        )
    return lines


@click.command("check-config")
@click.option("--quiet", is_flag=True, help="Print problems only.")
def check_config(quiet: bool) -> None:
    """Validate the configuration (environment and GATEWAY_CONFIG_FILE) without starting."""
    settings = load_settings()  # a setting of the wrong type fails here, by its name
    problems = _problems(settings)
    if problems:
        for problem in problems:
            click.echo(f"invalid configuration: {problem}", err=True)
        raise SystemExit(1)
    if not quiet:
        for line in _summary(settings):
            click.echo(line)
    click.echo("configuration OK")
