"""Operations benchmark: mixed load with one agency flapping, then SIGTERM under load.

    .venv/bin/python bench/ops.py [--seconds 60] [--connections 16] [--parcels 2000]
                                  [--workers 2] [--flap-s 5] [--log FILE]
                                  [--log-level warning] [--sample-s 10]

Everything real, on loopback: fresh SQLite databases seeded with the demo city, the simulated
agencies in this process (each call delayed 20 ms), and `gateway run` (`--workers` processes,
metrics on a port of their own) in its own process. `--connections` clients send a mix of
operations for `--seconds`: the public's parcel look-up (databases only), a notary's parcels
with owners (audited) and deeds (the land registry), a counter's parcel with its postal
address (the postal service), a department's person with the civil record (the civil
registry). The land registry flaps: down for `--flap-s` seconds, up for as long, again and
again. It prints:

- the gateway's memory (RSS of all its processes) at the start of the load and at its end,
  and sampled every `--sample-s` seconds between;
- requests answered, their codes, p50/p99/max latency, and how many hung (no answer within
  60 s, well past every agency deadline): the target is none;
- from /metrics: the land registry's calls by outcome and its breaker's transitions;
- then, load still running, SIGTERM to the gateway: how many requests were in flight (sent
  before the signal) and how many of them failed: the target is none.
Exit status 1 if a request hung or an in-flight request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from db import migrate, registry  # noqa: E402
from db.engines import Databases  # noqa: E402
from gateway.access.keys import create_key, parse_kind  # noqa: E402
from sandbox.run import Agencies, run_agencies  # noqa: E402
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME  # noqa: E402

HANG_S = 60.0
AGENCY_LATENCY_MS = 20
FLAPPING = "land_registry"

LOOKUP = "query Lookup($after: String) { parcels(first: 1, after: $after) { edges { node {"
LOOKUP += " renewalCode address dues { outstanding } } } } }"
DEEDS = "query Deeds($after: String) { parcels(first: 5, after: $after) { edges { node {"
DEEDS += " renewalCode owners { nationalCode share } deed { serial } } } } }"
POSTAL = "query Postal($after: String) { parcels(first: 1, after: $after) { edges { node {"
POSTAL += " renewalCode postalAddress { city } } } } }"
PERSON = "query Person($code: NationalCode!) { person(nationalCode: $code) {"
PERSON += " fullName civilRecord { alive } } }"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cursor(parcel_id: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"parcel:{parcel_id}".encode()).decode()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers), in MB."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.append(int(entry.name))
    total = 0
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass
class Tally:
    """What the clients saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    hung: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Load:
    url: str
    keys: dict[str, str]
    national_codes: list[str]
    parcels: int
    tally: Tally = field(default_factory=Tally)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests sent before SIGTERM and their outcome (True: answered 200 or a GraphQL answer).
    signalled_at: float | None = None
    in_flight_outcomes: list[bool] = field(default_factory=list)

    def operation(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        after = _cursor(rng.randrange(1, max(2, self.parcels - 5)))
        pick = rng.random()
        if pick < 0.4:
            return LOOKUP, {"after": after}, "public"
        if pick < 0.7:
            return DEEDS, {"after": after}, "notary"
        if pick < 0.85:
            return POSTAL, {"after": after}, "counter"
        return PERSON, {"code": rng.choice(self.national_codes)}, "revenue"

    async def client(self, seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=self.url, timeout=HANG_S) as http:
            while not self.stop.is_set():
                query, variables, caller = self.operation(rng)
                headers = (
                    {"Authorization": f"Bearer {self.keys[caller]}"} if caller in self.keys else {}
                )
                sent_at = time.monotonic()
                before_signal = self.signalled_at is None
                ok = False
                try:
                    response = await http.post(
                        "/graphql", json={"query": query, "variables": variables}, headers=headers
                    )
                except httpx.TimeoutException:
                    self.tally.hung += 1
                except httpx.TransportError as exc:
                    self.tally.transport_errors[type(exc).__name__] += 1
                    if not before_signal:
                        return  # the gateway is going away: this client stops
                else:
                    self.tally.latencies.append((time.monotonic() - sent_at) * 1000)
                    self.tally.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        ok = True
                        for error in response.json().get("errors", []):
                            self.tally.codes[error["extensions"]["code"]] += 1
                if before_signal and self.signalled_at is not None:
                    self.in_flight_outcomes.append(ok)


async def flap(agencies: Agencies, every_s: float, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient() as http:
        url = f"{agencies.url(FLAPPING)}/_chaos"
        down = False
        while not stop.is_set():
            down = not down
            await http.put(url, json={"down": down, "latency_ms": AGENCY_LATENCY_MS})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
        await http.put(url, json={"down": False})


def metric_values(text: str, name: str, **labels: str) -> dict[str, float]:
    """Samples of `name` matching `labels`, by their remaining labels."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            rest = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k not in labels)
            found[rest] = found.get(rest, 0.0) + sample.value
    return found


@contextlib.asynccontextmanager
async def gateway(
    env: dict[str, str], log: Path | None
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    port = _free_port()
    stderr = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "gateway"),
            "run",
            env={**os.environ, **env, "GATEWAY_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    finally:
        os.close(stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(300):
            while True:
                if process.returncode is not None:
                    raise SystemExit("the gateway did not start")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url, process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def prepare(folder: Path, parcels: int) -> tuple[dict[str, str], dict[str, str], list[str]]:
    urls = {n: f"sqlite+aiosqlite:///{folder / f'{n}.sqlite3'}" for n in registry.DATABASES.names}
    databases = Databases(urls)
    try:
        await migrate.upgrade(databases)
        await registry.seed_empty(databases, parcels=parcels)
        keys = {}
        for label, kind in (
            ("notary", "notary"),
            ("counter", "counter"),
            ("revenue", "department:revenue"),
            ("operator", "operator"),
        ):
            principal_kind, department = parse_kind(kind)
            _, keys[label] = await create_key(
                databases, principal_kind, f"Ops benchmark {label}", department
            )
        from sqlalchemy import text

        async with databases.engine("planning").connect() as connection:
            rows = await connection.execute(text("SELECT national_code FROM persons LIMIT 200"))
            codes = sorted({row[0] for row in rows})
    finally:
        await databases.dispose()
    return urls, keys, codes


async def main(
    seconds: float,
    connections: int,
    parcels: int,
    workers: int,
    flap_s: float,
    log: Path | None,
    sample_s: float = 10.0,
    log_level: str = "warning",
) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
        folder = Path(tmp)
        urls, keys, codes = await prepare(folder, parcels)
        metrics_port = _free_port()
        async with run_agencies(
            planning_url=urls["planning"], revenue_url=urls["revenue"]
        ) as agencies:
            env = {f"GATEWAY_{n.upper()}_DATABASE_URL": u for n, u in urls.items()}
            for name in ("land_registry", "civil_registry", "bank", "postal"):
                env[f"GATEWAY_{name.upper()}_URL"] = agencies.url(name)
            for name in ("land_registry", "civil_registry", "bank"):
                env[f"GATEWAY_{name.upper()}_USERNAME"] = DEMO_USERNAME
                env[f"GATEWAY_{name.upper()}_PASSWORD"] = DEMO_PASSWORDS[name]
            env.update(
                GATEWAY_DATA_DIR=str(folder / "data"),
                GATEWAY_SEED_PARCELS="0",
                GATEWAY_WORKERS=str(workers),
                GATEWAY_METRICS_PORT=str(metrics_port),
                GATEWAY_LOG_LEVEL=log_level,
                GATEWAY_LOG_FORMAT="json",
                GATEWAY_JOBS_IN_APP="false",
                GATEWAY_LAND_REGISTRY_BREAKER_RESET_S="2",
                GATEWAY_RATE_LIMIT_PUBLIC="10000000/minute",
                GATEWAY_RATE_LIMIT_PARTNER="10000000/minute",
                GATEWAY_RATE_LIMIT_INTERNAL="10000000/minute",
            )
            async with gateway(env, log) as (url, process):
                for name in ("civil_registry", "bank", "postal"):
                    async with httpx.AsyncClient() as http:
                        await http.put(
                            f"{agencies.url(name)}/_chaos", json={"latency_ms": AGENCY_LATENCY_MS}
                        )
                load = Load(url, keys, codes, parcels)
                flapping = asyncio.Event()
                clients = [asyncio.create_task(load.client(n)) for n in range(connections)]
                flapper = asyncio.create_task(flap(agencies, flap_s, flapping))
                await asyncio.sleep(min(5.0, seconds / 6))  # warmed up: caches, connections
                rss_start = rss_mb(process.pid)
                loaded_at = time.monotonic()
                samples = [(0.0, rss_start)]
                remaining = seconds - min(5.0, seconds / 6)
                while (elapsed := time.monotonic() - loaded_at) < remaining:
                    await asyncio.sleep(min(sample_s, remaining - elapsed))
                    samples.append((time.monotonic() - loaded_at, rss_mb(process.pid)))
                rss_end = samples[-1][1]
                flapping.set()
                await flapper
                async with httpx.AsyncClient() as http:
                    scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                answered = len(load.tally.latencies)
                # SIGTERM with the load still running.
                load.signalled_at = time.monotonic()
                process.send_signal(signal.SIGTERM)
                # The clients go on until the gateway refuses them (then each stops).
                await asyncio.wait_for(asyncio.gather(*clients), HANG_S * 2)
                exit_code = await asyncio.wait_for(process.wait(), HANG_S * 2)

    tally = load.tally
    latencies = sorted(tally.latencies[:answered])
    calls = metric_values(scraped, "gateway_agency_calls_total", agency=FLAPPING)
    by_outcome: Counter[str] = Counter()
    for labels, value in calls.items():
        by_outcome[dict(part.split("=") for part in labels.split(","))["outcome"]] += int(value)
    transitions = metric_values(
        scraped, "gateway_agency_breaker_transitions_total", agency=FLAPPING
    )
    failed_in_flight = sum(1 for ok in load.in_flight_outcomes if not ok)
    print(
        f"Mixed load, {connections} connections for {seconds:g} s, {FLAPPING} flapping every"
        f" {flap_s:g} s, {workers} worker(s), {parcels} parcels:"
    )
    print(f"- gateway RSS (all processes): start {rss_start:.1f} MB, end {rss_end:.1f} MB")
    print("- RSS samples (s: MB): " + ", ".join(f"{at:.0f}: {mb:.1f}" for at, mb in samples))
    print(
        f"- {answered} requests answered ({answered / seconds:.0f}/s), HTTP {dict(tally.statuses)},"
        f" error codes {dict(tally.codes)}"
    )
    print(
        f"- latency p50 {statistics.median(latencies):.1f} ms, p99"
        f" {latencies[max(0, int(len(latencies) * 0.99) - 1)]:.1f} ms, max {latencies[-1]:.1f} ms;"
        f" hung (no answer in {HANG_S:g} s): {tally.hung}"
    )
    print(f"- /metrics, {FLAPPING} calls by outcome: {dict(sorted(by_outcome.items()))}")
    print(
        f"- /metrics, {FLAPPING} breaker transitions: "
        f"{ {k.removeprefix('to='): int(v) for k, v in sorted(transitions.items())} }"
    )
    print(
        f"SIGTERM under load: {len(load.in_flight_outcomes)} requests in flight, "
        f"{failed_in_flight} failed; gateway exit status {exit_code}; refused after the signal: "
        f"{dict(tally.transport_errors)}"
    )
    return 1 if tally.hung or failed_in_flight or exit_code != 0 else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--parcels", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flap-s", type=float, default=5)
    parser.add_argument("--log", type=Path, help="write the gateway's log lines (JSON) here")
    parser.add_argument("--log-level", default="warning", help="GATEWAY_LOG_LEVEL (warning)")
    parser.add_argument("--sample-s", type=float, default=10, help="RSS sampled this often (10)")
    args = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                args.seconds,
                args.connections,
                args.parcels,
                args.workers,
                args.flap_s,
                args.log,
                args.sample_s,
                args.log_level,
            )
        )
    )
