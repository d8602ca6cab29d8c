"""Smoke test of bench/inquiries.py's figures and table (the benchmark itself starts real
gateway processes: `.venv/bin/python bench/inquiries.py`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "inquiries.py"
    spec = importlib.util.spec_from_file_location("bench_inquiries", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_percentiles_of_a_few_latencies(bench: ModuleType) -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 0.5) == pytest.approx(50.5)
    assert bench.percentile(values, 0.99) == pytest.approx(99.01)
    assert bench.percentile([7.0], 0.99) == 7.0


def test_the_table_states_rates_latencies_and_counts(bench: ModuleType) -> None:
    args = bench.parse_args(["--inquiries", "4", "--partners", "2"])
    result = bench.Result(
        "SQLite", 1, 4, 2.0, [10.0, 20.0, 30.0, 40.0], [300.0, 500.0],
        4, 2, 2, 0, 0, 0.6,
    )  # fmt: skip
    table = bench.table([result], args)
    assert "4 inquiries by 2 partners" in table
    assert "| SQLite | 1 | 2 | 25.0 | 39.7 | 400 | 498 | 4 | 4 | 2 + 2 | 0 | 0 | 150 |" in table
