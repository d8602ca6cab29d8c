"""The hand-written baseline the gateway is measured against: no GraphQL, no authentication,
limits or audit; one Starlette handler straight over asyncpg (PostgreSQL) or aiosqlite
(SQLite) that answers the benchmark's two public queries with the same `data`, byte for
byte, running the same number of SQL statements (3 for the lookup, 7 for the page).

    .venv/bin/python bench/baseline.py --planning-url URL --revenue-url URL
                                       [--port 8091] [--workers 2]

URLs are SQLAlchemy's (`postgresql+asyncpg://…/db`, `sqlite+aiosqlite:////path/file`), the
same the gateway is given. Each worker is a process with its own SO_REUSEPORT socket under
uvicorn (uvloop, httptools), as `gateway run` serves. It answers only
`bench/queries/parcel_public.graphql` (variable `renewalCode`) and
`bench/queries/parcels_page_public.graphql` (the first 100 parcels); anything else is a 400.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import jdatetime
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE_SIZE = 100
POOL_SIZE = 10  # per database and worker, as the gateway's pool in the benchmark

Rows = list[dict[str, Any]]
Fetch = Callable[[str, Sequence[Any]], Awaitable[Rows]]


# ---------------------------------------------------------------------------------------------
# The statements, in PostgreSQL's spelling ($1, arrays); SQLite's is derived (`?`, IN lists).

PARCEL_COLUMNS = (
    "id, renewal_code, registry_section, main_plate, sub_plate, address, land_use, area"
)
PARCEL_BY_CODE = f"SELECT {PARCEL_COLUMNS} FROM parcels WHERE renewal_code = $1"
PARCEL_PAGE = f"SELECT {PARCEL_COLUMNS} FROM parcels ORDER BY id LIMIT {PAGE_SIZE}"
OWNERS = (
    "SELECT o.parcel_id, p.national_code FROM ownerships o JOIN persons p ON o.person_id = p.id "
    "WHERE o.parcel_id {keys} ORDER BY o.id"
)
BUILDINGS = "SELECT parcel_id, floors, units FROM buildings WHERE parcel_id {keys} ORDER BY id"
PERMITS = "SELECT parcel_id, number, kind FROM permits WHERE parcel_id {keys} ORDER BY id"
CERTIFICATES = (
    "SELECT parcel_id, kind, issued_on FROM certificates WHERE parcel_id {keys} ORDER BY id"
)
VIOLATIONS = "SELECT parcel_id, kind, status FROM violations WHERE parcel_id {keys} ORDER BY id"
DUES = (
    "SELECT a.renewal_code, a.kind, a.period, a.amount, "
    "(SELECT coalesce(sum(p.amount), 0) FROM payments p WHERE p.assessment_id = a.id) AS paid "
    "FROM assessments a WHERE a.renewal_code {keys} ORDER BY a.renewal_code, a.period, a.id"
)


class Store:
    """The two databases, and how to run a statement keyed by a list on them."""

    def __init__(self, planning: Fetch, revenue: Fetch, sqlite: bool) -> None:
        self.planning = planning
        self.revenue = revenue
        self.sqlite = sqlite

    def keyed(self, statement: str, keys: Sequence[Any]) -> tuple[str, Sequence[Any]]:
        if self.sqlite:
            marks = ", ".join("?" * len(keys))
            return statement.format(keys=f"IN ({marks})"), list(keys)
        return statement.format(keys="= ANY($1)"), [list(keys)]

    def single(self, statement: str) -> str:
        return statement.replace("$1", "?") if self.sqlite else statement


async def open_store(planning_url: str, revenue_url: str) -> tuple[Store, Callable[[], Any]]:
    if planning_url.startswith("sqlite"):
        planning, close_planning = await _sqlite(planning_url)
        revenue, close_revenue = await _sqlite(revenue_url)
        sqlite = True
    else:
        planning, close_planning = await _postgres(planning_url)
        revenue, close_revenue = await _postgres(revenue_url)
        sqlite = False

    async def close() -> None:
        await close_planning()
        await close_revenue()

    return Store(planning, revenue, sqlite), close


async def _postgres(url: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import asyncpg  # type: ignore[import-untyped]

    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    pool = await asyncpg.create_pool(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        database=parts.path.lstrip("/"),
        min_size=0,
        max_size=POOL_SIZE,
        # Idle connections go within a second: the server's connections are shared with the
        # gateway measured next (and anything else on it).
        max_inactive_connection_lifetime=1.0,
    )

    async def fetch(statement: str, args: Sequence[Any]) -> Rows:
        return [dict(row) for row in await pool.fetch(statement, *args)]

    return fetch, pool.close


async def _sqlite(url: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import aiosqlite

    path = url.split(":///", 1)[1]
    # A few connections (a thread each), handed out in turn: statements of concurrent
    # requests run side by side as far as SQLite and the GIL let them.
    connections = [await aiosqlite.connect(path) for _ in range(4)]
    for connection in connections:
        connection.row_factory = aiosqlite.Row
    turn = 0

    async def fetch(statement: str, args: Sequence[Any]) -> Rows:
        nonlocal turn
        turn = (turn + 1) % len(connections)
        rows = await connections[turn].execute_fetchall(statement, args)
        return [dict(row) for row in rows]

    async def close() -> None:
        for connection in connections:
            await connection.close()

    return fetch, close


# ---------------------------------------------------------------------------------------------
# Values as the gateway's scalars spell them.


def decimal_text(value: Any) -> str:
    """Decimal as the gateway's Decimal scalar: shortest plain form. SQLite hands back a
    float for NUMERIC(12, 2); SQLAlchemy reads it at the column's scale, and so do we."""
    number = value if isinstance(value, Decimal) else Decimal(f"{value:.2f}")
    return format(number.normalize(), "f")


@functools.lru_cache(maxsize=65536)
def jalali(value: Any) -> str:
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return str(jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d"))


def masked(code: str) -> str:
    return f"{code[:3]}****{code[-3:]}"


def plate(row: dict[str, Any]) -> str:
    return f"{row['registry_section']}-{row['main_plate']}/{row['sub_plate']}"


def dues_of(rows: Rows, with_items: bool) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["renewal_code"]].append(row)
    answers = {}
    for code, items in grouped.items():
        total = outstanding = 0
        listed = []
        for item in items:
            amount, paid = int(item["amount"]), int(item["paid"])
            left = max(amount - paid, 0)
            total += amount
            outstanding += left
            if with_items:
                listed.append(
                    {"kind": item["kind"].upper(), "period": item["period"], "outstanding": left}
                )
        answer: dict[str, Any] = {"total": total, "outstanding": outstanding}
        if with_items:
            answer["items"] = listed
        answers[code] = answer
    return answers


def no_dues(with_items: bool) -> dict[str, Any]:
    return (
        {"total": 0, "outstanding": 0, "items": []}
        if with_items
        else {"total": 0, "outstanding": 0}
    )


# ---------------------------------------------------------------------------------------------
# The two answers.


async def lookup(store: Store, code: str) -> dict[str, Any]:
    found = await store.planning(store.single(PARCEL_BY_CODE), [code])
    if not found:
        return {"parcel": None}
    parcel = found[0]
    owners, dues = await asyncio.gather(
        store.planning(*store.keyed(OWNERS, [parcel["id"]])),
        store.revenue(*store.keyed(DUES, [code])),
    )
    return {
        "parcel": {
            "renewalCode": parcel["renewal_code"],
            "registryPlate": plate(parcel),
            "address": parcel["address"],
            "landUse": parcel["land_use"].upper(),
            "owners": [{"nationalCode": masked(row["national_code"])} for row in owners],
            "dues": dues_of(dues, with_items=False).get(code) or no_dues(False),
        }
    }


async def page(store: Store) -> dict[str, Any]:
    parcels = await store.planning(PARCEL_PAGE, [])
    ids = [row["id"] for row in parcels]
    codes = [row["renewal_code"] for row in parcels]
    relations: dict[str, dict[int, list[dict[str, Any]]]] = {}
    owners, buildings, permits, certificates, violations, dues = await asyncio.gather(
        store.planning(*store.keyed(OWNERS, ids)),
        store.planning(*store.keyed(BUILDINGS, ids)),
        store.planning(*store.keyed(PERMITS, ids)),
        store.planning(*store.keyed(CERTIFICATES, ids)),
        store.planning(*store.keyed(VIOLATIONS, ids)),
        store.revenue(*store.keyed(DUES, codes)),
    )
    shapes: dict[str, tuple[Rows, Callable[[dict[str, Any]], dict[str, Any]]]] = {
        "owners": (owners, lambda r: {"nationalCode": masked(r["national_code"])}),
        "buildings": (buildings, lambda r: {"floors": r["floors"], "units": r["units"]}),
        "permits": (permits, lambda r: {"number": r["number"], "kind": r["kind"].upper()}),
        "certificates": (
            certificates,
            lambda r: {"kind": r["kind"].upper(), "issuedOn": {"jalali": jalali(r["issued_on"])}},
        ),
        "violations": (
            violations,
            lambda r: {"kind": r["kind"].upper(), "status": r["status"].upper()},
        ),
    }
    for name, (rows, shape) in shapes.items():
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            grouped[row["parcel_id"]].append(shape(row))
        relations[name] = grouped
    by_code = dues_of(dues, with_items=True)
    edges = []
    for parcel in parcels:
        pid = parcel["id"]
        node = {
            "renewalCode": parcel["renewal_code"],
            "registryPlate": plate(parcel),
            "address": parcel["address"],
            "landUse": parcel["land_use"].upper(),
            "area": decimal_text(parcel["area"]),
            "owners": relations["owners"].get(pid, []),
            "buildings": relations["buildings"].get(pid, []),
            "permits": relations["permits"].get(pid, []),
            "certificates": relations["certificates"].get(pid, []),
            "violations": relations["violations"].get(pid, []),
            "dues": by_code.get(parcel["renewal_code"]) or no_dues(True),
        }
        edges.append({"node": node})
    return {"parcels": {"edges": edges}}


def create_app(planning_url: str, revenue_url: str) -> Starlette:
    state: dict[str, Any] = {}

    async def graphql(request: Request) -> Response:
        body = orjson.loads(await request.body())
        query = body.get("query") or ""
        store: Store = state["store"]
        if "parcels(first: 100)" in query:
            data = await page(store)
        elif "parcel(renewalCode:" in query:
            data = await lookup(store, str((body.get("variables") or {})["renewalCode"]))
        else:
            return Response(b'{"errors":[{"message":"not a benchmark query"}]}', 400)
        return Response(orjson.dumps({"data": data}), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b"ok")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state["store"], close = await open_store(planning_url, revenue_url)
        try:
            yield
        finally:
            await close()

    routes = [Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)


# ---------------------------------------------------------------------------------------------
# Serving: a process per worker, each with its own SO_REUSEPORT socket.


def _socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


def _worker(planning_url: str, revenue_url: str, port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = uvicorn.Config(
        create_app(planning_url, revenue_url),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[_socket(port)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--planning-url", required=True)
    parser.add_argument("--revenue-url", required=True)
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.workers == 1:
        _worker(args.planning_url, args.revenue_url, args.port)
        return 0
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(args.planning_url, args.revenue_url, args.port))
        for _ in range(args.workers)
    ]
    for process in workers:
        process.start()

    def stop(*_: Any) -> None:
        for process in workers:
            if process.is_alive():
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    multiprocessing.connection.wait([process.sentinel for process in workers])
    stop()
    for process in workers:
        process.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
