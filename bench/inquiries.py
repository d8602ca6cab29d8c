"""Inquiries under load: partners submit, real gateway processes run the checks, time to verdict.

    .venv/bin/python bench/inquiries.py [--inquiries 1000] [--partners 16] [--latency-ms 200]
                                        [--rate 10 [--rate 20 …]] [--open-inquiries 600]
                                        [--arrivals poisson|even] [--parcels 120]
                                        [--job-concurrency 16] [--pg-processes 2] [--pool-size 4]
                                        [--postgres postgresql+asyncpg://postgres@127.0.0.1/postgres]
                                        [--postgres-only] [--profile FOLDER]

Two phases on the same gateway processes, one after the other:

- Closed loop (throughput): --inquiries submitted by --partners partners at once, each
  partner sending its next submission as soon as the last one is answered. This measures
  the gateway saturated: submissions per second is its capacity, and a submission's latency
  there is mostly its wait in the queue of the others (p99 under 100 ms would need well
  over 160 submissions a second), so the latency targets are not judged on it.
- Open loop (what a partner experiences): --open-inquiries submitted at a fixed offered rate
  (--rate per second, all partners together, each arrival going to the next partner in
  turn; Poisson arrivals by default, from a fixed seed), whether or not earlier ones were
  answered. Latencies are measured from each submission's scheduled send time, so a
  gateway (or driver) that falls behind is charged for it (no coordinated omission). The
  targets are judged here: submission p99 under 100 ms, and verdict p50, for inquiries
  whose checks are all automatic, under twice the agencies' latency.

Seeds fresh databases (SQLite files; on PostgreSQL, throwaway databases of its own, the job
engine's in one more), starts the sandbox agencies in a child process with every agency
answering after --latency-ms, and `gateway run` processes that run their own jobs (one on
SQLite, --pg-processes sharing PostgreSQL, each with pools of --pool-size). Half the
partners are notaries asking PROPERTY_TRANSFER, half banks asking MORTGAGE, each with its own
key, submitting one after another, all at once. A submission commits the inquiry, queues its
durable job and starts its checks beside the answer, so its latency does not include them.
Time to verdict is from the submission's (scheduled) send to the moment a poll of
the database (every POLL_S) first sees the inquiry DECIDED; inquiries left waiting for a
department (a manual check) are counted, not timed. Then it counts what the database holds:
nothing lost (submitted = stored = decided + waiting, no check left pending) and nothing done
twice (one row a check, one answer a decided inquiry, no answer id twice). The gateway's
CPU an inquiry is the processes' user and system CPU (from /proc) from a phase's first
submission until its last check has its outcome and no job is left waiting or running (the
inquiries' backstop jobs), divided by the phase's inquiries: it
holds whatever else the machine runs meanwhile, unlike the latencies. PostgreSQL runs when
--postgres or GATEWAY_TEST_POSTGRES_URL names a server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from db import migrate, planning, registry  # noqa: E402
from db.engines import Databases  # noqa: E402
from db.gateway import InquiryCheckRecord, InquiryRecord  # noqa: E402
from gateway.access.keys import create_key  # noqa: E402
from gateway.access.principals import PrincipalKind  # noqa: E402
from gateway.jobs import JobQueue, JobsConfig  # noqa: E402
from sandbox.run import AGENCIES, run_agencies  # noqa: E402
from sandbox.wsse import Credentials  # noqa: E402

POLL_S = 0.02
SETTLE_TIMEOUT_S = 300.0  # a safety net against a hang, not a measure
STARTUP_TIMEOUT_S = 120.0
SUBMISSION_P99_TARGET_MS = 100.0
UNSEEDED = ("contact",)  # the 137 centre's citizen requests: migrated, left empty
CREDENTIALS = {
    "land_registry": Credentials("bench-land", "bench-land-secret"),
    "civil_registry": Credentials("bench-civil", "bench-civil-secret"),
    "bank": Credentials("bench-bank", "bench-bank-secret"),
}
SUBMIT = """
mutation($input: SubmitInquiryInput!) { submitInquiry(input: $input) { trackingCode } }
"""


class BenchError(Exception):
    """Something went wrong that makes the measurement meaningless."""


@dataclass(frozen=True)
class Partner:
    kind: str  # the inquiry kind it asks
    key: str


@dataclass(frozen=True)
class Phase:
    """One phase's figures: the closed loop (offered_rate None) or an open loop."""

    offered_rate: float | None  # submissions a second offered; None: as fast as answered
    submitted: int
    submit_seconds: float  # from the first (scheduled) send to the last answer
    submit_ms: list[float]
    verdict_ms: list[float]
    cpu_s: float  # the gateway processes' CPU from the first submission to the last check

    @property
    def rate(self) -> float:
        return self.submitted / self.submit_seconds if self.submit_seconds > 0 else float("nan")

    @property
    def cpu_ms_an_inquiry(self) -> float:
        return self.cpu_s * 1000 / max(self.submitted, 1)


@dataclass(frozen=True)
class Result:
    database: str
    processes: int
    phases: list[Phase]
    stored: int
    decided: int
    waiting: int
    pending_checks: int
    duplicates: int

    @property
    def submitted(self) -> int:
        return sum(phase.submitted for phase in self.phases)

    @property
    def lost(self) -> bool:
        return self.submitted != self.stored or self.stored != self.decided + self.waiting


# --- Databases -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def server_databases(admin: str) -> AsyncIterator[tuple[dict[str, str], str]]:
    """Throwaway databases on a PostgreSQL server: the registry's, and one for the jobs."""
    prefix = f"gwbench_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{name}" for name in registry.DATABASES.names] + [f"{prefix}_jobs"]
    server = create_async_engine(make_url(admin), isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        async with server.connect() as connection:
            for name in names:
                await connection.execute(text(f"CREATE DATABASE {name}"))
                created.append(name)
        url = make_url(admin)
        urls = {
            name: url.set(database=f"{prefix}_{name}").render_as_string(hide_password=False)
            for name in registry.DATABASES.names
        }
        yield urls, url.set(database=f"{prefix}_jobs").render_as_string(hide_password=False)
    finally:
        async with server.connect() as connection:
            for name in created:
                await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await server.dispose()


async def prepare(urls: dict[str, str], parcels: int, partners: int) -> list[Partner]:
    """Migrates and seeds every database; issues each partner its key."""
    databases = Databases(urls)
    try:
        await migrate.upgrade(databases)
        # What inquiries read, and nothing else: seeded citizen requests would have their
        # lifecycle jobs (deadlines, reminders) run by the gateway in the middle of the run.
        seeding = Databases({name: url for name, url in urls.items() if name not in UNSEEDED})
        try:
            await registry.seed_empty(seeding, parcels=parcels)
        finally:
            await seeding.dispose()
        made = []
        for index in range(partners):
            if index % 2:
                _, key = await create_key(
                    databases, PrincipalKind.BANK, f"Bench bank {index}",
                    organisation=f"{100 + index:03d}",
                )  # fmt: skip
                made.append(Partner("MORTGAGE", key))
            else:
                _, key = await create_key(databases, PrincipalKind.NOTARY, f"Bench notary {index}")
                made.append(Partner("PROPERTY_TRANSFER", key))
        return made
    finally:
        await databases.dispose()


async def properties(planning_url: str) -> list[tuple[str, str]]:
    """(renewal code, an owner's national ID) of every parcel with an owner."""
    engine = create_async_engine(planning_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(planning.Parcel.renewal_code, func.min(planning.Person.national_code))
                .join(planning.Ownership, planning.Ownership.parcel_id == planning.Parcel.id)
                .join(planning.Person, planning.Person.id == planning.Ownership.person_id)
                .group_by(planning.Parcel.id, planning.Parcel.renewal_code)
                .order_by(planning.Parcel.id)
            )
            return [(str(row[0]), str(row[1])) for row in rows]
    finally:
        await engine.dispose()


# --- Processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_agencies(
    urls: dict[str, str], latency_ms: int
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The sandbox agencies in a child process (its own CPU, not the driver's loop)."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--agencies", urls["planning"], urls["revenue"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_DIR,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise BenchError("the sandbox agencies did not start")
    agencies: dict[str, str] = json.loads(line)
    with httpx.Client() as http:
        for url in agencies.values():
            http.put(f"{url}/_chaos", json={"latency_ms": latency_ms}).raise_for_status()
    return process, agencies


async def serve_agencies(planning_url: str, revenue_url: str) -> None:
    async with run_agencies(
        planning_url=planning_url, revenue_url=revenue_url, credentials=CREDENTIALS
    ) as agencies:
        print(json.dumps({name: agencies.url(name) for name in AGENCIES}), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin


def gateway_env(
    urls: dict[str, str], agencies: dict[str, str], data_dir: Path, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_ENV="development",
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SEED_PARCELS="0",
        GATEWAY_LOG_LEVEL="info",  # uvicorn says when the application has started
        GATEWAY_RATE_LIMIT_PARTNER="100000000/minute",  # throughput, not the rate limit
        GATEWAY_RATE_LIMIT_STRATEGY="fixed-window",
        GATEWAY_JOBS_IN_APP="true",
        **extra,
    )
    for name, url in urls.items():
        env[registry.DATABASES[name].url_variable] = url
    for name, url in agencies.items():
        env[f"GATEWAY_{name.upper()}_URL"] = url
    for name, credentials in CREDENTIALS.items():
        env[f"GATEWAY_{name.upper()}_USERNAME"] = credentials.username
        env[f"GATEWAY_{name.upper()}_PASSWORD"] = credentials.password
    return env


def start_gateway(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gateway"), "run"],
            env={**env, "GATEWAY_PORT": str(port)},
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU a live process has used so far (Linux /proc; NaN elsewhere): what
    the work cost, whatever else the machine was doing meanwhile."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling a gateway process (with its native frames' idle time left out) until
    it is sent SIGINT, then writing a flame graph to `output`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--rate", "200", "--output", str(output)]
        + (["--format", "raw"] if output.suffix == ".txt" else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- The load --------------------------------------------------------------------------------


def _client(base: str, who: Partner) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {who.key}"},
        timeout=60,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


async def _submit(http: httpx.AsyncClient, who: Partner, place: tuple[str, str], key: str) -> str:
    renewal_code, applicant = place
    variables = {
        "input": {
            "kind": who.kind,
            "renewalCode": renewal_code,
            "applicantNationalCode": applicant,
            "idempotencyKey": key,
        }
    }
    response = await http.post("/graphql", json={"query": SUBMIT, "variables": variables})
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise BenchError(f"submission {key} failed: {response.text[:500]}")
    return str(body["data"]["submitInquiry"]["trackingCode"])


async def drive(
    gateways: list[str],
    partners: list[Partner],
    places: list[tuple[str, str]],
    inquiries: int,
    tag: str = "closed",
) -> tuple[dict[str, float], list[float], float]:
    """The closed loop: every partner submits its share one after another, all partners at
    once. Returns each inquiry's send time (monotonic) by tracking code, the submissions'
    latencies in ms, and the seconds the whole submitting took."""
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def partner(index: int, who: Partner) -> None:
        async with _client(gateways[index % len(gateways)], who) as http:
            for number in range(index, inquiries, len(partners)):
                started = time.monotonic()
                code = await _submit(http, who, places[number % len(places)], f"{tag}-{number}")
                latencies.append((time.monotonic() - started) * 1000)
                sent[code] = started

    began = time.monotonic()
    await asyncio.gather(*(partner(i, who) for i, who in enumerate(partners)))
    return sent, latencies, time.monotonic() - began


def schedule(inquiries: int, rate: float, arrivals: str, seed: int) -> list[float]:
    """Send times, in seconds from the start, of `inquiries` arriving at `rate` a second:
    evenly spaced, or a Poisson process (exponential gaps) drawn from `seed`."""
    draw = random.Random(seed)
    times, at = [], 0.0
    for _ in range(inquiries):
        at += draw.expovariate(rate) if arrivals == "poisson" else 1 / rate
        times.append(at)
    return times


async def drive_open(
    gateways: list[str],
    partners: list[Partner],
    places: list[tuple[str, str]],
    offsets: list[float],
    tag: str,
) -> tuple[dict[str, float], list[float], float]:
    """The open loop: submission n is sent at its scheduled time (offsets[n] seconds after
    the start) by partner n mod P, whether or not earlier ones were answered. Latencies
    count from the scheduled time, not the actual send, so that a gateway (or a driver)
    falling behind shows in them. Returns what `drive` returns."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    clients = [_client(gateways[i % len(gateways)], who) for i, who in enumerate(partners)]
    start = time.monotonic() + 0.2

    async def one(number: int, offset: float) -> None:
        due = start + offset
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        index = number % len(partners)
        place = places[number % len(places)]
        code = await _submit(clients[index], partners[index], place, f"{tag}-{number}")
        latencies.append((time.monotonic() - due) * 1000)
        sent[code] = due

    try:
        await asyncio.gather(*(one(n, offset) for n, offset in enumerate(offsets)))
    finally:
        for http in clients:
            await http.aclose()
    return sent, latencies, time.monotonic() - start


async def watch_verdicts(gateway_url: str, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Notes when each inquiry is first seen DECIDED, polling every POLL_S."""
    engine = create_async_engine(gateway_url)
    try:
        while not stop.is_set():
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(InquiryRecord.tracking_code).where(InquiryRecord.status == "DECIDED")
                )
                now = time.monotonic()
                for (code,) in rows:
                    seen.setdefault(code, now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
    finally:
        await engine.dispose()


async def settle(gateway_url: str) -> None:
    """Until no check is pending (every automatic check answered, every manual one queued)."""
    engine = create_async_engine(gateway_url)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    try:
        while True:
            async with engine.connect() as connection:
                left = await connection.scalar(
                    select(func.count())
                    .select_from(InquiryCheckRecord)
                    .where(InquiryCheckRecord.state == "pending")
                )
            if not left:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{left} checks still pending after {SETTLE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def drain_jobs(jobs_url: str) -> None:
    """Until the job engine holds no job waiting or running (an inquiry's backstop job, a
    webhook delivery): what an inquiry costs includes its jobs."""
    queue = await JobQueue(JobsConfig(database_url=jobs_url)).open()
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    try:
        while left := await queue.count(["ENQUEUED", "DELAYED", "PENDING"]):
            if time.monotonic() > deadline:
                raise BenchError(f"{left} jobs still waiting after {SETTLE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await queue.close()


async def count(gateway_url: str) -> tuple[int, int, int, int, int]:
    """(stored, decided, waiting, pending checks, duplicates) as the database holds them."""
    engine = create_async_engine(gateway_url)
    inquiries, checks = InquiryRecord, InquiryCheckRecord
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(select(func.count()).select_from(inquiries))
            by_status = dict(
                (
                    await connection.execute(
                        select(inquiries.status, func.count()).group_by(inquiries.status)
                    )
                ).all()
            )
            pending = await connection.scalar(
                select(func.count()).select_from(checks).where(checks.state == "pending")
            )
            answered = await connection.scalar(
                select(func.count()).select_from(inquiries).where(inquiries.answer_id.is_not(None))
            )
            distinct_answers = await connection.scalar(
                select(func.count(func.distinct(inquiries.answer_id)))
            )
            twice = await connection.scalar(
                select(func.count()).select_from(
                    select(checks.inquiry_id, checks.name)
                    .group_by(checks.inquiry_id, checks.name)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
    finally:
        await engine.dispose()
    decided = int(by_status.get("DECIDED", 0))
    # An answer on an undecided inquiry, an answer id twice, a check's row twice.
    duplicates = abs(int(answered or 0) - decided) + (
        int(answered or 0) - int(distinct_answers or 0)
    )
    duplicates += int(twice or 0)
    return (
        int(stored or 0),
        decided,
        int(by_status.get("WAITING_FOR_DEPARTMENT", 0)),
        int(pending or 0),
        duplicates,
    )


async def measure(
    name: str,
    urls: dict[str, str],
    jobs_url: str | None,
    processes: int,
    args: argparse.Namespace,
    workdir: Path,
) -> Result:
    print(f"{name}: seeding {args.parcels} parcels, {args.partners} partners' keys …", flush=True)
    partners = await prepare(urls, args.parcels, args.partners)
    places = await properties(urls["planning"])
    agencies_process, agencies = start_agencies(urls, args.latency_ms)
    extra = {
        "GATEWAY_JOBS_WORKER_CONCURRENCY": str(args.job_concurrency),
        # The processes and the agencies share one server's connections, with others.
        "GATEWAY_DATABASE_POOL_SIZE": str(args.pool_size),
    }
    if jobs_url is not None:
        extra["GATEWAY_JOBS_DATABASE_URL"] = jobs_url
    env = gateway_env(urls, agencies, workdir / "data", extra)
    jobs = jobs_url or f"sqlite:///{(workdir / 'data' / 'jobs.sqlite3').resolve()}"
    gateways: list[subprocess.Popen[bytes]] = []
    try:
        addresses = []
        for index in range(processes):
            process, address = start_gateway(env, workdir / f"{name}-gateway-{index}.log")
            gateways.append(process)
            addresses.append(address)
        print(f"{name}: {processes} gateway process(es) up; submitting …", flush=True)
        profilers = [
            profile(process.pid, args.profile / f"{name}-gateway-{index}.{args.profile_format}")
            for index, process in enumerate(gateways)
            if args.profile is not None
        ]
        seen: dict[str, float] = {}
        stopping = asyncio.Event()
        watcher = asyncio.create_task(watch_verdicts(urls["gateway"], seen, stopping))
        phases = []
        plan: list[tuple[str, float | None]] = [("closed", None)] if args.inquiries else []
        plan += [(f"open{rate:g}", rate) for rate in args.rate if args.open_inquiries]
        for tag, rate in plan:
            what = "closed loop" if rate is None else f"open loop at {rate:g}/s"
            print(f"{name}: {what} …", flush=True)
            cpu_before = sum(cpu_seconds(process.pid) for process in gateways)
            try:
                if rate is None:
                    sent, latencies, seconds = await drive(
                        addresses, partners, places, args.inquiries, tag
                    )
                else:
                    offsets = schedule(args.open_inquiries, rate, args.arrivals, args.seed)
                    sent, latencies, seconds = await drive_open(
                        addresses, partners, places, offsets, tag
                    )
            except BenchError as exc:
                log = (workdir / f"{name}-gateway-0.log").read_text(errors="replace")
                raise BenchError(f"{exc}\ngateway log, last lines:\n{log[-4000:]}") from None
            await settle(urls["gateway"])
            await drain_jobs(jobs)
            cpu = sum(cpu_seconds(process.pid) for process in gateways) - cpu_before
            verdicts = [(seen[code] - at) * 1000 for code, at in sent.items() if code in seen]
            phases.append(Phase(rate, len(sent), seconds, latencies, verdicts, cpu))
        stopping.set()
        await watcher
        stored, decided, waiting, pending, duplicates = await count(urls["gateway"])
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its flame graph and ends
            profiler.wait(timeout=60)
    finally:
        for process in gateways:
            stop(process)
        assert agencies_process.stdin is not None
        agencies_process.stdin.close()
        agencies_process.wait(timeout=20)
    return Result(name, processes, phases, stored, decided, waiting, pending, duplicates)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def _ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction):,.0f}"


def table(results: list[Result], args: argparse.Namespace) -> str:
    target = 2 * args.latency_ms
    closed = [(r, p) for r in results for p in r.phases if p.offered_rate is None]
    opened = [(r, p) for r in results for p in r.phases if p.offered_rate is not None]
    lines = [
        f"Every agency at {args.latency_ms} ms; {args.partners} partners (half notaries asking "
        f"PROPERTY_TRANSFER, half banks asking MORTGAGE); {args.job_concurrency} jobs at once "
        "per process.",
    ]
    if closed:
        lines += [
            "",
            f"Closed loop (throughput): {args.inquiries} inquiries, every partner submitting "
            "its next as soon as the last is answered. Saturated: latency here is queueing.",
            "",
            "| Database | Processes | Submissions/s | Submit p50 ms | Submit p99 ms "
            "| Verdict p50 ms | Verdict p99 ms | Gateway CPU ms an inquiry |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r, p in closed:
            lines.append(
                f"| {r.database} | {r.processes} | {p.rate:,.1f} "
                f"| {_ms(p.submit_ms, 0.5)} | {_ms(p.submit_ms, 0.99)} "
                f"| {_ms(p.verdict_ms, 0.5)} | {_ms(p.verdict_ms, 0.99)} "
                f"| {p.cpu_ms_an_inquiry:.1f} |"
            )
    if opened:
        lines += [
            "",
            f"Open loop (what a partner experiences): {args.open_inquiries} inquiries at each "
            f"offered rate, {args.arrivals} arrivals (seed {args.seed}) spread over the partners; "
            "latencies from each scheduled send time.",
            "",
            "| Database | Processes | Offered/s | Achieved/s | Submit p50 ms | Submit p99 ms "
            "| Verdict p50 ms | Verdict p99 ms | Gateway CPU ms an inquiry | Targets |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r, p in opened:
            submit_ok = percentile(p.submit_ms, 0.99) < SUBMISSION_P99_TARGET_MS
            verdict_ok = percentile(p.verdict_ms, 0.5) < target
            met = "met" if submit_ok and verdict_ok else (
                "missed: " + ", ".join(
                    what
                    for what, ok in (("submit p99", submit_ok), ("verdict p50", verdict_ok))
                    if not ok
                )
            )  # fmt: skip
            lines.append(
                f"| {r.database} | {r.processes} | {p.offered_rate:g} | {p.rate:,.1f} "
                f"| {_ms(p.submit_ms, 0.5)} | {_ms(p.submit_ms, 0.99)} "
                f"| {_ms(p.verdict_ms, 0.5)} | {_ms(p.verdict_ms, 0.99)} "
                f"| {p.cpu_ms_an_inquiry:.1f} | {met} |"
            )
    lines += [
        "",
        "Nothing lost, nothing done twice (both phases):",
        "",
        "| Database | Submitted | Stored | Decided + waiting | Pending checks | Duplicates |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.database} | {r.submitted} | {r.stored} | {r.decided} + {r.waiting} "
            f"| {r.pending_checks} | {r.duplicates} |"
        )
    lines += [
        "",
        f"Targets (open loop): submit p99 < {SUBMISSION_P99_TARGET_MS:.0f} ms; verdict p50 < "
        f"{target} ms (decided inquiries only; those waiting for a department are not timed); "
        "submitted = stored = decided + waiting; duplicates 0. Gateway CPU: the processes' "
        "user + system time from a phase's first submission to its last check's outcome and "
        "its last job, idle polling included; the machine's other load is not in it.",
        f"Machine: {os.cpu_count()} CPUs, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}.",
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-inquiries-") as folder:
        workdir = Path(folder)
        try:
            if not args.postgres_only:
                sqlite_dir = workdir / "sqlite"
                sqlite_dir.mkdir()
                urls = {
                    name: f"sqlite+aiosqlite:///{sqlite_dir / f'{name}.sqlite3'}"
                    for name in registry.DATABASES.names
                }
                results.append(await measure("SQLite", urls, None, 1, args, sqlite_dir))
                print("\n" + table(results[-1:], args) + "\n", flush=True)
            if args.postgres:
                pg_dir = workdir / "postgres"
                pg_dir.mkdir()
                async with server_databases(args.postgres) as (urls, jobs_url):
                    results.append(
                        await measure("PostgreSQL", urls, jobs_url, args.pg_processes, args, pg_dir)
                    )
            else:
                print("PostgreSQL skipped: pass --postgres or set GATEWAY_TEST_POSTGRES_URL")
        except BenchError as exc:
            print(f"\nbench failed: {exc}", file=sys.stderr)
            return 1
    print("\n" + table(results, args))
    lost = any(r.lost for r in results)
    return 1 if lost or any(r.duplicates or r.pending_checks for r in results) else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--inquiries", type=int, default=1000, help="the closed loop's (0: no closed loop)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        default=None,
        help="the open loop's offered submissions a second, all partners together "
        "(repeat for several open loops, in order; default 10)",
    )
    parser.add_argument(
        "--open-inquiries", type=int, default=600, help="each open loop's (0: no open loop)"
    )
    parser.add_argument("--arrivals", choices=("poisson", "even"), default="poisson")
    parser.add_argument("--seed", type=int, default=9, help="the Poisson arrivals' seed")
    parser.add_argument("--partners", type=int, default=16, help="half notaries, half banks")
    parser.add_argument("--latency-ms", type=int, default=200, help="every agency's latency")
    parser.add_argument("--parcels", type=int, default=120, help="demo parcels to seed")
    parser.add_argument(
        "--job-concurrency", type=int, default=16, help="GATEWAY_JOBS_WORKER_CONCURRENCY"
    )
    parser.add_argument("--postgres", default=os.environ.get("GATEWAY_TEST_POSTGRES_URL"))
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument(
        "--pg-processes", type=int, default=2, help="gateway processes sharing PostgreSQL"
    )
    parser.add_argument(
        "--pool-size", type=int, default=4, help="GATEWAY_DATABASE_POOL_SIZE (PostgreSQL)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="a folder: py-spy flame graphs of each gateway process during the run",
    )
    parser.add_argument(
        "--profile-format",
        choices=("svg", "txt"),
        default="svg",
        help="svg: flame graphs; txt: collapsed stacks",
    )
    args = parser.parse_args(argv)
    args.rate = args.rate or [10.0]
    if args.inquiries < 0 or args.open_inquiries < 0 or args.partners < 2:
        parser.error("--inquiries and --open-inquiries are 0 or more, --partners 2 or more")
    if not args.inquiries and not args.open_inquiries:
        parser.error("nothing to run: --inquiries and --open-inquiries are both 0")
    if any(rate <= 0 for rate in args.rate):
        parser.error("--rate is a positive number of submissions a second")
    return args


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--agencies":
        asyncio.run(serve_agencies(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(asyncio.run(main(parse_args())))
