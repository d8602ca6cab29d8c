"""Load benchmark of the real gateway: seed, start `gateway run`, drive it with wrk, report.

    .venv/bin/python bench/run.py [--parcels 50000] [--duration 10] [--workers 2]
                                  [--port 8090] [--data-dir .data-bench] [--keep-data]

Seeds its own data directory (reused by later runs while it holds the same number of parcels;
removed at the end unless --keep-data), starts the server as a subprocess, checks every query
once with httpx (status 200, no "errors"), then runs each scenario with wrk at 1 and at 16
connections and prints a Markdown table with the targets. Missing a target is a measurement
and exits 0; anything that makes the numbers untrustworthy (a server that will not start,
GraphQL errors, non-2xx responses, socket errors) exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
QUERIES_DIR = BENCH_DIR / "queries"
RESULTS_DIR = BENCH_DIR / "results"
WRK_SCRIPT = BENCH_DIR / "post.lua"

MARKER = "bench-seeded.json"  # in the data dir: owned by this benchmark, and how many parcels
LOOKUP_PARCEL_ID = 777
WARMUP_SECONDS = 2
WRK_TIMEOUT = "10s"
HEALTH_TIMEOUT = 90.0
LOADS = ((1, 1), (2, 16))  # (wrk threads, connections)

# Targets, from the issue.
LOOKUP_MIN_RPS = 1_000.0
LOOKUP_MAX_P99_MS = 30.0
PAGE_MIN_RPS = 40.0
MAX_WORKER_MB = 250.0


# Who the benchmark acts as (`gateway keys create --kind …`); keys are issued for each run.
CALLERS = {"counter": "counter", "notary": "notary"}
AUTHORIZATION: dict[str, str] = {}  # caller → "Bearer <key>"


class BenchError(Exception):
    """Something went wrong that makes the measurement meaningless."""


@dataclass(frozen=True)
class Query:
    key: str
    title: str
    file: Path
    variables: dict[str, Any]
    caller: str  # a key of CALLERS: who sends it

    @property
    def document(self) -> str:
        return self.file.read_text(encoding="utf-8")

    def body(self) -> bytes:
        payload: dict[str, Any] = {"query": self.document}
        if self.variables:
            payload["variables"] = self.variables
        return json.dumps(payload).encode()


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    bad_responses: int | None


@dataclass(frozen=True)
class Row:
    query: Query
    connections: int
    result: WrkResult
    sql_statements: int | None


# ---------------------------------------------------------------------------------------------
# wrk output


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$")
_RPS = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_BAD = re.compile(r"Bad responses \(non-200 or GraphQL errors\):\s+(\d+)")


def to_ms(value: float, unit: str) -> float:
    """A wrk duration (`123.45us`, `1.20ms`, `2.00s`, `1.00m`) in milliseconds."""
    try:
        return value * _UNITS_MS[unit]
    except KeyError:
        raise BenchError(f"unknown wrk time unit {unit!r}") from None


def parse_wrk(output: str) -> WrkResult:
    """Read the numbers out of `wrk --latency` output (and our Lua script's `done` line)."""
    percentiles: dict[str, float] = {}
    in_distribution = False
    for line in output.splitlines():
        if "Latency Distribution" in line:
            in_distribution = True
            continue
        if in_distribution:
            match = _PERCENTILE.match(line)
            if match is None:
                in_distribution = False
                continue
            percentiles[match[1]] = to_ms(float(match[2]), match[3])
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    if rps is None or total is None or "50" not in percentiles or "99" not in percentiles:
        raise BenchError(f"could not parse wrk's output:\n{output}")
    non_2xx = _NON_2XX.search(output)
    socket_errors = _SOCKET.search(output)
    bad = _BAD.search(output)
    return WrkResult(
        requests=int(total[1]),
        requests_per_second=float(rps[1]),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=(
            dict(
                zip(
                    ("connect", "read", "write", "timeout"),
                    map(int, socket_errors.groups()),
                    strict=True,
                )
            )
            if socket_errors
            else {}
        ),
        bad_responses=int(bad[1]) if bad else None,
    )


def check_wrk(result: WrkResult, label: str) -> None:
    problems = []
    if result.requests == 0:
        problems.append("no request completed")
    if result.non_2xx:
        problems.append(f"{result.non_2xx} non-2xx/3xx responses")
    if any(result.socket_errors.values()):
        errors = ", ".join(f"{k} {v}" for k, v in result.socket_errors.items())
        problems.append(f"socket errors ({errors})")
    if result.bad_responses is None:
        problems.append("the Lua script did not report its count of bad responses")
    elif result.bad_responses:
        problems.append(f"{result.bad_responses} responses were not 200 or held GraphQL errors")
    if problems:
        raise BenchError(f"{label}: {'; '.join(problems)}")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError(
            "wrk is not installed; install it (Debian/Ubuntu: `sudo apt-get install wrk`) "
            "and run the benchmark again"
        )
    print("wrk is not installed; installing it with apt-get …", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    installed = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=False)
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed and `apt-get install -y wrk` did not install it")
    return found


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    threads: int,
    connections: int,
    seconds: int,
    authorization: str,
) -> WrkResult:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        f"--script={WRK_SCRIPT}",
        url,
    ]
    env = os.environ | {"BENCH_BODY_FILE": str(body_file), "BENCH_AUTHORIZATION": authorization}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}:\n{done.stdout}{done.stderr}".rstrip())
    return parse_wrk(done.stdout)


# ---------------------------------------------------------------------------------------------
# Data


def gateway_command() -> list[str]:
    beside = Path(sys.executable).parent / "gateway"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("gateway")
    if found:
        return [found]
    return [sys.executable, "-c", "from gateway.cli import main; main()"]


def gateway_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment for `gateway`: ours alone, whatever GATEWAY_* the caller has set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    # Development mode is what answers `X-Gateway-Debug: cost`; nothing seeds on start.
    env.update(
        GATEWAY_ENV="development",
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SEED_PARCELS="0",
        GATEWAY_LOG_LEVEL="warning",
        # The benchmark measures throughput, not the per-caller rate limit.
        GATEWAY_RATE_LIMIT_PARTNER="100000000/minute",
        # A moving window keeps every request's time; at that limit its lists grow huge.
        GATEWAY_RATE_LIMIT_STRATEGY="fixed-window",
    )
    env.update({f"GATEWAY_{k.upper()}": v for k, v in settings.items()})
    return env


def issue_key(data_dir: Path, kind: str) -> str:
    """An API key for the benchmark: a counter reads no personal data; a notary does, so each
    of its requests also writes audit records before it is answered, as in production."""
    done = subprocess.run(
        [*gateway_command(), "keys", "create", "--kind", kind, "--name", f"Benchmark {kind}"],
        env=gateway_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"could not issue an API key:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def planning_db(data_dir: Path) -> Path:
    return data_dir / "planning.sqlite3"


def count_parcels(data_dir: Path) -> int | None:
    path = planning_db(data_dir)
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT count(*) FROM parcels").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])


def read_marker(data_dir: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((data_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def write_marker(data_dir: Path, parcels: int, seconds: float | None) -> None:
    marker = {"parcels": parcels, "seed_seconds": seconds}
    (data_dir / MARKER).write_text(json.dumps(marker) + "\n")


def prepare_data(data_dir: Path, parcels: int) -> float | None:
    """Seed the data dir unless it already holds `parcels`; the seconds seeding took, or None."""
    marker = read_marker(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()) and marker is None:
        raise BenchError(
            f"{data_dir} is not empty and was not made by this benchmark (no {MARKER}); "
            "pass another --data-dir, or delete it"
        )
    reusable = marker is not None and marker.get("parcels") == parcels
    if reusable and count_parcels(data_dir) == parcels:
        print(f"Reusing {data_dir}: {parcels:,} parcels seeded by an earlier run.")
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    # Keep git from showing the data (the repository's .gitignore only knows .data/).
    (data_dir / ".gitignore").write_text("*\n")
    write_marker(data_dir, 0, None)  # ours from now on, but not (yet) seeded
    command = [*gateway_command(), "seed", "--parcels", str(parcels)]
    if planning_db(data_dir).exists():
        command.append("--reset")
    print(f"Seeding {parcels:,} parcels into {data_dir} ({' '.join(command[1:])}) …", flush=True)
    started = time.perf_counter()
    seeded = subprocess.run(command, env=gateway_env(data_dir), cwd=REPO_DIR, check=False)
    seconds = time.perf_counter() - started
    if seeded.returncode != 0:
        raise BenchError(f"`gateway seed` exited with {seeded.returncode}")
    found = count_parcels(data_dir)
    if found != parcels:
        raise BenchError(f"`gateway seed --parcels {parcels}` left {found} parcels")
    write_marker(data_dir, parcels, round(seconds, 1))
    print(f"Seeded {parcels:,} parcels in {seconds:.1f} s.", flush=True)
    return seconds


def renewal_code(data_dir: Path, parcels: int) -> str:
    parcel_id = min(LOOKUP_PARCEL_ID, parcels)
    with contextlib.closing(
        sqlite3.connect(f"file:{planning_db(data_dir)}?mode=ro", uri=True)
    ) as db:
        row = db.execute("SELECT renewal_code FROM parcels WHERE id = ?", (parcel_id,)).fetchone()
    if row is None:
        raise BenchError(f"parcel {parcel_id} is not in {planning_db(data_dir)}")
    return str(row[0])


# ---------------------------------------------------------------------------------------------
# Server


def port_in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after 15 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print("The server did not stop within 15 s; killing it.", file=sys.stderr)
    # The master may have gone while a worker lingers: kill the group regardless.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def running_server(
    data_dir: Path, port: int, workers: int, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    if port_in_use(port):
        raise BenchError(f"something already listens on 127.0.0.1:{port}; pass another --port")
    env = gateway_env(data_dir, port=str(port), workers=str(workers))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*gateway_command(), "run"],
            env=env,
            cwd=REPO_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stopping it gets every worker
        )
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}/healthz", log_path)
        yield process
    finally:
        stop_group(process)


def wait_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(
                    f"`gateway run` exited with {process.returncode} before it was healthy; "
                    f"its output:\n{tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.2)
    raise BenchError(
        f"{url} did not answer 200 within {HEALTH_TIMEOUT:.0f} s; "
        f"the server's output:\n{tail(log_path)}"
    )


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    with contextlib.suppress(OSError):
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    if children:
        return sorted(set(children))
    for entry in Path("/proc").iterdir():  # kernels without /proc/<pid>/task/<tid>/children
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # The name field may hold spaces and parentheses: the ppid follows the last ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


def worker_pids(master: int) -> list[int]:
    """uvicorn's workers: the master's children, but not multiprocessing's resource tracker."""
    workers = []
    for pid in child_pids(master):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"resource_tracker" not in cmdline:
                workers.append(pid)
    return workers or [master]  # one worker: uvicorn serves in the master itself


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


# ---------------------------------------------------------------------------------------------
# Requests


def post(
    client: httpx.Client, url: str, query: Query, *, cost: bool = False
) -> tuple[dict[str, Any], int]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": AUTHORIZATION[query.caller],
    }
    if cost:
        headers["x-gateway-debug"] = "cost"
    response = client.post(url, content=query.body(), headers=headers)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code != 200 or not isinstance(payload, dict) or "errors" in payload:
        raise BenchError(
            f"{query.title}: HTTP {response.status_code}, body: {response.text[:2000]}"
        )
    return payload, len(response.content)


def precheck(client: httpx.Client, url: str, query: Query) -> int:
    """Send the query once as wrk will and check the answer; its size in bytes."""
    payload, size = post(client, url, query)
    data = payload.get("data") or {}
    if query.key.startswith("lookup"):
        parcel = data.get("parcel")
        if not parcel or parcel.get("renewalCode") != query.variables["renewalCode"]:
            raise BenchError(f"{query.title}: no such parcel in the answer: {payload}")
    else:
        edges = (data.get("parcels") or {}).get("edges") or []
        if len(edges) != 100:
            raise BenchError(f"{query.title}: expected 100 parcels, got {len(edges)}")
    return size


def sql_statements(client: httpx.Client, url: str, query: Query) -> int | None:
    payload, _ = post(client, url, query, cost=True)
    cost = (payload.get("extensions") or {}).get("cost") or {}
    count = cost.get("sqlStatements")
    if not isinstance(count, int):
        print(f"warning: {query.title}: no extensions.cost.sqlStatements in the answer")
        return None
    return count


# ---------------------------------------------------------------------------------------------
# Report


def machine_context() -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = "?"
    with contextlib.suppress(OSError):
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
        wrk_version = out.split()[1] if len(out.split()) > 1 else out.strip()
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version,
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load": load,
    }


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def report(
    rows: list[Row],
    peak_mb: float,
    workers: list[int],
    context: dict[str, str],
    load_before: str,
    args: argparse.Namespace,
    seed_seconds: float | None,
    sizes: dict[str, int],
) -> str:
    seeding = (
        f"seeded in {seed_seconds:.1f} s" if seed_seconds is not None else "reused from a prior run"
    )
    lines = [
        f"Machine: {context['nproc']} CPUs ({context['cpu']}), Linux {context['kernel']}, "
        f"Python {context['python']}, wrk {context['wrk']}, {context['date']}.",
        f"Load average before / after the run: {load_before} / {context['load']} "
        "(wrk runs on the same machine as the server, sharing its cores).",
        f"Data: {args.parcels:,} parcels in SQLite ({seeding}). Server: `gateway run`, "
        f"{args.workers} uvicorn worker(s). Each run: `wrk --latency -d{args.duration}s` "
        f"after a {WARMUP_SECONDS} s warm-up; 1 connection is `-t1 -c1`, 16 are `-t2 -c16`.",
        "",
        "| Scenario | Connections | Requests/s | p50 (ms) | p99 (ms) "
        "| SQL statements/request | Response size |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        statements = "n/a" if row.sql_statements is None else str(row.sql_statements)
        lines.append(
            f"| {row.query.title} | {row.connections} | {fmt(row.result.requests_per_second)} "
            f"| {fmt(row.result.p50_ms, 2)} | {fmt(row.result.p99_ms, 2)} | {statements} "
            f"| {fmt(sizes[row.query.key] / 1024)} KB |"
        )
    lines += [
        "",
        f"Peak memory per worker (VmHWM, highest of {len(workers)} worker(s)): {fmt(peak_mb)} MB",
        "",
        "| Target | Measured | |",
        "|---|---:|---|",
    ]
    by_key = {(row.query.key, row.connections): row.result for row in rows}
    lookup = by_key.get(("lookup", 16))
    page = by_key.get(("page", 16))
    if lookup is not None:
        lines.append(
            f"| Single lookup, 16 connections: ≥ {LOOKUP_MIN_RPS:,.0f} req/s "
            f"| {fmt(lookup.requests_per_second)} req/s "
            f"| {verdict(lookup.requests_per_second >= LOOKUP_MIN_RPS)} |"
        )
        lines.append(
            f"| Single lookup, 16 connections: p99 < {LOOKUP_MAX_P99_MS:.0f} ms "
            f"| {fmt(lookup.p99_ms, 2)} ms | {verdict(lookup.p99_ms < LOOKUP_MAX_P99_MS)} |"
        )
    if page is not None:
        lines.append(
            f"| 100-parcel page, 16 connections: ≥ {PAGE_MIN_RPS:.0f} req/s "
            f"| {fmt(page.requests_per_second)} req/s "
            f"| {verdict(page.requests_per_second >= PAGE_MIN_RPS)} |"
        )
    lines.append(
        f"| Peak memory < {MAX_WORKER_MB:.0f} MB per worker | {fmt(peak_mb)} MB "
        f"| {verdict(peak_mb < MAX_WORKER_MB)} |"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--parcels", type=int, default=50_000, help="parcels to seed (50000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers, one per core (2)")
    parser.add_argument("--port", type=int, default=8090, help="port to serve on (8090)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".data-bench"), help="data dir (.data-bench)"
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the seeded data dir afterwards, for the next run to reuse",
    )
    args = parser.parse_args(argv)
    if args.parcels < 100:
        parser.error("--parcels must be at least 100 (the page scenario reads 100)")
    if args.duration < 1 or args.workers < 1:
        parser.error("--duration and --workers must be at least 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def bench(args: argparse.Namespace, workdir: Path) -> str:
    data_dir: Path = args.data_dir.resolve()
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"Load average now: {load_before} on {len(os.sched_getaffinity(0))} CPUs.")
    wrk = ensure_wrk()
    seed_seconds = prepare_data(data_dir, args.parcels)
    if seed_seconds is None:
        marker = read_marker(data_dir) or {}
        if isinstance(marker.get("seed_seconds"), int | float):
            print(f"(Seeding took {marker['seed_seconds']} s when it was done.)")
    code = renewal_code(data_dir, args.parcels)
    for caller, kind in CALLERS.items():
        AUTHORIZATION[caller] = f"Bearer {issue_key(data_dir, kind)}"
    queries = [
        Query(
            "lookup",
            "Single parcel with dues (counter)",
            QUERIES_DIR / "parcel_public.graphql",
            {"renewalCode": code},
            "counter",
        ),
        Query(
            "page",
            "100-parcel page, every relation (counter)",
            QUERIES_DIR / "parcels_page_public.graphql",
            {},
            "counter",
        ),
        Query(
            "lookup_audited",
            "Single parcel with dues and owners' shares (notary, audited)",
            QUERIES_DIR / "parcel.graphql",
            {"renewalCode": code},
            "notary",
        ),
        Query(
            "page_audited",
            "100-parcel page, every relation with owners' shares (notary, audited)",
            QUERIES_DIR / "parcels_page.graphql",
            {},
            "notary",
        ),
    ]
    url = f"http://127.0.0.1:{args.port}/graphql"
    rows: list[Row] = []
    sizes: dict[str, int] = {}
    log_path = workdir / "server.log"
    print(f"Starting `gateway run` on port {args.port} with {args.workers} worker(s) …", flush=True)
    with running_server(data_dir, args.port, args.workers, log_path) as server:
        with httpx.Client(timeout=30.0) as client:
            for query in queries:
                body_file = workdir / f"{query.key}.json"
                body_file.write_bytes(query.body())
                sizes[query.key] = precheck(client, url, query)
                statements = sql_statements(client, url, query)
                for threads, connections in LOADS:
                    label = f"{query.title}, {connections} connection(s)"
                    precheck(client, url, query)
                    print(f"{label}: warm-up {WARMUP_SECONDS} s, then {args.duration} s …")
                    authorization = AUTHORIZATION[query.caller]
                    warmup = run_wrk(
                        wrk, url, body_file, threads, connections, WARMUP_SECONDS, authorization
                    )
                    check_wrk(warmup, f"{label} (warm-up)")
                    result = run_wrk(
                        wrk, url, body_file, threads, connections, args.duration, authorization
                    )
                    check_wrk(result, label)
                    if server.poll() is not None:
                        raise BenchError(f"the server exited during {label}:\n{tail(log_path)}")
                    print(
                        f"  {result.requests_per_second:,.1f} req/s, p50 {result.p50_ms:.2f} ms, "
                        f"p99 {result.p99_ms:.2f} ms, {statements} SQL statements/request",
                        flush=True,
                    )
                    rows.append(Row(query, connections, result, statements))
        workers = worker_pids(server.pid)
        peak_mb = max(peak_rss_mb(pid) for pid in workers)
        per_worker = ", ".join(f"{pid}: {peak_rss_mb(pid):.1f} MB" for pid in workers)
        print(f"Peak memory (VmHWM) per worker: {per_worker}")
    return report(rows, peak_mb, workers, machine_context(), load_before, args, seed_seconds, sizes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    data_dir: Path = args.data_dir.resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-bench-") as workdir:
            table = bench(args, Path(workdir))
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench interrupted; the server was stopped.", file=sys.stderr)
        return 130
    finally:
        if not args.keep_data and read_marker(data_dir) is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("\n" + table + "\n")
    RESULTS_DIR.mkdir(exist_ok=True)
    saved = RESULTS_DIR / f"{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    saved.write_text(table + "\n")
    print(f"(Also written to {saved.relative_to(REPO_DIR)}.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
