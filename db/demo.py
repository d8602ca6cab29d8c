"""Deterministic demo data for the planning and revenue databases: a city of parcels, owners, dues.

Everything follows from `seed` alone, drawn in parcel order, so a smaller city is a prefix of a
larger one with the same seed, and the rows are the same on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import functools
import operator
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import jdatetime
from sqlalchemy import (
    ForeignKeyConstraint,
    Table,
    UniqueConstraint,
    delete,
    exists,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import (
    AddConstraint,
    CreateIndex,
    DropConstraint,
    DropIndex,
    ExecutableDDLElement,
)

import db.planning
import db.revenue
from db.base import PlanningBase, RevenueBase
from db.engines import Databases
from identifiers import RegistryPlate, RenewalCode, make_national_code

__all__ = [
    "DEFAULT_SEED",
    "KNOWN_NATIONAL_CODE",
    "MAX_PARCELS",
    "PAYMENT_BANK_CODES",
    "SeedSummary",
    "analyze",
    "clear",
    "is_seeded",
    "seed_demo",
]

DEFAULT_SEED = 1403
# Always person 1: owns parcel 1 outright and half of parcel 2, so docs and tests can name them.
KNOWN_NATIONAL_CODE = "0084575948"
# Bank references end in an 8-digit payment id, which bounds the city's size.
MAX_PARCELS = 1_000_000
# A bank reference starts with the code of the bank the payment went through (as in a Sheba):
# Melli, Mellat, Tejarat, Saderat, Sepah.
PAYMENT_BANK_CODES = ("017", "012", "018", "019", "015")

_PARCELS_PER_CHUNK = 1_000
_ROWS_PER_EXECUTE = 5_000

# Events (deeds, permits, violations) happen between these Solar Hijri years; dues are assessed
# for the last three, and a late payment of 1403's may fall in 1404.
_FIRST_YEAR = 1370
_LAST_YEAR = 1403
_PERIODS = (1401, 1402, 1403)

_CITY_TABLES = ("regions", "districts")  # fixed, written before the parcels
_PLANNING_TABLES = (
    "persons",
    "parcels",
    "ownerships",
    "buildings",
    "permits",
    "certificates",
    "violations",
)
_REVENUE_TABLES = ("assessments", "payments")

T = TypeVar("T")


@dataclass(frozen=True)
class SeedSummary:
    regions: int
    districts: int
    persons: int
    parcels: int
    ownerships: int
    buildings: int
    permits: int
    certificates: int
    violations: int
    assessments: int
    payments: int


# --- Persian content ------------------------------------------------------------------------

_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _fa(number: int) -> str:
    return str(number).translate(_PERSIAN_DIGITS)


_MALE_NAMES = (
    "محمد", "علی", "حسین", "رضا", "مهدی", "حسن", "امیر", "محمدرضا", "سعید", "مجید",
    "احمد", "جواد", "مصطفی", "عباس", "ابوالفضل", "محسن", "حمید", "مرتضی", "علیرضا", "سجاد",
    "امیرحسین", "یوسف", "داوود", "بهروز", "فرهاد", "کامران", "سیاوش", "بهزاد", "مسعود", "اکبر",
)  # fmt: skip
_FEMALE_NAMES = (
    "فاطمه", "زهرا", "مریم", "معصومه", "زینب", "سمیه", "لیلا", "نرگس", "الهام", "مهسا",
    "سارا", "نازنین", "شیوا", "پریسا", "فرزانه", "نسرین", "طاهره", "اعظم", "مینا", "هانیه",
    "کوثر", "ریحانه", "شیرین", "پروین", "منیژه", "آزاده", "سپیده", "رویا", "محبوبه", "صدیقه",
)  # fmt: skip
_LAST_NAMES = (
    "محمدی", "حسینی", "احمدی", "رضایی", "موسوی", "کریمی", "جعفری", "رحیمی", "هاشمی", "صادقی",
    "قاسمی", "نوری", "کاظمی", "ابراهیمی", "اکبری", "مرادی", "حیدری", "عباسی", "سلطانی", "شریفی",
    "نجفی", "یوسفی", "فرهادی", "امیری", "بهرامی", "طاهری", "زارعی", "قربانی", "ملکی", "نظری",
    "کرمانی", "شیرازی", "تهرانی", "اصفهانی", "تبریزی", "خسروی", "رستمی", "میرزایی", "سبحانی",
    "صالحی", "باقری", "جلالی", "فتحی", "توکلی", "علوی", "مشهدی", "دهقان", "کشاورز", "نیک‌نام",
    "پورمحمدی", "اسدی", "آقایی", "خلیلی", "بابایی", "عزیزی", "فراهانی", "یزدانی", "حسن‌زاده",
    "علی‌پور", "قنبری",
)  # fmt: skip
_STREETS = (
    "خیابان امام", "خیابان آزادی", "خیابان انقلاب", "خیابان ولیعصر", "خیابان شریعتی",
    "خیابان مطهری", "خیابان طالقانی", "خیابان فردوسی", "خیابان حافظ", "خیابان سعدی",
    "خیابان جمهوری", "خیابان کارگر", "خیابان بهشتی", "خیابان مدرس", "خیابان باهنر",
    "بلوار کشاورز", "بلوار فردوس", "بلوار پاسداران", "بلوار ارم", "بلوار شهید چمران",
    "خیابان نواب", "خیابان دماوند", "خیابان پیروزی", "خیابان ستارخان", "خیابان بهار",
    "خیابان گلستان", "خیابان جمالزاده", "خیابان زند", "خیابان قصرالدشت", "خیابان ملاصدرا",
)  # fmt: skip
_ALLEYS = (
    "کوچه لاله", "کوچه نرگس", "کوچه یاس", "کوچه شقایق", "کوچه اقاقیا", "کوچه نسترن",
    "کوچه مریم", "کوچه بنفشه", "کوچه سرو", "کوچه چنار", "کوچه شهید رضایی", "کوچه شهید احمدی",
    "کوچه بهاران", "کوچه مهر", "کوچه آفتاب", "کوچه ارغوان", "کوچه صنوبر", "کوچه نیلوفر",
    "کوچه گلها", "کوچه امید",
)  # fmt: skip

# Descriptions per violation kind; {n} is square metres (or parking spaces), in Persian digits.
_VIOLATION_TEXT = {
    "excess_density": "احداث بنای مازاد بر تراکم مجاز به مساحت {n} متر مربع",
    "no_permit": "احداث بنا بدون پروانه ساختمانی به مساحت {n} متر مربع",
    "parking_removed": "حذف {n} واحد پارکینگ مصوب",
    "use_change": "تغییر کاربری {n} متر مربع از مسکونی به تجاری",
    "setback": "عدم رعایت عقب‌نشینی به مساحت {n} متر مربع",
}

# Weighted by repetition; a parcel without a permit is always a "no_permit" violation, and only a
# residential parcel can have its use changed to commercial. Indexed by "is residential".
_VIOLATIONS_WITH_PERMIT = (
    ("excess_density", "excess_density", "excess_density", "parking_removed", "setback"),
    (
        "excess_density",
        "excess_density",
        "excess_density",
        "parking_removed",
        "setback",
        "use_change",
    ),
)
_PERMIT_KINDS = ("new_construction",) * 8 + ("renovation", "extension")

# The first three digits of a national code name the issuing office; most owners here were
# registered in the capital's offices (001–008), a few elsewhere.
_NATIONAL_CODE_OFFICES = (
    "001", "002", "003", "004", "005", "006", "007", "008",
    "001", "002", "003", "004", "005", "006", "007", "008",
    "045", "127", "228", "092", "059", "371",
)  # fmt: skip

# number, districts, share of the city's parcels
_REGIONS = ((1, 4, 30), (2, 3, 25), (3, 3, 20), (4, 3, 15), (5, 2, 10))

_D = Decimal
# Splits of the six dang of a parcel among its owners, with weights.
_DANG_SPLITS: tuple[tuple[tuple[Decimal, ...], int], ...] = (
    ((_D(6),), 56),
    ((_D(3), _D(3)), 18),
    ((_D(4), _D(2)), 7),
    ((_D(2), _D(2), _D(2)), 8),
    ((_D("1.5"), _D("4.5")), 4),
    ((_D(3), _D("1.5"), _D("1.5")), 4),
    ((_D("2.5"), _D("3.5")), 3),
)


@dataclass(frozen=True)
class _LandUse:
    name: str
    weight: int
    area: tuple[int, int]  # square metres
    built: float  # probability that the parcel carries a building
    units_per_floor: tuple[int, int]
    renewal_rate: tuple[int, int]  # renewal duty in rials per square metre, for 1401
    waste_per_unit: tuple[int, int]  # waste fee in rials per unit, for 1401


_LAND_USE_PROFILES = (
    #        name, weight, area m², built, units/floor, renewal rial/m², waste rial/unit
    _LandUse("residential", 68, (90, 450), 0.94, (1, 2), (15_000, 35_000), (1_200_000, 2_600_000)),
    _LandUse("commercial", 14, (60, 1200), 0.95, (1, 4), (45_000, 110_000), (3_000_000, 8_000_000)),
    _LandUse("office", 6, (150, 1_500), 0.95, (1, 3), (30_000, 70_000), (2_500_000, 6_000_000)),
    _LandUse("industrial", 3, (500, 5_000), 0.85, (1, 1), (6_000, 14_000), (6_000_000, 18_000_000)),
    _LandUse("green_space", 3, (300, 5_000), 0.20, (1, 1), (2_000, 5_000), (1_000_000, 2_000_000)),
    _LandUse("educational", 6, (400, 3_000), 0.92, (1, 2), (5_000, 10_000), (3_000_000, 7_000_000)),
)  # fmt: skip
# The planning model owns these vocabularies; fail at import if they drift apart.
assert tuple(p.name for p in _LAND_USE_PROFILES) == db.planning.LAND_USES
assert set(_VIOLATION_TEXT) == set(db.planning.VIOLATION_KINDS)


# --- Drawing ---------------------------------------------------------------------------------


class _Dice:
    """Draws built on random.random() alone: Python promises that sequence across versions, but
    not the algorithms of randrange, choice or choices (randrange's changed in 3.2)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed).random

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def pick(self, items: Sequence[T]) -> T:
        return items[int(self.random() * len(items))]

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()


class _Weighted(Generic[T]):
    def __init__(self, pairs: Sequence[tuple[T, int]]) -> None:
        self.items = [item for item, _ in pairs]
        self.cumulative: list[int] = []
        total = 0
        for _, weight in pairs:
            total += weight
            self.cumulative.append(total)

    def pick(self, dice: _Dice) -> T:
        return self.items[bisect.bisect_right(self.cumulative, dice.random() * self.cumulative[-1])]


@functools.cache
def _new_year(year: int) -> dt.date:
    """1 Farvardin of a Solar Hijri year, as a Gregorian date."""
    return jdatetime.date(year, 1, 1).togregorian()  # type: ignore[no-any-return]


def _day_in(dice: _Dice, first_year: int, last_year: int | None = None) -> dt.date:
    """A date in the Solar Hijri years first_year..last_year."""
    start = _new_year(first_year)
    days = (_new_year((last_year or first_year) + 1) - start).days
    return start + dt.timedelta(days=int(dice.random() * days))


def _last_day(year: int) -> dt.date:
    return _new_year(year + 1) - dt.timedelta(days=1)


def _rials(amount: float) -> int:
    """Round to whole thousands of rials, as municipal bills are."""
    return max(1, round(amount / 1_000)) * 1_000


def _area(hundredths: int) -> Decimal:
    return Decimal(hundredths).scaleb(-2)


# --- The city --------------------------------------------------------------------------------


@dataclass
class _Block:
    """A city block along one alley; its parcels share a street, an alley and a main plate."""

    number: int
    remaining: int
    street: str
    alley: str
    main_plate: int
    next_sub_plate: int
    next_house_number: int
    parcels: int = 0


@dataclass
class _District:
    id: int
    region: int
    number: int
    registry_section: int
    blocks: int = 0
    parcels: int = 0
    block: _Block | None = None


_Rows = dict[str, list[dict[str, Any]]]


class _City:
    """Generates the city parcel by parcel; every row depends on the seed and earlier parcels."""

    def __init__(self, seed: int) -> None:
        self.dice = _Dice(seed)
        self.districts: list[_District] = []
        weights: list[tuple[_District, int]] = []
        for region, count, share in _REGIONS:
            for number in range(1, count + 1):
                district = _District(
                    id=len(self.districts) + 1,
                    region=region,
                    number=number,
                    registry_section=10 + len(self.districts) + 1,
                )
                self.districts.append(district)
                weights.append((district, share * 12 // count))
        self.pick_district = _Weighted(weights)
        self.pick_land_use = _Weighted([(p, p.weight) for p in _LAND_USE_PROFILES])
        self.pick_split = _Weighted(_DANG_SPLITS)
        # Offsets of the postal-code bijections, so that each seed has its own codes.
        self.postal_zone_offset = self.dice.between(0, 8**5 - 1)
        self.postal_house_offsets = [self.dice.between(0, 99_999) for _ in self.districts]
        self.national_codes = {KNOWN_NATIONAL_CODE}
        self.next_id = dict.fromkeys(_PLANNING_TABLES + _REVENUE_TABLES, 1)

    def _id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    # Regions and districts are fixed; the parcels come after.

    def region_rows(self) -> list[dict[str, Any]]:
        return [{"id": n, "number": n, "name": f"منطقه {_fa(n)}"} for n, _, _ in _REGIONS]

    def district_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": d.id,
                "region_id": d.region,
                "number": d.number,
                "name": f"ناحیه {_fa(d.number)}",
            }
            for d in self.districts
        ]

    def add_parcel(self, rows: _Rows) -> None:
        dice = self.dice
        parcel_id = self._id("parcels")
        district = self.pick_district.pick(dice)
        block = self._block(district)
        block.parcels += 1
        district.parcels += 1
        use = self.pick_land_use.pick(dice)
        density = int(dice.uniform(6, 15) + dice.uniform(0, 9.99)) * 10  # 60–240, mostly 100–180
        area = dice.between(use.area[0] * 100, use.area[1] * 100)  # hundredths of a square metre
        plaque = block.next_house_number
        block.next_house_number += dice.between(1, 4)
        sub_plate = block.next_sub_plate
        block.next_sub_plate += dice.between(1, 3)
        renewal_code = str(
            RenewalCode(district.region, district.number, block.number, block.parcels)
        )
        plate = RegistryPlate(district.registry_section, block.main_plate, sub_plate)
        rows["parcels"].append(
            {
                "id": parcel_id,
                "district_id": district.id,
                "region_id": district.region,
                "renewal_code": renewal_code,
                "registry_section": plate.section,
                "main_plate": plate.main,
                "sub_plate": plate.sub,
                "postal_code": self._postal_code(district),
                "address": f"{block.street}، {block.alley}، پلاک {_fa(plaque)}",
                "land_use": use.name,
                "density_percent": density,
                "area": _area(area),
            }
        )
        self._owners(rows, parcel_id)
        units = 1
        if dice.chance(use.built) or parcel_id <= 2:
            units = self._building(rows, parcel_id, district, use, density, area)
        self._dues(rows, renewal_code, use, area, units)

    def _block(self, district: _District) -> _Block:
        block = district.block
        if block is None or block.remaining == 0:
            district.blocks += 1
            block = _Block(
                number=district.blocks,
                remaining=self.dice.between(6, 40),
                street=self.dice.pick(_STREETS),
                alley=f"{self.dice.pick(_ALLEYS)} {_fa(self.dice.between(1, 20))}",
                # Disjoint ranges per block keep (section, main, sub) unique.
                main_plate=100 + 17 * district.blocks + self.dice.between(0, 16),
                next_sub_plate=self.dice.between(1, 400),
                next_house_number=self.dice.between(1, 9),
            )
            district.block = block
        block.remaining -= 1
        return block

    def _postal_code(self, district: _District) -> str:
        # Two bijections: a zone (district and overflow) onto five digits drawn from 1,3–9, and
        # a house counter onto the last five; so codes are unique, and look like real ones.
        zone = (district.id - 1) * 16 + district.parcels // 100_000
        value = (zone * 3_251 + self.postal_zone_offset) % 8**5
        prefix = ""
        for _ in range(5):
            value, digit = divmod(value, 8)
            prefix += "13456789"[digit]
        offset = self.postal_house_offsets[district.id - 1]
        house = (district.parcels % 100_000 * 37_813 + offset) % 100_000
        return f"{prefix}{house:05d}"

    # Owners.

    def _owners(self, rows: _Rows, parcel_id: int) -> None:
        dice = self.dice
        if parcel_id == 1:
            owners = [(self._known_person(rows), _D(6))]
        elif parcel_id == 2:
            owners = [(1, _D(3)), (self._person(rows), _D(3))]
        else:
            owners = []
            for share in self.pick_split.pick(dice):
                person = 0
                # Three in ten shares go to someone who already owns a parcel nearby in time.
                if dice.chance(0.3):
                    newest = self.next_id["persons"] - 1
                    candidate = dice.between(max(1, newest - 3_000), newest)
                    if all(candidate != owner for owner, _ in owners):
                        person = candidate
                owners.append((person or self._person(rows), share))
        for person, share in owners:
            rows["ownerships"].append(
                {
                    "id": self._id("ownerships"),
                    "parcel_id": parcel_id,
                    "person_id": person,
                    "share": share,
                    "acquired_on": _day_in(dice, _FIRST_YEAR, _LAST_YEAR),
                }
            )

    def _known_person(self, rows: _Rows) -> int:
        person_id = self._id("persons")
        rows["persons"].append(
            {
                "id": person_id,
                "national_code": KNOWN_NATIONAL_CODE,
                "first_name": "علی",
                "last_name": "رضایی",
                "father_name": "حسن",
                "birth_date": jdatetime.date(1345, 6, 15).togregorian(),
            }
        )
        return person_id

    def _person(self, rows: _Rows) -> int:
        dice = self.dice
        female = dice.chance(0.42)
        first_name = dice.pick(_FEMALE_NAMES if female else _MALE_NAMES)
        last_name = dice.pick(_LAST_NAMES)
        father_name = dice.pick(_MALE_NAMES)
        # Owners were born well before the years they bought in.
        birth_date = _day_in(dice, 1315, 1380)
        code = ""
        while not code or code in self.national_codes:
            serial = dice.between(1, 999_999)
            code = make_national_code(f"{dice.pick(_NATIONAL_CODE_OFFICES)}{serial:06d}")
        self.national_codes.add(code)
        person_id = self._id("persons")
        rows["persons"].append(
            {
                "id": person_id,
                "national_code": code,
                "first_name": first_name,
                "last_name": last_name,
                "father_name": father_name,
                "birth_date": birth_date,
            }
        )
        return person_id

    # Building, permit, certificates, violations.

    def _building(
        self,
        rows: _Rows,
        parcel_id: int,
        district: _District,
        use: _LandUse,
        density: int,
        area: int,
    ) -> int:
        """Add a building (its permit, certificates and violation); return its units."""
        dice = self.dice
        building_id = self._id("buildings")
        year = dice.between(_FIRST_YEAR + 2, _LAST_YEAR)
        floors = max(1, min(12, round(density / 60 * dice.uniform(0.7, 1.3))))
        per_floor = dice.between(*use.units_per_floor)
        permitted = dice.chance(0.88)
        violation = dice.chance(0.135)
        if not permitted:
            kind = "no_permit"
        else:
            kind = dice.pick(_VIOLATIONS_WITH_PERMIT[use.name == "residential"])
        # Building beyond the permitted density adds a floor the permit does not show.
        built_floors = floors + 1 if violation and kind == "excess_density" else floors
        rows["buildings"].append(
            {
                "id": building_id,
                "parcel_id": parcel_id,
                "floors": built_floors,
                "units": built_floors * per_floor,
                "built_area": _area(round(area * 0.6 * built_floors * dice.uniform(0.9, 1.05))),
                "construction_year": year,
            }
        )
        if permitted:
            issued_year = max(_FIRST_YEAR, year - dice.between(1, 2))
            issued_on = _day_in(dice, issued_year)
            permit_id = self._id("permits")
            rows["permits"].append(
                {
                    "id": permit_id,
                    "parcel_id": parcel_id,
                    "number": f"{issued_year}/{district.region}/{permit_id:06d}",
                    "kind": dice.pick(_PERMIT_KINDS),
                    "issued_on": issued_on,
                    "expires_on": issued_on + dt.timedelta(days=dice.pick((730, 1095))),
                    "floors": floors,
                    "units": floors * per_floor,
                }
            )
            if dice.chance(0.91):
                self._certificate(rows, parcel_id, building_id, "completion", year)
        if violation:
            self._violation(rows, parcel_id, kind, year)
        elif dice.chance(0.2):
            self._certificate(rows, parcel_id, building_id, "no_violation", year)
        return built_floors * per_floor

    def _certificate(
        self, rows: _Rows, parcel_id: int, building_id: int, kind: str, year: int
    ) -> None:
        certificate_id = self._id("certificates")
        issued_year = min(_LAST_YEAR, year + self.dice.between(0, 1))
        prefix = "PK" if kind == "completion" else "AK"
        rows["certificates"].append(
            {
                "id": certificate_id,
                "parcel_id": parcel_id,
                "building_id": building_id,
                "kind": kind,
                "number": f"{prefix}-{issued_year}-{certificate_id:07d}",
                "issued_on": _day_in(self.dice, issued_year),
            }
        )

    def _violation(self, rows: _Rows, parcel_id: int, kind: str, year: int) -> None:
        dice = self.dice
        size = dice.between(1, 4) if kind == "parking_removed" else dice.between(8, 120)
        ruling: str | None = None
        ruled_on: dt.date | None = None
        fine: int | None = None
        if dice.chance(0.5):
            status = "open"
            detected_on = _day_in(dice, max(year, _LAST_YEAR - 3), _LAST_YEAR)
        else:
            status = "resolved"
            detected_on = _day_in(dice, min(year, _LAST_YEAR - 1), _LAST_YEAR - 1)
            ruled_on = detected_on + dt.timedelta(days=dice.between(30, 330))
            ruling = dice.pick(("fine",) * 13 + ("demolition",) * 2 + ("settled",) * 5)
            if ruling == "fine":
                # Article 100 fines run per square metre (or per parking space) of the violation.
                per_unit = 40_000_000 if kind == "parking_removed" else 2_000_000
                fine = _rials(size * per_unit * dice.uniform(0.5, 2.5))
        rows["violations"].append(
            {
                "id": self._id("violations"),
                "parcel_id": parcel_id,
                "kind": kind,
                "detected_on": detected_on,
                "description": _VIOLATION_TEXT[kind].format(n=_fa(size)),
                "status": status,
                "ruling": ruling,
                "ruled_on": ruled_on,
                "fine": fine,
            }
        )

    # Revenue: assessments per year, and what was paid of them.

    def _dues(self, rows: _Rows, renewal_code: str, use: _LandUse, area: int, units: int) -> None:
        dice = self.dice
        renewal_rate = dice.between(*use.renewal_rate)
        waste_rate = dice.between(*use.waste_per_unit)
        # One parcel in five has something outstanding, mostly this year's renewal duty.
        behind = dice.chance(0.2)
        behind_since = dice.pick((1403, 1403, 1403, 1402, 1401))
        for period in _PERIODS:
            growth = 1.25 ** (period - _PERIODS[0])
            charges = [
                ("renewal_duty", _rials(area / 100 * renewal_rate * growth)),
                ("waste_fee", _rials(units * waste_rate * growth)),
            ]
            if dice.chance(0.12):
                charges.append(("other", _rials(dice.uniform(2_000_000, 40_000_000))))
            for kind, amount in charges:
                assessment_id = self._id("assessments")
                rows["assessments"].append(
                    {
                        "id": assessment_id,
                        "renewal_code": renewal_code,
                        "kind": kind,
                        "period": period,
                        "amount": amount,
                        "due_date": _last_day(period),
                    }
                )
                if not behind or period < behind_since:
                    paid = amount
                elif kind == "renewal_duty" or dice.chance(0.7):
                    part = min(amount - 1_000, _rials(amount * dice.uniform(0.3, 0.7)))
                    paid = 0 if dice.chance(0.6) else part
                else:
                    paid = amount
                self._payments(rows, assessment_id, period, paid)

    def _payments(self, rows: _Rows, assessment_id: int, period: int, paid: int) -> None:
        if paid == 0:
            return
        dice = self.dice
        # Most pay in one go; some in two instalments.
        parts = [paid]
        if dice.chance(0.1) and paid >= 2_000:
            first = min(paid - 1_000, _rials(paid * dice.uniform(0.4, 0.6)))
            parts = [first, paid - first]
        day = _day_in(dice, period)
        if dice.chance(0.08):
            day = _last_day(period) + dt.timedelta(days=dice.between(1, 200))
        for amount in parts:
            payment_id = self._id("payments")
            seconds = dice.between(8 * 3600, 21 * 3600)
            paid_at = dt.datetime.combine(
                day, dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)
            )
            # A bank's trace number: the bank's code, random digits and the payment id, 12 to
            # 16 digits in all. A random head's first three digits pick the bank and the rest
            # follow its code: naming the bank draws no extra throw, so the rest of the city
            # stays as it was.
            head_digits = dice.between(4, 8)
            head = dice.between(10 ** (head_digits - 1), 10**head_digits - 1)
            bank_pick, rest = divmod(head, 10 ** (head_digits - 3))
            bank = PAYMENT_BANK_CODES[bank_pick % len(PAYMENT_BANK_CODES)]
            rows["payments"].append(
                {
                    "id": payment_id,
                    "assessment_id": assessment_id,
                    "amount": amount,
                    "paid_at": paid_at,
                    "bank_reference": f"{bank}{rest:0{head_digits - 3}d}{payment_id:08d}",
                }
            )
            day += dt.timedelta(days=dice.between(20, 120))


# --- Writing ---------------------------------------------------------------------------------


async def _insert(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _ROWS_PER_EXECUTE):
        await connection.execute(insert(table), rows[start : start + _ROWS_PER_EXECUTE])


_Write = Callable[[_Rows], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def _loading(
    engine: AsyncEngine, tables: Mapping[str, Table], names: Sequence[str]
) -> AsyncIterator[_Write]:
    """A writer of chunks of rows into the tables `names` of one database.

    SQLite and MariaDB: multi-row INSERTs, a transaction per chunk.

    PostgreSQL: the whole city in one transaction, through COPY (asyncpg's binary
    copy_records_to_table), with the tables' indexes, unique and foreign-key constraints
    dropped for the load and built again from the models at the end (a sort each, instead of
    an index entry and a foreign-key check per row): a million parcels take minutes, not an
    hour. An interrupted load rolls back whole, constraints included.
    """
    if engine.dialect.name != "postgresql":

        async def insert_chunk(rows: _Rows) -> None:
            async with engine.begin() as connection:
                for name in names:
                    if rows.get(name):
                        await _insert(connection, tables[name], rows[name])

        yield insert_chunk
        return
    seeded = [tables[name] for name in names]
    foreign_keys = [c for t in seeded for c in t.constraints if isinstance(c, ForeignKeyConstraint)]
    uniques = [c for t in seeded for c in t.constraints if isinstance(c, UniqueConstraint)]
    indexes = [index for t in seeded for index in t.indexes]
    columns = {name: [column.name for column in tables[name].columns] for name in names}

    def ddl(element: ExecutableDDLElement) -> str:
        return str(element.compile(dialect=engine.dialect))

    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            # The index builds at the end sort in memory rather than in temporary files.
            await driver.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for constraint in (*foreign_keys, *uniques):
                await driver.execute(ddl(DropConstraint(constraint)))
            for index in indexes:
                await driver.execute(ddl(DropIndex(index)))

            async def copy_chunk(rows: _Rows) -> None:
                for name in names:
                    if rows.get(name):
                        values = operator.itemgetter(*columns[name])
                        await driver.copy_records_to_table(
                            name, records=[values(row) for row in rows[name]], columns=columns[name]
                        )

            yield copy_chunk
            for index in indexes:
                await driver.execute(ddl(CreateIndex(index)))
            for constraint in (*uniques, *foreign_keys):
                await driver.execute(ddl(AddConstraint(constraint)))


async def _reset_sequences(engine: AsyncEngine, tables: Sequence[Table]) -> None:
    """Explicit ids leave PostgreSQL's serial sequences behind; move them past the rows."""
    if engine.dialect.name != "postgresql":
        return  # SQLite and MariaDB continue after the largest id by themselves.
    quote = engine.dialect.identifier_preparer.quote
    async with engine.begin() as connection:
        for table in tables:
            await connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence(:name, 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {quote(table.name)}), 0) + 1, false)"
                ),
                {"name": table.name},
            )


async def analyze(engine: AsyncEngine, tables: Sequence[Table]) -> None:
    """Statistics for the planner after a bulk load, which leaves none until autovacuum
    comes by: PostgreSQL misjudged the filters' plans without them (and JIT-compiled the dues
    statement on every execution). There VACUUM too, so that the visibility map lets index-only
    scans skip the table; SQLite's ANALYZE and `PRAGMA optimize`; MariaDB's ANALYZE TABLE."""
    names = ", ".join(engine.dialect.identifier_preparer.quote(table.name) for table in tables)
    dialect = engine.dialect.name
    async with engine.connect() as connection:
        if dialect == "postgresql":
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(f"VACUUM (ANALYZE) {names}")
        elif dialect == "sqlite":
            await connection.exec_driver_sql("ANALYZE")
            await connection.exec_driver_sql("PRAGMA optimize")
            await connection.commit()
        else:
            (await connection.exec_driver_sql(f"ANALYZE TABLE {names}")).all()  # one row each
            await connection.commit()


async def _holds_data(engine: AsyncEngine, tables: Sequence[Table]) -> bool:
    async with engine.connect() as connection:
        for table in tables:
            if await connection.scalar(select(exists().select_from(table))):
                return True
    return False


async def is_seeded(databases: Databases) -> bool:
    """Whether the planning database holds any parcel."""
    async with databases.planning.connect() as connection:
        found = await connection.scalar(select(exists().select_from(db.planning.Parcel)))
    return bool(found)


async def clear(databases: Databases) -> None:
    """Delete every row of the planning and revenue databases, children before parents."""
    for engine, metadata in (
        (databases.planning, PlanningBase.metadata),
        (databases.revenue, RevenueBase.metadata),
    ):
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(delete(table))


async def seed_demo(
    databases: Databases,
    *,
    parcels: int,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Fill empty planning and revenue databases with a demo city of `parcels` parcels, then
    gather the planner's statistics (`analyze`).

    On SQLite and MariaDB every chunk of parcels commits on its own, so an interrupted run
    leaves a partial city: `clear()` it before seeding again. On PostgreSQL each database
    loads in one transaction (see `_loading`).
    """
    if not 2 <= parcels <= MAX_PARCELS:
        raise ValueError(f"parcels must be between 2 and {MAX_PARCELS:,}")
    planning_tables = PlanningBase.metadata.tables
    revenue_tables = RevenueBase.metadata.tables
    if await _holds_data(databases.planning, PlanningBase.metadata.sorted_tables) or (
        await _holds_data(databases.revenue, RevenueBase.metadata.sorted_tables)
    ):
        raise RuntimeError(
            "the planning or revenue database already holds data; "
            "seed only empty databases (db.demo.clear() empties them)"
        )
    city = _City(seed)
    regions = city.region_rows()
    districts = city.district_rows()
    counts = dict.fromkeys(_PLANNING_TABLES + _REVENUE_TABLES, 0)

    def generate(count: int) -> _Rows:
        rows: _Rows = {name: [] for name in counts}
        for _ in range(count):
            city.add_parcel(rows)
        return rows

    # One thread draws the chunks, one after another (the city is one sequence of draws), while
    # the previous chunk is being written: drawing and the servers' work overlap.
    async with (
        _loading(
            databases.planning, planning_tables, _CITY_TABLES + _PLANNING_TABLES
        ) as write_planning,
        _loading(databases.revenue, revenue_tables, _REVENUE_TABLES) as write_revenue,
    ):
        await write_planning({"regions": regions, "districts": districts})
        done = 0
        size = min(_PARCELS_PER_CHUNK, parcels)
        rows: _Rows | None = await asyncio.to_thread(generate, size)
        while rows is not None:
            following = min(_PARCELS_PER_CHUNK, parcels - done - size)
            drawing = None
            async with asyncio.TaskGroup() as group:
                group.create_task(write_planning(rows))
                group.create_task(write_revenue(rows))
                if following:
                    drawing = group.create_task(asyncio.to_thread(generate, following))
            for name, table_rows in rows.items():
                counts[name] += len(table_rows)
            done += size
            if progress is not None:
                progress(done)
            rows = drawing.result() if drawing is not None else None
            size = following
    await _reset_sequences(databases.planning, PlanningBase.metadata.sorted_tables)
    await _reset_sequences(databases.revenue, RevenueBase.metadata.sorted_tables)
    await analyze(databases.planning, PlanningBase.metadata.sorted_tables)
    await analyze(databases.revenue, RevenueBase.metadata.sorted_tables)
    return SeedSummary(regions=len(regions), districts=len(districts), **counts)
