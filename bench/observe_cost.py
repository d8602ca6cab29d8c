"""What the operations layer costs: bench/run.py's scenarios against two `gateway run` side by
side, one as shipped (a log line, metrics and a trace id per request; OTLP off) and one
with that layer left out (`BENCH_OBSERVE=off`: no Observe middleware, no operation
observer), wrk alternating between them, the same run repeated.

    .venv/bin/python bench/observe_cost.py [--parcels 2000] [--duration 5] [--rounds 3]
                                           [--workers 1] [--connections 16] [--port 8190]
                                           [--log-level warning] [--only lookup,...]

SQLite, seeded into a temporary data dir with bench/run.py's own code (its seeding, keys,
scenarios and wrk parsing, imported, never changed). Each round starts both servers afresh,
in an order that flips every round (as the runs' order does), and runs every scenario on
both, so that drift of a loaded machine hits both alike. It prints each run and, per
scenario, the median ratio (observed / bare) of requests per second, of p99 and of the CPU
time the servers' processes used per request (the steadiest of the three on a shared machine).
`--log-level info` writes the access lines too (to a file), as production does;
bench/run.py runs at `warning`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run  # noqa: E402  (bench/run.py)

MODES = ("observed", "bare")
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(master: int) -> float:
    """CPU time (user and system) the server's processes have used so far. Per request, a
    far steadier measure than throughput on a machine whose cores other work shares."""
    total = 0.0
    for pid in {master, *run.worker_pids(master)}:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime
    return total


@contextlib.contextmanager
def server(
    store: run.Store, port: int, workers: int, log_path: Path, observed: bool, level: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`gateway run` with or without the operations layer (the switch is read at start)."""
    saved = {name: os.environ.get(name) for name in ("BENCH_OBSERVE",)}
    os.environ["BENCH_OBSERVE"] = "on" if observed else "off"
    original_env = run.gateway_env

    def env(store: run.Store, **settings: str) -> dict[str, str]:
        values = original_env(store, **settings)
        values["GATEWAY_LOG_LEVEL"] = level
        values["GATEWAY_LOG_FORMAT"] = "json"
        return values

    run.gateway_env = env
    try:
        with run.running_server(store, port, workers, log_path) as process:
            yield process
    finally:
        run.gateway_env = original_env
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--parcels", type=int, default=2_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=8190, help="this port and the next")
    parser.add_argument("--log-level", default="warning", help="GATEWAY_LOG_LEVEL (warning)")
    parser.add_argument("--only", default="lookup,lookup_audited,page")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = run.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="gateway-observe-cost-") as folder:
        workdir = Path(folder)
        store = run.Store("sqlite", workdir / "data", {})
        run.prepare_data(store, args.parcels, None)
        code, rotating = run.renewal_codes(store, args.parcels, min(500, args.parcels))
        for caller, kind in run.CALLERS.items():
            run.AUTHORIZATION[caller] = f"Bearer {run.issue_key(store, kind)}"
        wanted = args.only.split(",")
        queries = [q for q in run.scenarios(code, rotating, audited=True) if q.key in wanted]
        results: dict[tuple[str, str], list[run.WrkResult]] = {}
        cpu_us: dict[tuple[str, str], list[float]] = {
            (query.key, mode): [] for query in queries for mode in MODES
        }
        for query in queries:
            (workdir / f"{query.key}.json").write_bytes(query.body())
        print(
            f"SQLite, {args.parcels:,} parcels, {args.workers} worker(s) each, "
            f"{args.connections} connections, {args.duration} s runs after a "
            f"{run.WARMUP_SECONDS} s warm-up, log level {args.log_level}, OTLP off.",
            flush=True,
        )
        for round_ in range(args.rounds):
            # Each round starts both servers afresh, in turns whose order flips (the first
            # started, on the first port, measured faster on a loaded machine), and runs every
            # scenario on both, the order flipped too.
            order = MODES if round_ % 2 == 0 else MODES[::-1]
            ports = {mode: args.port + n for n, mode in enumerate(order)}
            masters: dict[str, int] = {}
            with contextlib.ExitStack() as stack:
                for mode in order:
                    log_path = workdir / f"{mode}.log"
                    masters[mode] = stack.enter_context(
                        server(
                            store, ports[mode], args.workers, log_path, mode == "observed",
                            args.log_level,
                        )
                    ).pid  # fmt: skip
                client = stack.enter_context(httpx.Client(timeout=30.0))
                for query in queries:
                    for port in ports.values():
                        run.precheck(client, f"http://127.0.0.1:{port}/graphql", query)
                for query in queries:
                    for mode in order:
                        url = f"http://127.0.0.1:{ports[mode]}/graphql"
                        body = workdir / f"{query.key}.json"
                        key = run.AUTHORIZATION[query.caller]
                        label = f"{query.key} {mode}"
                        warmup = run.run_wrk(
                            wrk, url, body, 2, args.connections, run.WARMUP_SECONDS, key
                        )
                        run.check_wrk(warmup, f"{label} (warm-up)", warmup=True)
                        before = cpu_seconds(masters[mode])
                        result = run.run_wrk(
                            wrk, url, body, 2, args.connections, args.duration, key
                        )
                        used = cpu_seconds(masters[mode]) - before
                        run.check_wrk(result, label)
                        results.setdefault((query.key, mode), []).append(result)
                        cpu_us[query.key, mode].append(used / result.requests * 1e6)
                        print(
                            f"round {round_ + 1} {query.key:15} {mode:8} "
                            f"{result.requests_per_second:8,.1f} req/s  p50 "
                            f"{result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                            f"CPU {cpu_us[query.key, mode][-1]:8,.0f} us/request",
                            flush=True,
                        )
        print(
            "\n| scenario | observed req/s | bare req/s | ratio req/s | ratio p99 "
            "| observed CPU us/req | bare CPU us/req | ratio CPU |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for query in queries:
            observed, bare = results[query.key, "observed"], results[query.key, "bare"]
            pairs = list(zip(observed, bare, strict=True))
            rps = [o.requests_per_second / b.requests_per_second for o, b in pairs]
            p99 = [o.p99_ms / b.p99_ms for o, b in pairs]
            cpu_o, cpu_b = cpu_us[query.key, "observed"], cpu_us[query.key, "bare"]
            cpu = [o / b for o, b in zip(cpu_o, cpu_b, strict=True)]
            print(
                f"| {query.key} | {statistics.median(r.requests_per_second for r in observed):,.1f}"
                f" | {statistics.median(r.requests_per_second for r in bare):,.1f}"
                f" | {statistics.median(rps):.3f} | {statistics.median(p99):.3f}"
                f" | {statistics.median(cpu_o):,.0f} | {statistics.median(cpu_b):,.0f}"
                f" | {statistics.median(cpu):.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
