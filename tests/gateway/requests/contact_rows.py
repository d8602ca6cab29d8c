"""Rows of the contact database written directly, for the figures', scores' and appointments'
tests: a small catalogue, regions, holidays and requests whose every figure is known."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.contact import (
    CitizenRequestRecord,
    Holiday,
    RegionArea,
    Service,
    ServiceGroup,
    ServiceRegion,
)
from gateway.inquiries.tracking import new_tracking_code

# Two regions side by side around the demo city's centre (37.5527 N, 45.0761 E).
REGION_BOUNDARIES = {
    1: [[37.50, 45.00], [37.60, 45.00], [37.60, 45.076], [37.50, 45.076]],
    2: [[37.50, 45.076], [37.60, 45.076], [37.60, 45.15], [37.50, 45.15]],
}


async def catalogue(
    engine: AsyncEngine,
    services: Sequence[tuple[str, str]],
    *,
    holidays: Sequence[dt.date] = (),
    at: dt.datetime = dt.datetime(2020, 1, 1),
) -> dict[str, int]:
    """One group, the given (code, channel) services enabled in regions 1 and 2, the two
    regions with their offices, and the holidays; returns service ids by code."""
    async with engine.begin() as connection:
        group_id = (
            await connection.execute(
                insert(ServiceGroup).values(
                    code="urban", name_fa="خدمات شهری", name_en="Urban services", position=1
                )
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        for region, boundary in REGION_BOUNDARIES.items():
            await connection.execute(
                insert(RegionArea).values(
                    region=region,
                    name_fa=f"منطقه {region}",
                    name_en=f"Region {region}",
                    office=f"office-{region}",
                    boundary=boundary,
                )
            )
        ids = {}
        for code, channel in services:
            ids[code] = (
                await connection.execute(
                    insert(Service).values(
                        code=code,
                        group_id=group_id,
                        name_fa=f"خدمت {code}",
                        name_en=f"Service {code}",
                        channel=channel,
                        owner_department="urban_services",
                        deadline_days=5,
                        questions=[],
                        active=True,
                        created_at=at,
                        updated_at=at,
                    )
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            for region in REGION_BOUNDARIES:
                await connection.execute(
                    insert(ServiceRegion).values(service_id=ids[code], region=region, enabled_at=at)
                )
        for day in holidays:
            await connection.execute(
                insert(Holiday).values(day=day, name_fa="تعطیل", name_en="Holiday")
            )
    return ids


@dataclass(frozen=True)
class Req:
    """A request as the figures see it; moments naive UTC."""

    service: str
    registered: dt.datetime
    status: str = "ASSIGNED"
    kind: str = "COMPLAINT"
    region: int | None = 1
    department: str | None = "urban_services"
    deadline: dt.datetime | None = None
    resolved: dt.datetime | None = None
    closed: dt.datetime | None = None
    reopened: int = 0
    rating: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    referred_to: str | None = None
    mobile: str = "09120000000"
    name: str = "شهروند"
    consent: bool = False
    channel: str = "PORTAL"


async def add_requests(
    engine: AsyncEngine, service_ids: dict[str, int], requests: Sequence[Req]
) -> list[str]:
    """Inserts the requests; returns their tracking codes, in order."""
    codes = [new_tracking_code() for _ in requests]
    rows: list[dict[str, Any]] = [
        {
            "tracking_code": code,
            "kind": r.kind,
            "status": r.status,
            "service_id": service_ids[r.service],
            "channel": r.channel,
            "registered_by_kind": "department",
            "registered_by": "department:contact137",
            "idempotency_key": uuid.uuid4().hex,
            "input_digest": "0" * 64,
            "description": "شرح",
            "latitude": r.latitude,
            "longitude": r.longitude,
            "region": r.region,
            "department": r.department,
            "region_office": None if r.region is None else f"office-{r.region}",
            "referred_to": r.referred_to,
            "citizen_name": r.name,
            "citizen_mobile": r.mobile,
            "photo_urls": [],
            "answers": {},
            "registered_at": r.registered,
            "updated_at": r.registered,
            "assigned_at": r.registered,
            "deadline_at": r.deadline,
            "paused_seconds": 0,
            "resolved_at": r.resolved,
            "closed_at": r.closed,
            "reopen_count": r.reopened,
            "rating": r.rating,
            "public_consent": r.consent,
            "version": 1,
        }
        for code, r in zip(codes, requests, strict=True)
    ]
    async with engine.begin() as connection:
        for start in range(0, len(rows), 500):
            await connection.execute(insert(CitizenRequestRecord), rows[start : start + 500])
    return codes


async def request_id(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(
            select(CitizenRequestRecord.id).where(CitizenRequestRecord.tracking_code == code)
        )
    assert found is not None
    return found
