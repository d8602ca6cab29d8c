"""The demo's past inquiries, on every backend: how many, once, the same for the same seed,
each decided one with an answer that verifies and names no national ID, supersession as the
workflow does it, outcomes that agree with the demo city, and figures through inquiryStats
that mean something (several regions, every kind, a year of months). And `gateway seed`
seeds them, and `--reset` seeds them again."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from db.engines import Databases
from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway import dues
from gateway.access.principals import PrincipalKind
from gateway.cli import main
from gateway.edge.app import create_app
from gateway.inquiries import answers
from gateway.inquiries.config import inquiry_settings
from gateway.inquiries.demo import DemoInquiries, clear, count_for, seed_demo_inquiries
from gateway.inquiries.kinds import KINDS
from gateway.settings import Settings
from tests.conftest import GraphQLClient, make_backend, mint_key, settings_for

NOW = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
PARCELS = 300
COUNT = 450


@dataclass
class Seeded:
    databases: Databases
    settings: Settings
    summary: DemoInquiries
    inquiries: dict[int, InquiryRecord]
    checks: dict[int, list[InquiryCheckRecord]]


async def _read(databases: Databases) -> tuple[dict[int, InquiryRecord], dict[int, list[Any]]]:
    async with databases.session("gateway") as session:
        inquiries = {i.id: i for i in await session.scalars(select(InquiryRecord))}
        checks: dict[int, list[InquiryCheckRecord]] = {}
        for check in await session.scalars(
            select(InquiryCheckRecord).order_by(InquiryCheckRecord.id)
        ):
            checks.setdefault(check.inquiry_id, []).append(check)
    return inquiries, checks


def _columns(record: Any) -> dict[str, Any]:
    return {column.key: getattr(record, column.key) for column in record.__table__.columns}


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Seeded]:
    backend, server = await make_backend(
        request.param, tmp_path_factory.mktemp(f"demo-{request.param}"), parcels=PARCELS
    )
    databases = Databases(backend.urls)
    settings = settings_for(backend)
    try:
        summary = await seed_demo_inquiries(databases, settings, count=COUNT, now=NOW)
        assert summary is not None
        inquiries, checks = await _read(databases)
        yield Seeded(databases, settings, summary, inquiries, checks)
    finally:
        await databases.dispose()
        if server is not None:
            await server.drop_all()


async def test_seeds_the_count_asked_for_once_mostly_decided(seeded: Seeded) -> None:
    summary, inquiries = seeded.summary, seeded.inquiries
    statuses = Counter(i.status for i in inquiries.values())
    assert summary == DemoInquiries(
        inquiries=COUNT,
        decided=statuses["DECIDED"],
        waiting_for_department=statuses["WAITING_FOR_DEPARTMENT"],
        pending=statuses["PENDING"],
        superseded=sum(i.superseded_by is not None for i in inquiries.values()),
    )
    assert len(inquiries) == COUNT
    assert 0.78 <= statuses["DECIDED"] / COUNT <= 0.92, statuses
    assert statuses["WAITING_FOR_DEPARTMENT"] > 0
    assert statuses["PENDING"] > 0
    assert summary.superseded > 0
    assert all(NOW - dt.timedelta(days=366) < i.submitted_at.replace(tzinfo=dt.UTC) < NOW
               for i in inquiries.values())  # fmt: skip
    # Only into an empty table: a second run writes nothing.
    again = await seed_demo_inquiries(seeded.databases, seeded.settings, count=COUNT, now=NOW)
    assert again is None
    assert len((await _read(seeded.databases))[0]) == COUNT


async def test_the_same_seed_gives_the_same_inquiries_and_another_seed_others(
    seeded: Seeded,
) -> None:
    before = {i: _columns(record) for i, record in seeded.inquiries.items()}
    await clear(seeded.databases)
    other = await seed_demo_inquiries(
        seeded.databases, seeded.settings, count=COUNT, now=NOW, seed=7
    )
    assert other is not None
    others = {record.tracking_code for record in (await _read(seeded.databases))[0].values()}
    assert not others & {row["tracking_code"] for row in before.values()}
    await clear(seeded.databases)
    await seed_demo_inquiries(seeded.databases, seeded.settings, count=COUNT, now=NOW)
    inquiries, checks = await _read(seeded.databases)
    assert {i: _columns(record) for i, record in inquiries.items()} == before
    assert {i: [_columns(c) for c in found] for i, found in checks.items()} == {
        i: [_columns(c) for c in found] for i, found in seeded.checks.items()
    }


def _payload(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


async def test_every_decided_inquiry_carries_an_answer_that_verifies_without_national_ids(
    seeded: Seeded,
) -> None:
    keys = inquiry_settings(seeded.settings).keys.verification_keys
    for inquiry in seeded.inquiries.values():
        if inquiry.status != "DECIDED":
            assert (inquiry.answer, inquiry.verdict, inquiry.decided_at) == (None, None, None)
            continue
        assert inquiry.answer is not None
        answer = answers.verify(inquiry.answer, keys).answer
        assert (answer.tracking_code, answer.answer_id, answer.kind) == (
            inquiry.tracking_code, inquiry.answer_id, inquiry.kind,
        )  # fmt: skip
        assert answer.status_index == inquiry.id
        assert answer.partner == inquiry.organisation
        assert answer.verdict.name == inquiry.verdict
        assert answer.expires_at.replace(tzinfo=None) == inquiry.valid_until
        assert answer.issued_at.replace(tzinfo=None) == inquiry.decided_at
        assert answer.applicant == inquiry.applicant_national_code[-4:]
        people = [inquiry.applicant_national_code]
        if inquiry.counterparty_national_code is not None:
            people.append(inquiry.counterparty_national_code)
        # Neither in the signed payload nor in the reasons the partner reads.
        said = _payload(inquiry.answer) + json.dumps(inquiry.reasons, ensure_ascii=False)
        assert not any(code in said for code in people), inquiry.id


async def test_a_newer_answer_for_the_same_parcel_and_kind_supersedes_the_older(
    seeded: Seeded,
) -> None:
    inquiries = seeded.inquiries
    keys = inquiry_settings(seeded.settings).keys.verification_keys
    current: Counter[tuple[int, str]] = Counter()
    for older in inquiries.values():
        if older.status == "DECIDED" and older.superseded_by is None:
            current[(older.parcel_id, older.kind)] += 1
        if older.superseded_by is None:
            continue
        newer = inquiries[older.superseded_by]
        assert (newer.parcel_id, newer.kind) == (older.parcel_id, older.kind)
        assert newer.decided_at is not None
        assert older.decided_at is not None
        assert newer.decided_at >= older.decided_at
        assert newer.answer is not None
        assert answers.verify(newer.answer, keys).answer.supersedes == older.answer_id
    assert set(current.values()) == {1}  # one answer in force per parcel and kind


async def test_checks_agree_with_the_city_and_the_kinds(seeded: Seeded) -> None:
    inquiries, checks = seeded.inquiries, seeded.checks
    codes = sorted({i.renewal_code for i in inquiries.values()})
    async with seeded.databases.revenue.connect() as connection:
        rows = (await connection.execute(dues.ITEMS_BY_RENEWAL_CODE, {"keys": codes})).all()
    owed = {d.renewal_code: d.outstanding for d in dues.group_by_renewal_code(rows, codes)}
    waiting_due = []
    for inquiry in inquiries.values():
        kind = KINDS[inquiry.kind]
        assert kind.may_ask(PrincipalKind(inquiry.partner_kind))
        found = checks[inquiry.id]
        assert [c.name for c in found] == [c.name for c in kind.checks]
        for check in found:
            if check.state == "done" and check.name in ("dues_settled", "dues_statement"):
                assert check.details is not None
                assert check.details["outstanding"] == owed[inquiry.renewal_code]
                assert (check.outcome == "FAIL") == (
                    check.name == "dues_settled" and owed[inquiry.renewal_code] > 0
                )
        states = {c.state for c in found}
        if inquiry.status == "WAITING_FOR_DEPARTMENT":
            [queued] = [c for c in found if c.state == "queued"]
            assert queued.authority == "planning"
            assert queued.due_at is not None
            waiting_due.append(queued.due_at)
        elif inquiry.status == "PENDING":
            assert states <= {"pending", "done"}
            pending = [c for c in found if c.state == "pending"]
            assert pending
            assert all(c.last_error and c.attempts > 0 for c in pending)
        else:
            assert states == {"done"}
    # Some of planning's queue is overdue, not all of it.
    overdue = [due for due in waiting_due if due < NOW.replace(tzinfo=None)]
    assert 0 < len(overdue) < len(waiting_due)


async def test_the_figures_through_inquiry_stats_mean_something(seeded: Seeded) -> None:
    _, key = await mint_key(seeded.databases, PrincipalKind.OPERATOR, "Demo figures")
    app = create_app(seeded.settings, wall_clock=lambda: NOW)
    query = """query($by: [InquiryStatsGrouping!]!) {
      inquiryStats(groupBy: $by) {
        region kind month total decided medianSecondsToVerdict p90SecondsToVerdict
      }
    }"""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        gql = GraphQLClient(http, key)
        found = {}
        for grouping in ("REGION", "KIND", "MONTH"):
            body = await gql(query, {"by": [grouping]})
            assert "errors" not in body, body
            found[grouping] = body["data"]["inquiryStats"]
    assert len(found["REGION"]) >= 3
    assert {g["kind"] for g in found["KIND"]} == set(KINDS)
    assert len(found["MONTH"]) >= 12
    for groups in found.values():
        assert sum(g["total"] for g in groups) == COUNT
    for group in found["KIND"]:
        assert group["decided"] > 0
        assert 0 < group["medianSecondsToVerdict"] <= group["p90SecondsToVerdict"]
    # Transfers wait for planning's officers now and then: their p90 is days, not seconds.
    [transfers] = [g for g in found["KIND"] if g["kind"] == "PROPERTY_TRANSFER"]
    assert transfers["p90SecondsToVerdict"] > 86_400


def test_count_for_scales_with_the_city() -> None:
    assert count_for(2000) == 3000
    assert count_for(100_000) == 3000
    assert count_for(20) == 30
    assert count_for(1) == 2


def _inquiry_count(data_dir: Path) -> int:
    engine = create_engine(f"sqlite:///{data_dir / 'gateway.sqlite3'}")
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(InquiryRecord)) or 0)
    finally:
        engine.dispose()


def test_gateway_seed_seeds_inquiries_and_reset_seeds_them_again(tmp_path: Path) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    first = runner.invoke(main, ["seed", "--parcels", "20"], env=env)
    assert first.exit_code == 0, first.output
    assert "30 inquiries" in first.output
    assert _inquiry_count(tmp_path) == 30
    reset = runner.invoke(main, ["seed", "--parcels", "10", "--reset"], env=env)
    assert reset.exit_code == 0, reset.output
    assert "15 inquiries" in reset.output
    assert _inquiry_count(tmp_path) == 15
