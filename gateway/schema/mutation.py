"""The mutation pattern: one session and one transaction per mutation, the change audited and
announced once it has committed.

    @strawberry.mutation(permission_classes=[requires(Scope.KEYS_READ)])
    async def revoke_api_key(self, info: Info, prefix: str) -> ApiKey | None:
        async with change(info) as unit:
            revoked = await keys.revoke_own_key(unit.session, info.context.principal, prefix)
            unit.audit(keys.KEYS_REVOKE, "ApiKey", revoked.id)
            unit.announce(*keys.revocation_notice(revoked))
        return ApiKey.from_domain(revoked)

The resolver unpacks its arguments and calls domain functions that take the session and
raise the documented errors: BadUserInput naming the field, NotFound for a record the caller
may not see (the row rules decide, so another's record reads as absent), Conflict for one
not in a state the change applies to. Any error rolls the whole transaction back, and
nothing is audited or announced. After the commit the change is written to the audit trail
under the caller, with the request's ids and purpose, before the answer leaves; if the trail
cannot be written the answer is INTERNAL (the change stands, and the log says so). Then its
events are published (gateway/events.py), for subscriptions in this process and, through
Redis, in others.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from db.engines import Session
from gateway.context import Context, Info
from gateway.errors import AuditUnavailable
from gateway.events import Topic

log = logging.getLogger("gateway.schema.mutation")

E = TypeVar("E")


@dataclass
class Change:
    """One mutation's unit of work: its session, inside its transaction, and what it will
    record and announce once the transaction has committed."""

    session: Session
    changed: list[tuple[str, str, str]] = field(default_factory=list)
    announcements: list[Callable[[Context], Awaitable[None]]] = field(default_factory=list)

    def audit(self, operation: str, subject_type: str, subject_id: object) -> None:
        """Records the change in the audit trail, under the caller, after the commit."""
        self.changed.append((operation, subject_type, str(subject_id)))

    def announce(self, topic: Topic[E], audience: str, event: E) -> None:
        """Publishes the event to `audience` after the commit."""

        async def publish(context: Context) -> None:
            await context.events.publish(topic, audience, event)

        self.announcements.append(publish)


@contextlib.asynccontextmanager
async def change(info: Info, database: str = "gateway") -> AsyncIterator[Change]:
    """The mutation's session and transaction on `database`; committed when the block ends,
    rolled back if it raises. Then the changes are audited and announced."""
    context = info.context
    async with context.databases.session(database) as session, session.begin():
        unit = Change(session)
        yield unit
    failure: Exception | None = None
    if unit.changed:
        try:
            await context.audit_trail.append(
                [context.audit_entry("change", *done) for done in unit.changed]
            )
        except Exception as exc:
            log.exception(
                "a committed change is not in the audit trail (request %s)", context.request_id
            )
            failure = exc
    for announcement in unit.announcements:
        await announcement(context)
    if failure is not None:
        raise AuditUnavailable() from failure
