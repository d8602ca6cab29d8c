"""What every resolver receives: the caller's request, fresh loaders, databases, cost counters."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from connectors.agencies import Agencies
from db.engines import Databases
from gateway.cost import RequestCost
from gateway.loaders import Loaders
from gateway.principals import Principal
from gateway.settings import Settings


@dataclass
class Context:
    request: Request
    response: Response
    settings: Settings
    databases: Databases
    loaders: Loaders
    agencies: Agencies
    principal: Principal
    request_id: str
    cost: RequestCost
    report_cost: bool


Info = strawberry.Info[Context, None]
