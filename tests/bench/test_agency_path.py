"""bench/agency_path.py: its reading of /proc and wrk, and a tiny run end to end (two real
gateway processes, the sandbox agencies, wrk), whose every request must have been answered
without an error on both SOAP paths."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "agency_path.py"
    spec = importlib.util.spec_from_file_location("bench_agency_path", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cpu_ticks_are_read_past_a_command_name_with_spaces(bench: ModuleType) -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    stat = "4242 (gate way) (x)) S 1 2 3 4 5 6 7 8 9 10 1234 567 11 12 20 0 1 0"
    assert bench.stat_cpu_ticks(stat) == 1234 + 567


def test_cpu_of_this_process_is_read(bench: ModuleType) -> None:
    import os

    assert bench.cpu_seconds(os.getpid()) > 0


def test_peak_memory_of_this_process_is_read(bench: ModuleType) -> None:
    import os
    import resource

    peak = bench.peak_rss_mb(os.getpid())
    # ru_maxrss is the same high-water mark, in KiB, as the kernel keeps it.
    assert peak == pytest.approx(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rel=0.05
    )


def test_cpu_per_request_and_the_idle_share(bench: ModuleType) -> None:
    assert bench.per_request_ms(10.0, 11.5, 500) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no request"):
        bench.per_request_ms(1.0, 2.0, 0)


def test_wrk_output_is_read(bench: ModuleType) -> None:
    output = (
        "Running 8s test @ http://127.0.0.1:1/graphql\n"
        "  2 threads and 16 connections\n"
        "  1536 requests in 8.00s, 2.10MB read\n"
        "Requests/sec:    191.93\n"
        "Transfer/sec:    268.71KB\n"
        "Bad responses (non-200 or GraphQL errors): 3\n"
    )
    assert bench.parse_wrk(output) == (1536, 191.93, 3)
    with pytest.raises(ValueError, match="not wrk"):
        bench.parse_wrk("Requests/sec: 1\n")


def test_every_scenario_has_its_agency_call_in_its_query(bench: ModuleType) -> None:
    names = [s.name for s in bench.SCENARIOS]
    assert names == ["deed", "page", "person", "floor"]
    for scenario in bench.SCENARIOS:
        template = bench.body_template(scenario)
        assert bench.PLACEHOLDER in template
    assert "deed" not in bench.FLOOR
    assert "owners" in bench.FLOOR


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
async def test_a_tiny_run_answers_every_request_on_both_paths(bench: ModuleType) -> None:
    args = bench.parse_args(
        [
            "--parcels", "30", "--seconds", "1", "--idle-seconds", "0.2",
            "--connections", "2", "--scenarios", "deed,page,person,floor", "--no-warmup",
        ]
    )  # fmt: skip
    figures = await bench.main(args)
    seen = {(f.scenario, f.path) for f in figures}
    assert seen == {
        ("deed", "zeep"), ("deed", "fast"), ("page", "zeep"), ("page", "fast"),
        ("person", "zeep"), ("person", "fast"), ("floor", "fast"),
    }  # fmt: skip
    for figure in figures:
        assert figure.requests > 0, figure
        assert figure.bad_responses == 0, figure
        assert figure.cpu_ms_per_request > 0, figure
        assert figure.peak_rss_mb > 0, figure


async def test_the_connector_alone_is_measured_on_both_paths(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    args = bench.parse_args(
        ["--parcels", "30", "--scenarios", "", "--connector-calls", "8", "--connections", "2"]
    )
    assert await bench.main(args) == []
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    measured = {row.split("|")[1].strip(): float(row.split("|")[2]) for row in rows[1:]}
    assert set(measured) == {"zeep", "fast"}
    assert all(us > 0 for us in measured.values())
