"""`gateway check-config`: a configuration validated without starting anything; each problem
named by its setting, never its value; per-agency settings reach the agencies' policies."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gateway.agencies import agency_configs
from gateway.cli import main
from gateway.settings import Settings

SECRET = "do-not-print-this-value-7c1e"


def _check(tmp_path: Path, **env: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["check-config"],
        env={"GATEWAY_DATA_DIR": str(tmp_path), **env},
        catch_exceptions=False,
    )
    return result.exit_code, result.output


def test_a_development_configuration_is_summarised(tmp_path: Path) -> None:
    code, output = _check(tmp_path, GATEWAY_LAND_REGISTRY_CACHE_TTL_S="42")
    assert code == 0, output
    assert output.rstrip().endswith("configuration OK")
    assert "cache 42s" in output
    # Nothing was created: no development key, no database file.
    assert list(tmp_path.iterdir()) == []


def test_production_problems_are_named_by_setting(tmp_path: Path) -> None:
    code, output = _check(
        tmp_path,
        GATEWAY_ENV="production",
        GATEWAY_WORKERS="2",
        GATEWAY_BANK_URL=f"ftp://{SECRET}",
        GATEWAY_RATE_LIMIT_PUBLIC=SECRET,
        GATEWAY_PLANNING_DATABASE_URL=f"postgresql://u:{SECRET}@db/planning",
        GATEWAY_METRICS_PORT="8000",
        GATEWAY_AUDIT_KEY="short",
    )
    assert code == 1
    for setting in (
        "GATEWAY_AUDIT_KEY",
        "GATEWAY_INQUIRY_SIGNING_KEYS",
        "bank: the url must be an http(s) URL",
        "GATEWAY_RATE_LIMIT_PUBLIC",
        "GATEWAY_PLANNING_DATABASE_URL: needs the async driver",
        "GATEWAY_METRICS_PORT",
        "GATEWAY_REDIS_URL",
        "GATEWAY_LAND_REGISTRY_URL: production still names the simulated agency",
    ):
        assert setting in output, (setting, output)
    assert SECRET not in output
    assert "configuration OK" not in output


def test_a_setting_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    code, output = _check(tmp_path, GATEWAY_POSTAL_MAX_CONCURRENCY="many")
    assert code == 1
    assert "GATEWAY_POSTAL_MAX_CONCURRENCY" in output
    assert "many" not in output


def test_per_agency_settings_shape_the_policies() -> None:
    settings = Settings(
        postal_cache_ttl_s=5,
        postal_max_concurrency=3,
        postal_breaker_failures=2,
        postal_breaker_reset_s=7,
        agency_breaker_reset_s=11,
    )
    configs = agency_configs(settings)
    postal = configs["postal"].effective_policy
    assert (postal.cache_ttl_s, postal.max_concurrency) == (5, 3)
    assert (postal.breaker_failure_threshold, postal.breaker_reset_s) == (2, 7)
    # The common reset applies where an agency names none of its own.
    assert configs["bank"].effective_policy.breaker_reset_s == 11
