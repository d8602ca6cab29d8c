"""Smoke test of bench/run.py's reading of wrk's output (the benchmark itself is `make bench`)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8090/graphql
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    14.01ms   10.20ms 120.33ms   88.10%
    Req/Sec   571.20     60.11   690.00     71.00%
  Latency Distribution
     50%  850.00us
     75%   12.10ms
     90%   20.00ms
     99%    1.20s
  11404 requests in 10.00s, 4.30MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   1140.40
Transfer/sec:    440.00KB
Bad responses (non-200 or GraphQL errors): 3
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "run.py"
    spec = importlib.util.spec_from_file_location("bench_run", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_parses_wrk_latency_distribution_in_ms(bench: ModuleType) -> None:
    result = bench.parse_wrk(WRK_OUTPUT)

    assert result.requests == 11404
    assert result.requests_per_second == pytest.approx(1140.40)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.non_2xx == 3
    assert result.socket_errors == {"connect": 0, "read": 1, "write": 0, "timeout": 2}
    assert result.bad_responses == 3


def test_errors_in_a_run_fail_it(bench: ModuleType) -> None:
    with pytest.raises(bench.BenchError, match="non-2xx"):
        bench.check_wrk(bench.parse_wrk(WRK_OUTPUT), "lookup")


def test_a_clean_run_passes(bench: ModuleType) -> None:
    clean = "\n".join(
        line
        for line in WRK_OUTPUT.splitlines()
        if not line.lstrip().startswith(("Non-2xx", "Socket errors", "Bad responses"))
    )
    bench.check_wrk(
        bench.parse_wrk(clean + "\nBad responses (non-200 or GraphQL errors): 0\n"), "x"
    )


def test_counts_the_connections_each_worker_holds(bench: ModuleType) -> None:
    # A client process opens three connections, this process one more; this process accepts
    # the four; a second "worker" holds none. Only the client's connections count.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    opening = (
        "import socket, sys\n"
        f"held = [socket.create_connection(('127.0.0.1', {port})) for _ in range(3)]\n"
        "print('open', flush=True)\n"
        "sys.stdin.read()\n"
    )
    client = subprocess.Popen(
        [sys.executable, "-c", opening], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    stray = socket.create_connection(("127.0.0.1", port))
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    accepted: list[socket.socket] = []
    try:
        assert client.stdout is not None
        assert client.stdout.readline() == b"open\n"
        accepted = [listener.accept()[0] for _ in range(4)]
        workers = [os.getpid(), idle.pid]
        assert bench.connections_per_worker(port, workers, client.pid) == (0, 3)
        assert bench.connections_per_worker(port, workers, idle.pid) == (0, 0)
    finally:
        client.communicate(b"")
        idle.communicate(b"")
        for each in (*accepted, stray, listener):
            each.close()


def _row(bench: ModuleType, key: str, rps: float, p99: float, baseline_rps: float) -> object:
    def result(per_second: float, p99_ms: float) -> object:
        return bench.WrkResult(1000, per_second, p99_ms / 2, p99_ms, 0, {}, 0)

    query = bench.Query(key, key, Path(f"{key}.graphql"), {}, "counter", baseline=True)
    return bench.Row(query, 16, result(rps, p99), 3, result(baseline_rps, p99))


def test_targets_are_ratios_on_postgresql_and_absolute_figures_on_sqlite(
    bench: ModuleType,
) -> None:
    rows = [
        _row(bench, "lookup_rotating", 1_200.0, 21.0, 2_000.0),
        _row(bench, "lookup", 1_100.0, 31.0, 2_000.0),
        _row(bench, "page", 45.0, 300.0, 100.0),
    ]

    on_postgres = {name: met for name, _, met in bench.targets("postgres", rows, 16, 260.0)}
    assert on_postgres == {
        "Rotating lookup, 16 connections: ≥ 0.5 of the baseline": True,
        "Rotating lookup, 16 connections: p99 < 30 ms": True,
        "Single lookup, 16 connections: ≥ 0.5 of the baseline": True,
        "Single lookup, 16 connections: p99 < 30 ms": False,
        "100-parcel page, 16 connections: ≥ 0.5 of the baseline": False,
        "Peak memory < 250 MB per worker": False,
    }
    # A SQLite baseline reads a file in its own process: its ratio is no target there.
    on_sqlite = {name: met for name, _, met in bench.targets("sqlite", rows, 16, 190.0)}
    assert on_sqlite == {
        "Rotating lookup, 16 connections: ≥ 1,000 req/s": True,
        "Rotating lookup, 16 connections: p99 < 30 ms": True,
        "Single lookup, 16 connections: ≥ 1,000 req/s": True,
        "Single lookup, 16 connections: p99 < 30 ms": False,
        "100-parcel page, 16 connections: ≥ 40 req/s": True,
        "Peak memory < 250 MB per worker": True,
    }
