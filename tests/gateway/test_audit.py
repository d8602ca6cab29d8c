"""The audit trail: appends chain under the key, verification finds every kind of tampering
with the chain, concurrent appenders keep one chain, queries filter and page; and, through
HTTP, what is recorded: each operation its own reads, the gateway's request id beside the
caller's, and the person, by national ID, as the subject of every personal datum."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, fields, replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, text, update

from connectors.soap.civil_registry import CivilRecord as CivilAnswer
from connectors.soap.land_registry import Deed as DeedAnswer
from connectors.soap.land_registry import DeedOwner as DeedOwnerAnswer
from connectors.soap.land_registry import Plate
from db.demo import KNOWN_NATIONAL_CODE
from db.engines import Databases, StatementCounter, statement_counter
from db.gateway import AuditHead, AuditRecord
from gateway import parcels
from gateway.access import audit_verify
from gateway.access.audit import GENESIS, AuditEntry, AuditTrail, record_hash
from gateway.access.audit_verify import Finding, VerifyResult, verify
from gateway.access.permissions import note_personal_read, operation_reads
from gateway.edge.app import create_app
from gateway.errors import AuditUnavailable
from gateway.schema.agencies import Deed
from gateway.schema.planning import Person
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import SECRETS, Backend, GraphQLClient, make_backend, settings_for

KEY = b"audit-test-key-0123456789abcdef-0123"
SECRETS.add(KEY.decode())
ENTRY = AuditEntry(
    principal_kind="notary",
    principal_id="notary-12",
    action="read",
    operation="Person.nationalCode",
    subject_type="Person",
    subject_id="0084575948",
    purpose="case-1403-77",
    request_id="5f0c2a8e9b7d4c1e8a6f3b2d1c0e9f8a",
    caller_request_id="req-1",
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
    # The chain alone (checkpoints have their tests in test_audit_chain.py); small chunks,
    # so that every walk crosses chunk boundaries.
    return AuditTrail(gateway_db, KEY, chunk_size=4)


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


def _entry(record: dict[str, Any]) -> AuditEntry:
    return AuditEntry(**{f.name: record[f.name] for f in fields(AuditEntry)})


def unkeyed_hash(prev_hash: str, id: int, recorded_at: dt.datetime, entry: AuditEntry) -> str:
    """The hash an attacker without the key can compute: the old scheme, plain SHA-256."""
    document = {
        "format": "audit-record/1",
        "prev_hash": prev_hash,
        "id": id,
        "recorded_at": recorded_at.isoformat(timespec="microseconds"),
        **asdict(entry),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# The hash


def test_record_hash_is_hmac_sha256_of_canonical_json_and_pinned() -> None:
    # Stored trails are verified with this function for years: its output must never drift.
    document = (
        '{"action":"read","caller_request_id":"req-1","format":"audit-record/2","id":1,'
        f'"operation":"Person.nationalCode","prev_hash":"{GENESIS}",'
        '"principal_id":"notary-12","principal_kind":"notary","purpose":"case-1403-77",'
        '"recorded_at":"2025-03-20T08:30:15.123456",'
        '"request_id":"5f0c2a8e9b7d4c1e8a6f3b2d1c0e9f8a","subject_id":"0084575948",'
        '"subject_type":"Person"}'
    )
    expected = hmac.new(KEY, document.encode(), hashlib.sha256).hexdigest()
    assert record_hash(KEY, GENESIS, 1, AT, ENTRY) == expected
    assert record_hash(KEY, GENESIS, 1, AT, ENTRY) == (
        "7ab61fa8c578a6cf122944a66861c9e38a8ed7e2efaae3cd9aff682d601dea16"
    )


def test_record_hash_covers_every_field_the_predecessor_the_id_and_the_key() -> None:
    reference = record_hash(KEY, GENESIS, 1, AT, ENTRY)
    variants = [
        record_hash(KEY + b"x", GENESIS, 1, AT, ENTRY),
        record_hash(KEY, "1" * 64, 1, AT, ENTRY),
        record_hash(KEY, GENESIS, 2, AT, ENTRY),
        record_hash(KEY, GENESIS, 1, AT + dt.timedelta(microseconds=1), ENTRY),
        unkeyed_hash(GENESIS, 1, AT, ENTRY),
    ]
    variants += [
        record_hash(KEY, GENESIS, 1, AT, entry)
        for entry in (
            replace(ENTRY, principal_kind="bank"),
            replace(ENTRY, principal_id="notary-13"),
            replace(ENTRY, action="change"),
            replace(ENTRY, operation="Person.name"),
            replace(ENTRY, subject_type="Parcel"),
            replace(ENTRY, subject_id="0084575949"),
            replace(ENTRY, purpose=None),
            replace(ENTRY, purpose=""),
            replace(ENTRY, request_id="req-2"),
            replace(ENTRY, caller_request_id=None),
            replace(ENTRY, caller_request_id="req-2"),
            # Text moved between fields changes it too: the serialization is unambiguous.
            replace(ENTRY, subject_type="Person0", subject_id="084575948"),
        )
    ]
    assert len({reference, *variants}) == len(variants) + 1


def test_record_hash_refuses_an_aware_timestamp() -> None:
    with pytest.raises(ValueError, match="naive UTC"):
        record_hash(KEY, GENESIS, 1, AT.replace(tzinfo=dt.UTC), ENTRY)


# Appending and verifying the chain


async def test_appended_batches_form_one_intact_chain(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    assert await verify(trail) == VerifyResult(0)
    await trail.append([])  # nothing to account for writes nothing
    await trail.append(_entries(3, request_id="req-1"))
    await trail.append(_entries(1, request_id="req-2"))
    await trail.append(_entries(6, request_id="req-3"))

    assert await verify(trail) == VerifyResult(10)
    assert await _ids(gateway_db) == list(range(1, 11))
    first, second = await _record(gateway_db, 1), await _record(gateway_db, 2)
    assert first["prev_hash"] == GENESIS
    assert second["prev_hash"] == first["hash"]
    assert first["hash"] == record_hash(KEY, GENESIS, 1, first["recorded_at"], _entries(1)[0])
    assert first["caller_request_id"] == "req-1"
    assert first["recorded_at"].tzinfo is None
    # One request's entries share their timestamp.
    assert first["recorded_at"] == second["recorded_at"]


async def test_appending_or_verifying_without_the_key_is_refused(gateway_db: Databases) -> None:
    keyless = AuditTrail(gateway_db)
    with pytest.raises(AuditUnavailable, match="without its key"):
        await keyless.append(_entries(1))
    with pytest.raises(AuditUnavailable, match="without its key"):
        await verify(keyless)
    assert await _ids(gateway_db) == []
    assert await keyless.query() == ([], False)  # reading needs no key


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
    with pytest.raises(ValueError, match="caller_request_id"):
        await trail.append([replace(ENTRY, caller_request_id="9" * 65)])
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
        ("request_id", "another-request"),
        ("caller_request_id", None),
        ("recorded_at", dt.datetime(2020, 1, 1)),
        ("hash", "f" * 64),
    ],
)
async def test_an_edited_record_is_named(
    trail: AuditTrail, gateway_db: Databases, column: str, value: object
) -> None:
    await trail.append(_entries(6))
    await _sql(gateway_db, update(AuditRecord).where(AuditRecord.id == 3).values({column: value}))
    assert await verify(trail) == VerifyResult(2, (Finding("edited", 3),))


def _wrong_key_hash(prev_hash: str, id: int, recorded_at: dt.datetime, entry: AuditEntry) -> str:
    return record_hash(b"a-guess-at-the-key-0123456789abcdef", prev_hash, id, recorded_at, entry)


@pytest.mark.parametrize("rehash", [unkeyed_hash, _wrong_key_hash])
async def test_a_record_rewritten_and_rehashed_without_the_key_is_edited(
    trail: AuditTrail, gateway_db: Databases, rehash: Any
) -> None:
    # The attacker recomputes the record's hash, every later one, and the head: all
    # consistent, but not under the key.
    await trail.append(_entries(6))
    prev_hash = (await _record(gateway_db, 2))["hash"]
    for id in range(3, 7):
        record = await _record(gateway_db, id)
        entry = _entry(record)
        if id == 3:
            entry = replace(entry, purpose="another case")
        new_hash = rehash(prev_hash, id, record["recorded_at"], entry)
        await _sql(
            gateway_db,
            update(AuditRecord)
            .where(AuditRecord.id == id)
            .values(purpose=entry.purpose, prev_hash=prev_hash, hash=new_hash),
        )
        prev_hash = new_hash
    await _sql(gateway_db, update(AuditHead).values(last_hash=prev_hash))
    assert await verify(trail) == VerifyResult(2, (Finding("edited", 3),))


async def test_a_record_rehashed_with_the_key_breaks_the_next_link(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(6))
    record = await _record(gateway_db, 3)
    edited = replace(_entries(4)[3], subject_id=record["subject_id"], purpose="another case")
    rehashed = record_hash(KEY, record["prev_hash"], 3, record["recorded_at"], edited)
    await _sql(
        gateway_db,
        update(AuditRecord)
        .where(AuditRecord.id == 3)
        .values(purpose="another case", hash=rehashed),
    )
    assert await verify(trail) == VerifyResult(
        3, (Finding("does not follow the record before it", 4),)
    )


@pytest.mark.parametrize(
    ("deleted", "named"), [({3}, 4), ({1}, 2), ({3, 4}, 5), ({1, 2, 3, 4, 5}, 6)]
)
async def test_a_deleted_record_names_the_one_after_it(
    trail: AuditTrail, gateway_db: Databases, deleted: set[int], named: int
) -> None:
    await trail.append(_entries(6))
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id.in_(deleted)))
    result = await verify(trail)
    assert result.findings == (Finding("deleted before this record", named),)


@pytest.mark.parametrize(("deleted", "named"), [({6}, 6), ({5, 6}, 5), (set(range(1, 7)), 1)])
async def test_records_deleted_from_the_end_are_missing_at_the_end(
    trail: AuditTrail, gateway_db: Databases, deleted: set[int], named: int
) -> None:
    await trail.append(_entries(6))
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id.in_(deleted)))
    assert await verify(trail) == VerifyResult(
        6 - len(deleted), (Finding("missing at the end", named, "the head says 6 records"),)
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
    assert await verify(trail) == VerifyResult(1, (Finding("out of order", 2),))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # Only a key holder makes a record that verifies: the head still tells.
        (KEY, VerifyResult(5, (Finding("not in the head", 5, "the head says 4 records"),))),
        (b"a-guess-at-the-key-0123456789abcdef", VerifyResult(4, (Finding("edited", 5),))),
    ],
)
async def test_a_record_added_behind_the_heads_back_is_named(
    trail: AuditTrail, gateway_db: Databases, key: bytes, expected: VerifyResult
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
            hash=record_hash(key, last["hash"], 5, at, forged),
            **vars(forged),
        ),
    )
    assert await verify(trail) == expected


async def test_a_missing_head_is_reported_and_stops_appends(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(2))
    await _sql(gateway_db, delete(AuditHead))
    assert await verify(trail) == VerifyResult(2, (Finding("the head is missing"),))
    # A new head would hide the deletion; personal data then goes unserved instead.
    with pytest.raises(AuditUnavailable, match="head is missing"):
        await trail.append(_entries(1))
    with pytest.raises(AuditUnavailable, match="head is missing"):
        await AuditTrail(gateway_db, KEY).append(_entries(1))


async def test_a_cleared_trail_is_refused_where_it_was_known_longer(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await trail.append(_entries(2))
    await _sql(gateway_db, delete(AuditRecord))
    await _sql(gateway_db, delete(AuditHead))
    with pytest.raises(AuditUnavailable, match="holds 0 records but held 2"):
        await trail.append(_entries(3))
    # A process that never knew it, and has no checkpoints, starts again from the genesis:
    # the chain alone cannot tell (checkpoints can, see test_audit_chain.py).
    fresh = AuditTrail(gateway_db, KEY)
    await fresh.append(_entries(3))
    assert await verify(fresh) == VerifyResult(3)


async def test_concurrent_appends_from_two_processes_keep_one_chain(
    trail: AuditTrail, gateway_db: Databases, audit_backend: Backend
) -> None:
    # A second engine and trail stand for another worker process; the trail is empty, so
    # both also race to create the head.
    other_databases = Databases({"gateway": audit_backend.urls["gateway"]})
    other = AuditTrail(other_databases, KEY)
    try:
        await asyncio.gather(
            *(
                (trail if n % 2 else other).append(_entries(5, request_id=f"req-{n}"))
                for n in range(20)
            )
        )
    finally:
        await other_databases.dispose()

    assert await verify(trail) == VerifyResult(100)
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
    read_head = audit_verify.read_head
    appended = False

    async def append_then_read_head(connection: Any) -> Any:
        # Another request appends between the walk's last record and its read of the head.
        nonlocal appended
        if not appended:
            appended = True
            await AuditTrail(gateway_db, KEY).append(_entries(3, request_id="req-2"))
        return await read_head(connection)

    monkeypatch.setattr(audit_verify, "read_head", append_then_read_head)
    result = await verify(trail)
    assert appended
    # PostgreSQL and SQLite walk on to the newer head; MariaDB's snapshot never saw it.
    assert result == VerifyResult(6 if audit_backend.name == "mariadb" else 9)
    assert await verify(trail) == VerifyResult(9)


# Queries


def _clock(*hours: int) -> Iterator[dt.datetime]:
    return (dt.datetime(2025, 3, 20, hour, tzinfo=dt.UTC) for hour in hours)


async def test_query_filters_exactly_and_pages_in_id_order(gateway_db: Databases) -> None:
    times = _clock(10, 11, 12)
    trail = AuditTrail(gateway_db, KEY, clock=lambda: next(times))
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
    from gateway.access.audit import GroupCommit

    backend, _ = await make_backend("sqlite", tmp_path, parcels=0)
    databases = Databases(backend.urls)
    try:
        trail = AuditTrail(databases, KEY)
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
        result = await verify(trail)
        assert result.ok
        assert result.checked == 60
    finally:
        await databases.dispose()


async def test_an_entry_the_trail_cannot_hold_fails_only_its_own_request(tmp_path: Path) -> None:
    from gateway.access.audit import GroupCommit

    backend, _ = await make_backend("sqlite", tmp_path, parcels=0)
    databases = Databases(backend.urls)
    try:
        trail = AuditTrail(databases, KEY)
        writer = GroupCommit(trail)
        good = AuditEntry("notary", "7", "read", "Deed.owners", "Person", "0084575948", None, "r")
        # A deed owner whose "national ID", as an agency sent it, is longer than the column.
        bad = AuditEntry("notary", "7", "read", "Deed.owners", "Person", "9" * 65, None, "r")
        results = await asyncio.gather(
            writer.write([good]),
            writer.write([bad]),
            writer.write([good]),
            return_exceptions=True,
        )
        assert results[0] is None
        assert isinstance(results[1], ValueError)
        assert results[2] is None
        result = await verify(trail)
        assert result.ok
        assert result.checked == 2
    finally:
        await databases.dispose()


# What is recorded, through HTTP

PERSON = "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }"


def _purpose() -> str:
    """A case of this test's own (X-Road-Issue), to find its records among the session's."""
    return f"audit-test-{uuid.uuid4().hex[:16]}"


async def _records_of(gql: GraphQLClient, national_code: str, purpose: str) -> list[dict[str, Any]]:
    """Every record under the person with this purpose, as inspection reads them."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gql(
            "query($id: String!, $after: String) { auditTrail(first: 100, after: $after,"
            ' filter: {subjectType: "Person", subjectId: $id}) { edges { node {'
            " operation purpose requestId callerRequestId principalKind subjectId } }"
            " pageInfo { hasNextPage endCursor } } }",
            {"id": national_code, "after": after},
        )
        page = body["data"]["auditTrail"]
        found += [e["node"] for e in page["edges"] if e["node"]["purpose"] == purpose]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def _owners(gql: GraphQLClient, count: int) -> list[str]:
    body = await gql("{ parcels(first: 20) { edges { node { owners { nationalCode } } } } }")
    codes = [
        owner["nationalCode"]
        for edge in body["data"]["parcels"]["edges"]
        for owner in edge["node"]["owners"]
    ]
    distinct = list(dict.fromkeys(codes))
    assert len(distinct) >= count
    return distinct[:count]


async def test_each_operation_of_a_batch_records_its_own_reads(
    client: httpx.AsyncClient, keys: dict[str, str], gql: GraphQLClient
) -> None:
    people = await _owners(gql, 3)
    purpose = _purpose()
    response = await client.post(
        "/graphql",
        json=[{"query": PERSON, "variables": {"c": code}} for code in people],
        headers={
            "Authorization": f"Bearer {keys['notary_a']}",
            "X-Road-Issue": purpose,
            "X-Gateway-Debug": "cost",
        },
    )
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["data"]["person"] is not None for a in answers] == [True, True, True]
    # Each operation accounts for the one person it read, not for the batch's three.
    assert [a["extensions"]["cost"]["auditRecords"] for a in answers] == [1, 1, 1]
    records = {code: await _records_of(gql, code, purpose) for code in people}
    assert {code: len(found) for code, found in records.items()} == dict.fromkeys(people, 1)
    assert {found[0]["operation"] for found in records.values()} == {"Query.person"}
    # One request: its operations share the gateway's request id.
    assert len({found[0]["requestId"] for found in records.values()}) == 1


async def test_records_carry_the_gateways_request_id_and_the_callers_apart(
    client: httpx.AsyncClient, keys: dict[str, str], gql: GraphQLClient
) -> None:
    notary = GraphQLClient(client, keys["notary_a"])
    purpose = _purpose()
    answered = []
    for _ in range(2):
        response = await notary.post(
            PERSON,
            {"c": KNOWN_NATIONAL_CODE},
            headers={"X-Request-Id": "caller-7f3a", "X-Road-Issue": purpose},
        )
        assert response.json()["data"]["person"] is not None
        answered.append(response.headers["x-request-id"])
    records = await _records_of(gql, KNOWN_NATIONAL_CODE, purpose)
    # The caller's id, sent twice, is kept as theirs; each record has the gateway's own.
    assert [r["callerRequestId"] for r in records] == ["caller-7f3a", "caller-7f3a"]
    assert [r["requestId"] for r in records] == answered
    assert len(set(answered)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["requestId"]) for r in records)


async def test_a_person_read_through_every_path_is_recorded_under_their_national_id(
    client: httpx.AsyncClient, keys: dict[str, str], gql: GraphQLClient
) -> None:
    code = KNOWN_NATIONAL_CODE
    body = await gql(
        "query($c: NationalCode!) { person(nationalCode: $c) { id parcels {"
        " id owners { nationalCode } deed { owners { nationalCode } } } } }",
        {"c": code},
    )
    person = body["data"]["person"]
    # A parcel both the planning department and the land registry say the person owns.
    parcel = next(
        p
        for p in person["parcels"]
        if code in {o["nationalCode"] for o in p["owners"]}
        and code in {o["nationalCode"] for o in p["deed"]["owners"]}
    )
    on_parcel = "query($id: ID!) { node(id: $id) { ... on Parcel { %s } } }"
    paths = {
        "Query.person": (PERSON, {"c": code}),
        "Query.node": (
            "query($id: ID!) { node(id: $id) { ... on Person { fullName } } }",
            {"id": person["id"]},
        ),
        "Owner.share": (on_parcel % "owners { share }", {"id": parcel["id"]}),
        "Deed.owners": (on_parcel % "deed { owners { share } }", {"id": parcel["id"]}),
        # Served with the person it belongs to, so recorded under the person's first field.
        "civil record": (
            "query($c: NationalCode!) { person(nationalCode: $c) { civilRecord { alive } } }",
            {"c": code},
        ),
    }
    notary = GraphQLClient(client, keys["notary_a"])
    purposes = {}
    for path, (query, variables) in paths.items():
        purposes[path] = _purpose()
        answer = await notary(query, variables, headers={"X-Road-Issue": purposes[path]})
        assert "errors" not in answer, (path, answer)
    operations = {
        path: [r["operation"] for r in await _records_of(gql, code, purpose)]
        for path, purpose in purposes.items()
    }
    assert operations == {
        "Query.person": ["Query.person"],
        "Query.node": ["Query.node"],
        "Owner.share": ["Owner.share"],
        "Deed.owners": ["Deed.owners"],
        "civil record": ["Query.person"],
    }


async def test_a_deed_the_land_registry_did_not_serve_records_nothing(
    backend: Backend, sandbox: SandboxAgencies, keys: dict[str, str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the registry is down
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    app = create_app(settings_for(backend, sandbox, land_registry_url=f"http://127.0.0.1:{closed}"))
    purpose = _purpose()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        body = await GraphQLClient(http, keys["notary_a"])(
            "{ parcels(first: 3) { edges { node { deed { serial owners { nationalCode }"
            " seizures { issuer } freeOfSeizure } } } } }",
            cost=True,
            headers={"X-Road-Issue": purpose},
        )
    assert [e["node"]["deed"] for e in body["data"]["parcels"]["edges"]] == [None] * 3
    assert {e["extensions"]["code"] for e in body["errors"]} == {"AGENCY_UNAVAILABLE"}
    assert body["extensions"]["cost"]["auditRecords"] == 0
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        async with databases.gateway.connect() as connection:
            written = await connection.scalar(
                select(func.count()).where(AuditRecord.purpose == purpose)
            )
    finally:
        await databases.dispose()
    assert written == 0


# What is recorded, at the resolvers


def _info(parent_type: str, field_name: str, **loaders: Any) -> Any:
    """What a resolver reads of strawberry's Info here."""
    return SimpleNamespace(
        context=SimpleNamespace(loaders=SimpleNamespace(**loaders)),
        _raw_info=SimpleNamespace(parent_type=SimpleNamespace(name=parent_type)),
        field_name=field_name,
    )


class _Loader:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def load(self, _key: Any) -> Any:
        return self.answer


def _person() -> Person:
    return Person.from_domain(
        parcels.Person(1, KNOWN_NATIONAL_CODE, "Ali", "Rezaei", "Hasan", dt.date(1980, 1, 1))
    )


@pytest.mark.parametrize("answered", [True, False])
async def test_a_civil_record_is_noted_under_the_person_only_when_the_registry_answered(
    answered: bool,
) -> None:
    answer = CivilAnswer(
        KNOWN_NATIONAL_CODE,
        "Ali",
        "Rezaei",
        "Hasan",
        dt.date(1980, 1, 1),
        "1358/10/11",
        "MALE",
        True,
        None,
    )
    info = _info("Person", "civilRecord", civil_record=_Loader(answer if answered else None))
    with operation_reads() as reads:
        record = await Person.civil_record(_person(), info)
    assert (record is not None) == answered
    expected = {("Person", KNOWN_NATIONAL_CODE): "Person.civilRecord"} if answered else {}
    assert reads == expected


def test_every_owner_a_deed_names_is_noted_for_each_personal_field() -> None:
    owners = ("0084575948", "0013542419")
    deed = Deed.from_answer(
        DeedAnswer(
            plate=Plate(20, 130, 207),
            serial="A/100001",
            issued_on=dt.date(2001, 1, 1),
            area=Decimal("120.5"),
            owners=tuple(DeedOwnerAnswer(code, "A", "B", Decimal(3)) for code in owners),
            mortgages=(),
            seizures=(),
        )
    )
    for field, read in (
        ("owners", Deed.owners),
        ("mortgages", Deed.mortgages),
        ("seizures", Deed.seizures),
        ("freeOfSeizure", Deed.free_of_seizure),
    ):
        with operation_reads() as reads:
            read(deed, _info("Deed", field))
        assert reads == {("Person", code): f"Deed.{field}" for code in owners}, field


def test_a_read_is_noted_once_per_operation_under_its_first_field() -> None:
    with operation_reads() as first:
        note_personal_read(_info("Query", "person"), "Person", "0084575948")
        note_personal_read(_info("Owner", "share"), "Person", "0084575948")
        with operation_reads() as second:  # another operation of the same batch
            note_personal_read(_info("Owner", "share"), "Person", "0084575948")
    assert first == {("Person", "0084575948"): "Query.person"}
    assert second == {("Person", "0084575948"): "Owner.share"}


def test_personal_data_noted_outside_an_operation_is_refused() -> None:
    with pytest.raises(RuntimeError, match="outside an audited operation"):
        note_personal_read(_info("Query", "person"), "Person", "0084575948")
