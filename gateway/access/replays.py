"""The audit record of a registration replayed under its idempotency key.

A registration commits first and is written to the audit trail after; when that write fails
the caller gets an error and retries with the same key, and the retry is a replay that
changes nothing. Without a look, that replay would leave the committed change unaudited for
good. So a replay writes the change's record when the trail has none yet (the original's
write failed), and nothing when it has one (the trail stays one record per change).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.access.audit import AuditEntry, AuditTrail

# Records read at a time while looking for the original's.
_PAGE = 200


async def recorded(trail: AuditTrail, entry: AuditEntry) -> bool:
    """Whether the trail holds a change record like `entry` (same principal, operation and
    subject). The search is by principal (indexed), then by subject and operation."""
    after_id = 0
    while True:
        found, more = await trail.query(
            principal_id=entry.principal_id,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            action=entry.action,
            first=_PAGE,
            after_id=after_id,
        )
        if any(record.operation == entry.operation for record in found):
            return True
        if not more or not found:
            return False
        after_id = found[-1].id


async def audit_registration(
    trail: AuditTrail,
    write: Callable[[list[AuditEntry]], Awaitable[None]],
    entry: AuditEntry,
    *,
    created: bool,
) -> None:
    """Writes a registration's change record through `write` (the trail's append, or the
    group commit): always for a new registration, and for a replay when the original's
    record is missing. A failing write raises, as the original's does."""
    if created or not await recorded(trail, entry):
        await write([entry])
