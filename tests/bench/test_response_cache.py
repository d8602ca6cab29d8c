"""bench/response_cache.py at a tiny scale: with the cache off and on (in memory, and in Redis
when one answers) it checks that cached answers equal the databases' and that a hit runs no
SQL statement, prints a row per configuration and set of parcels, and meets no bad response.
(The full run is 2,000 parcels, 16 connections, 10 s a run.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import redis_url

BENCH = Path(__file__).resolve().parents[2] / "bench" / "response_cache.py"
ARGUMENTS = ["--parcels", "40", "--hot", "4", "--seconds", "1", "--connections", "2"]
ARGUMENTS += ["--warmup", "0"]


def test_a_tiny_response_cache_run_checks_and_prints_each_configuration() -> None:
    url = redis_url()
    redis = ["--redis", url] if url else []
    finished = subprocess.run(
        [sys.executable, str(BENCH), *ARGUMENTS, *redis],
        capture_output=True,
        text=True,
        timeout=600,  # a safety net against a hang, never a measure
        check=False,
    )
    out = finished.stdout
    assert finished.returncode == 0, out + finished.stderr[-3000:]
    assert "Answers checked equal with the cache on and off; hits ran 0 SQL statements." in out
    assert "Bad responses (non-200, errors, socket errors): 0" in out
    rows = re.findall(r"^(off|memory|redis)\s+(hot|rotating) \((\d+)\)\s+([\d.]+)\s", out, re.M)
    expected = {("off", "hot"), ("off", "rotating"), ("memory", "hot"), ("memory", "rotating")}
    if url:
        expected |= {("redis", "hot"), ("redis", "rotating")}
    assert {(label, name) for label, name, _, _ in rows} == expected
    assert all(float(rps) > 0 for *_, rps in rows)
    assert {int(n) for _, name, n, _ in rows if name == "rotating"} == {40}
