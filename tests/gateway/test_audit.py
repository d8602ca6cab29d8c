"""The audit trail: appends chain, verification finds every kind of tampering, the CLI reports
it, concurrent appenders keep one chain, and queries filter and page."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import delete, insert, select, text, update

from db.engines import Databases, StatementCounter, statement_counter
from db.gateway import AuditHead, AuditRecord
from gateway import audit as audit_module
from gateway.audit import GENESIS, AuditEntry, AuditTrail, VerifyResult, record_hash
from gateway.audit_cli import audit
from gateway.errors import AuditUnavailable
from tests.conftest import Backend, make_backend

ENTRY = AuditEntry(
    principal_kind="notary",
    principal_id="notary-12",
    action="read",
    operation="Person.nationalCode",
    subject_type="person",
    subject_id="0084575948",
    purpose="case-1403-77",
    request_id="req-1",
)
AT = dt.datetime(2025, 3, 20, 8, 30, 15, 123456)


def _entries(count: int, *, request_id: str = "req-1", **changes: Any) -> list[AuditEntry]:
    return [
        replace(ENTRY, subject_id=f"{n:010d}", request_id=request_id, **changes)
        for n in range(count)
    ]


@pytest.fixture(scope="module")
async def audit_backend(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """Databases of this module's own on each backend: tampering here never meets the trail
    that other modules' requests write."""
    made, server = await make_backend(
        backend.name, tmp_path_factory.mktemp(f"audit-{backend.name}"), parcels=0
    )
    yield made
    if server is not None:
        await server.drop_all()


@pytest.fixture
async def gateway_db(audit_backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": audit_backend.urls["gateway"]})
    async with databases.gateway.begin() as connection:
        await connection.execute(delete(AuditRecord))
        await connection.execute(delete(AuditHead))
    yield databases
    await databases.dispose()


@pytest.fixture
def trail(gateway_db: Databases) -> AuditTrail:
    # Small chunks, so that every walk crosses chunk boundaries.
    return AuditTrail(gateway_db, chunk_size=4)


async def _sql(databases: Databases, statement: Any) -> None:
    """Tampering, as someone with write access to the database would."""
    async with databases.gateway.begin() as connection:
        await connection.execute(text(statement) if isinstance(statement, str) else statement)


async def _record(databases: Databases, id: int) -> dict[str, Any]:
    async with databases.gateway.connect() as connection:
        row = (
            await connection.execute(select(AuditRecord.__table__).where(AuditRecord.id == id))
        ).one()
    return dict(row._mapping)


async def _ids(databases: Databases) -> list[int]:
    async with databases.gateway.connect() as connection:
        return list(await connection.scalars(select(AuditRecord.id).order_by(AuditRecord.id)))


# The hash


def test_record_hash_is_sha256_of_canonical_json_and_pinned() -> None:
    # Stored trails are verified with this function for years: its output must never drift.
    document = (
        '{"action":"read","format":"audit-record/1","id":1,"operation":"Person.nationalCode",'
        f'"prev_hash":"{GENESIS}","principal_id":"notary-12","principal_kind":"notary",'
        '"purpose":"case-1403-77","recorded_at":"2025-03-20T08:30:15.123456",'
        '"request_id":"req-1","subject_id":"0084575948","subject_type":"person"}'
    )
    assert record_hash(GENESIS, 1, AT, ENTRY) == hashlib.sha256(document.encode()).hexdigest()
    assert record_hash(GENESIS, 1, AT, ENTRY) == (
        "d5e32b9d25ad85a988aa8a5ab9f8bf1912b2da5626050c23589243d9cc27b636"
    )


def test_record_hash_covers_every_field_the_predecessor_and_the_id() -> None:
    reference = record_hash(GENESIS, 1, AT, ENTRY)
    variants = [
        record_hash("1" * 64, 1, AT, ENTRY),
        record_hash(GENESIS, 2, AT, ENTRY),
        record_hash(GENESIS, 1, AT + dt.timedelta(microseconds=1), ENTRY),
    ]
    variants += [
        record_hash(GENESIS, 1, AT, entry)
        for entry in (
            replace(ENTRY, principal_kind="bank"),
            replace(ENTRY, principal_id="notary-13"),
            replace(ENTRY, action="change"),
            replace(ENTRY, operation="Person.name"),
            replace(ENTRY, subject_type="parcel"),
            replace(ENTRY, subject_id="0084575949"),
            replace(ENTRY, purpose=None),
            replace(ENTRY, purpose=""),
            replace(ENTRY, request_id="req-2"),
            # Text moved between fields changes it too: the serialization is unambiguous.
            replace(ENTRY, subject_type="person0", subject_id="084575948"),
        )
    ]
    assert len({reference, *variants}) == len(variants) + 1


def test_record_hash_refuses_an_aware_timestamp() -> None:
    with pytest.raises(ValueError, match="naive UTC"):
        record_hash(GENESIS, 1, AT.replace(tzinfo=dt.UTC), ENTRY)


# Appending and verifying


async def test_appended_batches_form_one_intact_chain(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    assert await trail.verify() == VerifyResult(True, 0)
    await trail.append([])  # nothing to account for writes nothing
    await trail.append(_entries(3, request_id="req-1"))
    await trail.append(_entries(1, request_id="req-2"))
    await trail.append(_entries(6, request_id="req-3"))

    assert await trail.verify() == VerifyResult(True, 10)
    assert await _ids(gateway_db) == list(range(1, 11))
    first, second = await _record(gateway_db, 1), await _record(gateway_db, 2)
    assert first["prev_hash"] == GENESIS
    assert second["prev_hash"] == first["hash"]
    assert first["recorded_at"].tzinfo is None
    # One request's entries share their timestamp.
    assert first["recorded_at"] == second["recorded_at"]


async def test_appending_is_not_counted_in_the_requests_sql_cost(trail: AuditTrail) -> None:
    counter = StatementCounter()
    token = statement_counter.set(counter)
    try:
        await trail.append(_entries(2))  # the first append of a process creates the head too
        await trail.append(_entries(2))
        assert counter.count == 0
        await trail.query()  # reading the trail is a query's own work
        assert counter.count == 1
    finally:
        statement_counter.reset(token)


async def test_an_entry_too_long_for_its_column_writes_nothing(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    with pytest.raises(ValueError, match="subject_id"):
        await trail.append([ENTRY, replace(ENTRY, subject_id="9" * 65)])
    with pytest.raises(ValueError, match="action"):
        await trail.append([replace(ENTRY, action="delete")])  # type: ignore[arg-type]
    assert await _ids(gateway_db) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("purpose", "another case"),
        ("purpose", None),
        ("subject_id", "0000000000"),
        ("principal_id", "notary-13"),
        ("action", "change"),
        ("recorded_at", dt.datetime(2020, 1, 1)),
        ("hash", "f" * 64),
    ],
)
async def test_an_edited_record_is_named(
    trail: AuditTrail, gateway_db: Databases, column: str, value: object
) -> None:
    await trail.append(_entries(6))
    await _sql(gateway_db, update(AuditRecord).where(AuditRecord.id == 3).values({column: value}))
    assert await trail.verify() == VerifyResult(False, 2, 3, "edited")


async def test_a_record_edited_and_rehashed_breaks_the_next_link(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(6))
    record = await _record(gateway_db, 3)
    edited = replace(ENTRY, subject_id=record["subject_id"], purpose="another case")
    rehashed = record_hash(record["prev_hash"], 3, record["recorded_at"], edited)
    await _sql(
        gateway_db,
        update(AuditRecord)
        .where(AuditRecord.id == 3)
        .values(purpose="another case", hash=rehashed),
    )
    assert await trail.verify() == VerifyResult(False, 3, 4, "does not follow the record before it")


@pytest.mark.parametrize(
    ("deleted", "named"), [({3}, 4), ({1}, 2), ({3, 4}, 5), ({1, 2, 3, 4, 5}, 6)]
)
async def test_a_deleted_record_names_the_one_after_it(
    trail: AuditTrail, gateway_db: Databases, deleted: set[int], named: int
) -> None:
    await trail.append(_entries(6))
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id.in_(deleted)))
    result = await trail.verify()
    assert (result.ok, result.first_bad_id, result.reason) == (
        False,
        named,
        "deleted before this record",
    )


@pytest.mark.parametrize(("deleted", "named"), [({6}, 6), ({5, 6}, 5), (set(range(1, 7)), 1)])
async def test_records_deleted_from_the_end_are_missing_at_the_end(
    trail: AuditTrail, gateway_db: Databases, deleted: set[int], named: int
) -> None:
    await trail.append(_entries(6))
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id.in_(deleted)))
    assert await trail.verify() == VerifyResult(
        False, 6 - len(deleted), named, "missing at the end: the head says 6 records"
    )


async def _swap_ids(databases: Databases, a: int, b: int) -> None:
    for old, new in ((a, -1), (b, a), (-1, b)):
        await _sql(databases, update(AuditRecord).where(AuditRecord.id == old).values(id=new))


async def _swap_contents(databases: Databases, a: int, b: int) -> None:
    first, second = await _record(databases, a), await _record(databases, b)
    for record in (first, second):
        del record["id"]
    # hash is unique: park one out of the way first.
    await _sql(databases, update(AuditRecord).where(AuditRecord.id == a).values(hash="-"))
    await _sql(databases, update(AuditRecord).where(AuditRecord.id == b).values(**first))
    await _sql(databases, update(AuditRecord).where(AuditRecord.id == a).values(**second))


@pytest.mark.parametrize("swap", [_swap_ids, _swap_contents])
async def test_reordered_records_are_out_of_order(
    trail: AuditTrail, gateway_db: Databases, swap: Any
) -> None:
    await trail.append(_entries(3, request_id="req-1"))
    await trail.append(_entries(3, request_id="req-2"))
    await swap(gateway_db, 2, 5)
    assert await trail.verify() == VerifyResult(False, 1, 2, "out of order")


async def test_a_record_added_behind_the_heads_back_is_not_in_the_head(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(4))
    last = await _record(gateway_db, 4)
    forged = replace(ENTRY, subject_id="1111111111")
    at = last["recorded_at"]
    await _sql(
        gateway_db,
        insert(AuditRecord).values(
            id=5,
            recorded_at=at,
            prev_hash=last["hash"],
            hash=record_hash(last["hash"], 5, at, forged),
            **vars(forged),
        ),
    )
    assert await trail.verify() == VerifyResult(
        False, 5, 5, "not in the head: the head says 4 records"
    )


async def test_a_missing_head_is_reported_and_stops_appends(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(2))
    await _sql(gateway_db, delete(AuditHead))
    assert await trail.verify() == VerifyResult(False, 2, None, "the head is missing")
    # A new head would hide the deletion; personal data then goes unserved instead.
    with pytest.raises(AuditUnavailable, match="head is missing"):
        await trail.append(_entries(1))
    with pytest.raises(AuditUnavailable, match="head is missing"):
        await AuditTrail(gateway_db).append(_entries(1))


async def test_a_cleared_trail_starts_again_from_genesis(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(2))
    await _sql(gateway_db, delete(AuditRecord))
    await _sql(gateway_db, delete(AuditHead))
    await trail.append(_entries(3))
    assert await trail.verify() == VerifyResult(True, 3)


async def test_concurrent_appends_from_two_processes_keep_one_chain(
    trail: AuditTrail, gateway_db: Databases, audit_backend: Backend
) -> None:
    # A second engine and trail stand for another worker process; the trail is empty, so
    # both also race to create the head.
    other_databases = Databases({"gateway": audit_backend.urls["gateway"]})
    other = AuditTrail(other_databases)
    try:
        await asyncio.gather(
            *(
                (trail if n % 2 else other).append(_entries(5, request_id=f"req-{n}"))
                for n in range(20)
            )
        )
    finally:
        await other_databases.dispose()

    assert await trail.verify() == VerifyResult(True, 100)
    assert await _ids(gateway_db) == list(range(1, 101))
    async with gateway_db.gateway.connect() as connection:
        rows = (await connection.execute(select(AuditRecord.id, AuditRecord.request_id))).all()
    # Each append's entries sit together, in one transaction.
    for request_id, group in itertools.groupby(sorted(rows, key=lambda r: r[1]), lambda r: r[1]):
        ids = sorted(id for id, _ in group)
        assert ids == list(range(ids[0], ids[0] + 5)), request_id


async def test_records_appended_during_a_walk_are_walked_not_missing(
    trail: AuditTrail,
    gateway_db: Databases,
    audit_backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await trail.append(_entries(6))
    read_head = audit_module._read_head
    appended = False

    async def append_then_read_head(connection: Any, *, lock: bool = False) -> Any:
        # Another request appends between the walk's last record and its read of the head.
        nonlocal appended
        if not lock and not appended:
            appended = True
            await AuditTrail(gateway_db).append(_entries(3, request_id="req-2"))
        return await read_head(connection, lock=lock)

    monkeypatch.setattr(audit_module, "_read_head", append_then_read_head)
    result = await trail.verify()
    assert appended
    # PostgreSQL and SQLite walk on to the newer head; MariaDB's snapshot never saw it.
    assert result == VerifyResult(True, 6 if audit_backend.name == "mariadb" else 9)
    assert await trail.verify() == VerifyResult(True, 9)


# The command line


def _invoke(backend: Backend, data_dir: Path) -> Result:
    env = {f"GATEWAY_{name.upper()}_DATABASE_URL": url for name, url in backend.urls.items()}
    return CliRunner().invoke(audit, ["verify"], env={**env, "GATEWAY_DATA_DIR": str(data_dir)})


async def test_cli_verify_exits_0_when_intact_and_1_naming_the_record(
    trail: AuditTrail, gateway_db: Databases, audit_backend: Backend, tmp_path: Path
) -> None:
    await trail.append(_entries(4))
    # The command runs its own event loop, so it runs on a thread of its own.
    intact = await asyncio.to_thread(_invoke, audit_backend, tmp_path)
    assert (intact.exit_code, intact.output) == (0, "audit trail intact: 4 records\n")

    await _sql(gateway_db, "UPDATE audit_records SET subject_id = '0000000000' WHERE id = 2")
    broken = await asyncio.to_thread(_invoke, audit_backend, tmp_path)
    assert (broken.exit_code, broken.stderr) == (1, "audit trail broken at record 2: edited\n")


async def test_cli_verify_fails_on_an_empty_chain_whose_head_says_otherwise(
    trail: AuditTrail, gateway_db: Databases, audit_backend: Backend, tmp_path: Path
) -> None:
    await trail.append(_entries(4))
    await _sql(gateway_db, "DELETE FROM audit_records")
    result = await asyncio.to_thread(_invoke, audit_backend, tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        "audit trail broken at record 1: missing at the end: the head says 4 records\n"
    )


# Queries


def _clock(*hours: int) -> Iterator[dt.datetime]:
    return (dt.datetime(2025, 3, 20, hour, tzinfo=dt.UTC) for hour in hours)


async def test_query_filters_exactly_and_pages_in_id_order(gateway_db: Databases) -> None:
    times = _clock(10, 11, 12)
    trail = AuditTrail(gateway_db, clock=lambda: next(times))
    await trail.append(_entries(3, principal_id="Bank-7", request_id="req-1"))  # 10:00, 1-3
    await trail.append(_entries(2, principal_id="bank-7", request_id="req-2"))  # 11:00, 4-5
    await trail.append(  # 12:00, 6
        [
            replace(
                ENTRY,
                principal_id="Bank-7",
                action="change",
                subject_type="parcel",
                subject_id="P-1",
                purpose=None,
            )
        ]
    )

    async def ids(**filters: Any) -> list[int]:
        rows, has_next = await trail.query(**filters)
        assert not has_next
        return [row.id for row in rows]

    # A partner sees its own records only: case and trailing spaces count (MariaDB's
    # collation would ignore both).
    assert await ids(principal_id="Bank-7") == [1, 2, 3, 6]
    assert await ids(principal_id="bank-7") == [4, 5]
    assert await ids(principal_id="Bank-7 ") == []
    assert await ids(subject_type="parcel", subject_id="P-1") == [6]
    assert await ids(subject_id="0000000001") == [2, 5]
    assert await ids(action="change") == [6]
    assert await ids(action="read", principal_id="bank-7") == [4, 5]
    assert await ids(since=dt.datetime(2025, 3, 20, 11)) == [4, 5, 6]
    assert await ids(until=dt.datetime(2025, 3, 20, 11)) == [1, 2, 3]
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30))
    assert await ids(since=dt.datetime(2025, 3, 20, 14, 30, tzinfo=tehran)) == [4, 5, 6]

    rows, _ = await trail.query(first=1)
    (row,) = rows
    assert (row.recorded_at, row.prev_hash, row.purpose) == (
        dt.datetime(2025, 3, 20, 10),
        GENESIS,
        ENTRY.purpose,
    )

    # Pages follow the id cursor; has_next is exact, even when a page ends the list.
    pages, after_id, has_next = [], 0, True
    while has_next:
        rows, has_next = await trail.query(principal_id="Bank-7", first=2, after_id=after_id)
        pages.append(([row.id for row in rows], has_next))
        after_id = rows[-1].id
    assert pages == [([1, 2], True), ([3, 6], False)]
    with pytest.raises(ValueError, match="first"):
        await trail.query(first=0)


async def test_group_commit_writes_concurrent_requests_together(tmp_path: Path) -> None:
    from gateway.audit import GroupCommit

    backend, _ = await make_backend("sqlite", tmp_path, parcels=0)
    databases = Databases(backend.urls)
    try:
        trail = AuditTrail(databases)
        writer = GroupCommit(trail)
        appends = 0
        real_append = trail.append

        async def counting_append(entries: Any) -> None:
            nonlocal appends
            appends += 1
            await real_append(entries)

        trail.append = counting_append  # type: ignore[method-assign]
        entry = AuditEntry("notary", "7", "read", "Query.person", "Person", "1", None, "r")
        await asyncio.gather(*(writer.write([entry, entry]) for _ in range(30)))
        assert appends < 30  # requests that arrived during an append shared the next one
        result = await trail.verify()
        assert result.ok
        assert result.checked == 60
    finally:
        await databases.dispose()
