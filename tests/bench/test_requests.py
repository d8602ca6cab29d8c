"""bench/requests.py at a tiny scale, on SQLite: it seeds, times every figure's query (each
answering something), registers through a real `gateway run` process and prints its table.
The full run (200,000 requests on PostgreSQL) is `.venv/bin/python bench/requests.py`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "requests.py"
    spec = importlib.util.spec_from_file_location("bench_requests", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_seeded_rows_are_deterministic_inside_their_regions_and_skewed(
    bench: ModuleType,
) -> None:
    service = type(
        "S",
        (),
        {
            "id": 1,
            "regions": (1, 2, 3, 4, 5),
            "responsible": ("urban_services",),
            "owner_department": "urban_services",
            "deadline_days": 5,
            "referred_agency": None,
        },
    )
    catalogue = bench.Catalogue([service], [1.0])
    first, again = bench.rows(300, catalogue), bench.rows(300, catalogue)
    assert first == again
    assert len({row["tracking_code"] for row in first}) == 300
    for row in first:
        assert bench._region_of((row["latitude"], row["longitude"])) == row["region"]
    statuses = {row["status"] for row in first}
    assert {"CLOSED", "RESOLVED"} <= statuses
    assert any(row["rating"] for row in first)


async def test_a_tiny_run_times_every_query_and_registers(bench: ModuleType) -> None:
    args = bench.parse_args(
        ["--requests", "400", "--registrations", "32", "--clients", "4", "--runs", "1", "--sqlite"]
    )
    table = await bench.run(args)
    assert "400 requests over a year" in table
    lines = [
        line for line in table.splitlines() if line.startswith("| ") and "median ms" not in line
    ]
    names = [line.split(" | ")[0].removeprefix("| ") for line in lines]
    assert len(names) == 9
    assert {"counts by Jalali month", "hotspots (500 m grid)", "department ranking"} <= set(names)
    for line in lines:
        groups = int(line.split(" | ")[3])
        assert groups > 0, line
    assert "32 registered, 0 refused" in table
