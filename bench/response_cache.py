"""Response cache benchmark: the single-parcel look-up with the cache off and on.

    .venv/bin/python bench/response_cache.py [--parcels 2000] [--hot 20] [--seconds 10]
                                             [--connections 16] [--workers 1] [--warmup 2]
                                             [--redis redis://127.0.0.1:6379/0]

Fresh SQLite databases seeded with `--parcels` parcels, `gateway run` in its own process and
wrk (bench/rotate.lua) posting the counter's look-up of one parcel with its owners (masked)
and dues (bench/queries/parcel_public.graphql), a different parcel each request: rotating
over a hot set of `--hot` parcels, then over every parcel. Each load runs against the cache
off, then on in process memory, then (with `--redis`) on in Redis. Before the runs it checks
that the cache answers the same `data` as the databases and that a hit runs no SQL
statement. It prints requests/s, p50 and p99 for each, and the ratio of on to off.
Exit status 1 if a check fails or any response was not a clean 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(REPO_DIR))

from db import migrate, registry  # noqa: E402
from db.engines import Databases  # noqa: E402
from gateway.access.keys import create_key, parse_kind  # noqa: E402

QUERY = BENCH_DIR / "queries" / "parcel_public.graphql"
ROTATE = BENCH_DIR / "rotate.lua"
PLACEHOLDER = "__RENEWAL_CODE__"


class BenchError(Exception):
    """Something went wrong that makes the measurement meaningless."""


@dataclass(frozen=True)
class Load:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-200, GraphQL errors, socket errors


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)


def parse_wrk(output: str) -> Load:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    percentiles = {m[1]: float(m[2]) * _UNITS[m[3]] for m in _PERCENTILE.finditer(output)}
    bad = re.search(r"Bad responses \(non-200 or GraphQL errors\): (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if rps is None or total is None or bad is None or set(percentiles) != {"50", "99"}:
        raise BenchError(f"could not read wrk's output:\n{output}")
    socket_errors = sum(map(int, sockets.groups())) if sockets else 0
    return Load(
        int(total[1]),
        float(rps[1]),
        percentiles["50"],
        percentiles["99"],
        int(bad[1]) + socket_errors,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def prepare(folder: Path, parcels: int) -> tuple[dict[str, str], str, list[str]]:
    """Seeded databases, a counter's API key and every parcel's renewal code."""
    from sqlalchemy import text

    urls = {n: f"sqlite+aiosqlite:///{folder / f'{n}.sqlite3'}" for n in registry.DATABASES.names}
    databases = Databases(urls)
    try:
        await migrate.upgrade(databases)
        await registry.seed_empty(databases, parcels=parcels)
        kind, department = parse_kind("counter")
        _, key = await create_key(databases, kind, "Response cache benchmark", department)
        async with databases.engine("planning").connect() as connection:
            rows = await connection.execute(text("SELECT renewal_code FROM parcels ORDER BY id"))
            codes = [row[0] for row in rows]
    finally:
        await databases.dispose()
    return urls, key, codes


def gateway_env(
    folder: Path, urls: dict[str, str], workers: int, **settings: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({registry.DATABASES[name].url_variable: url for name, url in urls.items()})
    env.update(
        GATEWAY_ENV="development",  # answers X-Gateway-Debug: cost
        GATEWAY_DATA_DIR=str(folder),
        GATEWAY_SEED_PARCELS="0",
        GATEWAY_LOG_LEVEL="warning",
        GATEWAY_WORKERS=str(workers),
        GATEWAY_RATE_LIMIT_PARTNER="100000000/minute",
        GATEWAY_RATE_LIMIT_STRATEGY="fixed-window",
    )
    env.update({f"GATEWAY_{k.upper()}": v for k, v in settings.items()})
    return env


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def gateway(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    port = free_port()
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "gateway"),
            "run",
            env={**env, "GATEWAY_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(300):
            while True:
                if process.returncode is not None:
                    raise BenchError(f"the gateway did not start:\n{tail(log)}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def lookup(http: httpx.AsyncClient, url: str, key: str, code: str) -> tuple[bytes, int]:
    """One look-up: the answer's `data` as JSON, and the SQL statements it ran."""
    response = await http.post(
        f"{url}/graphql",
        json={"query": QUERY.read_text(), "variables": {"renewalCode": code}},
        headers={"Authorization": f"Bearer {key}", "X-Gateway-Debug": "cost"},
    )
    body = response.json()
    if response.status_code != 200 or "errors" in body or not body["data"]["parcel"]:
        raise BenchError(f"the look-up of {code} failed: {response.status_code} {response.text}")
    data = json.dumps(body["data"], ensure_ascii=False).encode()
    return data, int(body["extensions"]["cost"]["sqlStatements"])


async def check(url: str, key: str, codes: list[str], expected: dict[str, bytes]) -> None:
    """Against a gateway with the cache on: answers equal the databases', and a hit is
    answered without a statement."""
    async with httpx.AsyncClient(timeout=30) as http:
        for code in codes:
            first, _ = await lookup(http, url, key, code)
            again, statements = await lookup(http, url, key, code)
            if first != expected[code] or again != expected[code]:
                raise BenchError(f"the cache answered {code} differently from the databases")
            if statements != 0:
                raise BenchError(f"a hit on {code} ran {statements} SQL statements")


def run_wrk(
    url: str, key: str, codes_file: Path, body_file: Path, seconds: int, connections: int
) -> Load:
    threads = max(1, min(2, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout=10s"]
    command += ["--latency", f"--script={ROTATE}", f"{url}/graphql"]
    env = os.environ | {
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_CODES_FILE": str(codes_file),
        "BENCH_PLACEHOLDER": PLACEHOLDER,
        "BENCH_AUTHORIZATION": f"Bearer {key}",
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


async def bench(args: argparse.Namespace, folder: Path) -> int:
    urls, key, codes = await prepare(folder, args.parcels)
    if len(codes) < args.hot:
        raise BenchError(f"only {len(codes)} parcels for a hot set of {args.hot}")
    body_file = folder / "body.json"
    body = {"query": QUERY.read_text(), "variables": {"renewalCode": PLACEHOLDER}}
    body_file.write_text(json.dumps(body))
    sets = {"hot": codes[: args.hot], "rotating": codes}
    files = {}
    for name, chosen in sets.items():
        files[name] = folder / f"codes-{name}.txt"
        files[name].write_text("\n".join(chosen) + "\n")
    configurations: dict[str, dict[str, str]] = {
        "off": {"response_cache": "false"},
        "memory": {"response_cache": "true"},
    }
    if args.redis:
        configurations["redis"] = {
            "response_cache": "true",
            "redis_url": args.redis,
            "redis_key_prefix": f"bench:cache:{uuid.uuid4().hex}:",
        }
    sample = codes[:: max(1, len(codes) // 5)][:5]
    expected: dict[str, bytes] = {}
    results: dict[tuple[str, str], Load] = {}
    for label, settings in configurations.items():
        env = gateway_env(folder, urls, args.workers, **settings)
        async with gateway(env, folder / f"gateway-{label}.log") as url:
            if label == "off":
                async with httpx.AsyncClient(timeout=30) as http:
                    for code in sample:
                        expected[code] = (await lookup(http, url, key, code))[0]
            else:
                await check(url, key, sample, expected)
            for name in sets:
                if args.warmup:
                    run_wrk(url, key, files[name], body_file, args.warmup, args.connections)
                load = run_wrk(url, key, files[name], body_file, args.seconds, args.connections)
                if load.requests == 0:
                    log = folder / f"gateway-{label}.log"
                    raise BenchError(f"{label}, {name}: no request answered:\n{tail(log)}")
                results[label, name] = load
    print(
        f"Response cache: single-parcel look-up (counter, owners masked, dues), SQLite, "
        f"{args.parcels} parcels, {args.workers} worker(s), {args.connections} connections, "
        f"{args.seconds} s per run; dues max age 10 s (the answer's), planning 300 s"
    )
    print(f"{'cache':<8} {'parcels':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'on/off':>7}")
    bad = 0
    for (label, name), load in results.items():
        off = results["off", name].rps
        ratio = f"{load.rps / off:.2f}" if off else "-"
        over = f"{name} ({len(sets[name])})"
        print(
            f"{label:<8} {over:<22} {load.rps:>9.1f} {load.p50_ms:>8.2f} {load.p99_ms:>8.2f} "
            f"{ratio:>7}"
        )
        bad += load.bad
    print("Answers checked equal with the cache on and off; hits ran 0 SQL statements.")
    print(f"Bad responses (non-200, errors, socket errors): {bad}")
    return 0 if bad == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parcels", type=int, default=2000)
    parser.add_argument("--hot", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each run")
    parser.add_argument("--redis", default=None, help="also measure the cache in this Redis")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-response-cache-") as folder:
        try:
            return asyncio.run(bench(args, Path(folder)))
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
