"""The agency path under rotating keys: throughput and the gateway's CPU per request.

    .venv/bin/python bench/agency_path.py [--parcels 2000] [--seconds 8] [--connections 16]
                                          [--paths fast,zeep]

Everything real, on loopback: demo databases in SQLite files, the simulated agencies (SOAP
over HTTP, WS-Security checked) in this process, `gateway run` with one worker in its own
process, and wrk (bench/rotate.lua) driving a notary's requests, each for a different key:

- deed: one parcel's deed by renewal code (a GetDeed per request);
- page: a page of 10 parcels with their deeds, after a different cursor (a GetDeeds each);
- person: a person's civil record by national code (a GetPerson each);
- floor: the deed's parcel with its owners from our own records instead of its deed: a
  request of the same kind (personal data, audited) with no agency call, to tell the agency
  path's share from the rest (authentication, GraphQL, SQL, audit).

The agency cache never answers: its TTL is set to 0 for the land and civil registries, so
every request makes its agency call however long the run. The gateway's CPU is read from
/proc/<pid>/stat (utime + stime) before and after each run and divided by the requests
answered. Each scenario runs once per SOAP path (`GATEWAY_AGENCY_SOAP_PATH`: `zeep`, the
old path through zeep's proxy, and `fast`, precompiled envelopes and direct parsing), in
the same run, so the two are measured under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(REPO_DIR))
# Not this folder: its requests.py would stand for the `requests` package zeep imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

from db import demo, migrate  # noqa: E402
from db.engines import Databases  # noqa: E402
from gateway.access.keys import create_key  # noqa: E402
from gateway.access.principals import PrincipalKind  # noqa: E402
from sandbox.run import Agencies, run_agencies  # noqa: E402
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME  # noqa: E402

ROTATE_SCRIPT = BENCH_DIR / "rotate.lua"
PLACEHOLDER = "@@KEY@@"
PATHS = ("zeep", "fast")

DEED = (
    "query Deed($code: RenewalCode!) { parcel(renewalCode: $code) { renewalCode"
    " deed { serial issuedOn { iso } area owners { nationalCode firstName lastName share }"
    " mortgages { holder amount registeredOn { iso } }"
    " seizures { issuer reference registeredOn { iso } }"
    " freeOfSeizure } } }"
)
# The deed query's parcel without its deed, with its owners from the municipality's own
# records: the same request, personal data read (so audited), but no agency call.
FLOOR = (
    "query Parcel($code: RenewalCode!) { parcel(renewalCode: $code) { renewalCode"
    " owners { nationalCode share } } }"
)
PAGE = (
    "query Deeds($after: String) { parcels(first: 10, after: $after) { edges { node {"
    " renewalCode deed { serial area owners { nationalCode share } seizures { issuer } } } } } }"
)
PERSON = (
    "query Person($code: NationalCode!) { person(nationalCode: $code) {"
    " civilRecord { nationalCode firstName lastName fatherName birthDate { iso } gender alive"
    " deathDate { iso } } } }"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    query: str
    variable: str


SCENARIOS = (
    Scenario("deed", "a deed per request (GetDeed)", DEED, "code"),
    Scenario("page", "a page of 10 deeds (GetDeeds)", PAGE, "after"),
    Scenario("person", "a person's civil record (GetPerson)", PERSON, "code"),
    Scenario("floor", "the parcel and its owners, no deed (no agency call)", FLOOR, "code"),
)


@dataclass(frozen=True)
class Figure:
    scenario: str
    path: str
    requests: int
    requests_per_second: float
    cpu_ms_per_request: float
    idle_cpu_ms_per_s: float  # what the worker spends with no request at all (its timers)
    net_cpu_ms_per_request: float  # cpu_ms_per_request less the idle share of the run
    bad_responses: int
    peak_rss_mb: float  # the worker's VmHWM after the run: its peak so far


# ---------------------------------------------------------------------------------------------
# Measuring


def stat_cpu_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, of a /proc/<pid>/stat line."""
    # The command name (field 2) may hold spaces and parentheses: count the fields after
    # its last closing parenthesis (field 3, the state, is the first of them).
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU so far, from /proc/<pid>/stat."""
    return stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / os.sysconf("SC_CLK_TCK")


_RPS = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_BAD = re.compile(r"^Bad responses \(non-200 or GraphQL errors\): (\d+)\s*$", re.MULTILINE)


def parse_wrk(output: str) -> tuple[int, float, int]:
    """wrk's (with rotate.lua) requests, requests per second and bad responses."""
    total, rps, bad = _TOTAL.search(output), _RPS.search(output), _BAD.search(output)
    if total is None or rps is None or bad is None:
        raise ValueError(f"not wrk's output:\n{output}")
    return int(total.group(1)), float(rps.group(1)), int(bad.group(1))


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM in /proc/{pid}/status")


def per_request_ms(cpu_before: float, cpu_after: float, requests: int) -> float:
    if requests <= 0:
        raise ValueError("no request was answered")
    return (cpu_after - cpu_before) * 1000 / requests


async def idle_rate(pid: int, seconds: float) -> float:
    """The process's CPU in ms per second while nobody asks anything: its background work
    (the job engine's polling, metrics, timers), to tell apart from the requests' own."""
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) * 1000 / (time.monotonic() - started)


def body_template(scenario: Scenario) -> str:
    return json.dumps(
        {"query": scenario.query, "variables": {scenario.variable: PLACEHOLDER}},
        ensure_ascii=False,
    )


async def run_wrk(
    url: str,
    body_file: Path,
    keys_file: Path,
    *,
    seconds: float,
    connections: int,
    authorization: str,
) -> tuple[int, float, int]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed")
    env = os.environ | {
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_CODES_FILE": str(keys_file),
        "BENCH_PLACEHOLDER": PLACEHOLDER,
        "BENCH_AUTHORIZATION": authorization,
    }
    process = await asyncio.create_subprocess_exec(
        wrk,
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={ROTATE_SCRIPT}",
        url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"wrk failed: {out.decode()}{err.decode()}")
    return parse_wrk(out.decode())


# ---------------------------------------------------------------------------------------------
# The gateway


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_env(
    urls: dict[str, str], agencies: Agencies, path: str, *, cached: bool = False
) -> dict[str, str]:
    env = {f"GATEWAY_{n.upper()}_DATABASE_URL": u for n, u in urls.items()}
    for name in ("land_registry", "civil_registry", "bank", "postal"):
        env[f"GATEWAY_{name.upper()}_URL"] = agencies.url(name)
    for name in ("land_registry", "civil_registry", "bank"):
        env[f"GATEWAY_{name.upper()}_USERNAME"] = DEMO_USERNAME
        env[f"GATEWAY_{name.upper()}_PASSWORD"] = DEMO_PASSWORDS[name]
    env |= {
        "GATEWAY_AGENCY_SOAP_PATH": path,
        # Every request asks its agency: no cache answers, however long the run.
        "GATEWAY_LAND_REGISTRY_CACHE_TTL_S": "0" if not cached else "3600",
        "GATEWAY_CIVIL_REGISTRY_CACHE_TTL_S": "0" if not cached else "3600",
        "GATEWAY_SEED_PARCELS": "0",
        "GATEWAY_WORKERS": "1",
        "GATEWAY_RATE_LIMIT_INTERNAL": "100000000/minute",
        "GATEWAY_RATE_LIMIT_PARTNER": "100000000/minute",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    return env


@contextlib.asynccontextmanager
async def serve_gateway(
    env: dict[str, str], log: Path | None = None
) -> AsyncIterator[tuple[str, int]]:
    """`gateway run` with one worker, in its own process: its URL and pid. Its output goes
    to `log` when given (to see why requests fail), else nowhere."""
    port = _free_port()
    output = log.open("ab") if log is not None else None
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gateway"),
        "run",
        env={**os.environ, **env, "GATEWAY_PORT": str(port)},
        stdout=output or asyncio.subprocess.DEVNULL,
        stderr=output or asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                if process.returncode is not None:
                    raise SystemExit("the gateway did not start")
                await asyncio.sleep(0.1)
        yield f"{url}/graphql", process.pid
    finally:
        process.terminate()
        await process.wait()
        if output is not None:
            output.close()


async def keys_for(http: httpx.AsyncClient, url: str, authorization: str) -> dict[str, list[str]]:
    """Distinct keys for each scenario: renewal codes, cursors, national codes."""
    codes: list[str] = []
    cursors: list[str] = []
    people: set[str] = set()
    after: str | None = None
    while True:
        response = await http.post(
            url,
            json={
                "query": "query($after: String) { parcels(first: 100, after: $after) {"
                " edges { cursor node { renewalCode owners { nationalCode } } }"
                " pageInfo { hasNextPage } } }",
                "variables": {"after": after},
            },
            headers={"Authorization": authorization},
        )
        answer = response.json()
        if "data" not in answer:
            raise SystemExit(f"cannot list parcels: {answer}")
        page = answer["data"]["parcels"]
        for edge in page["edges"]:
            codes.append(edge["node"]["renewalCode"])
            cursors.append(edge["cursor"])
            people.update(o["nationalCode"] for o in edge["node"]["owners"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["edges"][-1]["cursor"]
    return {"deed": codes, "page": cursors[:-10], "person": sorted(people), "floor": codes}


# ---------------------------------------------------------------------------------------------
# The run


async def run_scenario(
    scenario: Scenario,
    path: str,
    gateway: tuple[str, int],
    keys: list[str],
    folder: Path,
    http: httpx.AsyncClient,
    args: argparse.Namespace,
    authorization: str,
) -> Figure:
    url, pid = gateway
    body_file = folder / f"{scenario.name}.json"
    body_file.write_text(body_template(scenario), encoding="utf-8")
    keys_file = folder / f"{scenario.name}.keys"
    keys_file.write_text("\n".join(keys) + "\n")
    probe = (
        await http.post(
            url,
            content=body_template(scenario).replace(PLACEHOLDER, keys[0]),
            headers={"Authorization": authorization, "Content-Type": "application/json"},
        )
    ).json()
    if "errors" in probe:
        raise SystemExit(f"{scenario.name}: {probe['errors']}")
    # A short warm-up: connections to the agency opened, code paths run once.
    if args.warmup:
        await run_wrk(
            url,
            body_file,
            keys_file,
            seconds=1,
            connections=args.connections,
            authorization=authorization,
        )
    idle = await idle_rate(pid, args.idle_seconds)
    before, started = cpu_seconds(pid), time.monotonic()
    requests, rps, bad = await run_wrk(
        url,
        body_file,
        keys_file,
        seconds=args.seconds,
        connections=args.connections,
        authorization=authorization,
    )
    after, elapsed = cpu_seconds(pid), time.monotonic() - started
    return Figure(
        scenario.name,
        path,
        requests,
        rps,
        per_request_ms(before, after, requests),
        idle,
        per_request_ms(before, after - idle * elapsed / 1000, requests),
        bad,
        peak_rss_mb(pid),
    )


async def measure(
    args: argparse.Namespace, urls: dict[str, str], agencies: Agencies, authorization: str
) -> list[Figure]:
    """Every path's gateway runs from the start; each scenario is measured on one path after
    the other, so both meet the same load on the machine."""
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-agency-path-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            gateways = {
                path: await stack.enter_async_context(
                    serve_gateway(
                        gateway_env(urls, agencies, path, cached=args.cached), args.gateway_log
                    )
                )
                for path in args.paths
            }
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            keys = await keys_for(http, gateways[args.paths[0]][0], authorization)
            for scenario in SCENARIOS:
                if scenario.name not in args.scenarios:
                    continue
                # The floor has no SOAP call: once is enough.
                paths = args.paths[-1:] if scenario.name == "floor" else args.paths
                for path in paths:
                    figures.append(
                        await run_scenario(
                            scenario,
                            path,
                            gateways[path],
                            keys[scenario.name],
                            Path(tmp),
                            http,
                            args,
                            authorization,
                        )
                    )
    return figures


def table(figures: Sequence[Figure], args: argparse.Namespace) -> str:
    titles = {s.name: s.title for s in SCENARIOS}
    lines = [
        f"Agency path, rotating keys, 1 worker, {args.connections} connections, "
        f"{args.seconds} s per run, {args.parcels} parcels, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        "",
        "| scenario | SOAP path | requests | req/s | gateway CPU ms/request"
        " | idle CPU ms/s | less idle, ms/request | bad | worker's peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(
            f"| {titles[f.scenario]} | {f.path} | {f.requests} | {f.requests_per_second:.0f}"
            f" | {f.cpu_ms_per_request:.2f} | {f.idle_cpu_ms_per_s:.0f}"
            f" | {f.net_cpu_ms_per_request:.2f} | {f.bad_responses} | {f.peak_rss_mb:.1f} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parcels", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--idle-seconds", type=float, default=3)
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--gateway-log", type=Path, help="append the gateways' output here")
    parser.add_argument(
        "--cached",
        action="store_true",
        help="keep the agency cache (1 h): after the first lap over the keys every answer is"
        " a cache hit, which isolates the rest of the request's work",
    )
    parser.add_argument(
        "--paths", type=lambda s: s.split(","), default=list(PATHS), help="zeep,fast"
    )
    parser.add_argument(
        "--scenarios",
        type=lambda s: [name for name in s.split(",") if name],
        default=[s.name for s in SCENARIOS],
        help="deed,page,person,floor (empty: none)",
    )
    parser.add_argument(
        "--connector-calls",
        type=int,
        default=0,
        help="also measure the land registry connector alone over this many calls per lap",
    )
    args = parser.parse_args(argv)
    for path in args.paths:
        if path not in PATHS:
            parser.error(f"unknown path {path!r}")
    return args


# The simulated agencies in a process of their own, so that this one's CPU is the caller's.
_AGENCIES_CHILD = """
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from sandbox.run import run_agencies
async def serve():
    async with run_agencies(planning_url=sys.argv[1], revenue_url=sys.argv[2]) as agencies:
        print(agencies.url("land_registry"), flush=True)
        await asyncio.Event().wait()
asyncio.run(serve())
"""


async def connector_cpu_us(
    urls: dict[str, str], calls: int, connections: int, fast: bool
) -> tuple[float, float]:
    """The land registry connector alone (no gateway): CPU µs per GetDeeds of one plate, each
    for another plate, `connections` calls in flight, through the guard (cache off), the SOAP
    path and the shared HTTP client; and the calls per second. Best of three laps."""
    import dataclasses
    import sqlite3

    from connectors.agencies import AGENCY_NAMES, DEFAULT_POLICIES, Agencies, AgencyConfig
    from connectors.soap.land_registry import Plate
    from connectors.transport import build_client

    database = urls["planning"].removeprefix("sqlite+aiosqlite:///")
    with contextlib.closing(sqlite3.connect(database)) as db:
        plates = [
            Plate(*row)
            for row in db.execute("SELECT registry_section, main_plate, sub_plate FROM parcels")
        ]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _AGENCIES_CHILD,
        urls["planning"],
        urls["revenue"],
        str(REPO_DIR),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        url = (await child.stdout.readline()).decode().strip()
        http = build_client(max_response_bytes=4 * 1024 * 1024, timeout=httpx.Timeout(10))
        configs = {
            name: AgencyConfig(
                name=name,
                url=url,
                username=None if name == "postal" else DEMO_USERNAME,
                password=None if name == "postal" else DEMO_PASSWORDS[name],
                policy=dataclasses.replace(DEFAULT_POLICIES[name], cache_ttl_s=0),
            )
            for name in AGENCY_NAMES
        }
        registry = Agencies(configs, http, soap_fast_path=fast).land_registry
        turn = iter(range(10**9))

        async def caller(count: int) -> None:
            for _ in range(count):
                plate = plates[next(turn) % len(plates)]
                if len(await registry.deeds([plate])) != 1:
                    raise SystemExit("the registry did not answer")

        await asyncio.gather(*(caller(20) for _ in range(connections)))  # warm-up
        best: tuple[float, float] | None = None
        for _ in range(3):
            cpu, wall = time.process_time(), time.monotonic()
            await asyncio.gather(*(caller(calls // connections) for _ in range(connections)))
            done = calls // connections * connections
            lap = (
                (time.process_time() - cpu) * 1e6 / done,
                done / (time.monotonic() - wall),
            )
            best = lap if best is None or lap[0] < best[0] else best
        await http.aclose()
        assert best is not None
        return best
    finally:
        child.terminate()
        await child.wait()


async def main(args: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-agency-path-db-") as tmp:
        urls = {
            n: f"sqlite+aiosqlite:///{Path(tmp) / f'{n}.sqlite3'}"
            for n in ("planning", "revenue", "gateway")
        }
        databases = Databases(urls)
        await migrate.upgrade(databases)
        await demo.seed_demo(databases, parcels=args.parcels)
        _, key = await create_key(databases, PrincipalKind.NOTARY, "Agency path benchmark")
        await databases.dispose()
        figures: list[Figure] = []
        if args.scenarios:
            async with run_agencies(
                planning_url=urls["planning"], revenue_url=urls["revenue"]
            ) as agencies:
                figures = await measure(args, urls, agencies, f"Bearer {key}")
            print(table(figures, args))
        if args.connector_calls:
            print(
                f"\nThe land registry connector alone (GetDeeds of one plate, another each"
                f" time, {args.connections} in flight, agencies in another process):\n"
            )
            print("| SOAP path | CPU µs per call | calls/s |\n|---|---:|---:|")
            for path in args.paths:
                us, rate = await connector_cpu_us(
                    urls, args.connector_calls, args.connections, path == "fast"
                )
                print(f"| {path} | {us:.0f} | {rate:.0f} |")
    return figures


if __name__ == "__main__":
    try:
        import uvloop  # the gateway's own loop (uvicorn's), for the connector alone too
    except ImportError:
        asyncio.run(main(parse_args()))
    else:
        uvloop.run(main(parse_args()))
