"""What every resolver receives: the caller's request, fresh loaders, databases, cost counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from connectors.agencies import Agencies
from db.engines import Databases
from gateway.access.audit import AuditEntry, AuditTrail, GroupCommit
from gateway.access.principals import Principal
from gateway.clock import WallClock, utc_now
from gateway.cost import RequestCost
from gateway.events import Events
from gateway.inquiries.config import InquirySettings, inquiry_settings
from gateway.jobs import JobQueue
from gateway.loaders import Loaders
from gateway.settings import Settings


@dataclass
class Context:
    request: Request
    response: Response
    settings: Settings
    databases: Databases
    loaders: Loaders
    agencies: Agencies
    audit_trail: AuditTrail
    events: Events  # what subscriptions hear (gateway/events.py)
    principal: Principal
    request_id: str
    cost: RequestCost
    report_cost: bool
    # The case this request serves (X-Road "issue"): an inquiry's tracking code, a file number.
    purpose: str | None = None
    # The X-Request-Id the caller sent, if sane; request_id is always the gateway's own.
    caller_request_id: str | None = None
    wall_clock: WallClock = utc_now  # the one "now" of records (gateway/clock.py)
    job_queue: JobQueue | None = None  # durable work (gateway/jobs), once the app runs
    # The trail's group commit: concurrent requests' entries go in one append.
    audit_writer: GroupCommit | None = None

    @property
    def inquiries(self) -> InquirySettings:
        return inquiry_settings(self.settings)

    def audit_entry(
        self,
        action: Literal["read", "change"],
        operation: str,
        subject_type: str,
        subject_id: str,
    ) -> AuditEntry:
        """A record of what this request read ("read") or changed ("change"), by whom, for
        which case and under which request ids."""
        return AuditEntry(
            principal_kind=self.principal.kind.value,
            principal_id=self.principal.id,
            action=action,
            operation=operation,
            subject_type=subject_type,
            subject_id=subject_id,
            purpose=self.purpose,
            request_id=self.request_id,
            caller_request_id=self.caller_request_id,
        )

    async def audit_changes(self, entries: list[AuditEntry]) -> None:
        """Records committed changes in the audit trail before the answer, in the group
        commit that concurrent requests share when there is one."""
        if self.audit_writer is not None:
            await self.audit_writer.write(entries)
        else:
            await self.audit_trail.append(entries)


Info = strawberry.Info[Context, None]
