"""Load benchmark of the real gateway beside a hand-written baseline: seed, start `gateway run`
and `bench/baseline.py`, drive both with wrk in turns, report.

    .venv/bin/python bench/run.py [--parcels 50000] [--duration 10] [--workers 2]
                                  [--port 8090] [--data-dir .data-bench] [--keep-data]
                                  [--backends sqlite,postgres] [--postgres URL]
                                  [--connections 1,16] [--rotate 5000]

Seeds its own data (a data directory per backend, reused by later runs while it holds the
same number of parcels; on PostgreSQL databases named gwbench_<name> on the server of
--postgres, default $GATEWAY_TEST_POSTGRES_URL; the directories are removed at the end unless
--keep-data), starts both servers as subprocesses, checks every query once with httpx
(status 200, no "errors"; the baseline's `data` byte for byte the gateway's, on a sample of
the rotating parcels too), then runs each scenario with wrk at each number of connections,
the baseline then the gateway, and prints a Markdown table per backend with the gateway's
throughput as a ratio of the baseline's, and the targets. Missing a target is a measurement
and exits 0; anything that makes the numbers untrustworthy (a server that will not start,
GraphQL errors, different answers, non-2xx responses, socket errors) exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
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
import urllib.parse
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
ROTATE_SCRIPT = BENCH_DIR / "rotate.lua"  # a different parcel each request
BASELINE = BENCH_DIR / "baseline.py"
CODE_PLACEHOLDER = "__RENEWAL_CODE__"
EQUALITY_SAMPLE = 50  # rotating parcels whose answers are compared before the runs

MARKER = "bench-seeded.json"  # in the data dir: owned by this benchmark, and how many parcels
LOOKUP_PARCEL_ID = 777
WARMUP_SECONDS = 2
WRK_TIMEOUT = "10s"
HEALTH_TIMEOUT = 90.0

# Targets, from the issue: on SQLite absolute figures, on PostgreSQL ratios to the baseline.
LOOKUP_MIN_RPS = 1_000.0
LOOKUP_MAX_P99_MS = 30.0
PAGE_MIN_RPS = 40.0
MAX_WORKER_MB = 250.0
MIN_RATIO = 0.5


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
    baseline: bool = False  # bench/baseline.py answers it too
    rotating: list[str] | None = None  # renewal codes to take in turn, one per request

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def document(self) -> str:
        return self.file.read_text(encoding="utf-8")

    def body(self, variables: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {"query": self.document}
        if variables or self.variables:
            payload["variables"] = variables or self.variables
        return json.dumps(payload).encode()

    def template(self) -> bytes:
        """The body with a placeholder for the renewal code, for rotate.lua."""
        return self.body({"renewalCode": CODE_PLACEHOLDER})


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    bad_responses: int | None
    # Connections each server worker held during the run, fewest first (None: not read).
    spread: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Row:
    query: Query
    connections: int
    result: WrkResult
    sql_statements: int | None
    baseline: WrkResult | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.requests_per_second:
            return None
        return self.result.requests_per_second / self.baseline.requests_per_second


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


def check_wrk(result: WrkResult, label: str, *, warmup: bool = False) -> None:
    problems = []
    if result.requests == 0 and not warmup:  # a warm-up may end before a slow page does
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
    codes_file: Path | None = None,
    workers: list[int] | None = None,
) -> WrkResult:
    """wrk against `url`: the body in `body_file`, or, given `codes_file`, that body with its
    placeholder replaced by each renewal code of the file in turn (rotate.lua). Given the
    server's `workers`, how many of wrk's connections each of them holds is read once the
    run is under way."""
    script = WRK_SCRIPT if codes_file is None else ROTATE_SCRIPT
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        f"--script={script}",
        url,
    ]
    env = os.environ | {"BENCH_BODY_FILE": str(body_file), "BENCH_AUTHORIZATION": authorization}
    if codes_file is not None:
        env |= {"BENCH_CODES_FILE": str(codes_file), "BENCH_PLACEHOLDER": CODE_PLACEHOLDER}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as done:
        spread = None
        if workers is not None:
            # wrk opens its connections at once; read them when it is well under way.
            with contextlib.suppress(subprocess.TimeoutExpired):
                done.wait(timeout=seconds / 2)
            if done.poll() is None:
                port = urllib.parse.urlsplit(url).port
                assert port is not None, url
                spread = connections_per_worker(port, workers, done.pid)
        stdout, stderr = done.communicate()
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}:\n{stdout}{stderr}".rstrip())
    return dataclasses.replace(parse_wrk(stdout), spread=spread)


def connections_per_worker(port: int, workers: list[int], client: int) -> tuple[int, ...]:
    """The connections from process `client` (wrk) to local `port` that each worker holds,
    fewest first.

    Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel places each new
    connection by a hash of its addresses, so 16 connections seldom split 8 and 8, and a
    worker with 10 of them answers each later than one with 6 does. Printed beside each run's
    latencies, to tell that from the code. Read from /proc: the TCP table (/proc/net/tcp and
    tcp6) by socket inode, the client's sockets' ports, then the workers' sockets whose peer
    is one of those ports (a keep-alive connection of the benchmark's own checks is not)."""
    sockets: dict[str, tuple[int, int]] = {}  # "socket:[inode]" → (local port, remote port)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01":  # ESTABLISHED
                    local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
                    sockets[f"socket:[{fields[9]}]"] = (local, remote)

    def held(pid: int) -> list[tuple[int, int]]:
        found = []
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    ports = sockets.get(os.readlink(fd))
                    if ports is not None:
                        found.append(ports)
        return found

    clients = {local for local, remote in held(client) if remote == port}
    counts = [
        sum(1 for local, remote in held(pid) if local == port and remote in clients)
        for pid in workers
    ]
    return tuple(sorted(counts))


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


@dataclass(frozen=True)
class Store:
    """Where one backend's data lives: the gateway's data dir, and its databases' URLs."""

    name: str  # "sqlite" or "postgres"
    data_dir: Path
    urls: dict[str, str]  # database name → URL; none given: SQLite files in the data dir

    def __hash__(self) -> int:
        return hash(self.name)

    def url(self, database: str) -> str:
        return self.urls.get(database) or f"sqlite+aiosqlite:///{self.data_dir / database}.sqlite3"

    @property
    def title(self) -> str:
        return "PostgreSQL" if self.name == "postgres" else "SQLite"


def postgres_store(admin_url: str, data_dir: Path) -> Store:
    from db import registry  # the databases the gateway knows, each its own on the server

    base = admin_url.rsplit("/", 1)[0]
    urls = {name: f"{base}/gwbench_{name}" for name in registry.DATABASES.names}
    return Store("postgres", data_dir, urls)


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def pg_fetch(url: str, statement: str, *args: Any) -> list[Any]:
    """Rows of one statement on PostgreSQL (asyncpg, a connection of its own)."""
    import asyncpg  # type: ignore[import-untyped]

    async def fetch() -> list[Any]:
        connection = await asyncpg.connect(_pg(url))
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    return asyncio.run(fetch())


def pg_recreate(admin_url: str, store: Store) -> None:
    import asyncpg

    async def recreate() -> None:
        connection = await asyncpg.connect(_pg(admin_url))
        try:
            for url in store.urls.values():
                name = url.rsplit("/", 1)[1]
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(recreate())


def pg_analyze(store: Store) -> None:
    """Fresh statistics on every table: a bulk load leaves none until autovacuum comes by,
    and without them PostgreSQL misjudges the dues statement's cost badly enough to JIT-compile
    it on every execution (tens of milliseconds each), for the gateway and the baseline."""
    import asyncpg

    async def analyze() -> None:
        for url in store.urls.values():
            connection = await asyncpg.connect(_pg(url))
            try:
                await connection.execute("ANALYZE")
            finally:
                await connection.close()

    asyncio.run(analyze())


def gateway_env(store: Store, **settings: str) -> dict[str, str]:
    """The environment for `gateway`: ours alone, whatever GATEWAY_* the caller has set."""
    data_dir = store.data_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({f"GATEWAY_{name.upper()}_DATABASE_URL": url for name, url in store.urls.items()})
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
        # No background work beside the measured requests, as the baseline has none: the
        # seeded demo holds pending inquiries whose agencies this benchmark does not run, and
        # their checks' retries took 15-25 % of the workers' CPU per lookup (and the GIL
        # from the event loop) when each worker ran its share of the jobs.
        GATEWAY_JOBS_IN_APP="false",
    )
    env.update({f"GATEWAY_{k.upper()}": v for k, v in settings.items()})
    return env


def issue_key(store: Store, kind: str) -> str:
    """An API key for the benchmark: a counter reads no personal data; a notary does, so each
    of its requests also writes audit records before it is answered, as in production."""
    done = subprocess.run(
        [*gateway_command(), "keys", "create", "--kind", kind, "--name", f"Benchmark {kind}"],
        env=gateway_env(store),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"could not issue an API key:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def planning_db(data_dir: Path) -> Path:
    return data_dir / "planning.sqlite3"


def count_parcels(store: Store) -> int | None:
    if store.name == "postgres":
        try:
            return int(pg_fetch(store.url("planning"), "SELECT count(*) FROM parcels")[0][0])
        except Exception:  # no such database or table yet: not seeded
            return None
    path = planning_db(store.data_dir)
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


def prepare_data(store: Store, parcels: int, admin_url: str | None) -> float | None:
    """Seed the data dir unless it already holds `parcels`; the seconds seeding took, or None."""
    data_dir = store.data_dir
    marker = read_marker(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()) and marker is None:
        raise BenchError(
            f"{data_dir} is not empty and was not made by this benchmark (no {MARKER}); "
            "pass another --data-dir, or delete it"
        )
    reusable = marker is not None and marker.get("parcels") == parcels
    if reusable and count_parcels(store) == parcels:
        print(f"Reusing {data_dir} ({store.title}): {parcels:,} parcels seeded by an earlier run.")
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    # Keep git from showing the data (the repository's .gitignore only knows .data/).
    (data_dir / ".gitignore").write_text("*\n")
    write_marker(data_dir, 0, None)  # ours from now on, but not (yet) seeded
    command = [*gateway_command(), "seed", "--parcels", str(parcels)]
    if store.name == "postgres":
        assert admin_url is not None
        pg_recreate(admin_url, store)  # fresh databases, whatever an earlier run left
    elif planning_db(data_dir).exists():
        command.append("--reset")
    print(f"Seeding {parcels:,} parcels into {data_dir} ({' '.join(command[1:])}) …", flush=True)
    started = time.perf_counter()
    seeded = subprocess.run(command, env=gateway_env(store), cwd=REPO_DIR, check=False)
    seconds = time.perf_counter() - started
    if seeded.returncode != 0:
        raise BenchError(f"`gateway seed` exited with {seeded.returncode}")
    found = count_parcels(store)
    if found != parcels:
        raise BenchError(f"`gateway seed --parcels {parcels}` left {found} parcels")
    write_marker(data_dir, parcels, round(seconds, 1))
    print(f"Seeded {parcels:,} parcels in {seconds:.1f} s.", flush=True)
    return seconds


def renewal_codes(store: Store, parcels: int, rotate: int) -> tuple[str, list[str]]:
    """The single lookup's renewal code, and `rotate` distinct others spread over the parcels
    in a shuffled but fixed order (the same list for the gateway and the baseline)."""
    parcel_id = min(LOOKUP_PARCEL_ID, parcels)
    statement = "SELECT id, renewal_code FROM parcels ORDER BY id"
    if store.name == "postgres":
        rows = [(row[0], row[1]) for row in pg_fetch(store.url("planning"), statement)]
    else:
        with contextlib.closing(
            sqlite3.connect(f"file:{planning_db(store.data_dir)}?mode=ro", uri=True)
        ) as db:
            rows = db.execute(statement).fetchall()
    single = next((str(code) for pid, code in rows if pid == parcel_id), None)
    if single is None:
        raise BenchError(f"parcel {parcel_id} is not in {store.title}'s planning database")
    step = max(len(rows) // max(rotate, 1), 1)
    spread = [str(code) for _, code in rows[::step]][:rotate]
    # A fixed shuffle (a multiplicative walk), so that consecutive requests are far apart.
    stride = next(k for k in (7919, 104_729, 1_299_709) if len(spread) % k)
    return single, [spread[(i * stride) % len(spread)] for i in range(len(spread))]


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
    store: Store, port: int, workers: int, log_path: Path, *, baseline: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """`gateway run` on `store`, or (`baseline`) bench/baseline.py on the same databases."""
    if port_in_use(port):
        raise BenchError(f"something already listens on 127.0.0.1:{port}; pass another --port")
    settings = {"port": str(port), "workers": str(workers)}
    if store.name == "postgres":
        # At most 10 connections per database and worker, opened as needed and kept, as the
        # baseline's pools: a server's max_connections (100 by default) is shared.
        settings["database_pool_size"] = "10"
    env = gateway_env(store, **settings)
    command = [*gateway_command(), "run"]
    if baseline:
        command = [
            sys.executable,
            str(BASELINE),
            f"--planning-url={store.url('planning')}",
            f"--revenue-url={store.url('revenue')}",
            f"--port={port}",
            f"--workers={workers}",
        ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
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
    check_answer(query, payload)
    return size


def check_answer(query: Query, payload: dict[str, Any], code: str | None = None) -> None:
    data = payload.get("data") or {}
    if query.key.startswith("lookup"):
        parcel = data.get("parcel")
        if not parcel or parcel.get("renewalCode") != (code or query.variables["renewalCode"]):
            raise BenchError(f"{query.title}: no such parcel in the answer: {payload}")
    else:
        edges = (data.get("parcels") or {}).get("edges") or []
        if len(edges) != 100:
            raise BenchError(f"{query.title}: expected 100 parcels, got {len(edges)}")


def data_bytes(client: httpx.Client, url: str, query: Query, variables: dict[str, Any]) -> bytes:
    """The answer's `data`, as the server serialised it (orjson, keys in document order)."""
    headers = {"content-type": "application/json", "authorization": AUTHORIZATION[query.caller]}
    response = client.post(url, content=query.body(variables), headers=headers)
    payload = response.json() if response.status_code == 200 else None
    if not isinstance(payload, dict) or "errors" in payload:
        raise BenchError(f"{query.title} at {url}: HTTP {response.status_code}: {response.text}")
    check_answer(query, payload, variables.get("renewalCode"))
    body = response.content
    start = body.find(b'"data":')
    if not body.startswith(b'{"data":') or start < 0:
        raise BenchError(f"{query.title} at {url}: `data` is not the answer's first member")
    end = body.find(b',"extensions":')
    return body[len(b'{"data":') : end if end > 0 else -1]


def same_answers(
    client: httpx.Client, gateway_url: str, baseline_url: str, query: Query, sample: list[str]
) -> int:
    """Checks that the baseline's `data` is the gateway's byte for byte: for the query as
    benchmarked, and for each renewal code of `sample`; how many answers were compared."""
    variables = [query.variables] + [{"renewalCode": code} for code in sample]
    for each in variables:
        ours = data_bytes(client, gateway_url, query, each)
        theirs = data_bytes(client, baseline_url, query, each)
        if ours != theirs:
            at = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), 0)
            raise BenchError(
                f"{query.title}: the baseline's data differs from the gateway's at byte {at} "
                f"for {each}:\n gateway:  {ours[max(at - 80, 0) : at + 80]!r}\n"
                f" baseline: {theirs[max(at - 80, 0) : at + 80]!r}"
            )
    return len(variables)


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


def targets(store: str, rows: list[Row], most: int, peak_mb: float) -> list[tuple[str, str, bool]]:
    """The issue's targets against one backend's run at `most` connections: (target, measured,
    met). On SQLite absolute figures (those of the README when the issue was filed), on
    PostgreSQL ratios to the baseline; the lookups' p99 and the memory on both. A SQLite
    baseline answers from a file in its own process, with no server between, so its ratio is
    printed in the table but is not a target."""
    found: list[tuple[str, str, bool]] = []
    by_key = {(row.query.key, row.connections): row for row in rows}
    for key, name in (
        ("lookup_rotating", "Rotating lookup"),
        ("lookup", "Single lookup"),
        ("page", "100-parcel page"),
    ):
        row = by_key.get((key, most))
        if row is None:
            continue
        rps = row.result.requests_per_second
        label = f"{name}, {most} connections"
        if store == "sqlite":
            floor = PAGE_MIN_RPS if key == "page" else LOOKUP_MIN_RPS
            found.append((f"{label}: ≥ {floor:,.0f} req/s", f"{fmt(rps)} req/s", rps >= floor))
        elif row.ratio is not None:
            found.append(
                (
                    f"{label}: ≥ {MIN_RATIO} of the baseline",
                    fmt(row.ratio, 2),
                    row.ratio >= MIN_RATIO,
                )
            )
        if key != "page":
            p99 = row.result.p99_ms
            found.append(
                (
                    f"{label}: p99 < {LOOKUP_MAX_P99_MS:.0f} ms",
                    f"{fmt(p99, 2)} ms",
                    p99 < LOOKUP_MAX_P99_MS,
                )
            )
    found.append(
        (
            f"Peak memory < {MAX_WORKER_MB:.0f} MB per worker",
            f"{fmt(peak_mb)} MB",
            peak_mb < MAX_WORKER_MB,
        )
    )
    return found


def report(
    store: Store,
    rows: list[Row],
    peak_mb: float,
    workers: list[int],
    args: argparse.Namespace,
    seed_seconds: float | None,
    sizes: dict[str, int],
) -> str:
    seeding = (
        f"seeded in {seed_seconds:.1f} s" if seed_seconds is not None else "reused from a prior run"
    )
    lines = [
        f"### {store.title}",
        "",
        f"Data: {args.parcels:,} parcels in {store.title} ({seeding}). Servers: `gateway run` "
        f"and the hand-written baseline (`bench/baseline.py`), {args.workers} worker(s) each; "
        f"rotating lookups take {args.rotate:,} distinct parcels in turn.",
        "",
        "| Scenario | Connections | Gateway req/s | p50 (ms) | p99 (ms) | Per worker "
        "| Baseline req/s | Baseline p99 (ms) | Per worker | Ratio | SQL statements/request "
        "| Response size |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        statements = "n/a" if row.sql_statements is None else str(row.sql_statements)
        base = row.baseline
        lines.append(
            f"| {row.query.title} | {row.connections} | {fmt(row.result.requests_per_second)} "
            f"| {fmt(row.result.p50_ms, 2)} | {fmt(row.result.p99_ms, 2)} "
            f"| {spread(row.result)} "
            f"| {'—' if base is None else fmt(base.requests_per_second)} "
            f"| {'—' if base is None else fmt(base.p99_ms, 2)} "
            f"| {'—' if base is None else spread(base)} "
            f"| {'—' if row.ratio is None else fmt(row.ratio, 2)} | {statements} "
            f"| {fmt(sizes[row.query.key] / 1024)} KB |"
        )
    lines += [
        "",
        f"Peak memory per gateway worker (VmHWM, highest of {len(workers)}): {fmt(peak_mb)} MB",
        "",
        "| Target | Measured | |",
        "|---|---:|---|",
    ]
    lines += [
        f"| {target} | {measured} | {verdict(met)} |"
        for target, measured, met in targets(store.name, rows, max(args.connections), peak_mb)
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--parcels", type=int, default=50_000, help="parcels to seed (50000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers, one per core (2)")
    parser.add_argument(
        "--port", type=int, default=8090, help="the gateway's port (8090); the baseline's is +1"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data-bench"),
        help="data dir (.data-bench; PostgreSQL's is the same name with -postgres)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the seeded data afterwards, for the next run to reuse",
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated: sqlite, postgres (default: both when --postgres is known)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("GATEWAY_TEST_POSTGRES_URL"),
        help="an account that may create databases (default: $GATEWAY_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--connections",
        default="1,16",
        help="comma-separated connection counts (1,16): 1 is -t1, more is -t2",
    )
    parser.add_argument(
        "--rotate", type=int, default=5000, help="distinct parcels the rotating lookup takes"
    )
    parser.add_argument(
        "--no-audited", action="store_true", help="leave out the notary's (audited) scenarios"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated scenario keys to run: lookup, lookup_rotating, page, "
        "lookup_audited, page_audited (default: all)",
    )
    args = parser.parse_args(argv)
    if args.parcels < 100:
        parser.error("--parcels must be at least 100 (the page scenario reads 100)")
    if args.duration < 1 or args.workers < 1 or args.rotate < 1:
        parser.error("--duration, --workers and --rotate must be at least 1")
    try:
        args.connections = sorted({int(n) for n in args.connections.split(",")})
    except ValueError:
        parser.error("--connections is a comma-separated list of numbers")
    if args.backends is None:
        args.backends = "sqlite,postgres" if args.postgres else "sqlite"
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or set(args.backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")
    if "postgres" in args.backends and not args.postgres:
        parser.error("postgres needs --postgres URL (or GATEWAY_TEST_POSTGRES_URL)")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stores(args: argparse.Namespace) -> list[Store]:
    data_dir: Path = args.data_dir.resolve()
    found = []
    for name in args.backends:
        if name == "sqlite":
            found.append(Store("sqlite", data_dir, {}))
        else:
            found.append(
                postgres_store(args.postgres, data_dir.with_name(data_dir.name + "-postgres"))
            )
    return found


def scenarios(code: str, rotating: list[str], audited: bool) -> list[Query]:
    queries = [
        Query(
            "lookup",
            "Single parcel with dues (counter)",
            QUERIES_DIR / "parcel_public.graphql",
            {"renewalCode": code},
            "counter",
            baseline=True,
        ),
        Query(
            "lookup_rotating",
            f"Rotating parcel with dues, {len(rotating):,} parcels (counter)",
            QUERIES_DIR / "parcel_public.graphql",
            {"renewalCode": code},
            "counter",
            baseline=True,
            rotating=rotating,
        ),
        Query(
            "page",
            "100-parcel page, every relation (counter)",
            QUERIES_DIR / "parcels_page_public.graphql",
            {},
            "counter",
            baseline=True,
        ),
    ]
    if audited:
        queries += [
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
    return queries


def measure(
    wrk: str,
    url: str,
    query: Query,
    body_file: Path,
    codes_file: Path | None,
    connections: int,
    seconds: int,
    label: str,
    workers: list[int],
) -> WrkResult:
    threads = 1 if connections == 1 else 2
    authorization = AUTHORIZATION[query.caller]
    warmup = run_wrk(
        wrk, url, body_file, threads, connections, WARMUP_SECONDS, authorization, codes_file
    )
    check_wrk(warmup, f"{label} (warm-up)", warmup=True)
    result = run_wrk(
        wrk, url, body_file, threads, connections, seconds, authorization, codes_file, workers
    )
    check_wrk(result, label)
    return result


def spread(result: WrkResult) -> str:
    """How wrk's connections were split between the workers: "5+11"."""
    return "?" if result.spread is None else "+".join(map(str, result.spread))


def bench_store(store: Store, args: argparse.Namespace, wrk: str, workdir: Path) -> str:
    seed_seconds = prepare_data(store, args.parcels, args.postgres)
    if store.name == "postgres":
        pg_analyze(store)
    if seed_seconds is None:
        marker = read_marker(store.data_dir) or {}
        if isinstance(marker.get("seed_seconds"), int | float):
            print(f"(Seeding took {marker['seed_seconds']} s when it was done.)")
    code, rotating = renewal_codes(store, args.parcels, args.rotate)
    for caller, kind in CALLERS.items():
        AUTHORIZATION[caller] = f"Bearer {issue_key(store, kind)}"
    queries = scenarios(code, rotating, audited=not args.no_audited)
    if args.only:
        queries = [query for query in queries if query.key in args.only.split(",")]
    codes_file = workdir / f"{store.name}-codes.txt"
    codes_file.write_text("\n".join(rotating) + "\n")
    url = f"http://127.0.0.1:{args.port}/graphql"
    baseline_url = f"http://127.0.0.1:{args.port + 1}/graphql"
    rows: list[Row] = []
    sizes: dict[str, int] = {}
    log_path = workdir / f"{store.name}-server.log"
    baseline_log = workdir / f"{store.name}-baseline.log"
    print(
        f"{store.title}: starting `gateway run` on port {args.port} and the baseline on "
        f"{args.port + 1}, {args.workers} worker(s) each …",
        flush=True,
    )
    with (
        running_server(store, args.port, args.workers, log_path) as server,
        running_server(store, args.port + 1, args.workers, baseline_log, baseline=True) as base,
        httpx.Client(timeout=30.0) as client,
    ):
        for query in queries:
            body_file = workdir / f"{query.key}.json"
            body_file.write_bytes(query.template() if query.rotating else query.body())
            sizes[query.key] = precheck(client, url, query)
            statements = sql_statements(client, url, query)
            if query.baseline:
                sample = (query.rotating or [])[:EQUALITY_SAMPLE]
                compared = same_answers(client, url, baseline_url, query, sample)
                print(f"{query.title}: the baseline's data is the gateway's ({compared} answers)")
            for connections in args.connections:
                label = f"{query.title}, {connections} connection(s)"
                codes = codes_file if query.rotating else None
                baseline = None
                if query.baseline:
                    print(f"{label}, baseline: warm-up {WARMUP_SECONDS} s, then {args.duration} s")
                    baseline = measure(
                        wrk, baseline_url, query, body_file, codes, connections,
                        args.duration, f"{label} (baseline)", worker_pids(base.pid),
                    )  # fmt: skip
                    if base.poll() is not None:
                        raise BenchError(
                            f"the baseline exited during {label}:\n{tail(baseline_log)}"
                        )
                print(f"{label}, gateway: warm-up {WARMUP_SECONDS} s, then {args.duration} s")
                result = measure(
                    wrk, url, query, body_file, codes, connections, args.duration, label,
                    worker_pids(server.pid),
                )  # fmt: skip
                if server.poll() is not None:
                    raise BenchError(f"the server exited during {label}:\n{tail(log_path)}")
                row = Row(query, connections, result, statements, baseline)
                print(
                    f"  {result.requests_per_second:,.1f} req/s, p50 {result.p50_ms:.2f} ms, "
                    f"p99 {result.p99_ms:.2f} ms, {statements} SQL statements/request, "
                    f"connections per worker {spread(result)}"
                    + (
                        ""
                        if baseline is None
                        else f"; baseline {baseline.requests_per_second:,.1f} req/s, "
                        f"p99 {baseline.p99_ms:.2f} ms, connections per worker "
                        f"{spread(baseline)}: ratio {row.ratio:.2f}"
                    ),
                    flush=True,
                )
                rows.append(row)
        workers = worker_pids(server.pid)
        peak_mb = max(peak_rss_mb(pid) for pid in workers)
        per_worker = ", ".join(f"{pid}: {peak_rss_mb(pid):.1f} MB" for pid in workers)
        print(f"Peak memory (VmHWM) per gateway worker: {per_worker}")
    return report(store, rows, peak_mb, workers, args, seed_seconds, sizes)


def bench(args: argparse.Namespace, workdir: Path) -> str:
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"Load average now: {load_before} on {len(os.sched_getaffinity(0))} CPUs.")
    wrk = ensure_wrk()
    tables = [bench_store(store, args, wrk, workdir) for store in stores(args)]
    context = machine_context()
    head = [
        f"Machine: {context['nproc']} CPUs ({context['cpu']}), Linux {context['kernel']}, "
        f"Python {context['python']}, wrk {context['wrk']}, {context['date']}.",
        f"Load average before / after the run: {load_before} / {context['load']} "
        "(wrk runs on the same machine as the servers, sharing their cores).",
        f"Each run: `wrk --latency -d{args.duration}s` after a {WARMUP_SECONDS} s warm-up, "
        "the baseline then the gateway; 1 connection is `-t1 -c1`, more are `-t2`. The ratio "
        "is the gateway's requests/s over the baseline's, from the same run.",
    ]
    return "\n\n".join(["\n".join(head), *tables])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-bench-") as workdir:
            table = bench(args, Path(workdir))
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench interrupted; the servers were stopped.", file=sys.stderr)
        return 130
    finally:
        if not args.keep_data:
            for store in stores(args):
                if read_marker(store.data_dir) is not None:
                    shutil.rmtree(store.data_dir, ignore_errors=True)
    print("\n" + table + "\n")
    RESULTS_DIR.mkdir(exist_ok=True)
    saved = RESULTS_DIR / f"{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    saved.write_text(table + "\n")
    print(f"(Also written to {saved.relative_to(REPO_DIR)}.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
