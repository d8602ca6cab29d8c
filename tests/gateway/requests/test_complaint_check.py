"""An inquiry's planning check takes an open complaint about the parcel into account: with a
citizen's complaint still unanswered at the 137 centre, planning reviews the building even
when its certificate is recent; answered, merged or other kinds of request do not count."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select, update

from db import planning
from gateway.inquiries import checks
from gateway.inquiries.checks import ChecksConfig
from gateway.inquiries.facts import Fact, OpenComplaint, Outcome
from gateway.inquiries.reading import read_facts
from gateway.requests.records import REQUESTS, naive
from tests.gateway.inquiries.records import building, certificate, facts
from tests.gateway.requests.lifecycle_world import START, make_world

CONFIG = ChecksConfig()
RECENT = certificate("completion", "PK-1402-0000012", dt.date(2023, 7, 23))
COMPLAINT = OpenComplaint("1234567890123452", "unauthorised_building", START)


def test_an_open_complaint_sends_the_building_review_to_planning() -> None:
    quiet = facts(buildings=(building(),), certificates=(RECENT,))
    settled = checks.BUILDING_MATCHES_PERMIT.screened(quiet, CONFIG)
    assert settled is not None
    assert settled.outcome is Outcome.PASS
    complained = facts(
        buildings=(building(),), certificates=(RECENT,), open_complaints=(COMPLAINT,)
    )
    assert checks.BUILDING_MATCHES_PERMIT.screened(complained, CONFIG) is None


def test_the_building_review_reads_the_contact_centre() -> None:
    assert Fact.OPEN_COMPLAINTS in checks.BUILDING_MATCHES_PERMIT.needs
    assert Fact.OPEN_COMPLAINTS in checks.facts_needed([checks.BUILDING_MATCHES_PERMIT])


async def test_only_unanswered_complaints_about_the_parcel_are_read(tmp_path: Path) -> None:
    world = await make_world("sqlite", tmp_path, parcels=2)
    try:
        async with world.databases.planning.connect() as connection:
            parcel = (
                await connection.execute(
                    select(planning.Parcel.__table__).order_by(planning.Parcel.__table__.c.id)
                )
            ).first()
        assert parcel is not None
        code = parcel.renewal_code
        open_one = await world.request("IN_PROGRESS", renewal_code=code)
        await world.request("RESOLVED", renewal_code=code)  # answered
        await world.request("ASSIGNED", renewal_code=code, kind="SUGGESTION")
        await world.request("ASSIGNED", renewal_code="9-9-9-9")  # another parcel
        merged = await world.request("ASSIGNED", renewal_code=code)
        async with world.databases.engine("contact").begin() as connection:
            await connection.execute(
                update(REQUESTS)
                .where(REQUESTS.c.id == merged.id)
                .values(merged_into_id=open_one.id, updated_at=naive(START))
            )
        reading = await read_facts(
            world.databases,
            agencies=None,  # type: ignore[arg-type]  # no agency fact is asked for
            parcel_id=parcel.id,
            applicant_national_code="0084575948",
            tracking_code="1234567890123452",
            needs={Fact.OPEN_COMPLAINTS},
            now=lambda: START,
        )
        found = reading.facts.open_complaints
        assert [c.tracking_code for c in found] == [open_one.tracking_code]
        assert found[0].service_code == "world_fallen_tree"
        assert reading.facts.read_at[Fact.OPEN_COMPLAINTS] == START
    finally:
        await world.close()
