"""The audit trail: who read whose personal data or changed what, when and why, kept in the
gateway's database as a chain keyed with a secret from outside it (HMAC-SHA256), so that an
edited, deleted, reordered or forged record shows, and with signed checkpoints of its head
published elsewhere (gateway/access/audit_checkpoints.py), so that a wiped or truncated one does."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import getpass
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    String,
    and_,
    cast,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.mysql import BINARY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engines import Databases, statement_counter, write_transaction, write_turn
from db.gateway import AuditHead, AuditRecord
from gateway.access.audit_checkpoints import (
    Checkpoint,
    CheckpointPublisher,
    checkpoint_stores,
    read_checkpoints,
)
from gateway.access.audit_key import load_audit_key
from gateway.clock import WallClock, naive_utc, utc_now
from gateway.errors import AuditUnavailable
from gateway.observe import metrics
from gateway.paging import Page, Window, beyond, paged, windowed
from gateway.settings import Settings

GENESIS = "0" * 64  # the prev_hash of the first record
HEAD_ID = 1  # the head is a single row

# Part of every hashed document, so that a later format can never collide with this one.
# (1 was plain SHA-256, which anyone could recompute; 2 is keyed.)
_FORMAT = "audit-record/2"

_records = AuditRecord.__table__
_head = AuditHead.__table__


@dataclass(frozen=True)
class AuditEntry:
    """One thing to account for: who did which operation to what, for which case."""

    principal_kind: str
    principal_id: str
    action: Literal["read", "change"]
    operation: str  # the field or mutation, "Person.nationalCode"
    subject_type: str
    subject_id: str
    purpose: str | None  # the case (X-Road "issue") the caller named, if any
    request_id: str  # the gateway's own, unique per request
    caller_request_id: str | None = None  # the X-Request-Id the caller sent, if any


_ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))


def _column_lengths() -> dict[str, int]:
    lengths = {}
    for name in _ENTRY_FIELDS:
        column_type = _records.c[name].type
        assert isinstance(column_type, String)
        assert column_type.length is not None
        lengths[name] = column_type.length
    return lengths


# A value longer than its column would be refused (PostgreSQL) or cut, breaking its hash.
_LENGTHS = _column_lengths()


@dataclass(frozen=True)
class AuditRecordRow:
    """A stored record, as the audit trail's readers see it."""

    id: int
    recorded_at: dt.datetime  # UTC, naive
    request_id: str
    principal_kind: str
    principal_id: str
    action: str
    operation: str
    subject_type: str
    subject_id: str
    purpose: str | None
    caller_request_id: str | None
    prev_hash: str
    hash: str


def record_hash(
    key: bytes, prev_hash: str, id: int, recorded_at: dt.datetime, entry: AuditEntry
) -> str:
    """HMAC-SHA256 (hex) with the audit key of a record and its predecessor's hash.

    The document is JSON with sorted keys, no whitespace, UTF-8, and `recorded_at` as naive
    UTC in ISO 8601 with microseconds. Changing any of this breaks every stored trail.
    """
    if recorded_at.tzinfo is not None:
        raise ValueError("recorded_at must be naive UTC")
    document = {
        "format": _FORMAT,
        "prev_hash": prev_hash,
        "id": id,
        "recorded_at": recorded_at.isoformat(timespec="microseconds"),
        **asdict(entry),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _check(entry: AuditEntry) -> None:
    if entry.action not in ("read", "change"):
        raise ValueError(f"audit action must be read or change, not {entry.action!r}")
    for name, length in _LENGTHS.items():
        value = getattr(entry, name)
        if value is not None and len(value) > length:
            raise ValueError(f"audit {name} is longer than {length} characters")


def entry_of(record: Row[Any]) -> AuditEntry:
    return AuditEntry(**{name: getattr(record, name) for name in _ENTRY_FIELDS})


def stored_record(record: Row[Any]) -> AuditRecordRow:
    """A row of the trail's table as its readers see it (the trail's query, the loaders)."""
    return AuditRecordRow(**{f.name: getattr(record, f.name) for f in fields(AuditRecordRow)})


class AuditTrail:
    """Appends to and searches the chain in the gateway's database (gateway/access/audit_verify.py
    verifies it).

    Appending and verifying need the key; searching does not. With a publisher, every
    append offers a signed checkpoint of the new head, and verification compares the trail
    with the checkpoints its stores hold.
    """

    def __init__(
        self,
        databases: Databases,
        key: bytes | None = None,
        *,
        checkpoints: CheckpointPublisher | None = None,
        clock: WallClock = utc_now,
        chunk_size: int = 1000,
    ) -> None:
        self.engine = databases.gateway
        self._key = key
        self.checkpoints = checkpoints
        self._clock = clock
        self.chunk_size = chunk_size  # records a verification reads at a time
        # This process's requests queue here instead of on the head row's lock.
        self._lock = asyncio.Lock()
        self._head_ready = False
        self._microseconds = True
        # The longest the trail is known to have been: the newest checkpoint at the first
        # append, then each append's head. The chain only grows; an append never builds on a
        # trail shorter than this, which would make a wiped or truncated trail whole again.
        self._high_water: int | None = None
        # The last hash this process appended: a head that moved past it was moved by
        # another process, whose last record must verify with our key before we build on it.
        self._last_hash: str | None = None

    def required_key(self) -> bytes:
        if self._key is None:
            raise AuditUnavailable("the audit trail was opened without its key")
        return self._key

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Appends `entries`, in order and in one transaction, after the chain's last record.

        Raises ValueError for an entry that does not fit its columns (nothing is written) and
        AuditUnavailable when the head is missing while records exist or disagrees with them,
        or when the trail is shorter than it is known to have been.
        """
        if not entries:
            return
        started = time.perf_counter()
        ok = False
        try:
            await self._append(entries)
            ok = True
        finally:
            # One append per group commit: the metrics count and time them.
            metrics.observe_audit_append(len(entries), time.perf_counter() - started, ok)

    async def _append(self, entries: Sequence[AuditEntry]) -> None:
        key = self.required_key()
        for entry in entries:
            _check(entry)
        with _uncounted():
            async with self._lock:
                # Twice at most: a head deleted since we created it is created again (only
                # an empty trail gets a new head, so this never hides a deletion).
                for _ in range(2):
                    if not self._head_ready:
                        await self._create_head()
                    if self._high_water is None:
                        self._high_water = await self._newest_checkpoint_length(key)
                    head = await self._append_after_head(key, entries, self._high_water)
                    if head is not None:
                        self._high_water = head.length
                        self._last_hash = head.last_hash
                        if self.checkpoints is not None:
                            # After the commit: a checkpoint never names an uncommitted record.
                            self.checkpoints.offer(
                                Checkpoint.signed(
                                    key,
                                    length=head.length,
                                    last_id=head.last_id,
                                    last_hash=head.last_hash,
                                    written_at=naive_utc(self._clock()),
                                )
                            )
                        return
                    self._head_ready = False
        raise AuditUnavailable("the audit head disappeared twice while appending")

    async def close(self) -> None:
        """Waits for the checkpoints offered so far to be published."""
        if self.checkpoints is not None:
            await self.checkpoints.flush()

    async def _create_head(self) -> None:
        async with self.engine.connect() as connection:
            if await connection.scalar(select(_head.c.id).where(_head.c.id == HEAD_ID)) is None:
                if await connection.scalar(select(_records.c.id).limit(1)) is not None:
                    raise AuditUnavailable("audit records exist but the head is missing")
                try:
                    await connection.execute(
                        insert(AuditHead).values(id=HEAD_ID, last_id=0, last_hash=GENESIS, length=0)
                    )
                    await connection.commit()
                except IntegrityError:
                    # Another process created it first; an empty head is an empty head.
                    await connection.rollback()
            self._microseconds = await _keeps_microseconds(connection)
        self._head_ready = True

    async def _newest_checkpoint_length(self, key: bytes) -> int:
        if self.checkpoints is None:
            return 0
        newest = (await read_checkpoints(self.checkpoints.stores, key)).newest
        return 0 if newest is None else newest.length

    async def _append_after_head(
        self, key: bytes, entries: Sequence[AuditEntry], high_water: int
    ) -> Head | None:
        """The new head, or None when the head row is missing."""
        # On SQLite, in turn with this process's other writers of the gateway's database
        # (inquiries, keys), rather than spinning against them at BEGIN IMMEDIATE; and in one
        # hand-over to a thread for the whole transaction (db.engines.write_transaction).
        async with write_turn(self.engine):
            return await write_transaction(
                self.engine,
                functools.partial(
                    self._chain, key, entries, high_water, self._last_hash, self._microseconds
                ),
            )

    def _chain(
        self,
        key: bytes,
        entries: Sequence[AuditEntry],
        high_water: int,
        last_appended: str | None,
        microseconds: bool,
        connection: Connection,
    ) -> Head | None:
        """Chains `entries` after the head, in the write transaction `connection` holds."""
        head = _read_head(connection, lock=True)
        if head is None:
            return None
        if head.length < high_water:
            raise AuditUnavailable(
                f"the audit trail holds {head.length} records but held {high_water}: "
                "wiped, truncated or rolled back; run `gateway audit verify`"
            )
        if head.length and head.last_hash != last_appended:
            _check_last_record(connection, key, head)
        # Read under the lock, so that recorded_at never goes back along the chain.
        recorded_at = naive_utc(self._clock())
        if not microseconds:
            recorded_at = recorded_at.replace(microsecond=0)
        last_id, last_hash = head.last_id, head.last_hash
        rows = []
        for entry in entries:
            prev_hash, last_id = last_hash, last_id + 1
            last_hash = record_hash(key, prev_hash, last_id, recorded_at, entry)
            rows.append(
                {
                    **asdict(entry),
                    "id": last_id,
                    "recorded_at": recorded_at,
                    "prev_hash": prev_hash,
                    "hash": last_hash,
                }
            )
        try:
            connection.execute(insert(AuditRecord), rows)
        except IntegrityError as exc:
            raise AuditUnavailable(
                "the audit head disagrees with the records: run `gateway audit verify`"
            ) from exc
        new_head = Head(last_id, last_hash, head.length + len(rows))
        connection.execute(
            update(AuditHead)
            .where(AuditHead.id == HEAD_ID)
            .values(last_id=last_id, last_hash=last_hash, length=new_head.length)
        )
        return new_head

    async def query(
        self,
        *,
        principal_id: str | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        first: int = 50,
        after_id: int = 0,
        visible: ColumnElement[bool] | None = None,
    ) -> tuple[list[AuditRecordRow], bool]:
        """A page of records in id order after `after_id`, and whether more follow.

        `since` is inclusive, `until` exclusive; naive datetimes are UTC. `visible`: the
        condition of the caller's row-level rule (gateway/access/rows.py), if any.
        """
        if first < 1:
            raise ValueError("first must be at least 1")
        conditions = self.conditions(
            principal_id, subject_type, subject_id, action, since, until, visible
        )
        found = await self.page(conditions, Window(size=first, after_id=after_id))
        return found.items, found.has_next

    async def page(
        self, conditions: list[ColumnElement[bool]], window: Window
    ) -> Page[AuditRecordRow]:
        """The records under `conditions` (from `conditions`) in the window, in id order."""
        statement = windowed(select(_records).where(*conditions), _records.c.id, window)
        other_side = beyond(_records.c.id, conditions, window)
        async with self.engine.connect() as connection:
            records = (await connection.execute(statement)).all()
            past = other_side is not None and bool((await connection.execute(other_side)).scalar())
        found = paged(records, window, beyond_cursor=past)
        return Page([stored_record(r) for r in found.items], found.has_next, found.has_previous)

    async def count(self, conditions: list[ColumnElement[bool]]) -> int:
        """How many records `conditions` (from `conditions`) hold."""
        statement = select(func.count()).select_from(_records).where(*conditions)
        async with self.engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    def conditions(
        self,
        principal_id: str | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        visible: ColumnElement[bool] | None = None,
    ) -> list[ColumnElement[bool]]:
        """The filters of a read of the trail, as conditions on its records."""
        mysql = self.engine.dialect.name == "mysql"
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_records.c.principal_id, principal_id),
            (_records.c.subject_type, subject_type),
            (_records.c.subject_id, subject_id),
            (_records.c.action, action),
        ):
            if value is not None:
                conditions.append(_exactly(column, value, mysql=mysql))
        if since is not None:
            conditions.append(_records.c.recorded_at >= naive_utc(since))
        if until is not None:
            conditions.append(_records.c.recorded_at < naive_utc(until))
        if visible is not None:
            conditions.append(visible)
        return conditions


def _exactly(column: ColumnElement[Any], value: str, *, mysql: bool) -> ColumnElement[bool]:
    if not mysql:
        return column == value
    # MariaDB's collation matches "Bank-1" to "bank-1 "; a partner must see only its own
    # records, so the UTF-8 bytes must match too (the plain comparison still uses the index).
    return and_(column == value, cast(column, BINARY()) == value.encode())


def open_audit_trail(
    settings: Settings, databases: Databases, clock: WallClock = utc_now
) -> AuditTrail:
    """The trail as configured: its key (a configuration error without one in production)
    and its checkpoint stores; `clock` times its records and checkpoints."""
    return AuditTrail(
        databases,
        load_audit_key(settings),
        checkpoints=CheckpointPublisher(checkpoint_stores(settings)),
        clock=clock,
    )


async def record_cli_change(
    databases: Databases,
    operation: str,
    subject_type: str,
    subject_id: str,
    *,
    settings: Settings | None = None,
) -> None:
    """A change made from the command line (keys, registered operations), by its operator."""
    entry = AuditEntry(
        principal_kind="operator",
        principal_id=f"cli:{getpass.getuser()}",
        action="change",
        operation=operation,
        subject_type=subject_type,
        subject_id=subject_id,
        purpose=None,
        request_id=uuid.uuid4().hex,
    )
    trail = open_audit_trail(settings or Settings(), databases)
    try:
        await trail.append([entry])
    finally:
        await trail.close()


class GroupCommit:
    """Writes many requests' entries in one append: group commit.

    A request waits until its own entries are durable, as before; while one append is
    running, the requests that arrive meanwhile queue up and go together in the next.
    Under load one transaction serves many requests instead of each paying its own.
    """

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self._queue: list[tuple[Sequence[AuditEntry], asyncio.Future[None]]] = []
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, entries: Sequence[AuditEntry]) -> None:
        # Checked before queueing: an entry the trail cannot hold (a 65-character "national
        # ID" from an agency, say) fails its own request, not everyone's in the same append.
        for entry in entries:
            _check(entry)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((entries, done))
        if not self._flushing:
            self._flushing = True
            # Its own task: a request that goes away does not take others' writes with it.
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self.trail.append([entry for entries, _ in batch for entry in entries])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._flushing = False


@dataclass(frozen=True)
class Head:
    last_id: int
    last_hash: str
    length: int


_HEAD = select(_head.c.last_id, _head.c.last_hash, _head.c.length).where(_head.c.id == HEAD_ID)
# Appenders of every process queue here (SQLite ignores it: its writers lock the file).
_LOCKED_HEAD = _HEAD.with_for_update()


async def read_head(connection: AsyncConnection) -> Head | None:
    row = (await connection.execute(_HEAD)).one_or_none()
    return None if row is None else Head(*row)


def _read_head(connection: Connection, *, lock: bool) -> Head | None:
    row = connection.execute(_LOCKED_HEAD if lock else _HEAD).one_or_none()
    return None if row is None else Head(*row)


def _check_last_record(connection: Connection, key: bytes, head: Head) -> None:
    """The record the head names must be there and verify with our key before a record is
    chained to it: a chain continued under another key (two gateways on one database with
    different GATEWAY_AUDIT_KEYs, or a development gateway with a data folder of its own)
    would read as edited from that record on, and hide every later record from verification."""
    record = connection.execute(select(_records).where(_records.c.id == head.last_id)).one_or_none()
    if record is None or record.hash != head.last_hash:
        raise AuditUnavailable(
            "the audit head disagrees with the records: run `gateway audit verify`"
        )
    expected = record_hash(key, record.prev_hash, record.id, record.recorded_at, entry_of(record))
    if not hmac.compare_digest(expected, record.hash):
        raise AuditUnavailable(
            f"the audit trail's last record ({record.id}) does not verify with this gateway's "
            "audit key: another gateway with another GATEWAY_AUDIT_KEY writes to this "
            "database, or the record was edited; run `gateway audit verify`"
        )


@contextlib.contextmanager
def _uncounted() -> Iterator[None]:
    """The trail's bookkeeping is not what a query costs (X-Gateway-Debug): its statements
    are constant, save for the head's creation on a process's first append."""
    token = statement_counter.set(None)
    try:
        yield
    finally:
        statement_counter.reset(token)


async def _keeps_microseconds(connection: AsyncConnection) -> bool:
    """Whether recorded_at stores microseconds: MariaDB's plain DATETIME drops them, which
    would change the hashed value, so records are then stamped to the second."""
    if connection.dialect.name != "mysql":
        return True
    columns = await connection.run_sync(
        lambda sync: inspect(sync).get_columns(AuditRecord.__tablename__)
    )
    (column,) = (c for c in columns if c["name"] == "recorded_at")
    return bool(getattr(column["type"], "fsp", None))
