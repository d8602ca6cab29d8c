"""Verifying the audit trail: walk the keyed chain from its first record, compare its end with
the head and with every checkpoint the key signed, and name each thing found wrong."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.gateway import AuditRecord
from gateway.access.audit import GENESIS, AuditTrail, Head, entry_of, read_head, record_hash
from gateway.access.audit_checkpoints import Checkpoint, CheckpointReading, read_checkpoints

_records = AuditRecord.__table__

# Faults of a record's own hash, which a wrong key produces at every record.
_HASH_FAULTS = ("edited", "does not follow the record before it")


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the trail. `record_id` names the record it concerns: the first
    that fails, or for records missing at the end the first missing one."""

    reason: str
    record_id: int | None = None
    detail: str | None = None

    def __str__(self) -> str:
        where = "" if self.record_id is None else f" at record {self.record_id}"
        detail = "" if self.detail is None else f": {self.detail}"
        return f"audit trail broken{where}: {self.reason}{detail}"


@dataclass(frozen=True)
class VerifyResult:
    """`checked` counts the records that verified, from the first up to any fault."""

    checked: int
    findings: tuple[Finding, ...] = ()
    checkpoint: Checkpoint | None = None  # the newest checkpoint compared with, if any

    @property
    def ok(self) -> bool:
        return not self.findings


async def verify(trail: AuditTrail) -> VerifyResult:
    """Walks the chain from its first record, recomputing every keyed hash; checks that the
    head names the last record and the length walked; compares the trail with every
    checkpoint signed with the key, and names every checkpoint that is not."""
    key = trail.required_key()
    stores = [] if trail.checkpoints is None else trail.checkpoints.stores
    # Read first: a checkpoint names records committed before it was written, so the walk
    # that follows sees them on every database (MariaDB's snapshot included).
    reading = await read_checkpoints(stores, key)
    async with trail.engine.connect() as connection:
        walk = await _walk(connection, key, trail.chunk_size)
        findings = []
        if walk.fault is not None:
            findings.append(await _explain(connection, key, walk.fault, trail.chunk_size))
        else:
            findings += _against_head(walk.head, walk.last_id, walk.last_hash, walk.checked)
        findings += _unsigned(reading)
        if reading.signed:
            findings += await _against_checkpoints(connection, reading.signed)
        elif trail.checkpoints is not None and walk.checked and not reading.read_any:
            findings.append(
                Finding(
                    "no checkpoint",
                    None,
                    f"none in {', '.join(s.name for s in stores)}: records missing at "
                    "the end, or a wiped trail, would not show",
                )
            )
    return VerifyResult(walk.checked, tuple(findings), reading.newest)


@dataclass(frozen=True)
class _Walk:
    checked: int
    last_id: int
    last_hash: str
    head: Head | None
    fault: Finding | None


async def _walk(connection: AsyncConnection, key: bytes, chunk_size: int) -> _Walk:
    last_id, last_hash, checked = 0, GENESIS, 0
    head: Head | None = None
    while True:
        arrived = 0
        while chunk := (
            await connection.execute(
                select(_records)
                .where(_records.c.id > last_id)
                .order_by(_records.c.id)
                .limit(chunk_size)
            )
        ).all():
            for record in chunk:
                reason = await _fault(connection, key, record, last_id + 1, last_hash)
                if reason is not None:
                    return _Walk(checked, last_id, last_hash, head, Finding(reason, record.id))
                last_id, last_hash, checked = record.id, record.hash, checked + 1
            arrived += len(chunk)
        # Records appended while we walked come with a newer head: walk on to it. A head
        # ahead of records that were already there when we read it means deletion.
        if head is not None and arrived == 0:
            break
        head = await read_head(connection)
        if head is None or head.last_id <= last_id:
            break
    return _Walk(checked, last_id, last_hash, head, None)


def _verifies(key: bytes, record: Row[Any]) -> bool:
    recomputed = record_hash(key, record.prev_hash, record.id, record.recorded_at, entry_of(record))
    return hmac.compare_digest(recomputed, record.hash)


async def _fault(
    connection: AsyncConnection, key: bytes, record: Row[Any], expected_id: int, prev_hash: str
) -> str | None:
    """Why `record` cannot follow a record whose hash is `prev_hash`, or None if it can."""
    if record.id != expected_id:
        return "deleted before this record"
    verifies = _verifies(key, record)
    if record.prev_hash == prev_hash:
        return None if verifies else "edited"
    # A record whose predecessor now sits elsewhere in the chain has been moved.
    elsewhere = await connection.scalar(
        select(_records.c.id).where(_records.c.hash == record.prev_hash)
    )
    if elsewhere is not None:
        return "out of order"
    if verifies:
        # Consistent in itself: the record before it was rewritten, or replaced whole.
        return "does not follow the record before it"
    return "edited"


async def _explain(
    connection: AsyncConnection, key: bytes, fault: Finding, chunk_size: int
) -> Finding:
    """A trail failing at its first record where no record at all verifies was written
    with another key (or rewritten whole): say so rather than "edited"."""
    if fault.record_id != 1 or fault.reason not in _HASH_FAULTS:
        return fault
    after = 0
    while chunk := (
        await connection.execute(
            select(_records).where(_records.c.id > after).order_by(_records.c.id).limit(chunk_size)
        )
    ).all():
        if any(_verifies(key, record) for record in chunk):
            return fault
        after = chunk[-1].id
    return Finding(
        "the key does not match",
        1,
        "no record verifies with it: the trail was written with another key, or rewritten whole",
    )


def _against_head(head: Head | None, last_id: int, last_hash: str, checked: int) -> list[Finding]:
    if head is None:
        return [] if checked == 0 else [Finding("the head is missing")]
    if (head.last_id, head.last_hash, head.length) == (last_id, last_hash, checked):
        return []
    says = f"the head says {head.length} records"
    if head.last_id > last_id or head.length > checked:
        return [Finding("missing at the end", last_id + 1, says)]
    if head.last_id < last_id or head.length < checked:
        return [Finding("not in the head", head.last_id + 1, says)]
    # Same length, other hash: the last record was replaced, hash and all.
    return [Finding("does not match the head", last_id or None)]


_UNSIGNED = {
    "forged": ("forged checkpoint", "its signature does not match the key"),
    "another key": ("checkpoint of another key", "signed with another key, or forged"),
    "unreadable": ("unreadable checkpoint", "not a checkpoint, or could not be read"),
}


def _unsigned(reading: CheckpointReading) -> list[Finding]:
    return [
        Finding(_UNSIGNED[problem.what][0], None, f"{problem.where}: {_UNSIGNED[problem.what][1]}")
        for problem in reading.problems
    ]


async def _against_checkpoints(
    connection: AsyncConnection, checkpoints: Sequence[Checkpoint]
) -> list[Finding]:
    """The newest checkpoint the trail disagrees with, if any. Every one is compared: a chain
    begun again over a wiped or truncated one may agree with its own newest checkpoint and
    still not with an older one."""
    for checkpoint in checkpoints:
        if findings := await _against_checkpoint(connection, checkpoint):
            return findings
    return []


async def _against_checkpoint(connection: AsyncConnection, checkpoint: Checkpoint) -> list[Finding]:
    """The trail must still hold the checkpoint's last record, with the checkpoint's hash:
    the hash covers the whole chain up to it, so this proves every record up to it."""
    if checkpoint.length == 0:
        return []
    of = f"the checkpoint of {checkpoint.written_at:%Y-%m-%d %H:%M:%S} UTC"
    hash_there = await connection.scalar(
        select(_records.c.hash).where(_records.c.id == checkpoint.last_id)
    )
    if hash_there is not None:
        if hmac.compare_digest(hash_there, checkpoint.last_hash):
            return []
        return [
            Finding(
                "rewritten",
                checkpoint.last_id,
                f"its hash differs from {of}: the records up to it were rewritten or rolled back",
            )
        ]
    last = await connection.scalar(select(func.max(_records.c.id)))
    if last is None:
        says = f"the trail is empty; {of} says {checkpoint.length} records"
        return [Finding("wiped", None, says)]
    if last < checkpoint.last_id:
        return [
            Finding(
                "missing at the end",
                last + 1,
                f"records {last + 1}-{checkpoint.last_id} ({checkpoint.last_id - last}) are in "
                f"{of} but not in the trail",
            )
        ]
    return [Finding("missing", checkpoint.last_id, f"{of} ends with it; the trail lacks it")]
