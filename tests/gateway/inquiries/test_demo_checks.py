"""The planning and revenue rules over the seeded demo city, read through the project's own
loaders and domain functions: parcel 1 (KNOWN_NATIONAL_CODE's, db/demo.py) is clean; parcel 20
(renewal code 2-3-1-4) owes its 1403 renewal duty, and nothing else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from db.demo import KNOWN_NATIONAL_CODE
from db.engines import Databases
from gateway.inquiries import checks
from gateway.inquiries.checks import AutomaticCheck, ChecksConfig
from gateway.inquiries.facts import Fact, Facts, Outcome
from gateway.loaders.batching import RecordByKey, RecordsByKey
from gateway.loaders.planning import (
    BUILDINGS_BY_PARCEL,
    CERTIFICATES_BY_PARCEL,
    PARCEL_BY_RENEWAL_CODE,
    VIOLATIONS_BY_PARCEL,
)
from gateway.loaders.revenue import DuesByRenewalCode
from gateway.parcels import (
    Building,
    Certificate,
    Parcel,
    ParcelFilter,
    Violation,
    find_parcels,
)
from tests.conftest import make_backend

READ_AT = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
CONFIG = ChecksConfig()
RULES: tuple[AutomaticCheck, ...] = (
    checks.DUES_SETTLED,
    checks.CERTIFICATE_ISSUED,
    checks.COMPLETION_CERTIFICATE,
    checks.NO_OPEN_VIOLATION,
    checks.COLLATERAL_ALLOWED,
)


def now() -> dt.datetime:
    return READ_AT


async def read_facts(databases: Databases, renewal_code: str) -> Facts:
    """What the workflow will read for the planning and revenue checks, the way it will."""
    parcels: RecordByKey[Parcel] = RecordByKey(databases.planning, PARCEL_BY_RENEWAL_CODE)
    parcel = await parcels.load(renewal_code)
    assert parcel is not None
    read_at = {Fact.PARCEL: now()}
    certificates_by_parcel: RecordsByKey[Certificate] = RecordsByKey(
        databases.planning, CERTIFICATES_BY_PARCEL
    )
    violations_by_parcel: RecordsByKey[Violation] = RecordsByKey(
        databases.planning, VIOLATIONS_BY_PARCEL
    )
    buildings_by_parcel: RecordsByKey[Building] = RecordsByKey(
        databases.planning, BUILDINGS_BY_PARCEL
    )
    certificates = await certificates_by_parcel.load(parcel.id)
    violations = await violations_by_parcel.load(parcel.id)
    buildings = await buildings_by_parcel.load(parcel.id)
    read_at |= {Fact.CERTIFICATES: now(), Fact.VIOLATIONS: now(), Fact.BUILDINGS: now()}
    read_at[Fact.OPEN_COMPLAINTS] = now()  # the demo city's parcels draw no complaint here
    dues = await DuesByRenewalCode(databases.revenue).load(renewal_code)
    read_at[Fact.DUES] = now()
    return Facts(
        parcel=parcel,
        applicant_national_code=KNOWN_NATIONAL_CODE,
        read_at=read_at,
        dues=dues,
        certificates=tuple(certificates),
        violations=tuple(violations),
        buildings=tuple(buildings),
    )


async def test_demo_city_clean_parcel_passes_and_unpaid_one_fails_naming_the_due(
    tmp_path: Path,
) -> None:
    backend, _ = await make_backend("sqlite", tmp_path, parcels=40)
    databases = Databases({name: backend.urls[name] for name in ("planning", "revenue")})
    try:
        owing = await find_parcels(databases, ParcelFilter(has_outstanding_dues=True), first=40)
        owing_codes = {parcel.renewal_code for parcel in owing.parcels}
        assert "2-3-1-4" in owing_codes
        assert "3-3-1-1" not in owing_codes

        clean = await read_facts(databases, "3-3-1-1")
        assert clean.parcel.id == 1
        outcomes = {check.name: check.evaluate(clean, CONFIG) for check in RULES}
        assert {name: o.outcome for name, o in outcomes.items()} == {
            "dues_settled": Outcome.PASS,
            "certificate_issued": Outcome.PASS,
            "completion_certificate": Outcome.PASS,
            "no_open_violation": Outcome.PASS,
            # Parcel 1 is a school: a bank may not take it as collateral.
            "collateral_allowed": Outcome.FAIL,
        }
        assert [r.en for r in outcomes["certificate_issued"].reasons] == [
            "Completion certificate PK-1376-0000001 issued on 1376/10/02 (1997-12-23)"
        ]
        assert [r.en for r in outcomes["collateral_allowed"].reasons] == [
            "The parcel's land use (educational) is not accepted as bank collateral"
        ]
        assert all(o.read_at == READ_AT for o in outcomes.values())
        # Its completion certificate is from 1997: planning must look at the building.
        assert checks.BUILDING_MATCHES_PERMIT.screened(clean, CONFIG) is None

        owing_facts = await read_facts(databases, "2-3-1-4")
        assert owing_facts.parcel.id == 20
        unpaid = checks.DUES_SETTLED.evaluate(owing_facts, CONFIG)
        assert unpaid.outcome is Outcome.FAIL
        assert [(r.fa, r.en) for r in unpaid.reasons] == [
            (
                "عوارض نوسازی سال ۱۴۰۳ به مبلغ ۱۰۳٬۸۱۹٬۰۰۰ ریال پرداخت نشده است",
                "Renewal duty for 1403 unpaid: 103,819,000 rials",
            )
        ]
        assert unpaid.details["outstanding"] == 103_819_000
        assert unpaid.details["periods"] == [1401, 1402, 1403]
        others = {check.name: check.evaluate(owing_facts, CONFIG).outcome for check in RULES[1:]}
        assert others == {
            "certificate_issued": Outcome.PASS,
            "completion_certificate": Outcome.PASS,
            "no_open_violation": Outcome.PASS,
            "collateral_allowed": Outcome.PASS,
        }
    finally:
        await databases.dispose()
