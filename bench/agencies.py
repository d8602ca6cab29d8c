"""Agency benchmark: concurrency, batching and caching, and failing fast while an agency is down.

    .venv/bin/python bench/agencies.py [--parcels 2000]

Everything real, on loopback: demo databases in SQLite files, the simulated agencies (SOAP
and REST over HTTP) in this process, and `gateway run` in its own process; requests go
through httpx over TCP. Prints, for the issue's "Must show":
1. three agencies each delayed 300 ms, one query touching all three: wall time / 300 ms;
2. a page of 100 parcels with their deeds: land-registry calls on a cold cache, then again;
3. the land registry down: a burst of 200 requests, p50/p99 once the breaker is open, and how
   long the deeds take to come back after the agency recovers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from db import demo, migrate  # noqa: E402
from db.engines import Databases  # noqa: E402
from gateway.access.keys import create_key  # noqa: E402
from gateway.access.principals import PrincipalKind  # noqa: E402
from sandbox.run import Agencies, run_agencies  # noqa: E402
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME  # noqa: E402

LATENCY_MS = 300
BURST = 200
BURST_CONCURRENCY = 20
THREE_AGENCIES = (
    "query($after: String, $code: NationalCode!) {"
    " parcels(first: 1, after: $after) {"
    "   edges { node { deed { serial } postalAddress { city } } } }"
    " person(nationalCode: $code) { civilRecord { alive } } }"
)
PAGE = (
    "{ parcels(first: 100) { edges { node { renewalCode deed { serial seizures { issuer } } } } } }"
)
DEEDS = "{ parcels(first: 5) { edges { node { renewalCode deed { serial } } } } }"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_gateway(env: dict[str, str]) -> AsyncIterator[str]:
    """`gateway run` in its own process (its own core), as in production."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gateway"),
        "run",
        env={**os.environ, **env, "GATEWAY_PORT": str(port), "GATEWAY_LOG_LEVEL": "warning"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                if process.returncode is not None:
                    raise SystemExit("the gateway did not start")
                await asyncio.sleep(0.1)
        yield f"{url}/graphql"
    finally:
        process.terminate()
        await process.wait()


# An operator's API key, issued into the benchmark's gateway database before it starts.
AUTHORIZATION: dict[str, str] = {}


async def gql(
    http: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await http.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers={"X-Gateway-Debug": "cost", **AUTHORIZATION},
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def chaos(http: httpx.AsyncClient, agencies: Agencies, agency: str, **knobs: Any) -> None:
    (await http.put(f"{agencies.url(agency)}/_chaos", json=knobs)).raise_for_status()


async def calm(http: httpx.AsyncClient, agencies: Agencies) -> None:
    for agency in ("land_registry", "civil_registry", "bank", "postal"):
        await http.delete(f"{agencies.url(agency)}/_chaos")


def gateway_env(urls: dict[str, str], agencies: Agencies) -> dict[str, str]:
    env = {f"GATEWAY_{n.upper()}_DATABASE_URL": u for n, u in urls.items()}
    for name in ("land_registry", "civil_registry", "bank", "postal"):
        env[f"GATEWAY_{name.upper()}_URL"] = agencies.url(name)
    for name in ("land_registry", "civil_registry", "bank"):
        env[f"GATEWAY_{name.upper()}_USERNAME"] = DEMO_USERNAME
        env[f"GATEWAY_{name.upper()}_PASSWORD"] = DEMO_PASSWORDS[name]
    env["GATEWAY_AGENCY_BREAKER_RESET_S"] = "2"
    env["GATEWAY_SEED_PARCELS"] = "0"
    env["GATEWAY_RATE_LIMIT_INTERNAL"] = "1000000/minute"
    return env


async def concurrency(http: httpx.AsyncClient, url: str, agencies: Agencies) -> list[str]:
    for agency in ("land_registry", "civil_registry", "postal"):
        await chaos(http, agencies, agency, latency_ms=LATENCY_MS)
    first = await gql(http, url, "{ parcels(first: 12) { edges { cursor } } }")
    cursors = [e["cursor"] for e in first["data"]["parcels"]["edges"]]
    people = await gql(
        http, url, "{ parcels(first: 40) { edges { node { owners { nationalCode } } } } }"
    )
    codes = sorted(
        {o["nationalCode"] for e in people["data"]["parcels"]["edges"] for o in e["node"]["owners"]}
    )
    # One request first: it opens the connections to each agency, as a running gateway has.
    await gql(http, url, THREE_AGENCIES, {"after": cursors[11], "code": codes[11]})
    ratios = []
    for after, code in zip(cursors[:10], codes[:10], strict=False):
        started = time.perf_counter()
        body = await gql(http, url, THREE_AGENCIES, {"after": after, "code": code})
        elapsed = time.perf_counter() - started
        if "errors" in body or body["extensions"]["cost"]["agencyCalls"] != 3:
            raise SystemExit(f"unexpected answer: {body}")
        ratios.append(elapsed / (LATENCY_MS / 1000))
    await calm(http, agencies)
    return [
        f"Three agencies each delayed {LATENCY_MS} ms, one query touching all three "
        f"({len(ratios)} runs after one warm-up, uncached): wall time / slowest agency = "
        f"median {statistics.median(ratios):.3f}, worst {max(ratios):.3f} (target ≤ 1.15)"
    ]


async def batching(http: httpx.AsyncClient, url: str, agencies: Agencies) -> list[str]:
    registry = agencies.url("land_registry")
    await http.delete(f"{registry}/_calls")
    cold = await gql(http, url, PAGE)
    calls_cold = len((await http.get(f"{registry}/_calls")).json()["calls"])
    warm = await gql(http, url, PAGE)
    calls_warm = len((await http.get(f"{registry}/_calls")).json()["calls"]) - calls_cold
    deeds = sum(1 for e in cold["data"]["parcels"]["edges"] if e["node"]["deed"])
    return [
        f"A page of 100 parcels with deeds ({deeds} deeds): {calls_cold} land-registry call(s)"
        f" (cost.agencyCalls {cold['extensions']['cost']['agencyCalls']});"
        f" the same page again within the TTL: {calls_warm} call(s)"
        f" (cost.agencyCalls {warm['extensions']['cost']['agencyCalls']})"
    ]


async def outage(http: httpx.AsyncClient, url: str, agencies: Agencies) -> list[str]:
    await chaos(http, agencies, "land_registry", down=True)
    page = (
        "query($after: String) { parcels(first: 5, after: $after) {"
        " edges { node { renewalCode deed { serial } } } } }"
    )
    # Fail until the breaker opens; these requests pay for the retries that open it.
    opened_after = 0
    while True:
        opened_after += 1
        await gql(http, url, page, {"after": _cursor(opened_after * 5)})
        state = await gql(http, url, "{ agencies { name state } }")
        land = next(a for a in state["data"]["agencies"] if a["name"] == "land_registry")
        if land["state"] == "OPEN":
            break
    semaphore = asyncio.Semaphore(BURST_CONCURRENCY)
    latencies: list[float] = []
    codes: set[str] = set()

    async def one(i: int) -> None:
        async with semaphore:
            started = time.perf_counter()
            # A different page each time: no cache can answer for the agency.
            body = await gql(http, url, page, {"after": _cursor(1000 + i * 5)})
            latencies.append((time.perf_counter() - started) * 1000)
            codes.update(e["extensions"]["code"] for e in body.get("errors", []))
            if any(not e["node"]["renewalCode"] for e in body["data"]["parcels"]["edges"]):
                raise SystemExit("the rest of the answer went missing")

    burst_started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(BURST)))
    burst_seconds = time.perf_counter() - burst_started
    latencies.sort()
    await calm(http, agencies)
    started = time.perf_counter()
    while True:
        body = await gql(http, url, DEEDS)
        if "errors" not in body:
            break
        await asyncio.sleep(0.1)
    recovered = time.perf_counter() - started
    return [
        f"Land registry down: the breaker opened after {opened_after} failing request(s);"
        f" then a burst of {BURST} requests ({BURST_CONCURRENCY} at a time) took"
        f" {burst_seconds:.2f} s, codes {sorted(codes)}, p50 {statistics.median(latencies):.1f} ms,"
        f" p99 {latencies[int(len(latencies) * 0.99) - 1]:.1f} ms (agency timeout 3 s)",
        f"After the agency came back, deeds returned by themselves in {recovered:.2f} s"
        " (breaker reset 2 s)",
    ]


def _cursor(parcel_id: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"parcel:{parcel_id}".encode()).decode()


async def main(parcels: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-agencies-") as tmp:
        urls = {
            n: f"sqlite+aiosqlite:///{Path(tmp) / f'{n}.sqlite3'}"
            for n in ("planning", "revenue", "gateway")
        }
        databases = Databases(urls)
        await migrate.upgrade(databases)
        await demo.seed_demo(databases, parcels=parcels)
        _, key = await create_key(databases, PrincipalKind.OPERATOR, "Agency benchmark")
        AUTHORIZATION["Authorization"] = f"Bearer {key}"
        await databases.dispose()
        lines: list[str] = []
        async with (
            run_agencies(planning_url=urls["planning"], revenue_url=urls["revenue"]) as agencies,
            httpx.AsyncClient(timeout=30) as http,
        ):
            for scenario in (concurrency, batching, outage):
                # A fresh gateway per scenario: cold caches, closed breakers.
                async with serve_gateway(gateway_env(urls, agencies)) as url:
                    lines += await scenario(http, url, agencies)
        print("\n".join(f"- {line}" for line in lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=2000)
    asyncio.run(main(parser.parse_args().parcels))
