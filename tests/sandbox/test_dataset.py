"""Where the agencies find their data, and what is derived from ids alone."""

from __future__ import annotations

import pytest

from sandbox.dataset import (
    URMIA,
    coordinates_for,
    database_url,
    deed_serial,
)


def test_database_url_defaults_to_the_gateways_sqlite_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for variable in (
        "SANDBOX_PLANNING_DATABASE_URL",
        "GATEWAY_PLANNING_DATABASE_URL",
        "GATEWAY_DATA_DIR",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(str(tmp_path))

    assert database_url("planning") == f"sqlite+aiosqlite:///{tmp_path}/.data/planning.sqlite3"


def test_database_url_follows_the_gateways_then_the_sandboxs_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SANDBOX_REVENUE_DATABASE_URL", raising=False)
    monkeypatch.delenv("GATEWAY_REVENUE_DATABASE_URL", raising=False)
    assert database_url("revenue") == f"sqlite+aiosqlite:///{tmp_path}/revenue.sqlite3"

    monkeypatch.setenv("GATEWAY_REVENUE_DATABASE_URL", "postgresql+asyncpg://gw/revenue")
    assert database_url("revenue") == "postgresql+asyncpg://gw/revenue"

    monkeypatch.setenv("SANDBOX_REVENUE_DATABASE_URL", "sqlite+aiosqlite:///elsewhere.sqlite3")
    assert database_url("revenue") == "sqlite+aiosqlite:///elsewhere.sqlite3"


def test_deed_serials_are_unique() -> None:
    serials = {deed_serial(parcel_id) for parcel_id in range(1, 50_001)}

    assert len(serials) == 50_000


def test_coordinates_stay_around_urmia() -> None:
    for region in range(1, 6):
        for parcel_id in range(1, 300):
            latitude, longitude = coordinates_for(region, parcel_id)
            assert abs(latitude - URMIA[0]) < 0.03
            assert abs(longitude - URMIA[1]) < 0.04
