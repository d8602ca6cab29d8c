"""SIGKILL while inquiries' checks are running: two `gateway run` processes on PostgreSQL, both
running jobs, are killed with agency calls in flight and started again (under new executor
ids: `gateway run` draws its own, so their jobs come back by the lease's takeover). Every
inquiry still gets every automatic check answered exactly once, and each decided inquiry
exactly one signed answer that agrees with its checks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from db.engines import Databases
from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import PrincipalKind
from gateway.inquiries import answers
from gateway.inquiries.answering import AUTHORITY_CODES, CHECK_CODES
from gateway.inquiries.config import inquiry_settings
from sandbox.run import run_agencies
from tests.conftest import (
    AGENCY_SECRETS,
    SERVER_URLS,
    GraphQLClient,
    cli_env,
    make_backend,
    mint_key,
    settings_for,
)
from tests.gateway.inquiries.test_end_to_end import SUBMIT, World, _parcel

LATENCY_MS = 300  # every agency call takes this long, so that checks are in flight
HEARTBEAT_S = 0.2
LEASE_S = 1.5  # a dead process's jobs are taken over after this
DONE_BEFORE_KILL = 20  # checks answered before the kill: the work is well under way
WAIT_S = 45  # a safety net against a hang, never a measure

# (label of the caller, kind, parcel wanted, how many): the manual permit check of
# "old_certificate" parcels waits for planning, so those inquiries end WAITING_FOR_DEPARTMENT.
MIX = (
    ("notary", "PROPERTY_TRANSFER", "clean", 12),
    ("notary", "PROPERTY_TRANSFER", "unpaid", 8),
    ("notary", "PROPERTY_TRANSFER", "seized", 6),
    ("notary", "PROPERTY_TRANSFER", "old_certificate", 4),
    ("bank", "MORTGAGE", "clean", 10),
)
VERDICTS = {"clean": "CLEAR", "unpaid": "NOT_CLEAR", "seized": "NOT_CLEAR"}


@dataclass
class Gateway:
    """One `gateway run` process (the leader of its own process group) and its address."""

    process: asyncio.subprocess.Process
    address: str
    drain: asyncio.Task[bytes]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await self.process.wait()
            except TimeoutError:
                self.kill()
                await self.process.wait()
        await self.drain


async def start_gateway(env: dict[str, str]) -> Gateway:
    """A `gateway run` on a free port, once its application has started; unlike
    tests.conftest.gateway_process it hands back the process, for the test to kill."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gateway"),
        "run",
        env={**os.environ, **env, "GATEWAY_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # SIGKILL reaches the whole group
    )
    assert process.stderr is not None
    said: list[bytes] = []
    async with asyncio.timeout(120):  # a safety net: the wait ends on the line
        while not said or b"Application startup complete" not in said[-1]:
            line = await process.stderr.readline()
            assert line, b"the gateway stopped before it started:\n" + b"".join(said)
            said.append(line)
    drain = asyncio.create_task(process.stderr.read())  # the pipe must never fill up
    return Gateway(process, f"127.0.0.1:{port}", drain)


@dataclass
class Site:
    """Two gateway processes' shared world: databases, agencies, keys, environment."""

    databases: Databases
    world: World  # for test_end_to_end's choice of parcels
    env: dict[str, str]
    keys: dict[str, str]
    gateways: list[Gateway]


@contextlib.asynccontextmanager
async def _jobs_database(admin: str) -> AsyncIterator[str]:
    """A database of its own on the same server, for the job engine's system tables."""
    name = f"gwkill_jobs_{uuid.uuid4().hex[:8]}"
    server = create_async_engine(make_url(admin), isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {name}"))
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        async with server.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await server.dispose()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    backend, server = await make_backend("postgres", tmp_path / "databases")  # skips unset
    assert server is not None
    admin = SERVER_URLS["postgres"]
    assert admin is not None
    databases = Databases(backend.urls)
    keys = {}
    for label, kind, organisation in (
        ("notary", PrincipalKind.NOTARY, None),
        ("bank", PrincipalKind.BANK, "017"),
    ):
        _, keys[label] = await mint_key(
            databases, kind, f"{label} {uuid.uuid4().hex[:6]}", organisation=organisation
        )
    data_dir = tmp_path / "data"  # shared: one development signing key for both processes
    gateways: list[Gateway] = []
    try:
        async with (
            _jobs_database(admin) as jobs_url,
            run_agencies(
                planning_url=backend.urls["planning"],
                revenue_url=backend.urls["revenue"],
                credentials=AGENCY_SECRETS,
            ) as agencies,
        ):
            settings = settings_for(backend, agencies, data_dir=data_dir)
            inquiry_settings(settings)  # creates the signing key before the processes race to
            env = {
                **cli_env(backend),
                "GATEWAY_DATA_DIR": str(data_dir),
                "GATEWAY_SEED_PARCELS": "0",
                "GATEWAY_LOG_LEVEL": "info",  # uvicorn says when the application has started
                "GATEWAY_RATE_LIMIT_PARTNER": "100000/minute",
                "GATEWAY_JOBS_IN_APP": "true",
                "GATEWAY_JOBS_DATABASE_URL": jobs_url,
                "GATEWAY_JOBS_HEARTBEAT_S": str(HEARTBEAT_S),
                "GATEWAY_JOBS_LEASE_S": str(LEASE_S),
                "GATEWAY_JOBS_SHUTDOWN_GRACE_S": "0",
                # Two processes on a server whose 100 connections others share too.
                "GATEWAY_DATABASE_POOL_SIZE": "4",
            }
            for name in ("land_registry", "civil_registry", "bank", "postal"):
                env[f"GATEWAY_{name.upper()}_URL"] = agencies.url(name)
            for name, credentials in AGENCY_SECRETS.items():
                env[f"GATEWAY_{name.upper()}_USERNAME"] = credentials.username
                env[f"GATEWAY_{name.upper()}_PASSWORD"] = credentials.password
            async with httpx.AsyncClient() as http:
                for name in ("land_registry", "civil_registry"):
                    put = await http.put(
                        f"{agencies.url(name)}/_chaos", json={"latency_ms": LATENCY_MS}
                    )
                    assert put.status_code == 200, put.text
            world = World("", settings, databases, agencies, keys)
            yield Site(databases, world, env, keys, gateways)
    finally:
        for gateway in gateways:
            await gateway.stop()
        await databases.dispose()
        await server.drop_all()


async def _count(databases: Databases, *where: Any) -> int:
    async with databases.gateway.connect() as connection:
        found = await connection.scalar(
            select(func.count()).select_from(InquiryCheckRecord).where(*where)
        )
    return int(found or 0)


async def _at_least(least: int, databases: Databases, *where: Any) -> bool:
    return await _count(databases, *where) >= least


async def _at_most(most: int, databases: Databases, *where: Any) -> bool:
    return await _count(databases, *where) <= most


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):  # a safety net, never a measure
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT_S} s: {what}") from None


async def test_inquiries_survive_sigkill_of_every_process_with_checks_in_flight(
    site: Site,
) -> None:
    for _ in range(2):  # each kept as it starts: a failing start leaves none behind
        site.gateways.append(await start_gateway(site.env))
    parcels = {want: await _parcel(site.world, want) for want in {m[2] for m in MIX}}
    submissions = [
        (label, kind, want)
        for label, kind, want, count in MIX
        for _ in range(count)
    ]  # fmt: skip

    async def submit(index: int, label: str, kind: str, want: str) -> tuple[str, str, str]:
        gateway = site.gateways[index % 2]
        caller = GraphQLClient(
            httpx.AsyncClient(base_url=f"http://{gateway.address}", timeout=30), site.keys[label]
        )
        renewal_code, applicant = parcels[want]
        async with caller.http:
            body = await caller(
                SUBMIT,
                {
                    "input": {
                        "kind": kind,
                        "renewalCode": renewal_code,
                        "applicantNationalCode": applicant,
                        "idempotencyKey": uuid.uuid4().hex,
                    }
                },
            )
        assert "errors" not in body, body
        return body["data"]["submitInquiry"]["trackingCode"], kind, want

    submitted = await asyncio.gather(*(submit(i, *entry) for i, entry in enumerate(submissions)))
    expected = {code: want for code, _kind, want in submitted}
    assert len(expected) == len(submissions)

    # Kill both once the checks are well under way, with agency calls in flight.
    await _until(
        lambda: _at_least(DONE_BEFORE_KILL, site.databases, InquiryCheckRecord.state == "done"),
        "checks under way",
    )
    for gateway in site.gateways:
        gateway.kill()
    for gateway in site.gateways:
        await gateway.stop()
    site.gateways.clear()
    pending_at_kill = await _count(
        site.databases, InquiryCheckRecord.state == "pending", ~InquiryCheckRecord.manual
    )
    assert pending_at_kill > 0, "the kill came after every check was answered"

    for _ in range(2):  # each kept as it starts: a failing start leaves none behind
        site.gateways.append(await start_gateway(site.env))
    # Nothing lost: every automatic check gets its outcome, every manual one its queue.
    await _until(
        lambda: _at_most(0, site.databases, InquiryCheckRecord.state == "pending"),
        "every check answered or queued after the restart",
    )

    config = inquiry_settings(site.world.settings)
    async with site.databases.session("gateway") as session:
        inquiries = list(await session.scalars(select(InquiryRecord)))
        checks = list(await session.scalars(select(InquiryCheckRecord)))
    by_inquiry: dict[int, list[InquiryCheckRecord]] = {}
    for check in checks:
        by_inquiry.setdefault(check.inquiry_id, []).append(check)

    assert {inquiry.tracking_code for inquiry in inquiries} == set(expected)
    answer_ids = [inquiry.answer_id for inquiry in inquiries if inquiry.answer_id is not None]
    decided = [inquiry for inquiry in inquiries if inquiry.status == "DECIDED"]
    assert len(answer_ids) == len(decided) == len(set(answer_ids))  # one decision each
    for inquiry in inquiries:
        want = expected[inquiry.tracking_code]
        mine = by_inquiry[inquiry.id]
        names = [check.name for check in mine]
        assert len(names) == len(set(names)), names  # one row a check
        assert len(names) == len(config.kinds[inquiry.kind].checks)
        if want == "old_certificate":
            assert inquiry.status == "WAITING_FOR_DEPARTMENT", inquiry.tracking_code
            assert inquiry.answer is None
            assert [c.name for c in mine if c.state == "queued"] == ["building_matches_permit"]
            assert all(c.outcome is not None for c in mine if c.state == "done")
            continue
        assert inquiry.status == "DECIDED", (inquiry.tracking_code, want)
        assert inquiry.verdict == VERDICTS[want], (inquiry.tracking_code, want)
        assert all(c.state == "done" and c.outcome is not None for c in mine)
        assert inquiry.answer is not None
        verified = answers.verify(inquiry.answer, config.keys.verification_keys)
        assert verified.answer.tracking_code == inquiry.tracking_code
        assert verified.answer.answer_id == inquiry.answer_id
        assert verified.answer.verdict.name == inquiry.verdict
        stated = {(c.name, c.authority, c.outcome.name) for c in verified.answer.checks}
        rows = {(CHECK_CODES[c.name], AUTHORITY_CODES[c.authority], c.outcome) for c in mine}
        assert stated == rows, inquiry.tracking_code
