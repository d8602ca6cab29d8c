from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import jdatetime
import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Row, Table, func, select, text

import db.migrate
from db import demo, registry
from db.base import PlanningBase, RevenueBase
from db.engines import Databases
from db.planning import RULINGS
from identifiers import (
    parse_national_code,
    parse_postal_code,
    parse_registry_plate,
    parse_renewal_code,
)
from tests.conftest import DEMO_PARCELS, SERVER_URLS, Backend, ServerDatabases

PARCELS = 300
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

_tables = {**PlanningBase.metadata.tables, **RevenueBase.metadata.tables}


async def _empty_databases(directory: Path) -> Databases:
    databases = Databases(
        {name: f"sqlite+aiosqlite:///{directory / name}.db" for name in ("planning", "revenue")}
    )
    await db.migrate.upgrade(databases)
    return databases


def _engine_of(databases: Databases, name: str) -> Any:
    return databases.revenue if name in RevenueBase.metadata.tables else databases.planning


async def _rows(databases: Databases, name: str) -> list[Row[Any]]:
    table: Table = _tables[name]
    async with _engine_of(databases, name).connect() as connection:
        return list(await connection.execute(select(table).order_by(table.c.id)))


async def _count(databases: Databases, name: str) -> int:
    table: Table = _tables[name]
    async with _engine_of(databases, name).connect() as connection:
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
        # The known person is there whatever the seed.
        persons = await _rows(other, "persons")
        assert persons[0].national_code == demo.KNOWN_NATIONAL_CODE
    finally:
        await other.dispose()


async def test_shares_of_every_parcel_sum_to_six_dang(databases: Databases) -> None:
    shares: dict[int, list[Decimal]] = defaultdict(list)
    for ownership in await _rows(databases, "ownerships"):
        shares[ownership.parcel_id].append(ownership.share)
    assert len(shares) == PARCELS
    assert all(sum(parts) == 6 for parts in shares.values())
    owners = [len(parts) for parts in shares.values()]
    assert set(owners) == {1, 2, 3}
    assert 0.35 < owners.count(1) / PARCELS < 0.8


async def test_persons_are_valid_unique_and_often_own_several_parcels(
    databases: Databases,
) -> None:
    persons = await _rows(databases, "persons")
    codes = [person.national_code for person in persons]
    assert all(parse_national_code(code) == code for code in codes)
    assert len(set(codes)) == len(codes)
    assert 0.95 < len(persons) / PARCELS < 1.3
    parcels_of: dict[int, set[int]] = defaultdict(set)
    for ownership in await _rows(databases, "ownerships"):
        parcels_of[ownership.person_id].add(ownership.parcel_id)
    assert len(parcels_of) == len(persons)
    several = sum(1 for owned in parcels_of.values() if len(owned) > 1)
    assert several / len(persons) > 0.1


async def test_known_person_owns_at_least_two_parcels(databases: Databases) -> None:
    code = parse_national_code(demo.KNOWN_NATIONAL_CODE.translate(PERSIAN))
    person_id = {person.national_code: person.id for person in await _rows(databases, "persons")}
    owned = {
        ownership.parcel_id
        for ownership in await _rows(databases, "ownerships")
        if ownership.person_id == person_id[code]
    }
    assert len(owned) >= 2


async def test_parcel_identifiers_are_unique_and_well_formed(databases: Databases) -> None:
    parcels = await _rows(databases, "parcels")
    regions = {region.id: region.number for region in await _rows(databases, "regions")}
    districts = {district.id: district.number for district in await _rows(databases, "districts")}
    postal_codes = [parcel.postal_code for parcel in parcels]
    renewal_codes = [parcel.renewal_code for parcel in parcels]
    plates = [(parcel.registry_section, parcel.main_plate, parcel.sub_plate) for parcel in parcels]
    for codes in (postal_codes, renewal_codes, plates):
        assert len(set(codes)) == len(codes)
    for postal in postal_codes:
        assert parse_postal_code(postal) == postal
        assert not set(postal[:5]) & {"0", "2"}
    for parcel in parcels:
        code = parse_renewal_code(parcel.renewal_code)
        assert str(code) == parcel.renewal_code
        assert code.region == regions[parcel.region_id]
        assert code.district == districts[parcel.district_id]
        section, main, sub = parcel.registry_section, parcel.main_plate, parcel.sub_plate
        assert parse_registry_plate(f"{section}-{main}/{sub}").sub == sub


async def test_parcels_have_plausible_land_use_density_and_area(databases: Databases) -> None:
    parcels = await _rows(databases, "parcels")
    uses = [parcel.land_use for parcel in parcels]
    assert 0.55 < uses.count("residential") / PARCELS < 0.8
    assert all(60 <= parcel.density_percent <= 240 for parcel in parcels)
    assert all(parcel.area > 0 for parcel in parcels)
    assert all(parcel.area == parcel.area.quantize(Decimal("0.01")) for parcel in parcels)
    assert all("، پلاک " in parcel.address for parcel in parcels)


async def test_buildings_certificates_and_violations_have_realistic_shares(
    databases: Databases,
) -> None:
    built = {building.parcel_id for building in await _rows(databases, "buildings")}
    permitted = {permit.parcel_id for permit in await _rows(databases, "permits")}
    certificates = await _rows(databases, "certificates")
    completed = {c.parcel_id for c in certificates if c.kind == "completion"}
    violations = await _rows(databases, "violations")
    open_ = {violation.parcel_id for violation in violations if violation.status == "open"}
    assert 0.82 < len(built) / PARCELS < 0.97
    assert 0.75 < len(permitted) / len(built) < 0.97
    assert 0.1 < len(built - completed) / len(built) < 0.32
    assert any(c.kind == "no_violation" for c in certificates)
    assert 0.06 < len({violation.parcel_id for violation in violations}) / PARCELS < 0.2
    assert 0.02 < len(open_) / PARCELS < 0.12
    for violation in violations:
        if violation.status == "open":
            assert (violation.ruling, violation.ruled_on, violation.fine) == (None, None, None)
        else:
            assert violation.ruling in RULINGS
            assert violation.ruled_on > violation.detected_on
            assert (violation.fine is not None) == (violation.ruling == "fine")


async def test_dues_are_integer_rials_and_about_a_fifth_of_parcels_owe(
    databases: Databases,
) -> None:
    assessments = await _rows(databases, "assessments")
    payments = await _rows(databases, "payments")
    paid: dict[int, int] = defaultdict(int)
    for payment in payments:
        assert type(payment.amount) is int
        assert payment.amount > 0
        paid[payment.assessment_id] += payment.amount
    owing: set[str] = set()
    for assessment in assessments:
        assert type(assessment.amount) is int
        assert assessment.amount % 1_000 == 0
        assert 500_000 < assessment.amount < 1_000_000_000
        assert paid[assessment.id] <= assessment.amount
        if paid[assessment.id] < assessment.amount:
            owing.add(assessment.renewal_code)
    charges = {(a.renewal_code, a.period, a.kind) for a in assessments}
    assert len(charges) == len(assessments)
    for period in (1401, 1402, 1403):
        for kind in ("renewal_duty", "waste_fee"):
            assert sum(1 for c in charges if c[1:] == (period, kind)) == PARCELS
    assert 0.02 < sum(1 for c in charges if c[2] == "other") / len(charges) < 0.1
    assert 0.12 < len(owing) / PARCELS < 0.3
    references = [payment.bank_reference for payment in payments]
    assert len(set(references)) == len(references)
    assert all(ref.isdigit() and 12 <= len(ref) <= 16 for ref in references)
    # Each starts with the code of the bank it went through, and every bank has some.
    assert {ref[:3] for ref in references} == set(demo.PAYMENT_BANK_CODES)


async def test_dates_fall_in_solar_hijri_1370_to_1404(databases: Databases) -> None:
    dates: list[dt.date] = [row.acquired_on for row in await _rows(databases, "ownerships")]
    dates += [row.issued_on for row in await _rows(databases, "permits")]
    dates += [row.issued_on for row in await _rows(databases, "certificates")]
    dates += [row.detected_on for row in await _rows(databases, "violations")]
    dates += [row.due_date for row in await _rows(databases, "assessments")]
    dates += [row.paid_at.date() for row in await _rows(databases, "payments")]
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
        assert (await demo.seed_demo(databases, parcels=5)).parcels == 5
    finally:
        await databases.dispose()


# --- Every backend: the same city, its indexes and constraints, the planner's statistics ------


def _schema_diff(connection: Any, name: str) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, registry.DATABASES[name].metadata))


async def _statistics(databases: Databases, backend: str) -> dict[str, bool]:
    """Per database: has the planner statistics about the parcels or assessments table?"""
    found = {}
    for name, table in (("planning", "parcels"), ("revenue", "assessments")):
        engine = databases.engines[name]
        async with engine.connect() as connection:
            if backend == "postgres":
                statement = (
                    "SELECT last_analyze IS NOT NULL AND last_vacuum IS NOT NULL "
                    f"FROM pg_stat_user_tables WHERE relname = '{table}'"
                )
            elif backend == "sqlite":
                statement = f"SELECT count(*) > 0 FROM sqlite_stat1 WHERE tbl = '{table}'"
            else:
                statement = (
                    "SELECT count(*) > 0 FROM mysql.innodb_table_stats "
                    f"WHERE database_name = DATABASE() AND table_name = '{table}'"
                )
            found[name] = bool(await connection.scalar(text(statement)))
    return found


async def test_every_backend_holds_the_same_city_indexed_and_analysed(
    backend: Backend, databases: Databases
) -> None:
    """The backend fixtures seed DEMO_PARCELS through the registry: on PostgreSQL by COPY with
    the indexes and constraints built after the load, elsewhere by INSERTs. Same rows as
    SQLite's (a prefix of this module's larger city), the models' schema, statistics."""
    seeded = Databases({name: backend.urls[name] for name in ("planning", "revenue")})
    try:
        for name in ("persons", "parcels", "ownerships", "violations", "assessments", "payments"):
            rows = await _rows(seeded, name)
            assert len(rows) >= DEMO_PARCELS // 20, name
            assert rows == (await _rows(databases, name))[: len(rows)], name
        for name, engine in seeded.engines.items():
            async with engine.connect() as connection:
                assert await connection.run_sync(_schema_diff, name) == [], name
        assert await _statistics(seeded, backend.name) == {"planning": True, "revenue": True}
    finally:
        await seeded.dispose()


async def test_an_interrupted_postgres_load_leaves_empty_tables_and_every_constraint() -> None:
    admin = SERVER_URLS["postgres"]
    if not admin:
        pytest.skip("postgres: set GATEWAY_TEST_POSTGRES_URL to run against it")
    server = ServerDatabases(admin)
    try:
        urls = await server.create(f"gwtest_{uuid.uuid4().hex[:10]}")
        databases = Databases({name: urls[name] for name in ("planning", "revenue")})
        try:
            await db.migrate.upgrade(databases)

            def interrupt(done: int) -> None:
                if done >= 1_000:
                    raise RuntimeError("interrupted")  # after the first chunk was written

            with pytest.raises(RuntimeError, match="interrupted"):
                await demo.seed_demo(databases, parcels=1_500, progress=interrupt)
            for name in _tables:
                assert await _count(databases, name) == 0, name
            for name, engine in databases.engines.items():
                async with engine.connect() as connection:
                    assert await connection.run_sync(_schema_diff, name) == [], name
            # And the next seed goes through.
            assert (await demo.seed_demo(databases, parcels=1_500)).parcels == 1_500
            assert await _count(databases, "parcels") == 1_500
        finally:
            await databases.dispose()
    finally:
        await server.drop_all()
