"""A small world for the lifecycle's tests: a contact database of its own on one backend (no
demo data), one service group with two services (transport only sees the second), Nowruz
1405's holidays, API keys for the principals who handle requests, and requests placed
directly in whatever state a test needs."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from db.contact import Holiday, Service, ServiceDepartment, ServiceGroup
from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.inquiries.tracking import new_tracking_code
from gateway.requests import records
from gateway.requests.records import REQUESTS, CitizenRequest, naive
from tests.conftest import Backend, ServerDatabases, make_backend, mint_key

# Iran's official holidays of early 1405 (the contact database's table).
NOWRUZ_1405 = {
    dt.date(2026, 3, 20): "Esfand 29; Eid al-Fitr",
    dt.date(2026, 3, 21): "Nowruz",
    dt.date(2026, 3, 22): "Nowruz",
    dt.date(2026, 3, 23): "Nowruz",
    dt.date(2026, 3, 24): "Nowruz",
    dt.date(2026, 4, 1): "Islamic Republic day",
    dt.date(2026, 4, 2): "Nature day",
}
# A Sunday in late November 2026, 10:00 in Tehran.
START = dt.datetime(2026, 11, 29, 6, 30, tzinfo=dt.UTC)
MOBILE = "09121234567"

# label -> (kind, department)
HANDLERS = {
    "operator": (PrincipalKind.OPERATOR, None),
    "urban": (PrincipalKind.DEPARTMENT, "urban_services"),
    "transport": (PrincipalKind.DEPARTMENT, "transport"),
    "centre": (PrincipalKind.DEPARTMENT, "contact137"),
    "counter": (PrincipalKind.COUNTER, None),
}


class Clock:
    """A wall clock a test moves by hand."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@dataclass
class World:
    backend: Backend
    server: ServerDatabases | None
    databases: Databases
    service_id: int
    other_service_id: int
    keys: dict[str, str] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def request(
        self,
        status: str = "ASSIGNED",
        *,
        department: str | None = "urban_services",
        registered_at: dt.datetime = START,
        deadline_at: dt.datetime | None = None,
        mobile: str = MOBILE,
        **values: Any,
    ) -> CitizenRequest:
        """A request placed in `status` directly (as registration and earlier transitions
        would have left it)."""
        number = next(self._numbers)
        key = f"world-{number}"
        row: dict[str, Any] = {
            "tracking_code": new_tracking_code(),
            "kind": "COMPLAINT",
            "status": status,
            "service_id": self.service_id,
            "channel": "CENTRE_137",
            "registered_by_kind": "department",
            "registered_by": "department:contact137:world",
            "idempotency_key": key,
            "input_digest": hashlib.sha256(key.encode()).hexdigest(),
            "description": "درخت افتاده راه را بسته است",
            "latitude": 37.5527,
            "longitude": 45.0761,
            "region": 1,
            "department": department,
            "citizen_name": "مریم احمدی",
            "citizen_mobile": mobile,
            "photo_urls": [],
            "answers": {},
            "registered_at": naive(registered_at),
            "updated_at": naive(registered_at),
            "deadline_at": naive(deadline_at or registered_at + dt.timedelta(days=7)),
            "paused_seconds": 0,
            "reopen_count": 0,
            "public_consent": False,
            "version": 1,
        }
        row.update({k: naive(v) if isinstance(v, dt.datetime) else v for k, v in values.items()})
        async with self.databases.engine(records.DATABASE).begin() as connection:
            result = await connection.execute(insert(REQUESTS).values(**row))
            assert result.inserted_primary_key is not None
            found = await records.load(connection, int(result.inserted_primary_key[0]))
        assert found is not None
        return found

    async def load(self, request_id: int) -> CitizenRequest:
        async with self.databases.engine(records.DATABASE).connect() as connection:
            found = await records.load(connection, request_id)
        assert found is not None
        return found

    async def history(self, request_id: int) -> list[records.HistoryEntry]:
        async with self.databases.engine(records.DATABASE).connect() as connection:
            return (await records.load_history(connection, [request_id]))[request_id]

    async def close(self) -> None:
        await self.databases.dispose()
        if self.server is not None:
            await self.server.drop_all()


async def make_world(name: str, folder: Path, *, parcels: int = 0) -> World:
    """The world on backend `name`; with `parcels`, the demo city of that many parcels (and
    its demo catalogue and requests, if the contact database seeds them) comes first."""
    backend, server = await make_backend(name, folder, parcels=parcels)
    databases = Databases(backend.urls)
    moment = naive(START)
    async with databases.engine(records.DATABASE).begin() as connection:
        group = await connection.execute(
            insert(ServiceGroup.__table__).values(
                code="lifecycle_world", name_fa="خدمات شهری", name_en="Urban services", position=99
            )
        )
        assert group.inserted_primary_key is not None
        group_id = group.inserted_primary_key[0]
        ids = []
        for code, days in (("world_fallen_tree", 5), ("world_pothole", 10)):
            made = await connection.execute(
                insert(Service.__table__).values(
                    code=code,
                    group_id=group_id,
                    name_fa=code,
                    name_en=code,
                    channel="CENTRE_137",
                    owner_department="urban_services",
                    deadline_days=days,
                    questions=[],
                    active=True,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            assert made.inserted_primary_key is not None
            ids.append(int(made.inserted_primary_key[0]))
        # Transport only sees potholes (a SEES department reads but does not act).
        await connection.execute(
            insert(ServiceDepartment),
            [
                {"service_id": ids[1], "department": "urban_services", "role": "RESPONSIBLE"},
                {"service_id": ids[1], "department": "transport", "role": "SEES"},
            ],
        )
        # The demo catalogue (with parcels) holds the year's holidays already.
        known = set(await connection.scalars(select(Holiday.__table__.c.day)))
        missing = [
            {"day": day, "name_fa": name, "name_en": name}
            for day, name in NOWRUZ_1405.items()
            if day not in known
        ]
        if missing:
            await connection.execute(insert(Holiday), missing)
    world = World(backend, server, databases, ids[0], ids[1])
    for label, (kind, department) in HANDLERS.items():
        _, key = await mint_key(databases, kind, f"lifecycle {label}", department)
        world.keys[label] = key
    return world
