# ruff: noqa: E501 (the catalogue and rules are tables: one row a line reads best)
"""The contact centre's demo data: the services catalogue (54 services in five groups, as
Mashhad's), the demo city's five regions with their boundaries, the official holidays of the
Solar Hijri year 1405 (and Nowruz 1406), and the routing rules.

Deterministic and small: it is what a fresh development gateway and every test database
starts with (db/registry.py seeds it when the database is empty), with a few hundred past
citizen requests over the city (`seed_requests`).

The regions: the demo city is drawn around 37.5527 N, 45.0761 E (the contract promises at
least 5 km around it resolves to a region). Region 1 is the centre, a box of about 5 by 4.4
km; regions 2 to 5 are the four trapezoids between it and an outer box of about 30 by 31 km
(north, east, south, west), so the five tile the outer box with no gap.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, cast

import jdatetime
from sqlalchemy import Table, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db import planning
from db.base import ContactBase
from db.contact import (
    CitizenRequestRecord,
    Holiday,
    RegionArea,
    RequestHistoryRecord,
    RequestReplyRecord,
    RoutingRule,
    Service,
    ServiceDepartment,
    ServiceGroup,
    ServiceRegion,
)
from db.engines import Databases
from identifiers.tracking import new_tracking_code

__all__ = [
    "CENTRE",
    "GROUPS",
    "PILOT_REGION",
    "REGION_BOUNDARIES",
    "SERVICES",
    "holidays",
    "is_seeded",
    "seed_catalogue",
    "seed_requests",
]

CENTRE = (37.5527, 45.0761)
# Outer box and the centre's box, in degrees: (south, north), (west, east).
_OUTER = ((37.42, 37.69), (44.90, 45.25))
_INNER = ((37.53, 37.575), (45.05, 45.10))


def _boundaries() -> dict[int, list[list[float]]]:
    (s, n), (w, e) = _OUTER
    (si, ni), (wi, ei) = _INNER
    return {
        1: [[si, wi], [ni, wi], [ni, ei], [si, ei]],
        2: [[n, w], [n, e], [ni, ei], [ni, wi]],  # north
        3: [[n, e], [s, e], [si, ei], [ni, ei]],  # east
        4: [[s, e], [s, w], [si, wi], [si, ei]],  # south
        5: [[s, w], [n, w], [ni, wi], [si, wi]],  # west
    }


REGION_BOUNDARIES = _boundaries()
_REGION_NAMES = {
    1: ("منطقه ۱ (مرکزی)", "Region 1 (centre)"),
    2: ("منطقه ۲ (شمال)", "Region 2 (north)"),
    3: ("منطقه ۳ (شرق)", "Region 3 (east)"),
    4: ("منطقه ۴ (جنوب)", "Region 4 (south)"),
    5: ("منطقه ۵ (غرب)", "Region 5 (west)"),
}
# The region where a new service is piloted before it is enabled everywhere (Urmia pilots
# in its region 1, DOMAIN.md).
PILOT_REGION = 1

GROUPS = (
    ("urban_services", "خدمات شهری و فضای سبز", "Urban services and green space"),
    ("civil_works", "عمران و شهرسازی", "Civil works and urban planning"),
    ("transport", "حمل و نقل و ترافیک", "Transport and traffic"),
    ("culture_social", "فرهنگی و اجتماعی", "Cultural and social"),
    ("public_relations", "روابط عمومی", "Public relations"),
)

_P, _C, _I, _S = "PORTAL", "CENTRE_137", "IN_PERSON", "SEMI_IN_PERSON"

_SIZE = {
    "code": "size",
    "datatype": "singlevaluelist",
    "required": False,
    "order": 1,
    "description_fa": "اندازه",
    "description_en": "How large is it?",
    "values": [
        {"key": "small", "name_fa": "کوچک", "name_en": "Small"},
        {"key": "medium", "name_fa": "متوسط", "name_en": "Medium"},
        {"key": "large", "name_fa": "بزرگ", "name_en": "Large"},
    ],
}
_DANGER = {
    "code": "danger",
    "datatype": "singlevaluelist",
    "required": True,
    "order": 1,
    "description_fa": "آیا خطر فوری وجود دارد؟",
    "description_en": "Is anyone in immediate danger?",
    "values": [
        {"key": "yes", "name_fa": "بله", "name_en": "Yes"},
        {"key": "no", "name_fa": "خیر", "name_en": "No"},
    ],
}
_PLATE = {
    "code": "vehicle_plate",
    "datatype": "string",
    "required": False,
    "order": 1,
    "description_fa": "پلاک خودرو",
    "description_en": "The vehicle's plate, if known",
    "values": [],
}
_DATE = {
    "code": "event_date",
    "datatype": "datetime",
    "required": False,
    "order": 2,
    "description_fa": "تاریخ رویداد",
    "description_en": "When it happened",
    "values": [],
}

# code, group, Persian name, English name, channel, process owner, executing departments
# (the owner when empty), departments that only see it, working days, questions, agency.
_S_ROWS: tuple[tuple[Any, ...], ...] = (
    # Urban services and green space (14)
    ("waste_collection", "urban_services", "جمع‌آوری نشدن زباله", "Waste not collected", _C, "urban_services", (), (), 2, (), None),
    ("bulky_waste", "urban_services", "جمع‌آوری نخاله و اقلام حجیم", "Bulky waste and rubble pickup", _S, "urban_services", (), (), 5, (_SIZE,), None),
    ("street_cleaning", "urban_services", "نظافت معابر", "Street cleaning", _C, "urban_services", (), (), 3, (), None),
    ("waste_bin", "urban_services", "مخزن زباله (نصب، تعمیر، جابجایی)", "Waste bin (install, repair, move)", _P, "urban_services", (), (), 7, (), None),
    ("recycling_pickup", "urban_services", "تحویل پسماند خشک", "Recyclables pickup", _P, "urban_services", (), (), 5, (), None),
    ("stray_animals", "urban_services", "حیوانات ولگرد", "Stray animals", _C, "urban_services", (), (), 3, (_DANGER,), None),
    ("pest_control", "urban_services", "سم‌پاشی و مبارزه با جانوران موذی", "Pest control", _S, "urban_services", (), (), 7, (), None),
    ("tree_pruning", "urban_services", "هرس و قطع درخت", "Tree pruning or felling", _S, "green_space", (), ("urban_services",), 10, (_DANGER,), None),
    ("park_maintenance", "urban_services", "نگهداری پارک و فضای سبز", "Park and green space upkeep", _C, "green_space", (), (), 7, (), None),
    ("green_space_irrigation", "urban_services", "آبیاری فضای سبز", "Green space irrigation", _C, "green_space", (), (), 3, (), None),
    ("playground_equipment", "urban_services", "وسایل بازی کودکان", "Playground equipment", _C, "green_space", (), (), 10, (), None),
    ("public_toilet", "urban_services", "سرویس بهداشتی عمومی", "Public toilet", _C, "urban_services", (), (), 5, (), None),
    ("water_leak", "urban_services", "نشت آب و شکستگی لوله", "Water leak or burst pipe", _C, "urban_services", (), (), 1, (), "water"),
    ("gas_smell", "urban_services", "بوی گاز", "Smell of gas", _C, "urban_services", (), (), 1, (_DANGER,), "gas"),
    # Civil works and urban planning (12)
    ("pothole", "civil_works", "چاله و خرابی آسفالت", "Pothole or broken asphalt", _C, "civil_works", (), (), 5, (_SIZE,), None),
    ("sidewalk_repair", "civil_works", "تعمیر پیاده‌رو", "Sidewalk repair", _C, "civil_works", (), (), 10, (), None),
    ("manhole_cover", "civil_works", "دریچه و درپوش معابر", "Missing or broken manhole cover", _C, "civil_works", (), (), 2, (_DANGER,), None),
    ("surface_water", "civil_works", "آب‌گرفتگی معابر", "Flooded street", _C, "civil_works", (), (), 2, (), None),
    ("street_lighting", "civil_works", "روشنایی معابر", "Street lighting out", _C, "civil_works", (), (), 3, (), "electricity"),
    ("construction_violation", "civil_works", "تخلف ساختمانی", "Building violation", _S, "planning", (), ("inspection",), 10, (), None),
    ("construction_noise", "civil_works", "مزاحمت کارگاه ساختمانی", "Construction site nuisance", _C, "planning", (), ("inspection",), 5, (), None),
    ("abandoned_building", "civil_works", "ساختمان متروکه و ناایمن", "Abandoned or unsafe building", _S, "planning", (), (), 15, (_DANGER,), None),
    ("building_permit", "civil_works", "پروانه ساختمانی", "Building permit", _P, "planning", (), (), 20, (), None),
    ("completion_certificate", "civil_works", "پایان کار", "Completion certificate", _I, "planning", (), (), 15, (), None),
    ("excavation_permit", "civil_works", "مجوز حفاری", "Excavation permit", _I, "civil_works", (), (), 10, (), None),
    ("land_use_inquiry", "civil_works", "استعلام کاربری", "Land use inquiry", _P, "planning", (), (), 7, (), None),
    # Transport and traffic (10)
    ("traffic_light", "transport", "خرابی چراغ راهنمایی", "Traffic light out of order", _C, "transport", (), (), 1, (), None),
    ("road_signs", "transport", "تابلو و علائم راهنمایی", "Road signs and markings", _C, "transport", (), (), 7, (), None),
    ("speed_bump", "transport", "سرعت‌گیر", "Speed bump request", _P, "transport", (), (), 15, (), None),
    ("bus_service", "transport", "اتوبوسرانی", "Bus service", _C, "transport", (), (), 5, (_DATE,), None),
    ("taxi_complaint", "transport", "شکایت از تاکسی", "Taxi complaint", _C, "transport", (), (), 5, (_PLATE, _DATE), None),
    ("bus_stop", "transport", "ایستگاه اتوبوس", "Bus stop shelter", _C, "transport", (), (), 10, (), None),
    ("parking_violation", "transport", "پارک غیرمجاز", "Illegal parking", _C, "transport", (), (), 1, (_PLATE,), "police"),
    ("abandoned_vehicle", "transport", "خودروی رها شده", "Abandoned vehicle", _S, "transport", (), (), 10, (_PLATE,), None),
    ("bike_lane", "transport", "مسیر دوچرخه", "Bike lane", _P, "transport", (), (), 15, (), None),
    ("traffic_permit", "transport", "مجوز طرح ترافیک", "Traffic zone permit", _I, "transport", (), (), 5, (), None),
    # Cultural and social (9)
    ("cultural_centre", "culture_social", "فرهنگسرا و خانه فرهنگ", "Cultural centre", _C, "culture_social", (), (), 7, (), None),
    ("library", "culture_social", "کتابخانه عمومی", "Public library", _C, "culture_social", (), (), 7, (), None),
    ("sports_facility", "culture_social", "اماکن ورزشی محله", "Neighbourhood sports facility", _C, "culture_social", (), (), 10, (), None),
    ("homeless_help", "culture_social", "ساماندهی کارتن‌خواب‌ها", "Help for a homeless person", _C, "culture_social", (), (), 1, (), None),
    ("beggary", "culture_social", "تکدی‌گری", "Begging", _C, "culture_social", (), (), 3, (), None),
    ("event_permit", "culture_social", "مجوز برگزاری مراسم", "Event permit", _I, "culture_social", (), (), 10, (), None),
    ("neighbourhood_council", "culture_social", "شورایاری محله", "Neighbourhood council", _P, "culture_social", (), (), 10, (), None),
    ("volunteering", "culture_social", "مشارکت داوطلبانه", "Volunteering", _P, "culture_social", (), (), 15, (), None),
    ("municipal_ads", "culture_social", "تبلیغات محیطی", "Billboards and posters", _C, "culture_social", (), (), 7, (), None),
    # Public relations (9)
    ("staff_conduct", "public_relations", "رفتار کارکنان", "Staff conduct", _C, "public_relations", (), ("inspection",), 10, (), None),
    ("corruption_report", "public_relations", "گزارش تخلف اداری", "Report of misconduct", _C, "inspection", (), (), 10, (), None),
    ("information_request", "public_relations", "درخواست اطلاعات", "Request for information", _P, "public_relations", (), (), 10, (), None),
    ("thanks_staff", "public_relations", "تقدیر از کارکنان", "Thanks to staff", _P, "public_relations", (), (), 5, (), None),
    ("website_portal", "public_relations", "سامانه‌ها و درگاه شهروندی", "Portal and apps", _P, "public_relations", (), (), 5, (), None),
    ("meet_the_mayor", "public_relations", "ملاقات با شهردار", "Meeting the mayor", _I, "public_relations", (), (), 20, (), None),
    ("media_inquiry", "public_relations", "پرسش رسانه‌ها", "Press inquiry", _P, "public_relations", (), (), 3, (), None),
    ("noise_complaint", "public_relations", "مزاحمت صوتی", "Noise nuisance", _C, "public_relations", (), ("inspection",), 3, (), None),
    ("general_suggestion", "public_relations", "پیشنهاد عمومی", "General suggestion", _P, "public_relations", (), (), 15, (), None),
)  # fmt: skip

# Services piloted in one region only (every other service is enabled in all five).
_PILOTS = frozenset({"recycling_pickup", "bike_lane"})

SERVICES = _S_ROWS

# The routing rules of the demo, in order; the first that matches routes a request. Those
# left out fall to the last: the service's executing department and the region's office.
_BAZAAR = [[37.548, 45.068], [37.556, 45.068], [37.556, 45.082], [37.548, 45.082]]
_RULES: tuple[dict[str, Any], ...] = (
    {"name": "Water leaks: the water and wastewater company", "service_code": "water_leak", "referred_to": "water"},
    {"name": "Gas: the gas company's emergency line", "service_code": "gas_smell", "referred_to": "gas"},
    {"name": "Illegal parking: traffic police", "service_code": "parking_violation", "referred_to": "police"},
    {"name": "Noise at night: police", "service_code": "noise_complaint", "hours_from": 22, "hours_to": 6, "referred_to": "police"},
    {"name": "Dangerous trees: urban services' emergency crew", "service_code": "tree_pruning", "answers": {"danger": "yes"}, "department": "urban_services"},
    {"name": "Construction noise after hours: inspection", "service_code": "construction_noise", "hours_from": 19, "hours_to": 7, "department": "inspection"},
    {"name": "Historic bazaar: its own office for urban services", "group_code": "urban_services", "area": _BAZAAR, "region_office": "bazaar_office"},
    {"name": "Complaints about staff: inspection", "service_code": "staff_conduct", "kind": "COMPLAINT", "department": "inspection"},
    {"name": "Everything else: the service's department and the region's office"},
)  # fmt: skip


def holidays() -> list[tuple[dt.date, str, str]]:
    """Iran's official holidays of 1405 (21 March 2026 to 20 March 2027) and Nowruz 1406.

    The solar ones are fixed in the Solar Hijri calendar. The lunar ones move every year and
    are announced by the government's calendar; the dates below are those expected for
    1405, which the operator corrects in the table when the official calendar says so.
    """
    solar = [
        (1405, 1, 1, "عید نوروز", "Nowruz"),
        (1405, 1, 2, "عید نوروز", "Nowruz"),
        (1405, 1, 3, "عید نوروز", "Nowruz"),
        (1405, 1, 4, "عید نوروز", "Nowruz"),
        (1405, 1, 12, "روز جمهوری اسلامی", "Islamic Republic Day"),
        (1405, 1, 13, "روز طبیعت", "Nature Day (Sizdah Bedar)"),
        (1405, 3, 14, "رحلت امام خمینی", "Death of Imam Khomeini"),
        (1405, 3, 15, "قیام ۱۵ خرداد", "15 Khordad uprising"),
        (1405, 11, 22, "پیروزی انقلاب اسلامی", "Revolution Day"),
        (1405, 12, 29, "ملی شدن صنعت نفت", "Oil Nationalisation Day"),
        (1406, 1, 1, "عید نوروز", "Nowruz"),
        (1406, 1, 2, "عید نوروز", "Nowruz"),
        (1406, 1, 3, "عید نوروز", "Nowruz"),
        (1406, 1, 4, "عید نوروز", "Nowruz"),
    ]
    lunar = [
        (dt.date(2026, 5, 27), "عید قربان", "Eid al-Adha"),
        (dt.date(2026, 6, 4), "عید غدیر خم", "Eid al-Ghadir"),
        (dt.date(2026, 6, 24), "تاسوعا", "Tasua"),
        (dt.date(2026, 6, 25), "عاشورا", "Ashura"),
        (dt.date(2026, 8, 4), "اربعین", "Arbaeen"),
        (dt.date(2026, 8, 12), "رحلت پیامبر و شهادت امام حسن", "Death of the Prophet"),
        (dt.date(2026, 8, 14), "شهادت امام رضا", "Martyrdom of Imam Reza"),
        (dt.date(2026, 8, 22), "شهادت امام حسن عسکری", "Martyrdom of Imam Hasan Askari"),
        (dt.date(2026, 8, 31), "میلاد پیامبر و امام صادق", "Birth of the Prophet"),
        (dt.date(2026, 11, 24), "شهادت حضرت فاطمه", "Martyrdom of Fatimah"),
        (dt.date(2027, 1, 2), "ولادت امام علی", "Birth of Imam Ali"),
        (dt.date(2027, 1, 16), "مبعث", "Mab'ath"),
        (dt.date(2027, 2, 3), "ولادت امام مهدی", "Birth of Imam Mahdi"),
        (dt.date(2027, 3, 1), "شهادت امام علی", "Martyrdom of Imam Ali"),
        (dt.date(2027, 3, 10), "عید فطر", "Eid al-Fitr"),
        (dt.date(2027, 3, 11), "تعطیل به مناسبت عید فطر", "Eid al-Fitr holiday"),
    ]
    days = {
        jdatetime.date(year, month, day).togregorian(): (fa, en)
        for year, month, day, fa, en in solar
    }
    for day, fa, en in lunar:
        days.setdefault(day, (fa, en))
    return [(day, fa, en) for day, (fa, en) in sorted(days.items())]


async def _holds_data(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return bool(await connection.scalar(select(exists().select_from(ServiceGroup))))


async def clear(databases: Databases) -> None:
    """Deletes every row of the contact database (`gateway seed --reset`), children before
    parents; a request's links to its parent and survivor first, since MariaDB checks a
    table's references to itself row by row."""
    requests = cast(Table, CitizenRequestRecord.__table__)
    async with databases.engine("contact").begin() as connection:
        await connection.execute(update(requests).values(parent_id=None, merged_into_id=None))
        for table in reversed(ContactBase.metadata.sorted_tables):
            await connection.execute(delete(table))


async def is_seeded(databases: Databases) -> bool:
    """Whether the catalogue holds any group."""
    return await _holds_data(databases.engine("contact"))


async def seed_catalogue(databases: Databases, parcels: int = 0) -> dict[str, int]:
    """Fills an empty contact database with the catalogue, regions, holidays and rules.
    `parcels` (the registry's seeder signature) does not matter here."""
    moment = dt.datetime(2026, 3, 21, 4, 30)  # the catalogue's first day: Nowruz 1405
    group_ids = {code: index for index, (code, _, _) in enumerate(GROUPS, start=1)}
    services: list[dict[str, Any]] = []
    departments: list[dict[str, Any]] = []
    regions: list[dict[str, Any]] = []
    for service_id, row in enumerate(_S_ROWS, start=1):
        code, group, fa, en, channel, owner, executing, sees, days, questions, agency = row
        services.append(
            {
                "id": service_id,
                "code": code,
                "group_id": group_ids[group],
                "name_fa": fa,
                "name_en": en,
                "description_fa": fa,
                "description_en": en,
                "channel": channel,
                "owner_department": owner,
                "deadline_days": days,
                "questions": list(questions),
                "keywords": None,
                "referred_agency": agency,
                "active": True,
                "created_at": moment,
                "updated_at": moment,
            }
        )
        for department in executing or (owner,):
            departments.append(
                {"service_id": service_id, "department": department, "role": "RESPONSIBLE"}
            )
        for department in sees:
            departments.append({"service_id": service_id, "department": department, "role": "SEES"})
        for region in (PILOT_REGION,) if code in _PILOTS else sorted(REGION_BOUNDARIES):
            regions.append({"service_id": service_id, "region": region, "enabled_at": moment})
    async with databases.engine("contact").begin() as connection:
        await connection.execute(
            insert(ServiceGroup),
            [
                {"id": group_ids[code], "code": code, "name_fa": fa, "name_en": en, "position": i}
                for i, (code, fa, en) in enumerate(GROUPS, start=1)
            ],
        )
        await connection.execute(insert(Service), services)
        await connection.execute(insert(ServiceDepartment), departments)
        await connection.execute(insert(ServiceRegion), regions)
        await connection.execute(
            insert(RegionArea),
            [
                {
                    "region": region,
                    "name_fa": _REGION_NAMES[region][0],
                    "name_en": _REGION_NAMES[region][1],
                    "office": f"region_{region}_office",
                    "boundary": boundary,
                }
                for region, boundary in REGION_BOUNDARIES.items()
            ],
        )
        await connection.execute(
            insert(Holiday), [{"day": d, "name_fa": fa, "name_en": en} for d, fa, en in holidays()]
        )
        await connection.execute(
            insert(RoutingRule),
            [
                {
                    "position": position * 10,
                    "service_code": None,
                    "group_code": None,
                    "kind": None,
                    "region": None,
                    "area": None,
                    "hours_from": None,
                    "hours_to": None,
                    "answers": None,
                    "department": None,
                    "region_office": None,
                    "referred_to": None,
                    "active": True,
                    **rule,
                }
                for position, rule in enumerate(_RULES, start=1)
            ],
        )
    # PostgreSQL's sequences do not advance for explicit ids: catch them up.
    engine = databases.engine("contact")
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            for table in ("service_groups", "services"):
                await connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
    made = await seed_requests(databases, count=min(300, max(30, parcels)))
    return {
        "citizen_requests": made,
        "service_groups": len(GROUPS),
        "services": len(services),
        "regions": len(REGION_BOUNDARIES),
        "holidays": len(holidays()),
        "routing_rules": len(_RULES),
    }


# --- Demo citizen requests ------------------------------------------------------------------

# Boxes wholly inside each region (south, north, west, east), where demo requests are drawn.
_REGION_BOXES = {
    1: (37.532, 37.573, 45.052, 45.098),
    2: (37.580, 37.680, 45.060, 45.090),
    3: (37.540, 37.565, 45.110, 45.240),
    4: (37.430, 37.525, 45.060, 45.090),
    5: (37.540, 37.565, 44.910, 45.040),
}
_NAMES = (
    "مریم احمدی", "علی رضایی", "زهرا محمدی", "حسین کریمی", "فاطمه حسینی", "رضا موسوی",
    "نرگس جعفری", "مهدی قاسمی", "سارا رحیمی", "امیر صادقی", "لیلا نوری", "محمد باقری",
)  # fmt: skip
_WORDS = {
    "REQUEST": "لطفا رسیدگی شود",
    "COMPLAINT": "چند بار تماس گرفته‌ام و هنوز رسیدگی نشده است",
    "CRITICISM": "کیفیت کار مناسب نیست",
    "SUGGESTION": "پیشنهاد می‌کنم این مورد بهبود یابد",
    "THANKS": "از رسیدگی سریع سپاسگزارم",
}
_REGISTRARS = (
    ("department", "department:public_relations:demo-portal", "PORTAL", 5),
    ("department", "department:contact137:demo-centre", "CENTRE_137", 4),
    ("counter", "counter:demo-app", "PARTNER_APP", 1),
)
_FIRST_DAY = dt.datetime(2026, 5, 22, 4, 30)
_DAYS = 183


async def _parcels(databases: Databases, count: int) -> list[tuple[str, str, int]]:
    """Renewal codes, addresses and regions of the demo city's first parcels, if seeded."""
    if "planning" not in databases.engines:
        return []
    async with databases.engine("planning").connect() as connection:
        rows = await connection.execute(
            select(planning.Parcel.renewal_code, planning.Parcel.address, planning.Parcel.region_id)
            .order_by(planning.Parcel.id)
            .limit(count)
        )
        return [(row.renewal_code, row.address, row.region_id) for row in rows]


async def seed_requests(databases: Databases, *, count: int, seed: int = 1405) -> int:
    """`count` past citizen requests, registered over the half year before 22 November 2026
    by the demo portal, the 137 centre and a partner app, each with its history (and its
    reply once answered): most closed, some open, some late, some referred to an agency, a
    tenth about a parcel of the demo city. Deadlines are approximate here (calendar days ×
    7/6, as if only Fridays were off); the gateway computes real ones."""
    dice = random.Random(seed)
    codes = random.Random(seed + 1)
    parcels = await _parcels(databases, 40)
    enabled: dict[int, list[int]] = {r: [] for r in REGION_BOUNDARIES}
    for service_id, row in enumerate(_S_ROWS, start=1):
        for region in (PILOT_REGION,) if row[0] in _PILOTS else sorted(REGION_BOUNDARIES):
            enabled[region].append(service_id)
    weights = [w for *_, w in _REGISTRARS]
    requests: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    for request_id in range(1, count + 1):
        registrar_kind, registrar, channel, _ = dice.choices(_REGISTRARS, weights)[0]
        parcel = parcels[dice.randrange(len(parcels))] if parcels and dice.random() < 0.1 else None
        region = parcel[2] if parcel is not None else dice.choice(sorted(REGION_BOUNDARIES))
        service_id = dice.choice(enabled[region])
        _code, _group, _fa, _en, _ch, owner, executing, _sees, days, _q, agency = _S_ROWS[
            service_id - 1
        ]
        department = (executing or (owner,))[0]
        kind = dice.choices(list(_WORDS), [40, 35, 10, 8, 7])[0]
        south, north, west, east = _REGION_BOXES[region]
        latitude = round(dice.uniform(south, north), 6) if parcel is None else None
        longitude = round(dice.uniform(west, east), 6) if parcel is None else None
        registered = _FIRST_DAY + dt.timedelta(minutes=dice.randrange(_DAYS * 24 * 60))
        age_days = (_FIRST_DAY + dt.timedelta(days=_DAYS) - registered).days
        deadline = registered + dt.timedelta(days=days * 7 / 6)
        steps: list[tuple[str | None, str, dt.datetime, str]] = [
            (None, "SUBMITTED", registered, "Registered."),
        ]
        status = "REFERRED" if agency else "ASSIGNED"
        steps.append(("SUBMITTED", status, registered, f"Routed: {agency or department}."))
        resolved = closed = None
        rating = None
        reopen = 0
        if not agency:
            fate = dice.random()
            took = dt.timedelta(days=days * dice.uniform(0.2, 1.6) * 7 / 6)
            finished = registered + took
            if age_days < days * 1.6 and fate < 0.5:
                fate = 0.95  # recent: still open
            at = registered + took / 3
            if fate < 0.9:
                steps.append(("ASSIGNED", "IN_PROGRESS", at, "Crew assigned."))
                final = "REJECTED" if fate < 0.06 else "RESOLVED"
                steps.append(
                    (
                        "IN_PROGRESS",
                        final,
                        finished,
                        "Done." if final == "RESOLVED" else "Not the municipality's to do.",
                    )
                )
                resolved = finished
                status = final
                if final == "RESOLVED" and fate < 0.78:
                    rating = dice.choices([1, 2, 3, 4, 5], [4, 6, 15, 35, 40])[0]
                    if rating <= 2:
                        reopen = 1
                        again = finished + dt.timedelta(days=1)
                        steps.append(("RESOLVED", "REOPENED", again, f"Rated {rating}: reopened."))
                        finished = again + dt.timedelta(days=days * 0.5)
                        steps.append(("REOPENED", "RESOLVED", finished, "Done again."))
                        rating = dice.choice([3, 4])
                    closed = finished + dt.timedelta(days=1)
                    steps.append(("RESOLVED", "CLOSED", closed, f"Rated {rating}."))
                    status = "CLOSED"
                    resolved = finished
            elif fate < 0.93:
                steps.append(("ASSIGNED", "IN_PROGRESS", at, "Crew assigned."))
                status = "IN_PROGRESS"
        mobile = f"09{dice.randrange(10, 40)}{dice.randrange(10**7):07d}"
        requests.append(
            {
                "id": request_id,
                "tracking_code": new_tracking_code(codes.randrange),
                "kind": kind,
                "status": status,
                "service_id": service_id,
                "channel": channel,
                "registered_by_kind": registrar_kind,
                "registered_by": registrar,
                "idempotency_key": f"demo-{request_id}",
                "input_digest": "0" * 64,
                "description": f"{_S_ROWS[service_id - 1][2]}: {_WORDS[kind]}",
                "latitude": latitude,
                "longitude": longitude,
                "address": parcel[1] if parcel is not None else None,
                "renewal_code": parcel[0] if parcel is not None else None,
                "region": region,
                "department": department,
                "region_office": f"region_{region}_office",
                "referred_to": agency,
                "routing_rule_id": None,
                "citizen_name": dice.choice(_NAMES),
                "citizen_mobile": mobile,
                "photo_urls": [],
                "answers": {},
                "open311_token": None,
                "parent_id": None,
                "merged_into_id": None,
                "registered_at": registered,
                "updated_at": steps[-1][2],
                "assigned_at": None if agency else registered,
                "deadline_at": None if agency else deadline,
                "paused_since": None,
                "paused_seconds": 0,
                "resolved_at": resolved,
                "closed_at": closed,
                "reopen_count": reopen,
                "rating": rating,
                "rated_at": closed,
                "public_consent": dice.random() < 0.3,
                "anonymised_at": None,
                "overdue_at": None,
                "reminded_at": None,
                "escalated_at": None,
                "version": len(steps),
            }
        )
        for from_status, to_status, at, note in steps:
            history.append(
                {
                    "request_id": request_id,
                    "event": "REGISTERED" if from_status is None else "TRANSITION",
                    "from_status": from_status,
                    "to_status": to_status,
                    "at": at,
                    "actor_kind": registrar_kind if from_status is None else "department",
                    "actor": registrar if from_status is None else f"department:{department}:demo",
                    "department": department,
                    "note": note,
                }
            )
        if resolved is not None:
            replies.append(
                {
                    "request_id": request_id,
                    "at": resolved,
                    "author_kind": "department",
                    "author": f"department:{department}:demo",
                    "department": department,
                    "body": "درخواست شما رسیدگی شد. با سپاس از همراهی شما.",
                }
            )
    engine = databases.engine("contact")
    async with engine.begin() as connection:
        for start in range(0, len(requests), 500):
            await connection.execute(insert(CitizenRequestRecord), requests[start : start + 500])
        for start in range(0, len(history), 1000):
            await connection.execute(insert(RequestHistoryRecord), history[start : start + 1000])
        if replies:
            await connection.execute(insert(RequestReplyRecord), replies)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('citizen_requests', 'id'), "
                "(SELECT MAX(id) FROM citizen_requests))"
            )
    return len(requests)
