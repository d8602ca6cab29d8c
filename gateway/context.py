"""What every resolver receives: the caller's request, fresh loaders, databases, cost counters."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from connectors.agencies import Agencies
from db.engines import Databases
from gateway.access.audit import AuditTrail
from gateway.access.principals import Principal
from gateway.cost import RequestCost
from gateway.events import Events
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


Info = strawberry.Info[Context, None]
