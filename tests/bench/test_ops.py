"""bench/ops.py at a tiny scale: mixed load with the land registry flapping, then SIGTERM under
load; it must report memory, the agency's errors and breaker transitions from /metrics, no
request hung and no in-flight request failed (the full run is 60 s at 16 connections)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ops.py"
ARGUMENTS = ["--seconds", "6", "--connections", "4", "--parcels", "60", "--workers", "1"]
ARGUMENTS += ["--flap-s", "1"]


def test_a_tiny_ops_run_loses_nothing() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), *ARGUMENTS],
        capture_output=True,
        text=True,
        timeout=600,  # a safety net against a hang, never a measure
        check=False,
    )
    out = finished.stdout
    assert finished.returncode == 0, out + finished.stderr[-3000:]
    assert re.search(r"RSS \(all processes\): start [\d.]+ MB, end [\d.]+ MB", out)
    samples = re.search(r"RSS samples \(s: MB\): (.*)", out)
    assert samples is not None
    assert len(samples.group(1).split(", ")) >= 2  # the start, then every --sample-s to the end
    assert "hung (no answer in 60 s): 0" in out
    outcomes = re.search(r"land_registry calls by outcome: (\{.*\})", out)
    assert outcomes is not None
    assert "'unavailable'" in outcomes.group(1)  # the flapping agency's errors, as counted
    transitions = re.search(r"breaker transitions: (\{.*\})", out)
    assert transitions is not None
    assert "'open'" in transitions.group(1)
    signalled = re.search(r"SIGTERM under load: (\d+) requests in flight, (\d+) failed", out)
    assert signalled is not None
    assert int(signalled.group(1)) > 0
    assert int(signalled.group(2)) == 0
