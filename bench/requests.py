"""Citizen requests at a city's scale: the figures' queries over a year of requests, and
registration throughput.

    .venv/bin/python bench/requests.py [--requests 200000] [--clients 16] [--registrations 2000]
                                       [--postgres postgresql+asyncpg://postgres@127.0.0.1/postgres]
                                       [--sqlite] [--runs 5]

Creates throwaway databases (on PostgreSQL, named by --postgres or GATEWAY_TEST_POSTGRES_URL;
with --sqlite, or when neither names a server, SQLite files), migrates them, seeds the demo
catalogue (54 services, five regions) and --requests requests over the year before the bench's
fixed "now" (deterministic: one seed), with realistic skews: a few services and regions
draw most requests, a third of them cluster around twenty trouble spots, departments answer
at different speeds, some answers are reopened and rated. On PostgreSQL the rows go in with
COPY, then ANALYZE.

Then it times, each the median of --runs after one warm-up, the queries the dashboard sends
over that year (gateway/requests/request_stats.py and scores.py, called as the resolvers
call them): the statistics (counts by region × service, by Jalali month, by status; the
transparency view; frequent problems), the hotspots and the two rankings, against a target of
500 ms each. Last, it starts a real `gateway run` process on the same databases and has
--clients clients register --registrations requests through submitCitizenRequest, each client
one after another, all at once, and prints the rate and the latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from db import migrate, registry  # noqa: E402
from db.contact import CitizenRequestRecord  # noqa: E402
from db.contact_demo import REGION_BOUNDARIES, seed_catalogue  # noqa: E402
from db.engines import Databases  # noqa: E402
from gateway.access.keys import create_key  # noqa: E402
from gateway.access.principals import PrincipalKind  # noqa: E402
from gateway.inquiries.tracking import damm_check_digit  # noqa: E402
from gateway.requests import request_stats as stats  # noqa: E402
from gateway.requests.records import DATABASE, load_services  # noqa: E402
from gateway.requests.scores import ScoreWeights  # noqa: E402

# The bench's "now": the last day of 1405, so the year before it is Farvardin to Esfand.
NOW = dt.datetime(2027, 3, 20, 12, 0, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)
TARGET_MS = 500.0
STARTUP_TIMEOUT_S = 120.0
SUBMIT = """
mutation ($input: SubmitCitizenRequestInput!) {
  submitCitizenRequest(input: $input) { trackingCode status }
}"""
KINDS = (("REQUEST", 55), ("COMPLAINT", 30), ("CRITICISM", 7), ("SUGGESTION", 5), ("THANKS", 3))
# How fast each department answers, as a multiple of the service's deadline (median).
SPEED = {
    "urban_services": 0.6,
    "green_space": 0.9,
    "civil_works": 1.3,
    "transport": 0.8,
    "culture_social": 0.7,
    "public_relations": 0.5,
    "contact137": 0.4,
}


class BenchError(Exception):
    """Something went wrong that makes the measurement meaningless."""


# --- Databases ----------------------------------------------------------------------------


async def server_databases(admin_url: str) -> tuple[dict[str, str], Callable[[], Awaitable[None]]]:
    """Throwaway databases, one per registry entry, on the server; and how to drop them."""
    admin = make_url(admin_url)
    prefix = f"gwbench_req_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{name}" for name in registry.DATABASES.names]
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        for name in names:
            await connection.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()

    async def drop() -> None:
        dropping = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with dropping.connect() as connection:
            for name in names:
                await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await dropping.dispose()

    urls = {
        name: admin.set(database=database).render_as_string(hide_password=False)
        for name, database in zip(registry.DATABASES.names, names, strict=True)
    }
    return urls, drop


def sqlite_databases(folder: Path) -> dict[str, str]:
    return {n: f"sqlite+aiosqlite:///{folder / f'{n}.sqlite3'}" for n in registry.DATABASES.names}


# --- Seeding ------------------------------------------------------------------------------


def tracking_code(number: int) -> str:
    body = str(10**14 + number)
    return body + damm_check_digit(body)


def _inside(rng: random.Random, region: int) -> tuple[float, float]:
    """A point inside a region's boundary (rejection sampling over its box)."""
    ring = REGION_BOUNDARIES[region]
    lats, lons = [p[0] for p in ring], [p[1] for p in ring]
    while True:
        point = (rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons)))
        if _contains(ring, point):
            return point


def _contains(ring: list[list[float]], point: tuple[float, float]) -> bool:
    lat, lon = point
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (lat1 > lat) != (lat2 > lat):
            crossing = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing:
                inside = not inside
    return inside


def _region_of(point: tuple[float, float]) -> int | None:
    for region, ring in REGION_BOUNDARIES.items():
        if _contains(ring, point):
            return region
    return None


@dataclass(frozen=True)
class Catalogue:
    services: list[Any]  # ServiceDefinition
    weights: list[float]


def rows(count: int, catalogue: Catalogue, seed: int = 1405) -> list[dict[str, Any]]:
    """`count` requests over the year before NOW, deterministic for a seed."""
    rng = random.Random(seed)
    start = (NOW - YEAR).replace(tzinfo=None)
    spots = [_inside(rng, rng.choice([1, 1, 1, 2, 3, 4, 5])) for _ in range(20)]
    kinds = [kind for kind, _ in KINDS]
    kind_weights = [float(weight) for _, weight in KINDS]
    mobiles = [f"09{rng.randrange(10**9):09d}" for _ in range(max(count // 4, 10))]
    consenting = set(rng.sample(mobiles, max(len(mobiles) // 10, 1)))
    made = []
    for number in range(count):
        service = rng.choices(catalogue.services, catalogue.weights)[0]
        registered = start + dt.timedelta(seconds=rng.uniform(0, YEAR.total_seconds()))
        if rng.random() < 0.33:
            lat, lon = spots[rng.randrange(len(spots))]
            point = (lat + rng.gauss(0, 0.0013), lon + rng.gauss(0, 0.0016))
        else:
            point = _inside(rng, rng.choice([1, 1, 2, 2, 3, 4, 5]))
        region = _region_of(point)
        regions = service.regions or (1,)
        if region not in regions:
            region = regions[0]
            point = _inside(rng, region)
        department = (service.responsible or (service.owner_department,))[0]
        deadline = registered + dt.timedelta(days=service.deadline_days * 7 / 5)
        status, referred, resolved, closed, reopened, rating = "ASSIGNED", None, None, None, 0, None
        age = (NOW.replace(tzinfo=None) - registered).days
        if service.referred_agency:
            status, referred = "REFERRED", service.referred_agency
            closed = registered + dt.timedelta(hours=rng.uniform(1, 48))
        else:
            took = dt.timedelta(
                days=service.deadline_days
                * SPEED.get(department, 0.8)
                * math.exp(rng.gauss(0, 0.6))
            )
            if registered + took < NOW.replace(tzinfo=None) and rng.random() < 0.95:
                resolved = registered + took
                status = "RESOLVED"
                if rng.random() < 0.06:
                    reopened = 1
                if age > 14 and rng.random() < 0.8:
                    status, closed = "CLOSED", resolved + dt.timedelta(days=rng.uniform(1, 7))
                    if rng.random() < 0.6:
                        rating = rng.choices([1, 2, 3, 4, 5], [5, 8, 17, 35, 35])[0]
            else:
                status = rng.choice(
                    ["ASSIGNED", "IN_PROGRESS", "IN_PROGRESS", "WAITING_FOR_CITIZEN"]
                )
        mobile = mobiles[rng.randrange(len(mobiles))]
        made.append(
            {
                "tracking_code": tracking_code(number),
                "kind": rng.choices(kinds, kind_weights)[0],
                "status": status,
                "service_id": service.id,
                "channel": rng.choice(["PORTAL", "PORTAL", "CENTRE_137", "PARTNER_APP"]),
                "registered_by_kind": "department",
                "registered_by": "bench",
                "idempotency_key": f"seed-{number}",
                "input_digest": "0" * 64,
                "description": "درخواست نمونه",
                "latitude": round(point[0], 6),
                "longitude": round(point[1], 6),
                "address": None,
                "renewal_code": None,
                "region": region,
                "department": None if referred else department,
                "region_office": f"region_{region}_office",
                "referred_to": referred,
                "routing_rule_id": None,
                "citizen_name": "شهروند نمونه",
                "citizen_mobile": mobile,
                "photo_urls": "[]",
                "answers": "{}",
                "open311_token": None,
                "parent_id": None,
                "merged_into_id": None,
                "registered_at": registered,
                "updated_at": registered,
                "assigned_at": registered,
                "deadline_at": deadline,
                "paused_since": None,
                "paused_seconds": 0,
                "resolved_at": resolved,
                "closed_at": closed,
                "reopen_count": reopened,
                "rating": rating,
                "rated_at": closed if rating else None,
                "public_consent": mobile in consenting,
                "anonymised_at": None,
                "overdue_at": None,
                "reminded_at": None,
                "escalated_at": None,
                "version": 1,
            }
        )
    return made


async def seed(databases: Databases, count: int) -> float:
    """Migrates, seeds the catalogue and `count` requests; returns the seconds it took."""
    started = time.perf_counter()
    await migrate.upgrade(databases)
    await seed_catalogue(databases)
    engine = databases.engine(DATABASE)
    async with engine.connect() as connection:
        services = await load_services(connection)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(services))]
    made = rows(count, Catalogue(services, weights))
    table = CitizenRequestRecord.__tablename__
    if engine.dialect.name == "postgresql":
        columns = list(made[0])
        async with engine.begin() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            for begin in range(0, len(made), 50_000):
                await driver.copy_records_to_table(
                    table,
                    records=[
                        tuple(row[c] for c in columns) for row in made[begin : begin + 50_000]
                    ],
                    columns=columns,
                )
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"ANALYZE {table}"))
    else:
        for row in made:
            row["photo_urls"], row["answers"] = [], {}
        async with engine.begin() as connection:
            for begin in range(0, len(made), 5_000):
                await connection.execute(insert(CitizenRequestRecord), made[begin : begin + 5_000])
    return time.perf_counter() - started


# --- Timing the figures -------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    name: str
    median_ms: float
    max_ms: float
    groups: int  # what it returned, so that an empty answer shows


def figures(databases: Databases) -> list[tuple[str, Callable[[], Awaitable[list[Any]]]]]:
    engine = databases.engine(DATABASE)
    since, until = NOW - YEAR, NOW
    weights = ScoreWeights()
    g = stats.Grouping
    return [
        ("counts by region × service", lambda: stats.count_requests(
            engine, [g.REGION, g.SERVICE], since=since, until=until, now=NOW)),
        ("counts by Jalali month", lambda: stats.count_requests(
            engine, [g.MONTH], since=since, until=until, now=NOW)),
        ("counts by status", lambda: stats.count_requests(
            engine, [g.STATUS], since=since, until=until, now=NOW)),
        ("transparency (median, on time)", lambda: stats.transparency(
            engine, since=since, until=until, now=NOW)),
        ("frequent problems per region", lambda: stats.frequent_problems(
            engine, since=since, until=until, per_region=5, now=NOW)),
        ("hotspots (500 m grid)", lambda: stats.hotspots(
            engine, since=since, until=until, cell_metres=500, min_count=3, limit=100, now=NOW)),
        ("department ranking", lambda: stats.ranking(
            engine, g.DEPARTMENT, weights, since=since, until=until, now=NOW)),
        ("region ranking", lambda: stats.ranking(
            engine, g.REGION, weights, since=since, until=until, now=NOW)),
        ("engaged citizens", lambda: stats.engaged_citizens(
            engine, since=since, until=until, limit=18, now=NOW)),
    ]  # fmt: skip


async def time_figures(databases: Databases, runs: int) -> list[Timing]:
    timings = []
    for name, query in figures(databases):
        found = await query()  # warm-up: plans, caches, the pool
        spent = []
        for _ in range(runs):
            started = time.perf_counter()
            await query()
            spent.append((time.perf_counter() - started) * 1000)
        timings.append(Timing(name, statistics.median(spent), max(spent), len(found)))
    return timings


# --- Registration throughput --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_gateway(urls: dict[str, str], data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_ENV="development",
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SEED_PARCELS="0",
        GATEWAY_LOG_LEVEL="info",  # uvicorn says when the application has started
        GATEWAY_RATE_LIMIT_INTERNAL="100000000/minute",  # throughput, not the rate limit
        GATEWAY_RATE_LIMIT_STRATEGY="fixed-window",
        GATEWAY_JOBS_IN_APP="false",
        GATEWAY_PORT=str(port),
    )
    for name, url in urls.items():
        env[registry.DATABASES[name].url_variable] = url
    log_path = data_dir / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gateway"), "run"],
            env=env,
            cwd=REPO_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while b"Application startup complete" not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise BenchError(f"`gateway run` did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class Throughput:
    registered: int
    refused: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.registered / self.seconds if self.seconds else 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    low = math.floor(h)
    return ordered[low] + (h - low) * (ordered[min(low + 1, len(ordered) - 1)] - ordered[low])


async def register_load(
    base: str, key: str, services: list[Any], clients: int, count: int
) -> Throughput:
    rng = random.Random(7)
    plans = []
    for number in range(count):
        service = rng.choice(services)
        lat, lon = _inside(rng, service.regions[0])
        plans.append(
            {
                "kind": "COMPLAINT",
                "serviceCode": service.code,
                "description": "چاله در خیابان",
                "latitude": lat,
                "longitude": lon,
                "citizenName": "شهروند آزمون",
                "citizenMobile": f"0912{number:07d}",
                "idempotencyKey": f"bench-register-{number}",
            }
        )
    latencies: list[float] = []
    refused = 0

    async def client(index: int) -> None:
        nonlocal refused
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            for number in range(index, count, clients):
                started = time.perf_counter()
                response = await http.post(
                    "/graphql", json={"query": SUBMIT, "variables": {"input": plans[number]}}
                )
                latencies.append((time.perf_counter() - started) * 1000)
                body = response.json()
                if response.status_code != 200 or body.get("errors"):
                    refused += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    seconds = time.perf_counter() - started
    return Throughput(count - refused, refused, seconds, latencies)


# --- The run ------------------------------------------------------------------------------


def report(
    backend: str, args: argparse.Namespace, seeded_s: float, timings: list[Timing],
    throughput: Throughput | None,
) -> str:  # fmt: skip
    lines = [
        f"## Citizen requests on {backend}: {args.requests:,} requests over a year "
        f"(seeded in {seeded_s:.1f} s)",
        "",
        f"| query | median ms | max ms | groups | under {TARGET_MS:.0f} ms |",
        "|---|---|---|---|---|",
    ]
    for t in timings:
        ok = "yes" if t.median_ms < TARGET_MS else "NO"
        lines.append(f"| {t.name} | {t.median_ms:.0f} | {t.max_ms:.0f} | {t.groups} | {ok} |")
    if throughput is not None:
        lat = throughput.latencies_ms
        lines += [
            "",
            f"Registration through submitCitizenRequest, {args.clients} concurrent clients, one "
            f"`gateway run` process: {throughput.registered} registered, "
            f"{throughput.refused} refused in {throughput.seconds:.1f} s = "
            f"**{throughput.rate:.0f} requests/s**; latency p50 {percentile(lat, 0.5):.0f} ms, "
            f"p99 {percentile(lat, 0.99):.0f} ms.",
        ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> str:
    postgres = None if args.sqlite else args.postgres
    folder = Path(tempfile.mkdtemp(prefix="gateway-bench-requests-"))
    drop: Callable[[], Awaitable[None]] | None = None
    if postgres:
        urls, drop = await server_databases(postgres)
        backend = "PostgreSQL"
    else:
        urls, backend = sqlite_databases(folder), "SQLite"
    databases = Databases(urls)
    try:
        seeded_s = await seed(databases, args.requests)
        timings = await time_figures(databases, args.runs)
        throughput = None
        if args.registrations:
            _, key = await create_key(
                databases, PrincipalKind.DEPARTMENT, "bench 137 operators", "contact137"
            )
            async with databases.engine(DATABASE).connect() as connection:
                services = [
                    s
                    for s in await load_services(connection)
                    if not s.referred_agency and s.regions and not s.questions
                ]
            await databases.dispose()
            process, base = start_gateway(urls, folder)
            try:
                throughput = await register_load(
                    base, key, services, args.clients, args.registrations
                )
            finally:
                stop(process)
            if throughput.refused:
                log = (folder / "gateway.log").read_text()[-2000:]
                raise BenchError(f"{throughput.refused} registrations refused:\n{log}")
        return report(backend, args, seeded_s, timings, throughput)
    finally:
        await databases.dispose()
        if drop is not None:
            await drop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="requests seeded")
    parser.add_argument("--clients", type=int, default=16, help="concurrent registering clients")
    parser.add_argument(
        "--registrations", type=int, default=2000, help="requests registered (0: none)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query")
    parser.add_argument("--postgres", default=os.environ.get("GATEWAY_TEST_POSTGRES_URL"))
    parser.add_argument("--sqlite", action="store_true", help="SQLite files, even with a server")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.runs < 1 or args.clients < 1 or args.registrations < 0:
        parser.error("--requests, --runs and --clients are at least 1")
    return args


def main() -> None:
    print(asyncio.run(run(parse_args())))


if __name__ == "__main__":
    main()
