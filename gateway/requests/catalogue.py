"""The services catalogue (شناسنامه خدمات): reading it, and an operator's changes to it.

A service belongs to one of the five groups, is answered through one channel (the portal or
a specialised system, the 137 centre, in person by appointment, or semi-in-person when an
officer must visit), has a process owner (the department that sets its policy) and executing
departments, departments that only see its requests, a deadline in working days, the
questions a request for it answers (Open311 attributes), the outside agency its matters go to
if any, and the regions where it is enabled: a new service is piloted in one region first and
enabled in others by a later change.

`save_service` creates a service or replaces every field of one (the whole definition is
given each time, so a change is one reviewable act); the caller audits it (Mutation.
saveService on the Service) and runs it in its transaction. Nothing is ever deleted: a
withdrawn service is inactive, and its requests keep it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.contact import DEPARTMENT_ROLES, OUTSIDE_AGENCIES, SERVICE_CHANNELS
from gateway.access.principals import DEPARTMENTS
from gateway.errors import BadUserInput
from gateway.requests.records import (
    GROUPS,
    REGIONS,
    SERVICE_DEPARTMENTS,
    SERVICE_REGIONS,
    SERVICES,
    ServiceDefinition,
    load_service,
    naive,
)

__all__ = ["DATATYPES", "ServiceChange", "save_service"]

_CODE = re.compile(r"[a-z][a-z0-9_]{1,31}")
# Open311's attribute datatypes.
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
MAX_QUESTIONS = 20
assert DEPARTMENT_ROLES == ("RESPONSIBLE", "SEES")


@dataclass(frozen=True)
class ServiceChange:
    """A service's whole definition, as an operator saves it."""

    code: str
    group: str
    name_fa: str
    name_en: str
    channel: str
    owner_department: str
    deadline_days: int
    regions: tuple[int, ...]
    responsible: tuple[str, ...] = ()
    sees: tuple[str, ...] = ()
    description_fa: str | None = None
    description_en: str | None = None
    questions: tuple[Mapping[str, Any], ...] = ()
    keywords: str | None = None
    referred_agency: str | None = None
    active: bool = True


def _text(value: str, field: str, limit: int) -> str:
    cleaned = " ".join(value.split())
    if not 1 <= len(cleaned) <= limit:
        raise BadUserInput(f"{field} is 1 to {limit} characters.", field=field)
    return cleaned


def _department(name: str, field: str) -> str:
    if name not in DEPARTMENTS:
        raise BadUserInput(f"A department is one of: {', '.join(DEPARTMENTS)}.", field=field)
    return name


def _questions(questions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(questions) > MAX_QUESTIONS:
        raise BadUserInput(f"At most {MAX_QUESTIONS} questions.", field="questions")
    seen: set[str] = set()
    cleaned = []
    for order, question in enumerate(questions, start=1):
        code = str(question.get("code", ""))
        if _CODE.fullmatch(code) is None or code in seen:
            raise BadUserInput(
                "A question's code is a unique lower-case name (a-z, 0-9, _).", field="questions"
            )
        seen.add(code)
        datatype = str(question.get("datatype", ""))
        if datatype not in DATATYPES:
            raise BadUserInput(f"A datatype is one of: {', '.join(DATATYPES)}.", field="questions")
        values = [
            {
                "key": _text(str(v.get("key", "")), "questions", 64),
                "name_fa": _text(str(v.get("name_fa", "")), "questions", 200),
                "name_en": _text(str(v.get("name_en", "")), "questions", 200),
            }
            for v in question.get("values") or ()
        ]
        if datatype.endswith("valuelist") and not values:
            raise BadUserInput("A list question needs its values.", field="questions")
        cleaned.append(
            {
                "code": code,
                "datatype": datatype,
                "required": bool(question.get("required", False)),
                "order": order,
                "description_fa": _text(str(question.get("description_fa", "")), "questions", 500),
                "description_en": _text(str(question.get("description_en", "")), "questions", 500),
                "values": values,
            }
        )
    return cleaned


async def save_service(
    connection: AsyncConnection, change: ServiceChange, *, now: dt.datetime
) -> tuple[ServiceDefinition, bool]:
    """Creates the service named by `change.code`, or replaces its definition; returns it and
    whether it was created. Inside the caller's transaction."""
    if _CODE.fullmatch(change.code) is None:
        raise BadUserInput("A service code is a lower-case name (a-z, 0-9, _).", field="code")
    group_id = await connection.scalar(select(GROUPS.c.id).where(GROUPS.c.code == change.group))
    if group_id is None:
        raise BadUserInput("No group of the catalogue has this code.", field="group")
    if change.channel not in SERVICE_CHANNELS:
        raise BadUserInput(f"channel is one of {', '.join(SERVICE_CHANNELS)}.", field="channel")
    if not 1 <= change.deadline_days <= 365:
        raise BadUserInput("A deadline is 1 to 365 working days.", field="deadlineDays")
    if change.referred_agency is not None and change.referred_agency not in OUTSIDE_AGENCIES:
        raise BadUserInput(
            f"An outside agency is one of {', '.join(OUTSIDE_AGENCIES)}.", field="referredAgency"
        )
    owner = _department(change.owner_department, "ownerDepartment")
    responsible = [_department(d, "responsible") for d in dict.fromkeys(change.responsible)]
    sees = [_department(d, "sees") for d in dict.fromkeys(change.sees) if d not in responsible]
    known_regions = set(await connection.scalars(select(REGIONS.c.region)))
    regions = sorted(set(change.regions))
    if any(region not in known_regions for region in regions):
        raise BadUserInput(
            f"A region is one of {', '.join(map(str, sorted(known_regions)))}.", field="regions"
        )
    values: dict[str, Any] = {
        "group_id": group_id,
        "name_fa": _text(change.name_fa, "nameFa", 200),
        "name_en": _text(change.name_en, "nameEn", 200),
        "description_fa": change.description_fa,
        "description_en": change.description_en,
        "channel": change.channel,
        "owner_department": owner,
        "deadline_days": change.deadline_days,
        "questions": _questions(change.questions),
        "keywords": change.keywords,
        "referred_agency": change.referred_agency,
        "active": change.active,
        "updated_at": naive(now),
    }
    existing = await connection.scalar(select(SERVICES.c.id).where(SERVICES.c.code == change.code))
    created = existing is None
    if existing is None:
        inserted = await connection.execute(
            insert(SERVICES).values(code=change.code, created_at=naive(now), **values)
        )
        key = inserted.inserted_primary_key
        assert key is not None
        service_id = int(key[0])
    else:
        service_id = int(existing)
        await connection.execute(
            update(SERVICES).where(SERVICES.c.id == service_id).values(**values)
        )
        await connection.execute(
            delete(SERVICE_DEPARTMENTS).where(SERVICE_DEPARTMENTS.c.service_id == service_id)
        )
    parts = [(d, "RESPONSIBLE") for d in responsible or [owner]] + [(d, "SEES") for d in sees]
    await connection.execute(
        insert(SERVICE_DEPARTMENTS),
        [{"service_id": service_id, "department": d, "role": role} for d, role in parts],
    )
    # Regions keep the moment each was enabled: only those added or removed change.
    enabled = set(
        await connection.scalars(
            select(SERVICE_REGIONS.c.region).where(SERVICE_REGIONS.c.service_id == service_id)
        )
    )
    removed = enabled - set(regions)
    if removed:
        await connection.execute(
            delete(SERVICE_REGIONS).where(
                SERVICE_REGIONS.c.service_id == service_id,
                SERVICE_REGIONS.c.region.in_(sorted(removed)),
            )
        )
    added = [r for r in regions if r not in enabled]
    if added:
        await connection.execute(
            insert(SERVICE_REGIONS),
            [{"service_id": service_id, "region": r, "enabled_at": naive(now)} for r in added],
        )
    saved = await load_service(connection, id=service_id)
    assert saved is not None
    return saved, created
