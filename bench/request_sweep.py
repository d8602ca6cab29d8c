"""How long one sweep of the citizen requests' jobs takes (gateway/requests/request_jobs.py).

    .venv/bin/python bench/request_sweep.py [--requests 50000] [--postgres URL]

Migrates a fresh contact database (a temporary SQLite file, or a throwaway database on the
PostgreSQL server at --postgres or GATEWAY_TEST_POSTGRES_URL), fills it with requests
registered over the past 400 days in every state (none flagged yet: the worst case, the first
sweep after a backlog), and times `due_work`, the read a sweep makes before it queues its
jobs, three times. Prints the median and how many jobs it found.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

REPO_DIR = Path(__file__).resolve().parent.parent
# Not this folder: bench/requests.py would shadow the `requests` library zeep imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO_DIR / "bench"]
sys.path.insert(0, str(REPO_DIR))

from db import migrate  # noqa: E402
from db.contact import Service, ServiceGroup  # noqa: E402
from db.engines import Databases  # noqa: E402
from gateway.inquiries.tracking import new_tracking_code  # noqa: E402
from gateway.requests import request_jobs  # noqa: E402
from gateway.requests.records import REQUESTS, naive  # noqa: E402

NOW = dt.datetime(2026, 11, 29, 6, 30, tzinfo=dt.UTC)
STATUSES = ("ASSIGNED", "IN_PROGRESS", "WAITING_FOR_CITIZEN", "RESOLVED", "CLOSED", "REOPENED")


async def fill(databases: Databases, count: int) -> None:
    dice = random.Random(1405)
    async with databases.engine("contact").begin() as connection:
        group = await connection.execute(
            sa.insert(ServiceGroup.__table__).values(
                code="bench", name_fa="bench", name_en="bench", position=1
            )
        )
        assert group.inserted_primary_key is not None
        services = []
        for days in (2, 5, 10, 20):
            made = await connection.execute(
                sa.insert(Service.__table__).values(
                    code=f"bench_{days}", group_id=group.inserted_primary_key[0],
                    name_fa="b", name_en="b", channel="PORTAL", owner_department="urban_services",
                    deadline_days=days, questions=[], active=True,
                    created_at=naive(NOW), updated_at=naive(NOW),
                )
            )  # fmt: skip
            assert made.inserted_primary_key is not None
            services.append(made.inserted_primary_key[0])
        rows = []
        for number in range(count):
            registered = NOW - dt.timedelta(minutes=dice.randint(0, 400 * 24 * 60))
            status = dice.choice(STATUSES)
            rows.append(
                {
                    "tracking_code": new_tracking_code(), "kind": "COMPLAINT", "status": status,
                    "service_id": dice.choice(services), "channel": "PORTAL",
                    "registered_by_kind": "department", "registered_by": "bench",
                    "idempotency_key": str(number), "input_digest": "0" * 64,
                    "description": "bench", "department": "urban_services",
                    "citizen_name": "bench", "citizen_mobile": "09120000000",
                    "photo_urls": [], "answers": {}, "registered_at": naive(registered),
                    "updated_at": naive(registered),
                    "deadline_at": naive(registered + dt.timedelta(days=dice.randint(2, 30))),
                    "paused_since": naive(registered) if status == "WAITING_FOR_CITIZEN" else None,
                    "closed_at": naive(registered + dt.timedelta(days=3))
                    if status == "CLOSED" else None,
                    "paused_seconds": 0, "reopen_count": 0, "public_consent": False, "version": 1,
                }
            )  # fmt: skip
            if len(rows) == 5000:
                await connection.execute(sa.insert(REQUESTS), rows)
                rows = []
        if rows:
            await connection.execute(sa.insert(REQUESTS), rows)


async def run(url: str, count: int) -> None:
    databases = Databases({"contact": url})
    try:
        await migrate.upgrade(databases)
        await fill(databases, count)
        policy = request_jobs.LifecyclePolicy()
        times = []
        for _ in range(3):
            async with databases.engine("contact").connect() as connection:
                started = time.perf_counter()
                due = await request_jobs.due_work(connection, policy, NOW)
                times.append(time.perf_counter() - started)
        backend = url.split(":", 1)[0]
        median_ms = statistics.median(times) * 1000
        print(
            f"{backend}: {count:,} requests, one sweep's read {median_ms:.0f} ms "
            f"(median of 3), {len(due):,} jobs due"
        )
    finally:
        await databases.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--postgres", default=os.environ.get("GATEWAY_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-request-sweep-"))
    await run(f"sqlite+aiosqlite:///{folder / 'contact.sqlite3'}", args.requests)
    if args.postgres:
        name = f"gwbench_sweep_{uuid.uuid4().hex[:8]}"
        admin = create_async_engine(args.postgres, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(sa.text(f"CREATE DATABASE {name}"))
        try:
            url = sa.make_url(args.postgres).set(database=name)
            await run(url.render_as_string(hide_password=False), args.requests)
        finally:
            async with admin.connect() as connection:
                await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
