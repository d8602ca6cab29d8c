"""Smoke test of bench/inquiries.py's figures, arrivals and table (the benchmark itself starts
real gateway processes: `.venv/bin/python bench/inquiries.py`)."""

from __future__ import annotations

import importlib.util
import statistics
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


def test_even_arrivals_are_spaced_by_the_rate(bench: ModuleType) -> None:
    assert bench.schedule(4, 10.0, "even", seed=1) == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_poisson_arrivals_keep_the_offered_rate_and_repeat_by_seed(bench: ModuleType) -> None:
    times = bench.schedule(4000, 20.0, "poisson", seed=3)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert all(gap > 0 for gap in gaps)
    assert statistics.mean(gaps) == pytest.approx(1 / 20, rel=0.05)
    # Exponential gaps: as spread as they are long (even ones would have none).
    assert statistics.stdev(gaps) == pytest.approx(1 / 20, rel=0.1)
    assert bench.schedule(50, 20.0, "poisson", seed=3) == times[:50]
    assert bench.schedule(50, 20.0, "poisson", seed=4) != times[:50]


def test_arguments_default_to_one_open_loop_at_ten_a_second(bench: ModuleType) -> None:
    args = bench.parse_args([])
    assert (args.inquiries, args.open_inquiries, args.rate) == (1000, 600, [10.0])
    args = bench.parse_args(["--rate", "5", "--rate", "15", "--inquiries", "0"])
    assert args.rate == [5.0, 15.0]
    with pytest.raises(SystemExit):
        bench.parse_args(["--inquiries", "0", "--open-inquiries", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--rate", "0"])


def test_the_table_states_both_phases_their_targets_and_the_counts(bench: ModuleType) -> None:
    args = bench.parse_args(["--inquiries", "4", "--partners", "2", "--open-inquiries", "4"])
    closed = bench.Phase(None, 4, 2.0, [10.0, 20.0, 30.0, 40.0], [300.0, 500.0], 0.6)
    fast = bench.Phase(10.0, 4, 0.5, [10.0, 20.0, 30.0, 40.0], [300.0, 400.0], 0.2)
    slow = bench.Phase(20.0, 4, 0.5, [10.0, 20.0, 30.0, 140.0], [300.0, 900.0, 900.0], 0.2)
    result = bench.Result("SQLite", 1, [closed, fast, slow], 12, 10, 2, 0, 0)
    assert result.submitted == 12
    assert not result.lost
    table = bench.table([result], args)
    assert "Closed loop (throughput): 4 inquiries" in table
    assert "| SQLite | 1 | 2.0 | 25 | 40 | 400 | 498 | 150.0 |" in table
    assert "| SQLite | 1 | 10 | 8.0 | 25 | 40 | 350 | 399 | 50.0 | met |" in table
    assert (
        "| SQLite | 1 | 20 | 8.0 | 25 | 137 | 900 | 900 | 50.0 | missed: submit p99, verdict p50 |"
        in table
    )
    assert "| SQLite | 12 | 12 | 10 + 2 | 0 | 0 |" in table
    lost = bench.Result("SQLite", 1, [closed], 3, 3, 0, 0, 0)
    assert lost.lost
