from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import jdatetime
import pytest
import pytest_asyncio
from sqlalchemy import Table, func, select

import db.migrate
from db import demo
from db.base import PlanningBase, RevenueBase
from db.engines import Databases
from identifiers import parse_national_code, parse_registry_plate, parse_renewal_code

PARCELS = 300
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

_tables = {**PlanningBase.metadata.tables, **RevenueBase.metadata.tables}


async def _empty_databases(directory: Path) -> Databases:
    databases = Databases(
        {name: f"sqlite+aiosqlite:///{directory / name}.db" for name in ("planning", "revenue")}
    )
    await db.migrate.upgrade(databases)
    return databases


async def _rows(databases: Databases, name: str) -> list[tuple[Any, ...]]:
    table: Table = _tables[name]
    engine = databases.revenue if name in RevenueBase.metadata.tables else databases.planning
    async with engine.connect() as connection:
        result = await connection.execute(select(table).order_by(table.c.id))
        return [tuple(row) for row in result]


async def _count(databases: Databases, name: str) -> int:
    table: Table = _tables[name]
    engine = databases.revenue if name in RevenueBase.metadata.tables else databases.planning
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


@pytest_asyncio.fixture(scope="module")
async def city(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Databases, demo.SeedSummary]]:
    databases = await _empty_databases(tmp_path_factory.mktemp("city"))
    summary = await demo.seed_demo(databases, parcels=PARCELS)
    yield databases, summary
    await databases.dispose()


@pytest.fixture
def databases(city: tuple[Databases, demo.SeedSummary]) -> Databases:
    return city[0]


async def test_summary_counts_the_rows_written(city: tuple[Databases, demo.SeedSummary]) -> None:
    databases, summary = city
    for name, count in asdict(summary).items():
        assert await _count(databases, name) == count, name
    assert summary.parcels == PARCELS
    assert (summary.regions, summary.districts) == (5, 15)


async def test_same_seed_writes_identical_rows(databases: Databases, tmp_path: Path) -> None:
    again = await _empty_databases(tmp_path)
    try:
        await demo.seed_demo(again, parcels=PARCELS)
        for name in ("persons", "parcels", "ownerships", "violations", "payments"):
            assert await _rows(again, name) == await _rows(databases, name), name
    finally:
        await again.dispose()


async def test_smaller_city_is_a_prefix_of_a_larger_one(
    databases: Databases, tmp_path: Path
) -> None:
    small = await _empty_databases(tmp_path)
    try:
        await demo.seed_demo(small, parcels=120)
        for name in ("parcels", "persons", "buildings", "assessments", "payments"):
            rows = await _rows(small, name)
            assert rows == (await _rows(databases, name))[: len(rows)], name
    finally:
        await small.dispose()


async def test_another_seed_writes_another_city(databases: Databases, tmp_path: Path) -> None:
    other = await _empty_databases(tmp_path)
    try:
        await demo.seed_demo(other, parcels=20, seed=7)
        assert await _rows(other, "parcels") != (await _rows(databases, "parcels"))[:20]
        # Still holds its promise about the known person.
        known = await _rows(other, "persons")
        assert known[0][1] == demo.KNOWN_NATIONAL_CODE
    finally:
        await other.dispose()


async def test_shares_of_every_parcel_sum_to_six_dang(databases: Databases) -> None:
    shares: dict[int, list[Decimal]] = defaultdict(list)
    for _, parcel_id, _person_id, share, _ in await _rows(databases, "ownerships"):
        shares[parcel_id].append(share)
    assert len(shares) == PARCELS
    assert all(sum(parts) == 6 and 1 <= len(parts) <= 3 for parts in shares.values())
    owners_per_parcel = [len(parts) for parts in shares.values()]
    assert 0.25 < owners_per_parcel.count(1) / PARCELS < 0.8


async def test_persons_are_valid_unique_and_often_own_several_parcels(
    databases: Databases,
) -> None:
    persons = await _rows(databases, "persons")
    codes = [person[1] for person in persons]
    assert all(parse_national_code(code) == code for code in codes)
    assert len(set(codes)) == len(codes)
    assert 0.95 < len(persons) / PARCELS < 1.3
    parcels_per_person: dict[int, set[int]] = defaultdict(set)
    for _, parcel_id, person_id, _, _ in await _rows(databases, "ownerships"):
        parcels_per_person[person_id].add(parcel_id)
    several = sum(1 for owned in parcels_per_person.values() if len(owned) > 1)
    assert len(parcels_per_person) == len(persons)
    assert several / len(persons) > 0.1


async def test_known_person_owns_at_least_two_parcels(databases: Databases) -> None:
    typed = demo.KNOWN_NATIONAL_CODE.translate(PERSIAN)
    code = parse_national_code(typed)
    persons = {person[1]: person[0] for person in await _rows(databases, "persons")}
    owned = {row[1] for row in await _rows(databases, "ownerships") if row[2] == persons[code]}
    assert len(owned) >= 2


async def test_parcel_identifiers_are_unique_and_well_formed(databases: Databases) -> None:
    parcels = await _rows(databases, "parcels")
    regions = {row[0]: row[1] for row in await _rows(databases, "regions")}
    districts = {row[0]: row[2] for row in await _rows(databases, "districts")}
    postal_codes = [row[7] for row in parcels]
    renewal_codes = [row[3] for row in parcels]
    plates = [(row[4], row[5], row[6]) for row in parcels]
    for codes in (postal_codes, renewal_codes, plates):
        assert len(set(codes)) == len(codes)
    for postal in postal_codes:
        assert len(postal) == 10
        assert postal.isdigit()
        assert not set(postal[:5]) & {"0", "2"}
    for _, district_id, region_id, renewal, section, main, sub, *_ in parcels:
        code = parse_renewal_code(renewal)
        assert str(code) == renewal
        assert (code.region, code.district) == (regions[region_id], districts[district_id])
        assert parse_registry_plate(f"{section}-{main}/{sub}").sub == sub


async def test_parcels_have_plausible_land_use_density_and_area(databases: Databases) -> None:
    parcels = await _rows(databases, "parcels")
    uses = [row[9] for row in parcels]
    assert 0.55 < uses.count("residential") / PARCELS < 0.8
    assert all(60 <= row[10] <= 240 for row in parcels)
    assert all(row[11] > 0 and row[11] == row[11].quantize(Decimal("0.01")) for row in parcels)
    assert all("پلاک" in row[8] for row in parcels)


async def test_buildings_certificates_and_violations_have_realistic_shares(
    databases: Databases,
) -> None:
    buildings = await _rows(databases, "buildings")
    built = {row[1] for row in buildings}
    permitted = {row[1] for row in await _rows(databases, "permits")}
    certificates = await _rows(databases, "certificates")
    completed = {row[1] for row in certificates if row[3] == "completion"}
    violations = await _rows(databases, "violations")
    open_ = {row[1] for row in violations if row[5] == "open"}
    assert 0.82 < len(built) / PARCELS < 0.97
    assert 0.75 < len(permitted) / len(built) < 0.97
    assert 0.1 < len(built - completed) / len(built) < 0.32
    assert any(row[3] == "no_violation" for row in certificates)
    assert 0.06 < len({row[1] for row in violations}) / PARCELS < 0.2
    assert 0.02 < len(open_) / PARCELS < 0.12
    for _, _, _, _, _, status, ruling, ruled_on, fine in violations:
        if status == "open":
            assert (ruling, ruled_on, fine) == (None, None, None)
        else:
            assert ruling in ("fine", "demolition", "settled")
            assert ruled_on is not None
            assert (fine is not None and fine > 0) == (ruling == "fine")


async def test_dues_are_integer_rials_and_about_a_fifth_of_parcels_owe(
    databases: Databases,
) -> None:
    assessments = await _rows(databases, "assessments")
    paid: dict[int, int] = defaultdict(int)
    payments = await _rows(databases, "payments")
    for _, assessment_id, amount, _, _ in payments:
        assert isinstance(amount, int)
        assert amount > 0
        paid[assessment_id] += amount
    owing: set[str] = set()
    for assessment_id, renewal_code, _kind, _period, amount, _ in assessments:
        assert isinstance(amount, int)
        assert amount % 1_000 == 0
        assert 500_000 < amount < 1_000_000_000
        assert paid[assessment_id] <= amount
        if paid[assessment_id] < amount:
            owing.add(renewal_code)
    kinds = {(row[1], row[3], row[2]) for row in assessments}
    assert {kind for *_, kind in kinds} == {"renewal_duty", "waste_fee", "other"}
    assert len(kinds) >= PARCELS * 6
    assert 0.12 < len(owing) / PARCELS < 0.3
    references = [row[4] for row in payments]
    assert len(set(references)) == len(references)
    assert all(ref.isdigit() and 12 <= len(ref) <= 16 for ref in references)


async def test_dates_fall_in_solar_hijri_1370_to_1404(databases: Databases) -> None:
    dates: list[dt.date] = [row[4] for row in await _rows(databases, "ownerships")]
    dates += [row[3] for row in await _rows(databases, "permits")]
    dates += [row[5] for row in await _rows(databases, "certificates")]
    dates += [row[3] for row in await _rows(databases, "violations")]
    dates += [row[3].date() for row in await _rows(databases, "payments")]
    years = {jdatetime.date.fromgregorian(date=date).year for date in dates}
    assert min(years) >= 1370
    assert max(years) <= 1404


async def test_refuses_to_seed_databases_that_hold_data(databases: Databases) -> None:
    assert await demo.is_seeded(databases)
    with pytest.raises(RuntimeError, match="already holds data"):
        await demo.seed_demo(databases, parcels=10)


async def test_rejects_a_city_too_small_for_the_known_person(tmp_path: Path) -> None:
    databases = await _empty_databases(tmp_path)
    try:
        with pytest.raises(ValueError, match="parcels"):
            await demo.seed_demo(databases, parcels=1)
    finally:
        await databases.dispose()


async def test_clear_empties_both_databases_and_progress_counts_parcels(tmp_path: Path) -> None:
    databases = await _empty_databases(tmp_path)
    try:
        reported: list[int] = []
        await demo.seed_demo(databases, parcels=2_100, progress=reported.append)
        assert reported == [1_000, 2_000, 2_100]
        await demo.clear(databases)
        assert not await demo.is_seeded(databases)
        for name in _tables:
            assert await _count(databases, name) == 0, name
        summary = await demo.seed_demo(databases, parcels=5)
        assert summary.parcels == 5
    finally:
        await databases.dispose()
