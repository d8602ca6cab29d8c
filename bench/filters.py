"""Latency of `parcels(filter:)` on the benchmark's data: every combination of filters, its
first page and a page deep in the list, one request at a time (one connection).

    .venv/bin/python bench/filters.py [--backend postgres|sqlite] [--parcels 50000]
                                      [--repeat 20] [--port 8092] [--data-dir .data-bench]

Reuses (or seeds) the same data as bench/run.py (`--keep-data` there leaves it), starts
`gateway run` with one worker, and sends each query `--repeat` times after one warm-up,
printing a Markdown table with p50 and p99 (the slowest of the repeats) per query. The
issue's target: under 100 ms at p99 for every combination, first page and deep page.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
PAGE = 20
TARGET_MS = 100.0
QUERY = """
query Filtered($filter: ParcelFilter, $after: String) {
  parcels(first: PAGE, filter: $filter, after: $after) {
    edges { node { renewalCode } }
    pageInfo { hasNextPage }
  }
}
""".replace("PAGE", str(PAGE))

COMBINATIONS: dict[str, dict[str, Any]] = {
    "region": {"region": 3},
    "open violations": {"hasOpenViolations": True},
    "outstanding dues": {"hasOutstandingDues": True},
    "no outstanding dues": {"hasOutstandingDues": False},
    "region + open violations": {"region": 3, "hasOpenViolations": True},
    "region + outstanding dues": {"region": 3, "hasOutstandingDues": True},
    "open violations + outstanding dues": {"hasOpenViolations": True, "hasOutstandingDues": True},
    "region + open violations + outstanding dues": {
        "region": 3,
        "hasOpenViolations": True,
        "hasOutstandingDues": True,
    },
}


def _run_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cursor(parcel_id: int) -> str:
    """The gateway's opaque cursor at a parcel (gateway/schema/pages.py)."""
    return base64.urlsafe_b64encode(f"parcel:{parcel_id}".encode()).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--postgres", default=os.environ.get("GATEWAY_TEST_POSTGRES_URL"))
    parser.add_argument("--parcels", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--data-dir", type=Path, default=Path(".data-bench"))
    args = parser.parse_args(argv)
    run = _run_module()
    data_dir: Path = args.data_dir.resolve()
    if args.backend == "postgres":
        if not args.postgres:
            parser.error("postgres needs --postgres URL (or GATEWAY_TEST_POSTGRES_URL)")
        store = run.postgres_store(args.postgres, data_dir.with_name(data_dir.name + "-postgres"))
    else:
        store = run.Store("sqlite", data_dir, {})
    try:
        run.prepare_data(store, args.parcels, args.postgres)
        if store.name == "postgres":
            run.pg_analyze(store)
        key = run.issue_key(store, "counter")
    except run.BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    deep = cursor(int(args.parcels * 0.9))  # a page nine tenths of the way down the list
    url = f"http://127.0.0.1:{args.port}/graphql"
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="gateway-filters-") as workdir:
        log = Path(workdir) / "server.log"
        with run.running_server(store, args.port, 1, log), httpx.Client(timeout=60) as client:
            for name, filter in COMBINATIONS.items():
                for where, after in (("first page", None), ("deep page", deep)):
                    body = {"query": QUERY, "variables": {"filter": filter, "after": after}}
                    times = []
                    for attempt in range(args.repeat + 1):
                        started = time.perf_counter()
                        response = client.post(url, json=body, headers=headers)
                        elapsed = (time.perf_counter() - started) * 1000
                        payload = response.json()
                        if response.status_code != 200 or "errors" in payload:
                            print(
                                f"bench failed: {name}, {where}: {response.text}", file=sys.stderr
                            )
                            return 1
                        if attempt:  # the first is the warm-up
                            times.append(elapsed)
                    found = len(payload["data"]["parcels"]["edges"])
                    p50, p99 = statistics.median(times), max(times)
                    print(f"{name}, {where}: {found} parcels, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
                    rows.append((name, where, found, p50, p99))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"\n{args.parcels:,} parcels on {store.title}, one worker, one request at a time, "
        f"{args.repeat} each after a warm-up; pages of {PAGE}; load average {load}.\n"
    )
    print("| Filter | Page | Parcels | p50 (ms) | p99 (ms) | < 100 ms |")
    print("|---|---|---:|---:|---:|---|")
    for name, where, found, p50, p99 in rows:
        met = "met" if p99 < TARGET_MS else "**missed**"
        print(f"| {name} | {where} | {found} | {p50:.1f} | {p99:.1f} | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
